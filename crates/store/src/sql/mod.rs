//! The store, written once for both databases: [`SqlStore`] is generic over a [`Dialect`],
//! which says only what truly differs between SQLite and PostgreSQL (how a write starts, how
//! a change reaches other nodes, how a consistent snapshot is read, whether revocations are
//! group-committed); the statements themselves ([`exec`]) run unchanged on both.
//!
//! Every change goes through a unit of work ([`Work`]): one write transaction in which its
//! rule checks and writes run, and whose commit writes the change's events and tells other
//! nodes what changed, all or nothing. A path that finds nothing to change drops its work
//! (a rollback): no event, no notice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Pool, Transaction};

use crate::events::NewEvent;
use crate::{Change, StoreError, StoreResult};

mod accounts;
mod api_key_access;
mod api_keys;
mod clusters;
mod console;
mod custom_roles;
mod database_users;
pub(crate) mod event_log;
pub(crate) mod exec;
mod federation;
mod network;
mod orgs;
mod people;
mod rows;
mod tokens;
mod x509;

pub(crate) use exec::{locked, query, query_scalar, Exec, On, Query, RowGet};
pub(crate) use rows::*;

/// A write (or snapshot) transaction of a dialect's database.
pub(crate) type Tx<D> = Transaction<'static, <D as Dialect>::Db>;

/// What differs between the databases beyond statement text: see the module documentation.
#[async_trait]
pub trait Dialect: Send + Sync + std::fmt::Debug + 'static {
    /// The database (its driver types and SQL dialect).
    #[allow(private_bounds)]
    type Db: Exec;
    /// Whether concurrent revocations share one transaction (one fsync) behind a queue
    /// (SQLite, where each commit waits for its own fsync) or each commit alone (PostgreSQL,
    /// which already commits concurrent transactions together).
    const GROUP_COMMIT_REVOCATIONS: bool;

    /// Starts a write transaction that will not fail later for lack of a lock: SQLite's
    /// `BEGIN IMMEDIATE` on its one writer connection; PostgreSQL's READ COMMITTED, where a
    /// check-then-write takes its row lock first.
    async fn begin_write(&self, pool: &Pool<Self::Db>) -> StoreResult<Tx<Self>>;
    /// Starts a read-only transaction whose statements all see one snapshot.
    async fn begin_snapshot(&self, pool: &Pool<Self::Db>) -> StoreResult<Tx<Self>>;
    /// Records `change` for other nodes, as the last statement of the transaction committing
    /// it (a no-op where only this process uses the database).
    async fn publish(&self, tx: &mut Tx<Self>, change: &Change) -> StoreResult<()>;
    /// Changes other nodes committed (see [`crate::Store::changes`]).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>>;
    /// Asks the change feed to read now.
    fn nudge(&self);
    /// Stops whatever the dialect runs beside the pool.
    async fn close(&self);
}

/// The store over one database.
#[derive(Debug)]
pub struct SqlStore<D: Dialect> {
    pub(crate) pool: Pool<D::Db>,
    pub(crate) dialect: D,
    pub(crate) api_keys_version: Arc<AtomicU64>,
    pub(crate) revocations: tokens::RevocationQueue,
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) fn new(pool: Pool<D::Db>, dialect: D, api_keys_version: Arc<AtomicU64>) -> Self {
        Self {
            pool,
            dialect,
            api_keys_version,
            revocations: tokens::RevocationQueue::default(),
        }
    }

    /// Starts a unit of work.
    pub(crate) async fn work(&self) -> StoreResult<Work<'_, D>> {
        Ok(Work {
            tx: self.dialect.begin_write(&self.pool).await?,
            dialect: &self.dialect,
        })
    }

    /// A guard that moves the API-key version when dropped: after the write (and its commit)
    /// on every path out of the method, early returns and errors included, so a cache of
    /// keys read before the write is dropped after it.
    pub(crate) fn api_keys_change(&self) -> ApiKeysChanged<'_> {
        ApiKeysChanged(&self.api_keys_version)
    }
}

/// One change: its transaction, and how its commit is told to other nodes.
pub(crate) struct Work<'s, D: Dialect> {
    tx: Tx<D>,
    dialect: &'s D,
}

impl<D: Dialect> std::ops::Deref for Work<'_, D> {
    type Target = Tx<D>;
    fn deref(&self) -> &Tx<D> {
        &self.tx
    }
}

impl<D: Dialect> std::ops::DerefMut for Work<'_, D> {
    fn deref_mut(&mut self) -> &mut Tx<D> {
        &mut self.tx
    }
}

impl<D: Dialect> Work<'_, D> {
    /// Commits the change with its events (CONTRACT §11: both, or neither) and, as the last
    /// statement before the commit, records `change` for other nodes (so a change's notice
    /// exists exactly when the change does).
    pub(crate) async fn commit(self, events: &[NewEvent], change: Change) -> StoreResult<()> {
        self.commit_all(events, std::slice::from_ref(&change)).await
    }

    /// [`Work::commit`] of several changes (or of none other nodes keep in memory: events,
    /// usage counters).
    pub(crate) async fn commit_all(
        mut self,
        events: &[NewEvent],
        changes: &[Change],
    ) -> StoreResult<()> {
        event_log::insert(&mut self.tx, events).await?;
        for change in changes {
            self.dialect.publish(&mut self.tx, change).await?;
        }
        self.tx.commit().await.map_err(backend)
    }
}

/// The events of a change that happened, each kept only if what it records did happen
/// (`happened(its type)`), decided inside the change's transaction.
pub(crate) fn happened(
    events: &[NewEvent],
    happened: impl Fn(tessera_domain::EventType) -> bool,
) -> Vec<NewEvent> {
    events
        .iter()
        .filter(|e| happened(e.event_type))
        .cloned()
        .collect()
}

/// See [`SqlStore::api_keys_change`].
pub(crate) struct ApiKeysChanged<'a>(&'a AtomicU64);

impl Drop for ApiKeysChanged<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A backend error as the store reports it: a database that cannot be reached or answered
/// nothing in time (a closed or exhausted pool, I/O, TLS, PostgreSQL's class 08 and 57P0x)
/// is `Unavailable` (503 upstream); anything else is `Backend`.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    let unavailable = match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A uniqueness violation as `Conflict(what)`, anything else as [`backend`].
pub(crate) fn conflict(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(what)
        } else {
            backend(e)
        }
    }
}
