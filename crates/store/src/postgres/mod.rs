//! PostgreSQL (`postgres://…`): the shared backend for several nodes.
//!
//! Transactions run at READ COMMITTED (PostgreSQL's default). Where a rule is "check, then
//! write" (at most `max_active` unexpired secrets, an API key's access list that must keep
//! admitting the caller, an org without projects), the transaction first takes the owning
//! row's lock (`SELECT … FOR UPDATE` on the service account, API key or org), so two
//! transactions on any nodes run that rule one after the other and the second sees the
//! first's committed rows. Everything else is a single statement per row or an upsert
//! (`ON CONFLICT`), which READ COMMITTED applies atomically. Timestamps are epoch milliseconds
//! (`BIGINT`), text columns use the `"C"` collation so ordering matches SQLite's.
//!
//! What is PostgreSQL's own: the pool, the change log other nodes read ([`feed`]), and the
//! snapshot read at load. The statements are the store's ([`crate::sql`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Pool, Postgres};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_domain::ObjectId;

use crate::sql::{backend, query, Dialect, SqlStore, Tx};
use crate::{Change, StoreError, StoreResult};

pub mod feed;
#[cfg(feature = "test-support")]
pub mod test_support;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a connection before it fails as unavailable.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// The store on a PostgreSQL database several nodes share.
pub type PgStore = SqlStore<PgDialect>;

/// PostgreSQL's part of [`PgStore`]: the change feed.
#[derive(Debug)]
pub struct PgDialect {
    /// This handle's name in the change log, so it skips its own.
    node: Arc<str>,
    changes: tokio::sync::broadcast::Sender<Change>,
    feed: Arc<feed::FeedShared>,
    /// The feed's reader and `LISTEN` tasks, stopped by `close`.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` and applies pending migrations (under PostgreSQL's
    /// advisory lock, so nodes starting together apply them once), with the default feed.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, feed::FeedSettings::default()).await
    }

    /// [`PgStore::open`] with the change feed driven by `settings`.
    pub async fn open_with(url: &str, settings: feed::FeedSettings) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(backend)?
            // A write is acknowledged only after it is durable (also the server default); a
            // transaction left open by a client that vanished is ended by the server.
            .options([
                ("synchronous_commit", "on"),
                ("idle_in_transaction_session_timeout", "10s"),
            ]);
        // One direct connection first, so an unreachable or refusing server is reported at
        // once with its own error (the pool would retry until its acquire timeout).
        let mut first = sqlx::PgConnection::connect_with(&opts)
            .await
            .map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A request that needs the database fails within this when it cannot be reached
            // (503), instead of queueing behind connection attempts.
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .connect_with(opts.clone())
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        // Read from here on: whatever is committed later reaches this node through the feed
        // (the registry subscribes before it loads, so nothing falls between).
        let start = feed::start_point(&mut first).await.map_err(backend)?;
        let _ = first.close().await;
        let node: Arc<str> = ObjectId::generate(DateTime::<Utc>::UNIX_EPOCH)
            .to_hex()
            .into();
        let (changes, _) = tokio::sync::broadcast::channel(4096);
        let api_keys_version = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(feed::FeedShared {
            node: node.clone(),
            changes: changes.clone(),
            api_keys_version: api_keys_version.clone(),
            wake: tokio::sync::Notify::new(),
            polls: AtomicU64::new(0),
        });
        let tasks = vec![
            tokio::spawn(feed::follow(opts, settings, shared.clone(), start)),
            tokio::spawn(feed::listen(pool.clone(), shared.clone())),
        ];
        let dialect = PgDialect {
            node,
            changes,
            feed: shared,
            tasks: std::sync::Mutex::new(tasks),
        };
        Ok(SqlStore::new(pool, dialect, api_keys_version))
    }

    /// How many polls of the change log have answered (for tests and metrics).
    pub fn feed_polls(&self) -> u64 {
        self.dialect.feed.polls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Dialect for PgDialect {
    type Db = Postgres;
    const GROUP_COMMIT_REVOCATIONS: bool = false;

    async fn begin_write(&self, pool: &Pool<Postgres>) -> StoreResult<Tx<Self>> {
        pool.begin().await.map_err(backend)
    }

    async fn begin_snapshot(&self, pool: &Pool<Postgres>) -> StoreResult<Tx<Self>> {
        let mut tx = pool.begin().await.map_err(backend)?;
        query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut tx)
            .await
            .map_err(backend)?;
        Ok(tx)
    }

    async fn publish(&self, tx: &mut Tx<Self>, change: &Change) -> StoreResult<()> {
        feed::log_change(tx, &self.node, change).await
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    fn nudge(&self) {
        self.feed.wake.notify_one();
    }

    async fn close(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}
