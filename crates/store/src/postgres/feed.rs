//! The change feed of nodes that share one PostgreSQL database.
//!
//! Every write that changes what nodes hold in memory appends a row to `change_log` in its own
//! transaction ([`log_change`]), so the row exists exactly when the change committed, and
//! queues an empty `NOTIFY` that only wakes the other nodes up. Each node reads the log by
//! sequence number on a connection of its own ([`follow`]): at once when woken, and every
//! `poll_every` in any case. A poll that answers is the feed's heartbeat: after applying what it
//! read, the node publishes [`Change::Synced`] with the instant the poll started ("everything
//! committed before this is published"), and the registry trusts its memory only for a bounded
//! time after the last such instant. A poll that fails or does not answer within its timeout
//! (a stopped server, a black-holed or half-open connection) drops the connection and is
//! retried on a new one; nothing is marked synced meanwhile, so the node goes stale and fails
//! closed. Nothing is lost across an outage: the next poll reads from the last sequence number
//! it applied.
//!
//! Notifications carry nothing: whoever can `NOTIFY` on the channel (any role that can connect)
//! can only make a node poll, and polls triggered that way are at most one per
//! [`MIN_HINTED_POLL_GAP`], so a flood costs bounded work.
//!
//! Sequence numbers are taken before commit, so a transaction with a lower number can commit
//! after one with a higher number has been read. Skipped numbers are kept as gaps and asked for
//! again on every poll until they appear or [`GAP_GIVE_UP`] passes (a rolled-back transaction
//! leaves a gap forever; every transaction here is short and bounded by the server's
//! `idle_in_transaction_session_timeout` set on our connections).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(test)]
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Postgres, Row, Transaction};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::ClientId;
use tokio::sync::{broadcast, Notify};

use crate::{Change, StoreResult};

/// The channel every change wakes nodes up on (the payload is empty and ignored).
pub(crate) const CHANNEL: &str = "tessera_changes";
/// At most this many rows are read per poll; a full page is followed by another poll at once.
const PAGE: i64 = 1000;
/// A skipped sequence number is asked for again until this long after it was first missed.
const GAP_GIVE_UP: Duration = Duration::from_secs(120);
/// Most gaps tracked at once (beyond, the node re-reads everything).
const MAX_GAPS: usize = 10_000;
/// Polls woken by notifications are at least this far apart: a flood of forged
/// notifications costs at most one small indexed query per gap.
pub(crate) const MIN_HINTED_POLL_GAP: Duration = Duration::from_millis(10);
/// Rows are kept this long; a node that comes back to find rows it never read purged re-reads
/// everything.
const RETENTION: Duration = Duration::from_secs(3600);
/// A node starting up treats the numbers missing among those taken this recently as gaps
/// (transactions that may still commit).
const START_LOOKBACK: Duration = Duration::from_secs(10);
/// How often a node purges rows past the retention.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// How the feed is driven; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    /// A poll is made at least this often (the heartbeat).
    pub poll_every: Duration,
    /// A poll (or a connection attempt) that takes longer fails, and its connection is dropped.
    pub poll_timeout: Duration,
}

impl FeedSettings {
    /// Settings for a staleness bound: four polls and two timeouts fit in it.
    pub fn for_bound(bound: Duration) -> Self {
        Self {
            poll_every: (bound / 8).max(Duration::from_millis(20)),
            poll_timeout: (bound / 2).max(Duration::from_millis(100)),
        }
    }
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self::for_bound(Duration::from_secs(2))
    }
}

/// The (kind, subject, expires_at ms) a change is stored as.
fn encode(change: &Change) -> (&'static str, String, i64) {
    match change {
        Change::Account(id) => ("sa", id.hex(), 0),
        Change::Revoked { jti, expires_at } => ("rv", jti.clone(), to_millis(*expires_at)),
        Change::ApiKeys => ("keys", String::new(), 0),
        Change::ServerKeys => ("server_keys", String::new(), 0),
        Change::Everything => ("all", String::new(), 0),
        // Not a change: never stored.
        Change::Synced(_) => ("synced", String::new(), 0),
    }
}

