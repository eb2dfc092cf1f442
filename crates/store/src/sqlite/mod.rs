//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! write is acknowledged only once it is durable.
//!
//! What is SQLite's own: how a write starts (one writer connection, `BEGIN IMMEDIATE`), the
//! checkpoints beside it ([`checkpoint`]), and the group commit of revocations. The
//! statements are the store's ([`crate::sql`]).

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::sql::{backend, Dialect, SqlStore, Tx};
use crate::{Change, StoreError, StoreResult};

mod checkpoint;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store on an embedded SQLite file (the default).
pub type SqliteStore = SqlStore<SqliteDialect>;

/// SQLite's part of [`SqliteStore`]. Reads go through the store's pool of connections; every
/// write goes through one writer connection and starts its transaction as a writer (`BEGIN
/// IMMEDIATE`). A deferred transaction that reads and then writes cannot upgrade its lock
/// while another connection writes (SQLite answers `SQLITE_BUSY` at once, the busy timeout
/// does not apply), so writers queue in-process for the one connection instead of failing,
/// and `BEGIN IMMEDIATE` still waits (busy timeout) for a writer in another process.
#[derive(Debug)]
pub struct SqliteDialect {
    writer: SqlitePool,
    _checkpointer: checkpoint::Checkpointer,
}

fn options(opts: SqliteConnectOptions) -> SqliteConnectOptions {
    opts.create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::connect(options(SqliteConnectOptions::new().filename(path))).await
    }

    /// Opens a database from a `sqlite://` URL.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        Self::connect(options(
            SqliteConnectOptions::from_str(url).map_err(backend)?,
        ))
        .await
    }

    async fn connect(opts: SqliteConnectOptions) -> StoreResult<Self> {
        let pool_of = |n: u32, opts: SqliteConnectOptions| async move {
            SqlitePoolOptions::new()
                .max_connections(n)
                .test_before_acquire(false)
                .connect_with(opts)
                .await
                .map_err(backend)
        };
        // Checkpoints run beside the writer, not in its commits (see `checkpoint`).
        let writer = pool_of(1, opts.clone().pragma("wal_autocheckpoint", "0")).await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let pool = pool_of(8, opts.clone()).await?;
        let checkpoints = pool_of(1, opts).await?;
        let dialect = SqliteDialect {
            writer: writer.clone(),
            _checkpointer: checkpoint::spawn(checkpoints, writer),
        };
        Ok(SqlStore::new(pool, dialect, Arc::default()))
    }
}

#[async_trait]
impl Dialect for SqliteDialect {
    type Db = Sqlite;
    const GROUP_COMMIT_REVOCATIONS: bool = true;

    /// On the writer connection, holding the write lock from its start.
    async fn begin_write(&self, _pool: &Pool<Sqlite>) -> StoreResult<Tx<Self>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    /// A read transaction on a reader connection: in WAL mode its statements see the
    /// database as of its first read.
    async fn begin_snapshot(&self, pool: &Pool<Sqlite>) -> StoreResult<Tx<Self>> {
        pool.begin().await.map_err(backend)
    }

    /// Only this process uses the file: it applies its own changes.
    async fn publish(&self, _tx: &mut Tx<Self>, _change: &Change) -> StoreResult<()> {
        Ok(())
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    fn nudge(&self) {}

    async fn close(&self) {
        self.writer.close().await;
    }
}
