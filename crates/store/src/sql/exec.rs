//! The statement layer the store is written in: one statement text for both databases, bound
//! values of the few types the schema uses, and rows read by column name.
//!
//! Why not sqlx's own generic API or its `Any` driver: code generic over `sqlx::Database`
//! needs a dozen higher-ranked bounds (`for<'c> &'c mut Connection: Executor`, `Encode` and
//! `Decode` for every bound type) repeated on every generic item, because Rust does not imply
//! them; `Any` converts every value of every row into its own representation and hides the
//! native drivers' options (SQLite's pragmas, PostgreSQL's `LISTEN`). Here the bounds are met
//! once, by [`Exec`]'s two concrete implementations, and the generic store sees only
//! [`Query`], [`On`] and [`RowGet`].
//!
//! Statements are written with `?` placeholders; they run as `$1, $2, …`, which both
//! PostgreSQL and SQLite (`$NNN`) accept. No statement has a `?` inside a literal.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool, Transaction};

use crate::{StoreError, StoreResult};

/// A bound value: the column types the schema uses (`NULL` as `None`).
#[derive(Clone, Debug)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Flag(Option<bool>),
    Bytes(Option<Cow<'a, [u8]>>),
}

macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl<'a> From<$t> for Arg<'a> {
            fn from($v: $t) -> Self {
                $e
            }
        }
    )*};
}

arg_from! {
    i64 => |v| Arg::Int(Some(v));
    Option<i64> => |v| Arg::Int(v);
    bool => |v| Arg::Flag(Some(v));
    Option<bool> => |v| Arg::Flag(v);
    String => |v| Arg::Text(Some(Cow::Owned(v)));
    &'a str => |v| Arg::Text(Some(Cow::Borrowed(v)));
    &'a String => |v| Arg::Text(Some(Cow::Borrowed(v.as_str())));
    Option<String> => |v| Arg::Text(v.map(Cow::Owned));
    Option<&'a str> => |v| Arg::Text(v.map(Cow::Borrowed));
    &'a Option<String> => |v| Arg::Text(v.as_deref().map(Cow::Borrowed));
    Vec<u8> => |v| Arg::Bytes(Some(Cow::Owned(v)));
    &'a [u8] => |v| Arg::Bytes(Some(Cow::Borrowed(v)));
    &'a Vec<u8> => |v| Arg::Bytes(Some(Cow::Borrowed(v.as_slice())));
}

/// A statement and its bound values.
#[derive(Clone, Debug)]
pub(crate) struct Query<'a> {
    sql: Cow<'a, str>,
    args: Vec<Arg<'a>>,
}

/// A statement to run (see the module documentation for placeholders).
pub(crate) fn query<'a>(sql: impl Into<Cow<'a, str>>) -> Query<'a> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

/// A statement whose rows are read as their first column.
pub(crate) fn query_scalar<'a, T: Col>(sql: impl Into<Cow<'a, str>>) -> Scalar<'a, T> {
    Scalar {
        query: query(sql),
        _t: std::marker::PhantomData,
    }
}

/// `sql` with its rows locked until the transaction ends (see [`Exec::FOR_UPDATE`]); with
/// `of`, only the rows of that table (alias) of a join.
pub(crate) fn locked<DB: Exec>(sql: &str, of: Option<&str>) -> String {
    match (DB::FOR_UPDATE, of) {
        ("", _) => sql.to_owned(),
        (lock, None) => format!("{sql}{lock}"),
        (lock, Some(t)) => format!("{sql}{lock} OF {t}"),
    }
}

/// `$1, $2, …` for the `?` placeholders.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0u32;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The result of a statement that returns no rows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