/// The change a stored row names; `None` for a row this version does not know.
fn decode(kind: &str, subject: &str, expires_at: i64) -> Option<Change> {
    Some(match kind {
        "sa" => Change::Account(ClientId::parse_hex(subject).ok()?),
        "rv" => Change::Revoked {
            jti: subject.to_owned(),
            expires_at: from_millis(expires_at),
        },
        "keys" => Change::ApiKeys,
        "server_keys" => Change::ServerKeys,
        "all" => Change::Everything,
        _ => return None,
    })
}

/// Appends `change` to the log in the transaction and wakes the other nodes at commit.
pub(crate) async fn log_change(
    tx: &mut Transaction<'_, Postgres>,
    node: &str,
    change: &Change,
) -> StoreResult<()> {
    let (kind, subject, expires_at) = encode(change);
    sqlx::query(
        "WITH logged AS (INSERT INTO change_log (node, kind, subject, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT) \
         RETURNING seq) \
         SELECT pg_notify($5, '') FROM logged",
    )
    .bind(node)
    .bind(kind)
    .bind(subject)
    .bind(expires_at)
    .bind(CHANNEL)
    .execute(&mut **tx)
    .await
    .map_err(super::backend)?;
    Ok(())
}

/// Where a new node starts reading: the highest sequence number in the log (0 when empty),
/// and the numbers below it that no row holds yet among those taken in the last
/// [`START_LOOKBACK`] — a transaction that took one may still commit (its change is then read
/// as a gap fills; one committed in between is applied twice, which is harmless).
pub(crate) async fn start_point(conn: &mut PgConnection) -> Result<(i64, Vec<i64>), sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM change_log")
        .fetch_one(&mut *conn)
        .await?;
    // The last number taken before the look-back window (by the database's clock).
    let floor: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0)::BIGINT FROM change_log WHERE created_at < \
         (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT - $1",
    )
    .bind(i64::try_from(START_LOOKBACK.as_millis()).unwrap_or(i64::MAX))
    .fetch_one(&mut *conn)
    .await?;
    let from = floor.max(head.saturating_sub(i64::try_from(MAX_GAPS).unwrap_or(i64::MAX)));
    let missing: Vec<i64> = sqlx::query_scalar(
        "SELECT g FROM generate_series($1::BIGINT + 1, $2::BIGINT) g \
         WHERE NOT EXISTS (SELECT 1 FROM change_log c WHERE c.seq = g)",
    )
    .bind(from)
    .bind(head)
    .fetch_all(&mut *conn)
    .await?;
    Ok((head, missing))
}

/// What the feed shares with the store handle.
#[derive(Debug)]
pub(crate) struct FeedShared {
    pub node: Arc<str>,
    pub changes: broadcast::Sender<Change>,
    pub api_keys_version: Arc<AtomicU64>,
    /// Woken by notifications and by [`crate::Store::nudge_feed`].
    pub wake: Notify,
    pub polls: AtomicU64,
}

/// Where the reader is: the last sequence number read, and the numbers skipped below it.
struct Cursor {
    last: i64,
    /// Whether `last` is a row this node saw (or the head of a non-empty log at start). An
    /// empty log at start says nothing about where its sequence stands, so the first number
    /// read after it is not taken as proof that rows were purged unread.
    anchored: bool,
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    /// Takes in one row's sequence number; `false` when too many gaps pile up.
    fn see(&mut self, seq: i64, now: Instant) -> bool {
        self.anchored = true;
        if seq > self.last {
            if seq > self.last + 1 {
                let missing = usize::try_from(seq - self.last - 1).unwrap_or(usize::MAX);
                if self.gaps.len().saturating_add(missing) > MAX_GAPS {
                    self.last = seq;
                    return false;
                }
                for s in self.last + 1..seq {
                    self.gaps.insert(s, now);
                }
            }
            self.last = seq;
        } else {
            self.gaps.remove(&seq);
        }
        true
    }

