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

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_domain::access::AccessEntry;
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{ApiKeyId, ClientId, GroupId, GroupRole, ObjectId, OrgId, OrgRole, SecretId};

use crate::*;

mod api_key_access;
mod clusters;
mod events;
pub mod feed;
#[cfg(feature = "test-support")]
pub mod test_support;

use crate::events::{AuthFailure, EventQuery, EventRecord, ExportCursor, NewEvent};
use tessera_domain::EventId;

/// Commits a change together with its events (CONTRACT §11): both, or neither.
async fn commit_with(mut tx: Transaction<'static, Postgres>, evs: &[NewEvent]) -> StoreResult<()> {
    events::insert(&mut tx, evs).await?;
    tx.commit().await.map_err(backend)
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a connection before it fails as unavailable.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Turns the `?` placeholders the SQL here is written with into PostgreSQL's `$1, $2, …`
/// (no statement here has a `?` inside a literal).
fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
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

/// A pool of connections to one PostgreSQL database. Every write is one transaction; see the
/// module documentation for how check-then-write rules are kept across nodes.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    api_keys_version: Arc<AtomicU64>,
    /// This handle's name in notifications, so it skips its own.
    node: Arc<str>,
    changes: tokio::sync::broadcast::Sender<Change>,
    feed: Arc<feed::FeedShared>,
    /// The feed's reader and `LISTEN` tasks, stopped by `close`.
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// Commits a change that nodes keep in memory: writes its events, then records `change` in
/// the change log (see [`feed`]) as the last statement before the commit, so the row exists
/// exactly when the change commits and its sequence number is in flight only for the commit
/// itself (a number taken earlier would be a gap for as long as the rest of the transaction
/// waits on locks).
async fn commit_logged(
    mut tx: Transaction<'static, Postgres>,
    evs: &[NewEvent],
    node: &str,
    change: &Change,
) -> StoreResult<()> {
    events::insert(&mut tx, evs).await?;
    feed::log_change(&mut tx, node, change).await?;
    tx.commit().await.map_err(backend)
}

/// Bumps the API-key version when dropped, i.e. after the write (and its commit) on every path
/// out of the method, early returns and errors included. The counter is per process: another
/// node's writes do not move it (several nodes need change notification, see architecture.md).
struct ApiKeysChanged<'a>(&'a AtomicU64);

impl Drop for ApiKeysChanged<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A backend error as the store reports it: a server that cannot be reached or answered
/// nothing in time is `Unavailable` (503 upstream), anything else is `Backend`.
fn backend(e: sqlx::Error) -> StoreError {
    let unavailable = match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 (connection exception), 57P01-57P03 (shutdown, cannot connect now).
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn parse_id(s: &str) -> StoreResult<ObjectId> {
    ObjectId::parse(s).ok_or_else(|| StoreError::Backend(format!("malformed id {s:?} in store")))
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
        Ok(Self {
            pool,
            api_keys_version,
            node,
            changes,
            feed: shared,
            tasks: Arc::new(std::sync::Mutex::new(tasks)),
        })
    }

    /// How many polls of the change log have answered (for tests and metrics).
    pub fn feed_polls(&self) -> u64 {
        self.feed.polls.load(Ordering::Relaxed)
    }

    /// A write transaction (READ COMMITTED; check-then-write rules lock their row first).
    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(backend)
    }
}

fn org_from_row(row: &PgRow) -> StoreResult<Org> {
    Ok(Org {
        id: OrgId(parse_id(row.try_get("id").map_err(backend)?)?),
        name: row.try_get("name").map_err(backend)?,
        skip_default_alerts: row.try_get("skip_default_alerts").map_err(backend)?,
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
    })
}

fn group_from_row(row: &PgRow) -> StoreResult<Group> {
    let tags_json: String = row.try_get("tags").map_err(backend)?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&tags_json)
        .map_err(|e| StoreError::Backend(format!("malformed tags in store: {e}")))?;
    Ok(Group {
        id: GroupId(parse_id(row.try_get("id").map_err(backend)?)?),
        org_id: OrgId(parse_id(row.try_get("org_id").map_err(backend)?)?),
        name: row.try_get("name").map_err(backend)?,
        with_default_alerts: row.try_get("with_default_alerts").map_err(backend)?,
        region_usage_restrictions: row.try_get("region_usage_restrictions").map_err(backend)?,
        tags: pairs
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
    })
}

fn tags_json(tags: &[Tag]) -> String {
    let pairs: Vec<(&str, &str)> = tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn api_key_from_row(row: &PgRow) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: ApiKeyId(parse_id(row.try_get("id").map_err(backend)?)?),
        org_id: OrgId(parse_id(row.try_get("org_id").map_err(backend)?)?),
        public_key: row.try_get("public_key").map_err(backend)?,
        description: row.try_get("description").map_err(backend)?,
        private_key_masked: row.try_get("private_key_masked").map_err(backend)?,
        ha1_md5_sealed: row.try_get("ha1_md5_sealed").map_err(backend)?,
        ha1_sha256_sealed: row.try_get("ha1_sha256_sealed").map_err(backend)?,
        org_roles: split_roles::<OrgRole>(row.try_get("org_roles").map_err(backend)?)?,
        group_roles: Vec::new(),
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
        access_list: Vec::new(),
    })
}