impl<'a> Query<'a> {
    pub(crate) fn bind(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Appends SQL text (for statements assembled from parts).
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends a placeholder and binds its value.
    pub(crate) fn push_bind(&mut self, v: impl Into<Arg<'a>>) -> &mut Self {
        self.sql.to_mut().push('?');
        self.args.push(v.into());
        self
    }

    // The methods below return boxed futures (as sqlx's own executors do): a future that is
    // generic over where it runs would make every caller's `async fn` prove `Send` for all
    // lifetimes, which rustc cannot do for these bounds.

    pub(crate) fn fetch_all<'c, O: On<'c> + 'c>(
        self,
        on: O,
    ) -> BoxFuture<'c, sqlx::Result<Vec<Row<O::Db>>>>
    where
        'a: 'c,
    {
        Box::pin(async move {
            match on.target() {
                Target::Conn(c) => O::Db::fetch_all(c, self).await,
                Target::Pool(p) => O::Db::fetch_all(&mut *p.acquire().await?, self).await,
            }
        })
    }

    pub(crate) fn fetch_optional<'c, O: On<'c> + 'c>(
        self,
        on: O,
    ) -> BoxFuture<'c, sqlx::Result<Option<Row<O::Db>>>>
    where
        'a: 'c,
    {
        Box::pin(async move {
            match on.target() {
                Target::Conn(c) => O::Db::fetch_optional(c, self).await,
                Target::Pool(p) => O::Db::fetch_optional(&mut *p.acquire().await?, self).await,
            }
        })
    }

    pub(crate) fn fetch_one<'c, O: On<'c> + 'c>(
        self,
        on: O,
    ) -> BoxFuture<'c, sqlx::Result<Row<O::Db>>>
    where
        'a: 'c,
    {
        Box::pin(async move {
            self.fetch_optional(on)
                .await?
                .ok_or(sqlx::Error::RowNotFound)
        })
    }

    pub(crate) fn execute<'c, O: On<'c> + 'c>(self, on: O) -> BoxFuture<'c, sqlx::Result<Done>>
    where
        'a: 'c,
    {
        Box::pin(async move {
            let n = match on.target() {
                Target::Conn(c) => O::Db::execute(c, self).await?,
                Target::Pool(p) => O::Db::execute(&mut *p.acquire().await?, self).await?,
            };
            Ok(Done(n))
        })
    }

    /// Runs the statement and hands each row to `each` as it arrives (streamed: a million
    /// rows are never held at once).
    pub(crate) fn for_each<'c, O: On<'c> + 'c>(
        self,
        on: O,
        mut each: impl FnMut(&Row<O::Db>) -> StoreResult<()> + Send + 'c,
    ) -> BoxFuture<'c, StoreResult<()>>
    where
        'a: 'c,
    {
        Box::pin(async move {
            match on.target() {
                Target::Conn(c) => O::Db::for_each(c, self, &mut each).await,
                Target::Pool(p) => {
                    let mut c = p.acquire().await.map_err(super::backend)?;
                    O::Db::for_each(&mut c, self, &mut each).await
                }
            }
        })
    }
}

/// A [`Query`] read as its first column (`query_scalar`).
pub(crate) struct Scalar<'a, T> {
    query: Query<'a>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T: Col> Scalar<'a, T> {
    pub(crate) fn bind(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.query = self.query.bind(v);
        self
    }

    pub(crate) fn fetch_all<'c, O: On<'c> + 'c>(self, on: O) -> BoxFuture<'c, sqlx::Result<Vec<T>>>
    where
        'a: 'c,
        T: Send + 'c,
    {
        Box::pin(async move {
            let rows = self.query.fetch_all(on).await?;
            rows.iter().map(|r| r.try_get(0)).collect()
        })
    }

    pub(crate) fn fetch_optional<'c, O: On<'c> + 'c>(
        self,
        on: O,
    ) -> BoxFuture<'c, sqlx::Result<Option<T>>>
    where
        'a: 'c,
        T: Send + 'c,
    {
        Box::pin(async move {
            match self.query.fetch_optional(on).await? {
                Some(r) => Ok(Some(r.try_get(0)?)),
                None => Ok(None),
            }
        })
    }
}

/// A column, by name or position.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Idx<'a> {
    Name(&'a str),
    At(usize),
}

impl<'a> From<&'a str> for Idx<'a> {
    fn from(n: &'a str) -> Self {
        Idx::Name(n)
    }
}