    fn expire_gaps(&mut self, now: Instant) {
        self.gaps.retain(|seq, since| {
            let keep = now.duration_since(*since) < GAP_GIVE_UP;
            if !keep {
                // A number is taken by the last statement before a commit, so this is a
                // rolled-back write, or a commit slower than GAP_GIVE_UP (see architecture.md).
                tracing::warn!(seq, "change log gap given up (a rolled-back write?)");
            }
            keep
        });
    }
}

/// One poll: reads what is new (and any gap that appeared) and publishes it. Returns whether a
/// full page was read (more may be waiting).
async fn poll_once(
    conn: &mut PgConnection,
    shared: &FeedShared,
    cursor: &mut Cursor,
) -> Result<bool, sqlx::Error> {
    let gaps: Vec<i64> = cursor.gaps.keys().copied().collect();
    // One statement, so one snapshot: the oldest row still kept, and what is new (no rows:
    // one row of NULLs after the oldest).
    let rows = sqlx::query(
        "SELECT o.oldest, c.seq, c.node, c.kind, c.subject, c.expires_at \
         FROM (SELECT MIN(seq) AS oldest FROM change_log) o \
         LEFT JOIN LATERAL (SELECT seq, node, kind, subject, expires_at FROM change_log \
           WHERE seq > $1 OR seq = ANY($2) ORDER BY seq LIMIT $3) c ON true",
    )
    .bind(cursor.last)
    .bind(&gaps)
    .bind(PAGE)
    .fetch_all(conn)
    .await?;
    // Every column is read before the cursor moves: a row that cannot be read is read again.
    let mut oldest: Option<i64> = None;
    let mut read = Vec::with_capacity(rows.len());
    for row in &rows {
        oldest = row.try_get("oldest")?;
        let Some(seq) = row.try_get::<Option<i64>, _>("seq")? else {
            continue;
        };
        let node: String = row.try_get("node")?;
        let kind: String = row.try_get("kind")?;
        let subject: String = row.try_get("subject")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        read.push((seq, node, kind, subject, expires_at));
    }
    // Rows this node never read that are gone: purged while it was away (or suspended).
    let mut everything = cursor.anchored && oldest.is_some_and(|oldest| oldest > cursor.last + 1);
    if everything {
        tracing::warn!(
            last = cursor.last,
            oldest,
            "change log rows this node never read were purged; re-reading everything"
        );
        cursor.gaps.clear();
    }
    let now = Instant::now();
    let read_count = read.len();
    for (seq, node, kind, subject, expires_at) in read {
        if !cursor.see(seq, now) {
            tracing::warn!("too many gaps in the change log; re-reading everything");
            everything = true;
        }
        if node.as_str() == &*shared.node {
            continue;
        }
        match decode(&kind, &subject, expires_at) {
            Some(change) => publish(shared, change),
            None => tracing::warn!(seq, kind, "change log row of an unknown kind; skipped"),
        }
    }
    if everything {
        publish(shared, Change::Everything);
    }
    cursor.expire_gaps(now);
    Ok(read_count as i64 >= PAGE)
}

fn publish(shared: &FeedShared, change: Change) {
    if matches!(change, Change::ApiKeys | Change::Everything) {
        shared.api_keys_version.fetch_add(1, Ordering::SeqCst);
    }
    let _ = shared.changes.send(change);
}

async fn connect(opts: &PgConnectOptions, timeout: Duration) -> Option<PgConnection> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(opts)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "change feed: cannot connect to PostgreSQL");
            None
        }
        Err(_) => {
            tracing::warn!("change feed: connecting to PostgreSQL timed out");
            None
        }
    }
}

