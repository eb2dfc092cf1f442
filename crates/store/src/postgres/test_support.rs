//! For test suites that run against PostgreSQL: where the server is, and scratch databases
//! (created and dropped with an admin URL). Compiled only with the `test-support` feature,
//! which only the test suites enable: the product cannot drop a database.

use super::backend;
use crate::{StoreError, StoreResult};
use sqlx::{Connection, Executor};

/// The admin URL of the PostgreSQL server the tests use.
pub const URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";
/// Set to `1` (CI does) to make PostgreSQL tests fail, not skip, without [`URL_VAR`].
pub const REQUIRE_VAR: &str = "TESSERA_REQUIRE_POSTGRES";

/// `Ok(Some(url))` with the admin URL; `Ok(None)` after printing plainly to stderr that
/// `test` did not run; `Err` when [`REQUIRE_VAR`] is `1` and there is no URL.
pub fn admin_url(test: &str) -> Result<Option<String>, String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => {
            Err(format!("{test}: {REQUIRE_VAR}=1 but {URL_VAR} is not set"))
        }
        _ => {
            // Written to the stderr handle, not through `eprintln!`, so the test harness's
            // output capture does not hide it: a skipped test is never a silent pass.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "PostgreSQL tests DID NOT RUN ({test}): {URL_VAR} is not set \
                 (run scripts/with-postgres.sh cargo test --workspace)"
            );
            Ok(None)
        }
    }
}

/// A database of its own for one test, made on the server of an admin URL.
#[derive(Debug, Clone)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The URL of the scratch database.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates `tessera_t_<unique>` (the suffix: `[a-z0-9_]`, e.g. an object id's hex).
    pub async fn create(admin_url: &str, unique: &str) -> StoreResult<Self> {
        let name = format!("tessera_t_{unique}");
        let url = create_database(admin_url, &name).await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn drop_database(&self) -> StoreResult<()> {
        drop_database(&self.admin_url, &self.name).await
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A database name made only of `[a-z0-9_]`, so it can be spliced into `CREATE DATABASE`.
fn plain_name(name: &str) -> StoreResult<&str> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name)
    } else {
        Err(StoreError::Backend(format!(
            "database name {name:?} must be [a-z0-9_]+"
        )))
    }
}

/// Creates the database `name` on the server of `admin_url` (for tests and tooling);
/// returns the URL of the new database.
pub async fn create_database(admin_url: &str, name: &str) -> StoreResult<String> {
    let name = plain_name(name)?;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(backend)?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .map_err(backend)?;
    let _ = conn.close().await;
    Ok(with_database(admin_url, name))
}

/// Drops the database `name` on the server of `admin_url`, closing its connections.
pub async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
    let name = plain_name(name)?;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(backend)?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .map_err(backend)?;
    let _ = conn.close().await;
    Ok(())
}