impl From<usize> for Idx<'_> {
    fn from(i: usize) -> Self {
        Idx::At(i)
    }
}

/// A row of either database, read by column.
pub(crate) trait RowGet: Send + Sync {
    fn int(&self, i: Idx<'_>) -> sqlx::Result<Option<i64>>;
    fn text(&self, i: Idx<'_>) -> sqlx::Result<Option<String>>;
    fn flag(&self, i: Idx<'_>) -> sqlx::Result<Option<bool>>;
    fn bytes(&self, i: Idx<'_>) -> sqlx::Result<Option<Vec<u8>>>;

    /// The column's value as `T` (`NULL` only where `T` is an `Option`).
    fn try_get<'i, T: Col, I: Into<Idx<'i>>>(&self, i: I) -> sqlx::Result<T> {
        T::read(self, i.into())
    }
}

/// A type a column is read as.
pub(crate) trait Col: Sized {
    fn read<R: RowGet + ?Sized>(row: &R, i: Idx<'_>) -> sqlx::Result<Self>;
}

fn not_null<T>(v: Option<T>, i: Idx<'_>) -> sqlx::Result<T> {
    v.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: format!("{i:?}"),
        source: "unexpected NULL".into(),
    })
}

macro_rules! col {
    ($($t:ty => $m:ident),*) => {$(
        impl Col for $t {
            fn read<R: RowGet + ?Sized>(row: &R, i: Idx<'_>) -> sqlx::Result<Self> {
                not_null(row.$m(i)?, i)
            }
        }
        impl Col for Option<$t> {
            fn read<R: RowGet + ?Sized>(row: &R, i: Idx<'_>) -> sqlx::Result<Self> {
                row.$m(i)
            }
        }
    )*};
}

col!(i64 => int, String => text, bool => flag, Vec<u8> => bytes);

/// The row type of a database.
pub(crate) type Row<DB> = <DB as Database>::Row;

/// Where a statement runs: a connection (or transaction) already held, or a pool to take one
/// from for the statement.
pub(crate) enum Target<'c, DB: Database> {
    Conn(&'c mut DB::Connection),
    Pool(&'c Pool<DB>),
}

/// What a statement can run on: a transaction, a pooled connection, or a pool.
pub(crate) trait On<'c>: Send {
    type Db: Exec;
    fn target(self) -> Target<'c, Self::Db>;
}

impl<'c, DB: Exec> On<'c> for &'c mut Transaction<'_, DB> {
    type Db = DB;
    fn target(self) -> Target<'c, DB> {
        Target::Conn(&mut **self)
    }
}

impl<'c, DB: Exec> On<'c> for &'c mut PoolConnection<DB> {
    type Db = DB;
    fn target(self) -> Target<'c, DB> {
        Target::Conn(&mut **self)
    }
}

impl<'c, DB: Exec> On<'c> for &'c Pool<DB> {
    type Db = DB;
    fn target(self) -> Target<'c, DB> {
        Target::Pool(self)
    }
}

/// Running statements on one database. Implemented for SQLite and PostgreSQL by the same
/// macro: the only place their drivers' types meet the store.
pub(crate) trait Exec: Database<Row: RowGet> {
    /// Appended to a `SELECT` to lock its rows until the transaction ends (PostgreSQL); empty
    /// where a write transaction already excludes every other writer (SQLite).
    const FOR_UPDATE: &'static str;
    /// The column a table's index entries point at (SQLite's `rowid`; PostgreSQL's `id`).
    const ROW_KEY: &'static str;
    fn fetch_all<'c>(
        c: &'c mut Self::Connection,
        q: Query<'c>,
    ) -> BoxFuture<'c, sqlx::Result<Vec<Self::Row>>>;
    fn fetch_optional<'c>(
        c: &'c mut Self::Connection,
        q: Query<'c>,
    ) -> BoxFuture<'c, sqlx::Result<Option<Self::Row>>>;
    fn execute<'c>(c: &'c mut Self::Connection, q: Query<'c>) -> BoxFuture<'c, sqlx::Result<u64>>;
    fn for_each<'c>(
        c: &'c mut Self::Connection,
        q: Query<'c>,
        each: &'c mut (dyn FnMut(&Self::Row) -> StoreResult<()> + Send),
    ) -> BoxFuture<'c, StoreResult<()>>;
}