/// Reads the change log for as long as the store is open; see the module documentation.
pub(crate) async fn follow(
    opts: PgConnectOptions,
    settings: FeedSettings,
    shared: Arc<FeedShared>,
    (start, in_flight): (i64, Vec<i64>),
) {
    let now = Instant::now();
    let mut cursor = Cursor {
        last: start,
        anchored: start > 0,
        gaps: in_flight.into_iter().map(|seq| (seq, now)).collect(),
    };
    let mut conn: Option<PgConnection> = None;
    let mut last_poll = Instant::now() - settings.poll_every;
    let mut last_purge = Instant::now();
    let mut failing = false;
    loop {
        // Wait for a wake-up or the heartbeat, whichever comes first; wake-ups are spaced.
        let next_tick = last_poll + settings.poll_every;
        tokio::select! {
            _ = shared.wake.notified() => {
                let earliest = last_poll + MIN_HINTED_POLL_GAP;
                tokio::time::sleep_until(earliest.into()).await;
            }
            _ = tokio::time::sleep_until(next_tick.into()) => {}
        }
        let started = Instant::now();
        last_poll = started;
        if conn.is_none() {
            conn = connect(&opts, settings.poll_timeout).await;
        }
        let Some(c) = conn.as_mut() else {
            failing = true;
            continue;
        };
        let result = tokio::time::timeout(settings.poll_timeout, async {
            let mut more = true;
            while more {
                more = poll_once(c, &shared, &mut cursor).await?;
            }
            Ok::<(), sqlx::Error>(())
        })
        .await;
        match result {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("change feed answering again; caught up");
                    failing = false;
                }
                shared.polls.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("tessera_feed_polls_total").increment(1);
                let _ = shared.changes.send(Change::Synced(started));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "change feed poll failed; reconnecting");
                failing = true;
                conn = None;
                continue;
            }
            Err(_) => {
                tracing::warn!("change feed poll did not answer in time; reconnecting");
                failing = true;
                conn = None;
                continue;
            }
        }
        if started.duration_since(last_purge) >= PURGE_EVERY {
            last_purge = started;
            if let Some(c) = conn.as_mut() {
                // The database's clock: retention of this operational log is not a domain rule.
                let purge = sqlx::query(
                    "DELETE FROM change_log WHERE created_at < \
                     (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT - $1",
                )
                .bind(i64::try_from(RETENTION.as_millis()).unwrap_or(i64::MAX))
                .execute(&mut *c);
                match tokio::time::timeout(settings.poll_timeout, purge).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "change log purge failed; next round")
                    }
                    Err(_) => {
                        tracing::debug!("change log purge timed out; reconnecting");
                        conn = None;
                    }
                }
            }
        }
    }
}

/// Wakes the reader on every notification of [`CHANNEL`] (payloads are ignored). Only a
/// shortcut: without it the reader still polls every `poll_every`.
pub(crate) async fn listen(pool: sqlx::PgPool, shared: Arc<FeedShared>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(sqlx::Error::PoolClosed) => return,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => shared.wake.notify_one(),
                // Reconnected: a poll catches up whatever was missed.
                Ok(None) => shared.wake.notify_one(),
                Err(sqlx::Error::PoolClosed) => return,
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_rows() {
        let id = ClientId::generate(DateTime::<Utc>::UNIX_EPOCH);
        let at = from_millis(1_700_000_000_123);
        for c in [
            Change::Account(id),
            Change::Revoked {
                jti: "0123456789abcdef0123456789abcdef".into(),
                expires_at: at,
            },
            Change::ApiKeys,
            Change::ServerKeys,
            Change::Everything,
        ] {
            let (k, s, e) = encode(&c);
            assert_eq!(decode(k, &s, e), Some(c));
        }
        assert_eq!(decode("nonsense", "", 0), None);
        assert_eq!(decode("synced", "", 0), None);
    }

    #[test]
    fn skipped_numbers_are_kept_until_they_appear_or_expire() {
        let t0 = Instant::now();
        let mut c = Cursor {
            last: 5,
            anchored: true,
            gaps: BTreeMap::new(),
        };
        assert!(c.see(6, t0));
        assert!(c.see(9, t0));
        assert_eq!(c.gaps.keys().copied().collect::<Vec<_>>(), vec![7, 8]);
        assert!(c.see(8, t0));
        assert_eq!(c.gaps.keys().copied().collect::<Vec<_>>(), vec![7]);
        c.expire_gaps(t0 + GAP_GIVE_UP);
        assert!(c.gaps.is_empty());
        assert_eq!(c.last, 9);
        assert!(!c.see(9 + MAX_GAPS as i64 + 2, t0));
    }
}