const API_KEY_COLUMNS: &str = "k.id, k.org_id, k.public_key, k.description, k.private_key_masked, \
     k.ha1_md5_sealed, k.ha1_sha256_sealed, k.org_roles, k.created_at";

async fn insert_org(tx: &mut Transaction<'_, Postgres>, org: &Org) -> StoreResult<()> {
    sqlx::query(&pg(
        "INSERT INTO orgs (id, name, skip_default_alerts, created_at) VALUES (?, ?, ?, ?)",
    ))
    .bind(org.id.to_string())
    .bind(&org.name)
    .bind(org.skip_default_alerts)
    .bind(to_millis(org.created_at))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn insert_group(tx: &mut Transaction<'_, Postgres>, g: &Group) -> StoreResult<()> {
    sqlx::query(
        &pg("INSERT INTO groups (id, org_id, name, with_default_alerts, region_usage_restrictions, tags, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(g.id.to_string())
    .bind(g.org_id.to_string())
    .bind(&g.name)
    .bind(g.with_default_alerts)
    .bind(&g.region_usage_restrictions)
    .bind(tags_json(&g.tags))
    .bind(to_millis(g.created_at))
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("group_name")
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

async fn insert_api_key(tx: &mut Transaction<'_, Postgres>, k: &ApiKeyRecord) -> StoreResult<()> {
    sqlx::query(
        &pg("INSERT INTO api_keys (id, org_id, public_key, description, private_key_masked, \
         ha1_md5_sealed, ha1_sha256_sealed, org_roles, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(k.id.to_string())
    .bind(k.org_id.to_string())
    .bind(&k.public_key)
    .bind(&k.description)
    .bind(&k.private_key_masked)
    .bind(&k.ha1_md5_sealed)
    .bind(&k.ha1_sha256_sealed)
    .bind(join_roles(&k.org_roles))
    .bind(to_millis(k.created_at))
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("public_key")
        } else {
            backend(e)
        }
    })?;
    for (group, roles) in &k.group_roles {
        upsert_key_group(tx, k.id, *group, roles).await?;
    }
    api_key_access::insert_all(tx, k.id, &k.access_list).await
}

async fn upsert_key_group(
    tx: &mut Transaction<'_, Postgres>,
    key: ApiKeyId,
    group: GroupId,
    roles: &[GroupRole],
) -> StoreResult<()> {
    sqlx::query(&pg(
        "INSERT INTO api_key_groups (api_key_id, group_id, roles) VALUES (?, ?, ?) \
         ON CONFLICT (api_key_id, group_id) DO UPDATE SET roles = excluded.roles",
    ))
    .bind(key.to_string())
    .bind(group.to_string())
    .bind(join_roles(roles))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn write_new_org(tx: &mut Transaction<'_, Postgres>, new: &NewOrg<'_>) -> StoreResult<()> {
    insert_org(tx, new.org).await?;
    if let Some(g) = new.group {
        insert_group(tx, g).await?;
    }
    if let Some(k) = new.api_key {
        insert_api_key(tx, k).await?;
    }
    Ok(())
}

fn limit_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count(row: &PgRow) -> StoreResult<u64> {
    let n: i64 = row.try_get(0).map_err(backend)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn opt_millis(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_millis)
}

fn account_from_row(row: &PgRow) -> StoreResult<ServiceAccount> {
    Ok(ServiceAccount {
        client_id: ClientId(parse_id(row.try_get("id").map_err(backend)?)?),
        org_id: OrgId(parse_id(row.try_get("org_id").map_err(backend)?)?),
        name: row.try_get("name").map_err(backend)?,
        description: row.try_get("description").map_err(backend)?,
        org_roles: split_roles::<OrgRole>(row.try_get("org_roles").map_err(backend)?)?,
        group_roles: Vec::new(),
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
        secrets: Vec::new(),
        access_list: Vec::new(),
    })
}

fn secret_from_row(row: &PgRow) -> StoreResult<(ClientId, SaSecret)> {
    Ok((
        ClientId(parse_id(row.try_get("account_id").map_err(backend)?)?),
        SaSecret {
            id: SecretId(parse_id(row.try_get("id").map_err(backend)?)?),
            hash: row.try_get("secret_hash").map_err(backend)?,
            masked: row.try_get("masked").map_err(backend)?,
            created_at: from_millis(row.try_get("created_at").map_err(backend)?),
            expires_at: from_millis(row.try_get("expires_at").map_err(backend)?),
            last_used_at: opt_millis(row.try_get("last_used_at").map_err(backend)?),
        },
    ))
}

/// One access-list entry with its counters (the columns both owners' tables share).
fn entry_from_row(row: &PgRow) -> StoreResult<AccessListEntry> {
    let key: String = row.try_get("entry").map_err(backend)?;
    let is_cidr: bool = row.try_get("is_cidr").map_err(backend)?;
    let mut entry = AccessEntry::from_cidr_block(&key)
        .map_err(|_| StoreError::Backend(format!("malformed access entry {key:?} in store")))?;
    entry.is_cidr = is_cidr;
    let count: i64 = row.try_get("request_count").map_err(backend)?;
    Ok(AccessListEntry {
        entry,
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
        last_used_at: opt_millis(row.try_get("last_used_at").map_err(backend)?),
        last_used_address: row.try_get("last_used_address").map_err(backend)?,
        request_count: u64::try_from(count).unwrap_or(0),
    })
}

fn access_from_row(row: &PgRow) -> StoreResult<(ClientId, AccessListEntry)> {
    Ok((
        ClientId(parse_id(row.try_get("account_id").map_err(backend)?)?),
        entry_from_row(row)?,
    ))
}

async fn insert_access_entries(
    tx: &mut Transaction<'_, Postgres>,
    id: ClientId,
    entries: &[AccessListEntry],
) -> StoreResult<()> {
    for e in entries {
        sqlx::query(
            &pg("INSERT INTO sa_access_list (account_id, entry, is_cidr, created_at, last_used_at, last_used_address, request_count) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, entry) DO NOTHING"),
        )
        .bind(id.0.to_hex())
        .bind(e.entry.key())
        .bind(e.entry.is_cidr)
        .bind(to_millis(e.created_at))
        .bind(e.last_used_at.map(to_millis))
        .bind(&e.last_used_address)
        .bind(limit_i64(e.request_count))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

async fn insert_secret(
    tx: &mut Transaction<'_, Postgres>,
    id: ClientId,
    s: &SaSecret,
) -> StoreResult<()> {
    sqlx::query(
        &pg("INSERT INTO sa_secrets (id, account_id, secret_hash, masked, created_at, expires_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(s.id.to_string())
    .bind(id.0.to_hex())
    .bind(&s.hash)
    .bind(&s.masked)
    .bind(to_millis(s.created_at))
    .bind(to_millis(s.expires_at))
    .bind(s.last_used_at.map(to_millis))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn upsert_sa_group(
    tx: &mut Transaction<'_, Postgres>,
    id: ClientId,
    group: GroupId,
    roles: &[GroupRole],
) -> StoreResult<()> {
    sqlx::query(&pg(
        "INSERT INTO sa_groups (account_id, group_id, roles) VALUES (?, ?, ?) \
         ON CONFLICT (account_id, group_id) DO UPDATE SET roles = excluded.roles",
    ))
    .bind(id.0.to_hex())
    .bind(group.to_string())
    .bind(join_roles(roles))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Whether the account exists, read inside the caller's transaction with its row locked
/// (`FOR UPDATE`) until that transaction ends, so check-then-write rules on the account
/// (the secret limit) run one transaction at a time on every node.
async fn account_exists(tx: &mut Transaction<'_, Postgres>, id: ClientId) -> StoreResult<bool> {
    Ok(sqlx::query(&pg(
        "SELECT 1 FROM service_accounts WHERE id = ? FOR UPDATE",
    ))
    .bind(id.0.to_hex())
    .fetch_optional(&mut **tx)
    .await
    .map_err(backend)?
    .is_some())
}

/// Which service accounts [`PgStore::load_accounts`] reads: a subquery yielding account ids
/// (`?` placeholders bound from `args`), or every account.
struct AccountSelection {
    ids: Option<String>,
    args: Vec<String>,
}

/// Runs `sql` (with `?` placeholders) and hands each row to `each` as it arrives (streamed: a
/// million rows are never held at once).
async fn for_each_row(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    args: &[String],
    mut each: impl FnMut(&PgRow) -> StoreResult<()>,
) -> StoreResult<()> {
    use futures_util::TryStreamExt;
    let sql = pg(sql);
    let mut q = sqlx::query(&sql);
    for a in args {
        q = q.bind(a.clone());
    }
    let mut rows = q.fetch(conn);
    while let Some(row) = rows.try_next().await.map_err(backend)? {
        each(&row)?;
    }
    Ok(())
}

impl PgStore {
    /// One page of accounts: `count_sql` counts them and `ids_sql` selects the page's ids in
    /// order, both filtered by `owner` (the page's limit and offset follow it in `ids_sql`).
    async fn account_page(
        &self,
        count_sql: &str,
        ids_sql: &str,
        owner: String,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        // The count and the page's ids each walk the owner's index entries: run them at once,
        // on two connections, so a page's latency is the longer walk, not their sum.
        let count_sql = pg(count_sql);
        let ids_sql_pg = pg(ids_sql);
        let count_q = sqlx::query(&count_sql).bind(&owner).fetch_one(&self.pool);
        let ids_q = sqlx::query_scalar::<_, String>(&ids_sql_pg)
            .bind(&owner)
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool);
        let (count_row, ids) = tokio::try_join!(count_q, ids_q).map_err(backend)?;
        let total = count(&count_row)?;
        // By id, in chunks: a statement's parameters are limited (SQLite: 32,766), and only
        // `Page::ALL` asks for more than one chunk.
        let mut items = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(5_000) {
            items.extend(
                self.load_accounts(&AccountSelection {
                    ids: Some(vec!["?"; chunk.len()].join(", ")),
                    args: chunk.to_vec(),
                })
                .await?,
            );
        }
        Ok(Listed { items, total })
    }

    /// Loads the selected accounts, ordered by id, with their secrets (by id), lists (by entry)
    /// and projects (by id), from one snapshot (a REPEATABLE READ, READ ONLY transaction).
    /// Linear in the rows read: children are matched to their account through a map.
    async fn load_accounts(&self, sel: &AccountSelection) -> StoreResult<Vec<ServiceAccount>> {
        let (filter, child_filter) = match &sel.ids {
            Some(ids) => (
                format!(" WHERE id IN ({ids})"),
                format!(" WHERE account_id IN ({ids})"),
            ),
            None => (String::new(), String::new()),
        };
        // No ORDER BY: sequential scans instead of index walks (or sorts) on the server; the
        // order is restored below in memory.
        let sql_a = format!("SELECT * FROM service_accounts{filter}");
        let sql_s = format!("SELECT * FROM sa_secrets{child_filter}");
        let sql_l = format!("SELECT * FROM sa_access_list{child_filter}");
        let sql_g = format!("SELECT * FROM sa_groups{child_filter}");
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        // One snapshot for the four queries, so an account is never mixed with children
        // written after it was read.
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(backend)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let mut accounts: Vec<ServiceAccount> = Vec::new();
        for_each_row(&mut tx, &sql_a, &sel.args, |row| {
            accounts.push(account_from_row(row)?);
            Ok(())
        })
        .await?;
        accounts.sort_unstable_by_key(|a| a.client_id.0);
        let index: std::collections::HashMap<ClientId, usize> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.client_id, i))
            .collect();
        for_each_row(&mut tx, &sql_s, &sel.args, |row| {
            let (id, secret) = secret_from_row(row)?;
            if let Some(&i) = index.get(&id) {
                accounts[i].secrets.push(secret);
            }
            Ok(())
        })
        .await?;
        for_each_row(&mut tx, &sql_l, &sel.args, |row| {
            let (id, entry) = access_from_row(row)?;
            if let Some(&i) = index.get(&id) {
                accounts[i].access_list.push(entry);
            }
            Ok(())
        })
        .await?;
        for_each_row(&mut tx, &sql_g, &sel.args, |row| {
            let id = ClientId(parse_id(row.try_get("account_id").map_err(backend)?)?);
            let group = GroupId(parse_id(row.try_get("group_id").map_err(backend)?)?);
            let roles = split_roles::<GroupRole>(row.try_get("roles").map_err(backend)?)?;
            if let Some(&i) = index.get(&id) {
                accounts[i].group_roles.push((group, roles));
            }
            Ok(())
        })
        .await?;
        tx.commit().await.map_err(backend)?;
        // Pushing one child at a time leaves spare capacity; a million accounts kept in
        // memory should hold only what they have.
        for a in &mut accounts {
            a.secrets.sort_unstable_by_key(|x| x.id.0);
            a.access_list.sort_by_cached_key(|e| e.entry.key());
            a.group_roles.sort_unstable_by_key(|(g, _)| g.0);
            a.secrets.shrink_to_fit();
            a.access_list.shrink_to_fit();
            a.group_roles.shrink_to_fit();
        }
        Ok(accounts)
    }
}

impl PgStore {
    /// Fills in project memberships and access lists for a page of keys, with one query each.
    async fn with_group_roles(
        &self,
        mut keys: Vec<ApiKeyRecord>,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        if keys.is_empty() {
            return Ok(keys);
        }
        let placeholders = vec!["?"; keys.len()].join(",");
        let sql = format!(
            "SELECT api_key_id, group_id, roles FROM api_key_groups WHERE api_key_id IN ({placeholders}) \
             ORDER BY api_key_id, group_id"
        );
        let sql = pg(&sql);
        let mut q = sqlx::query(&sql);
        for k in &keys {
            q = q.bind(k.id.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
        for row in rows {
            let key_id = ApiKeyId(parse_id(row.try_get("api_key_id").map_err(backend)?)?);
            let group = GroupId(parse_id(row.try_get("group_id").map_err(backend)?)?);
            let roles = split_roles::<GroupRole>(row.try_get("roles").map_err(backend)?)?;
            if let Some(k) = keys.iter_mut().find(|k| k.id == key_id) {
                k.group_roles.push((group, roles));
            }
        }
        api_key_access::fill(&self.pool, &mut keys).await?;
        Ok(keys)
    }

    async fn one_key(&self, sql: &str, arg: String) -> StoreResult<Option<ApiKeyRecord>> {
        let row = sqlx::query(&pg(sql))
            .bind(arg)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let key = api_key_from_row(&r)?;
                Ok(self.with_group_roles(vec![key]).await?.pop())
            }
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(&pg("SELECT 1"))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(&pg("SELECT value FROM meta WHERE key = ?"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| r.try_get::<String, _>(0).map_err(backend))
            .transpose()
    }

    async fn swap_meta(&self, key: &str, expected: Option<&str>, new: &str) -> StoreResult<bool> {
        // One statement each: the insert loses to a concurrent one on the primary key, and
        // the update re-checks `value` after waiting for a concurrent writer's row lock. A
        // value that changed is in the change log too (every node re-reads the server keys).
        let mut tx = self.begin().await?;
        let r = match expected {
            None => sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(new),
            Some(old) => sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
                .bind(new)
                .bind(key)
                .bind(old),
        }
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_logged(tx, &[], &self.node, &Change::ServerKeys).await?;
        Ok(true)
    }

    async fn bootstrap(
        &self,
        new: NewOrg<'_>,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        let marker = sqlx::query(&pg(
            "INSERT INTO meta (key, value) VALUES ('bootstrapped_at', ?)",
        ))
        .bind(tessera_domain::time::format(at))
        .execute(&mut *tx)
        .await;
        match marker {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict("bootstrap")),
            Err(e) => return Err(backend(e)),
            Ok(_) => {}
        }
        write_new_org(&mut tx, &new).await?;
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await
    }

    async fn create_org(&self, new: NewOrg<'_>, events: &[NewEvent]) -> StoreResult<()> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        write_new_org(&mut tx, &new).await?;
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await
    }

    async fn get_org(&self, id: OrgId) -> StoreResult<Option<Org>> {
        let row = sqlx::query(&pg("SELECT * FROM orgs WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(org_from_row).transpose()
    }

    async fn list_orgs(
        &self,
        ids: &[OrgId],
        name: Option<&str>,
        page: Page,
    ) -> StoreResult<Listed<Org>> {
        if ids.is_empty() {
            return Ok(Listed {
                items: vec![],
                total: 0,
            });
        }
        let placeholders = vec!["?"; ids.len()].join(",");
        let filter = format!(
            "FROM orgs WHERE id IN ({placeholders}){}",
            if name.is_some() {
                " AND lower(name) = lower(?)"
            } else {
                ""
            }
        );
        let count_sql = format!("SELECT COUNT(*) {filter}");
        let page_sql = format!("SELECT * {filter} ORDER BY id LIMIT ? OFFSET ?");
        let (count_sql, page_sql) = (pg(&count_sql), pg(&page_sql));
        let mut cq = sqlx::query(&count_sql);
        let mut pq = sqlx::query(&page_sql);
        for id in ids {
            cq = cq.bind(id.to_string());
            pq = pq.bind(id.to_string());
        }
        if let Some(n) = name {
            cq = cq.bind(n.to_owned());
            pq = pq.bind(n.to_owned());
        }
        let total = count(&cq.fetch_one(&self.pool).await.map_err(backend)?)?;
        let rows = pq
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let items = rows.iter().map(org_from_row).collect::<StoreResult<_>>()?;
        Ok(Listed { items, total })
    }

    async fn update_org(
        &self,
        id: OrgId,
        c: &OrgChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Org>> {
        let mut tx = self.begin().await?;
        sqlx::query(
            &pg("UPDATE orgs SET name = COALESCE(?, name), skip_default_alerts = COALESCE(?, skip_default_alerts) WHERE id = ?"),
        )
        .bind(c.name.as_deref())
        .bind(c.skip_default_alerts)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let row = sqlx::query(&pg("SELECT * FROM orgs WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if row.is_none() {
            return Ok(None);
        }
        commit_with(tx, events).await?;
        row.as_ref().map(org_from_row).transpose()
    }

    async fn delete_org(&self, id: OrgId, events: &[NewEvent]) -> StoreResult<DeleteOrgOutcome> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        // The org's row lock orders this check after any project being created in it.
        sqlx::query(&pg("SELECT 1 FROM orgs WHERE id = ? FOR UPDATE"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let groups = count(
            &sqlx::query(&pg("SELECT COUNT(*) FROM groups WHERE org_id = ?"))
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?,
        )?;
        if groups > 0 {
            return Ok(DeleteOrgOutcome::HasProjects);
        }
        let r = sqlx::query(&pg("DELETE FROM orgs WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(DeleteOrgOutcome::NotFound);
        }
        commit_logged(tx, events, &self.node, &Change::Everything).await?;
        Ok(DeleteOrgOutcome::Deleted)
    }

    async fn create_group(
        &self,
        group: &Group,
        creator: Option<ApiKeyId>,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        insert_group(&mut tx, group).await?;
        if let Some(key) = creator {
            upsert_key_group(&mut tx, key, group.id, &[GroupRole::Owner]).await?;
        }
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let row = sqlx::query(&pg("SELECT * FROM groups WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn get_group_by_name(&self, org: OrgId, name: &str) -> StoreResult<Option<Group>> {
        let row = sqlx::query(&pg("SELECT * FROM groups WHERE org_id = ? AND name = ?"))
            .bind(org.to_string())
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn list_groups(
        &self,
        org: OrgId,
        name: Option<&str>,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<Group>> {
        let only: &[GroupId] = match filter {
            GroupFilter::All => &[],
            GroupFilter::Only(ids) if ids.is_empty() => {
                return Ok(Listed {
                    items: vec![],
                    total: 0,
                })
            }
            GroupFilter::Only(ids) => ids,
        };
        let mut where_sql = String::from("FROM groups WHERE org_id = ?");
        if name.is_some() {
            // Case-insensitive prefix match (Atlas), without LIKE so `%` and `_` stay literal.
            where_sql.push_str(" AND substr(lower(name), 1, length(?)) = lower(?)");
        }
        if !only.is_empty() {
            where_sql.push_str(&format!(" AND id IN ({})", vec!["?"; only.len()].join(",")));
        }
        let count_sql = format!("SELECT COUNT(*) {where_sql}");
        let page_sql = format!("SELECT * {where_sql} ORDER BY id LIMIT ? OFFSET ?");
        let (count_sql, page_sql) = (pg(&count_sql), pg(&page_sql));
        let mut cq = sqlx::query(&count_sql).bind(org.to_string());
        let mut pq = sqlx::query(&page_sql).bind(org.to_string());
        if let Some(n) = name {
            cq = cq.bind(n.to_owned()).bind(n.to_owned());
            pq = pq.bind(n.to_owned()).bind(n.to_owned());
        }
        for id in only {
            cq = cq.bind(id.to_string());
            pq = pq.bind(id.to_string());
        }
        let total = count(&cq.fetch_one(&self.pool).await.map_err(backend)?)?;
        let rows = pq
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let items = rows
            .iter()
            .map(group_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Listed { items, total })
    }

    async fn update_group(
        &self,
        id: GroupId,
        c: &GroupChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Group>> {
        let mut tx = self.begin().await?;
        sqlx::query(
            &pg("UPDATE groups SET name = COALESCE(?, name), with_default_alerts = COALESCE(?, with_default_alerts), \
             tags = COALESCE(?, tags) WHERE id = ?"),
        )
        .bind(c.name.as_deref())
        .bind(c.with_default_alerts)
        .bind(c.tags.as_deref().map(tags_json))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("group_name")
            } else {
                backend(e)
            }
        })?;
        let row = sqlx::query(&pg("SELECT * FROM groups WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if row.is_none() {
            return Ok(None);
        }
        commit_with(tx, events).await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn delete_group(
        &self,
        id: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteGroupOutcome> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        self.delete_group_checked(id, events).await
    }

    async fn create_cluster(&self, cluster: &Cluster, events: &[NewEvent]) -> StoreResult<bool> {
        self.create_cluster_row(cluster, events).await
    }

    async fn get_cluster(&self, group: GroupId, name: &str) -> StoreResult<Option<Cluster>> {
        self.get_cluster_row(group, name).await
    }

    async fn list_clusters(&self, group: GroupId, page: Page) -> StoreResult<Listed<Cluster>> {
        self.list_cluster_rows(group, page).await
    }

    async fn cluster_counts(&self, groups: &[GroupId]) -> StoreResult<Vec<u64>> {
        self.cluster_counts_of(groups).await
    }

    async fn list_clusters_by_group(
        &self,
        org: OrgId,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<GroupClusters>> {
        self.list_clusters_grouped(org, filter, page).await
    }

    async fn update_cluster(
        &self,
        group: GroupId,
        name: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
        events: &[NewEvent],
    ) -> StoreResult<Option<Cluster>> {
        self.update_cluster_row(group, name, changes, events).await
    }

    async fn delete_cluster(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.delete_cluster_row(group, name, events).await
    }

    async fn set_employee_access_grant(
        &self,
        group: GroupId,
        name: &str,
        grant: tessera_domain::clusters::EmployeeAccessGrant,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.set_grant(group, name, grant, events).await
    }

    async fn revoke_employee_access(
        &self,
        group: GroupId,
        name: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<RevokeGrantOutcome> {
        self.revoke_grant(group, name, now, events).await
    }

    async fn unrecorded_expired_grants(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Cluster>> {
        self.expired_grants(now, limit).await
    }

    async fn record_grant_expiry(
        &self,
        cluster: tessera_domain::ClusterId,
        expires_at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.mark_grant_expiry(cluster, expires_at, events).await
    }

    async fn record_employee_access_use(
        &self,
        cluster: tessera_domain::ClusterId,
        grant: tessera_domain::clusters::EmployeeAccessGrant,
        event: &NewEvent,
    ) -> StoreResult<bool> {
        self.record_access_use_if_granted(cluster, grant, event)
            .await
    }

    async fn create_operator(&self, operator: &Operator, events: &[NewEvent]) -> StoreResult<()> {
        self.insert_operator(operator, events).await
    }

    async fn get_operator(&self, id: tessera_domain::OperatorId) -> StoreResult<Option<Operator>> {
        self.operator_row(id).await
    }

    async fn list_operators(&self) -> StoreResult<Vec<Operator>> {
        self.operator_rows().await
    }

    async fn delete_operator(
        &self,
        id: tessera_domain::OperatorId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.delete_operator_row(id, events).await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord, events: &[NewEvent]) -> StoreResult<()> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        insert_api_key(&mut tx, key).await?;
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await
    }

    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        self.one_key(
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.id = ?"),
            id.to_string(),
        )
        .await
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        self.one_key(
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.public_key = ?"),
            public_key.to_owned(),
        )
        .await
    }

    async fn list_org_api_keys(&self, org: OrgId, page: Page) -> StoreResult<Listed<ApiKeyRecord>> {
        let total = count(
            &sqlx::query(&pg("SELECT COUNT(*) FROM api_keys WHERE org_id = ?"))
                .bind(org.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?,
        )?;
        let rows = sqlx::query(&pg(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.org_id = ? ORDER BY k.id LIMIT ? OFFSET ?"
        )))
        .bind(org.to_string())
        .bind(limit_i64(page.limit))
        .bind(limit_i64(page.offset))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let keys = rows
            .iter()
            .map(api_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Listed {
            items: self.with_group_roles(keys).await?,
            total,
        })
    }

    async fn list_group_api_keys(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ApiKeyRecord>> {
        let total = count(
            &sqlx::query(&pg(
                "SELECT COUNT(*) FROM api_key_groups WHERE group_id = ?",
            ))
            .bind(group.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?,
        )?;
        let rows = sqlx::query(&pg(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys k JOIN api_key_groups kg ON kg.api_key_id = k.id \
             WHERE kg.group_id = ? ORDER BY k.id LIMIT ? OFFSET ?"
        )))
        .bind(group.to_string())
        .bind(limit_i64(page.limit))
        .bind(limit_i64(page.offset))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let keys = rows
            .iter()
            .map(api_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Listed {
            items: self.with_group_roles(keys).await?,
            total,
        })
    }

    async fn update_api_key(
        &self,
        id: ApiKeyId,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            &pg("UPDATE api_keys SET description = COALESCE(?, description), org_roles = COALESCE(?, org_roles) WHERE id = ?"),
        )
        .bind(description)
        .bind(org_roles.map(join_roles))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some((group, roles)) = group_roles {
            upsert_key_group(&mut tx, id, group, roles).await?;
        }
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await?;
        Ok(true)
    }

    async fn set_api_key_group_roles(
        &self,
        id: ApiKeyId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        let exists = sqlx::query(&pg("SELECT 1 FROM api_keys WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        upsert_key_group(&mut tx, id, group, roles).await?;
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await?;
        Ok(true)
    }

    async fn remove_api_key_from_group(
        &self,
        id: ApiKeyId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg(
            "DELETE FROM api_key_groups WHERE api_key_id = ? AND group_id = ?",
        ))
        .bind(id.to_string())
        .bind(group.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await?;
        Ok(true)
    }

    async fn delete_api_key(&self, id: ApiKeyId, events: &[NewEvent]) -> StoreResult<bool> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg("DELETE FROM api_keys WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_logged(tx, events, &self.node, &Change::ApiKeys).await?;
        Ok(true)
    }

    async fn add_api_key_access_entries(
        &self,
        id: ApiKeyId,
        entries: &[(AccessListEntry, NewEvent)],
    ) -> StoreResult<bool> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        self.add_key_access(id, entries).await
    }

    async fn delete_api_key_access_entry(
        &self,
        id: ApiKeyId,
        entry_key: &str,
        keep_admitting: Option<std::net::IpAddr>,
        events: &[NewEvent],
    ) -> StoreResult<DeleteKeyAccessOutcome> {
        let _bump = ApiKeysChanged(&self.api_keys_version);
        self.delete_key_access(id, entry_key, keep_admitting, events)
            .await
    }

    async fn record_api_key_access_use(&self, uses: &[AccessUse<ApiKeyId>]) -> StoreResult<()> {
        self.record_key_access_use(uses).await
    }

    async fn list_service_accounts(&self) -> StoreResult<Vec<ServiceAccount>> {
        self.load_accounts(&AccountSelection {
            ids: None,
            args: Vec::new(),
        })
        .await
    }

    async fn list_org_service_accounts(
        &self,
        org: OrgId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        self.account_page(
            "SELECT COALESCE((SELECT n FROM sa_org_counts WHERE org_id = ?), 0)",
            "SELECT id FROM service_accounts WHERE org_id = ? ORDER BY id LIMIT ? OFFSET ?",
            org.to_string(),
            page,
        )
        .await
    }

    async fn list_group_service_accounts(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        self.account_page(
            "SELECT COUNT(*) FROM sa_groups WHERE group_id = ?",
            "SELECT account_id FROM sa_groups WHERE group_id = ? ORDER BY account_id LIMIT ? OFFSET ?",
            group.to_string(),
            page,
        )
        .await
    }

    async fn get_service_account(&self, id: ClientId) -> StoreResult<Option<ServiceAccount>> {
        Ok(self
            .load_accounts(&AccountSelection {
                ids: Some("SELECT CAST(? AS TEXT)".into()),
                args: vec![id.0.to_hex()],
            })
            .await?
            .pop())
    }

    async fn create_service_account(
        &self,
        a: &ServiceAccount,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            &pg("INSERT INTO service_accounts (id, org_id, name, description, org_roles, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
        )
        .bind(a.client_id.0.to_hex())
        .bind(a.org_id.to_string())
        .bind(&a.name)
        .bind(&a.description)
        .bind(join_roles(&a.org_roles))
        .bind(to_millis(a.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(&pg("INSERT INTO sa_org_counts (org_id, n) VALUES (?, 1) ON CONFLICT (org_id) DO UPDATE SET n = sa_org_counts.n + 1"))
            .bind(a.org_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for secret in &a.secrets {
            insert_secret(&mut tx, a.client_id, secret).await?;
        }
        for (group, roles) in &a.group_roles {
            upsert_sa_group(&mut tx, a.client_id, *group, roles).await?;
        }
        insert_access_entries(&mut tx, a.client_id, &a.access_list).await?;
        commit_logged(tx, events, &self.node, &Change::Account(a.client_id)).await
    }

    async fn update_service_account(
        &self,
        id: ClientId,
        name: Option<&str>,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            &pg("UPDATE service_accounts SET name = COALESCE(?, name), description = COALESCE(?, description), \
             org_roles = COALESCE(?, org_roles) WHERE id = ?"),
        )
        .bind(name)
        .bind(description)
        .bind(org_roles.map(join_roles))
        .bind(id.0.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some((group, roles)) = group_roles {
            upsert_sa_group(&mut tx, id, group, roles).await?;
        }
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn delete_service_account(&self, id: ClientId, events: &[NewEvent]) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let org: Option<String> = sqlx::query_scalar(&pg(
            "DELETE FROM service_accounts WHERE id = ? RETURNING org_id",
        ))
        .bind(id.0.to_hex())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(org) = org else {
            return Ok(false);
        };
        sqlx::query(&pg("UPDATE sa_org_counts SET n = n - 1 WHERE org_id = ?"))
            .bind(org)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn add_service_account_secret(
        &self,
        id: ClientId,
        secret: &SaSecret,
        max_active: usize,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<AddSecretOutcome> {
        let mut tx = self.begin().await?;
        if !account_exists(&mut tx, id).await? {
            return Ok(AddSecretOutcome::NotFound);
        }
        let active = count(
            &sqlx::query(&pg(
                "SELECT COUNT(*) FROM sa_secrets WHERE account_id = ? AND expires_at > ?",
            ))
            .bind(id.0.to_hex())
            .bind(to_millis(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?,
        )?;
        if active >= max_active as u64 {
            return Ok(AddSecretOutcome::TooMany);
        }
        insert_secret(&mut tx, id, secret).await?;
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(AddSecretOutcome::Added)
    }

    async fn delete_service_account_secret(
        &self,
        id: ClientId,
        secret: SecretId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg(
            "DELETE FROM sa_secrets WHERE account_id = ? AND id = ?",
        ))
        .bind(id.0.to_hex())
        .bind(secret.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn record_secret_use(&self, uses: &[(SecretId, DateTime<Utc>)]) -> StoreResult<()> {
        // Rows in one order on every node, so two nodes' flushes cannot deadlock.
        let mut uses = uses.to_vec();
        uses.sort_by_key(|(id, _)| id.0);
        let mut tx = self.begin().await?;
        for (id, at) in &uses {
            sqlx::query(&pg("UPDATE sa_secrets SET last_used_at = GREATEST(COALESCE(last_used_at, 0), ?) WHERE id = ?"))
                .bind(to_millis(*at))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn add_access_entries(
        &self,
        id: ClientId,
        entries: &[AccessListEntry],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        if !account_exists(&mut tx, id).await? {
            return Ok(false);
        }
        insert_access_entries(&mut tx, id, entries).await?;
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn delete_access_entry(
        &self,
        id: ClientId,
        entry_key: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg(
            "DELETE FROM sa_access_list WHERE account_id = ? AND entry = ?",
        ))
        .bind(id.0.to_hex())
        .bind(entry_key)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn record_access_use(&self, uses: &[AccessUse]) -> StoreResult<()> {
        // Rows in one order on every node, so two nodes' flushes cannot deadlock.
        let mut uses = uses.to_vec();
        uses.sort_by(|x, y| (x.account.0, &x.entry_key).cmp(&(y.account.0, &y.entry_key)));
        let mut tx = self.begin().await?;
        for u in &uses {
            sqlx::query(
                &pg("UPDATE sa_access_list SET last_used_at = ?, last_used_address = ?, request_count = request_count + ? \
                 WHERE account_id = ? AND entry = ?"),
            )
            .bind(to_millis(u.at))
            .bind(&u.address)
            .bind(limit_i64(u.count))
            .bind(u.account.0.to_hex())
            .bind(&u.entry_key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn set_service_account_group_roles(
        &self,
        id: ClientId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        if !account_exists(&mut tx, id).await? {
            return Ok(false);
        }
        upsert_sa_group(&mut tx, id, group, roles).await?;
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn remove_service_account_from_group(
        &self,
        id: ClientId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg(
            "DELETE FROM sa_groups WHERE account_id = ? AND group_id = ?",
        ))
        .bind(id.0.to_hex())
        .bind(group.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_logged(tx, events, &self.node, &Change::Account(id)).await?;
        Ok(true)
    }

    async fn revoke_token(
        &self,
        jti: &str,
        account: ClientId,
        expires_at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()> {
        // One short transaction per call: PostgreSQL commits concurrent transactions
        // together on its own (WAL group commit), so no queue is needed here.
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO revoked_tokens (jti, account_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(account.0.to_hex())
        .bind(to_millis(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let revoked = Change::Revoked {
            jti: jti.to_owned(),
            expires_at,
        };
        // One revocation, one event: a token revoked before (or by a concurrent call that
        // committed first; the insert waits for it) gets none.
        let events = if inserted.rows_affected() == 1 {
            std::slice::from_ref(&event)
        } else {
            &[]
        };
        commit_logged(tx, events, &self.node, &revoked).await
    }

    async fn list_events(&self, q: &EventQuery) -> StoreResult<Listed<EventRecord>> {
        events::list(&self.pool, q).await
    }

    async fn get_event(&self, id: EventId) -> StoreResult<Option<EventRecord>> {
        events::get(&self.pool, id).await
    }

    async fn export_events(
        &self,
        org: Option<OrgId>,
        after: ExportCursor,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        events::export(&self.pool, org, after, limit).await
    }

    async fn record_auth_failures(&self, failures: &[AuthFailure]) -> StoreResult<()> {
        if failures.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        events::add_auth_failures(&mut tx, failures).await?;
        tx.commit().await.map_err(backend)
    }

    async fn revoked_tokens(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows = sqlx::query(&pg(
            "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?",
        ))
        .bind(to_millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("jti").map_err(backend)?,
                    from_millis(r.try_get("expires_at").map_err(backend)?),
                ))
            })
            .collect()
    }

    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query(&pg("DELETE FROM revoked_tokens WHERE expires_at <= ?"))
            .bind(to_millis(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }

    fn api_keys_version(&self) -> Option<u64> {
        Some(self.api_keys_version.load(Ordering::SeqCst))
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    fn nudge_feed(&self) {
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
        self.pool.close().await;
    }
}