macro_rules! exec_for {
    ($db:ty, $row:ty, for_update: $lock:literal, row_key: $key:literal) => {
        impl RowGet for $row {
            fn int(&self, i: Idx<'_>) -> sqlx::Result<Option<i64>> {
                match i {
                    Idx::Name(n) => sqlx::Row::try_get(self, n),
                    Idx::At(k) => sqlx::Row::try_get(self, k),
                }
            }
            fn text(&self, i: Idx<'_>) -> sqlx::Result<Option<String>> {
                match i {
                    Idx::Name(n) => sqlx::Row::try_get(self, n),
                    Idx::At(k) => sqlx::Row::try_get(self, k),
                }
            }
            fn flag(&self, i: Idx<'_>) -> sqlx::Result<Option<bool>> {
                match i {
                    Idx::Name(n) => sqlx::Row::try_get(self, n),
                    Idx::At(k) => sqlx::Row::try_get(self, k),
                }
            }
            fn bytes(&self, i: Idx<'_>) -> sqlx::Result<Option<Vec<u8>>> {
                match i {
                    Idx::Name(n) => sqlx::Row::try_get(self, n),
                    Idx::At(k) => sqlx::Row::try_get(self, k),
                }
            }
        }

        impl Exec for $db {
            const FOR_UPDATE: &'static str = $lock;
            const ROW_KEY: &'static str = $key;
            fn fetch_all<'c>(
                c: &'c mut Self::Connection,
                q: Query<'c>,
            ) -> BoxFuture<'c, sqlx::Result<Vec<Self::Row>>> {
                Box::pin(async move {
                    let sql = numbered(&q.sql);
                    bound!(sqlx::query(&sql), q.args).fetch_all(c).await
                })
            }
            fn fetch_optional<'c>(
                c: &'c mut Self::Connection,
                q: Query<'c>,
            ) -> BoxFuture<'c, sqlx::Result<Option<Self::Row>>> {
                Box::pin(async move {
                    let sql = numbered(&q.sql);
                    bound!(sqlx::query(&sql), q.args).fetch_optional(c).await
                })
            }
            fn execute<'c>(
                c: &'c mut Self::Connection,
                q: Query<'c>,
            ) -> BoxFuture<'c, sqlx::Result<u64>> {
                Box::pin(async move {
                    let sql = numbered(&q.sql);
                    Ok(bound!(sqlx::query(&sql), q.args)
                        .execute(c)
                        .await?
                        .rows_affected())
                })
            }
            fn for_each<'c>(
                c: &'c mut Self::Connection,
                q: Query<'c>,
                each: &'c mut (dyn FnMut(&Self::Row) -> StoreResult<()> + Send),
            ) -> BoxFuture<'c, StoreResult<()>> {
                Box::pin(async move {
                    let sql = numbered(&q.sql);
                    let mut rows = bound!(sqlx::query(&sql), q.args).fetch(c);
                    while let Some(row) = rows.try_next().await.map_err(super::backend)? {
                        each(&row)?;
                    }
                    Ok(())
                })
            }
        }
    };
}

/// Binds `args` to a driver query, in order.
macro_rules! bound {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in &$args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_deref()),
                Arg::Flag(v) => q.bind(*v),
                Arg::Bytes(v) => q.bind(v.as_deref()),
            };
        }
        q
    }};
}

exec_for!(sqlx::Sqlite, sqlx::sqlite::SqliteRow, for_update: "", row_key: "rowid");
exec_for!(sqlx::Postgres, sqlx::postgres::PgRow, for_update: " FOR UPDATE", row_key: "id");

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        super::backend(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            super::numbered("SELECT ? WHERE a = ? AND b IN (?, ?)"),
            "SELECT $1 WHERE a = $2 AND b IN ($3, $4)"
        );
    }
}
