//! WAL checkpoints beside the writer instead of inside its commits.
//!
//! SQLite's automatic checkpoint runs in the COMMIT that takes the log past 1,000 pages: that
//! commit copies the log into the database file and syncs it before it returns, while every
//! write queued for the one writer connection waits. Under 64 revoking connections this was
//! most of revocation's latency tail (a commit took 0.3 ms without a checkpoint, 6 ms with one,
//! and up to 120 ms when the disk was slow; see docs/performance.md). So the writer connection
//! runs with `wal_autocheckpoint=0`, and this task checkpoints from its own connection.
//!
//! A PASSIVE checkpoint never waits for the writer or a reader, so the copying and the sync of
//! the database file happen beside the commits. But the log only starts again from its
//! beginning (instead of growing) when a write transaction begins while all of it is copied,
//! and under steady load the writer begins its next transaction as it commits the last: a
//! passive pass never sees that moment. So once the log is [`FINISH_FRAMES`] long, a round
//! ends with one pass on the writer connection, between two of its transactions. The passive
//! passes before it (each with only what the one before let through) leave that pass a few
//! frames at most, so it holds writes for little more than a sync of the database file.
//! (A first version finished at 1,000 frames after a single passive pass: a few hundred frames
//! left, a 4 ms hold ten times a second, 80 ms once when the sync was slow.)

use sqlx::{Sqlite, SqlitePool};
use std::time::Duration;
use tokio::sync::watch;

/// How often the log is checkpointed while there is something to copy.
const INTERVAL: Duration = Duration::from_millis(100);

/// Passive passes per round at most (a round stops early once a pass leaves nothing, or no
/// less than the one before).
const PASSES: usize = 4;

/// The log length (4 KiB frames, so 16 MiB) from which a round finishes on the writer
/// connection.
const FINISH_FRAMES: i64 = 4096;

/// Stops the task when the last clone of the store is dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop: watch::Sender<()>,
}

/// Starts the checkpoint task on `own` (a connection of its own) for the database the `writer`
/// connection writes.
pub(super) fn spawn(own: SqlitePool, writer: SqlitePool) -> Checkpointer {
    let (stop, stopped) = watch::channel(());
    tokio::spawn(run(own, writer, stopped));
    Checkpointer { _stop: stop }
}

async fn run(own: SqlitePool, writer: SqlitePool, mut stopped: watch::Receiver<()>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Never sent: an error means the store is gone.
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = round(&own, &writer, FINISH_FRAMES).await {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
    own.close().await;
}

/// Passive passes while they shrink what is left to copy; then, if the log is `finish_from`
/// frames long or more, one pass on the writer connection. Returns the last pass.
pub(super) async fn round(
    own: &SqlitePool,
    writer: &SqlitePool,
    finish_from: i64,
) -> Result<Pass, sqlx::Error> {
    let mut pass = passive(own).await?;
    for _ in 1..PASSES {
        if pass.whole() {
            break;
        }
        let next = passive(own).await?;
        let shrank = next.left() < pass.left();
        pass = next;
        if !shrank {
            break;
        }
    }
    if pass.log >= finish_from {
        let mut conn = writer.acquire().await?;
        pass = passive(&mut *conn).await?;
    }
    Ok(pass)
}

/// What a checkpoint pass reports.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pass {
    /// Frames in the log (-1 if the database is not in WAL mode).
    pub log: i64,
    /// Frames of it now in the database file.
    pub copied: i64,
}

impl Pass {
    fn left(self) -> i64 {
        (self.log - self.copied).max(0)
    }

    fn whole(self) -> bool {
        self.left() == 0
    }
}

async fn passive<'c, E>(conn: E) -> Result<Pass, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let (_busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await?;
    Ok(Pass { log, copied })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use sqlx::sqlite::SqlitePoolOptions;

    async fn setup() -> (tempfile::TempDir, SqliteStore, SqlitePool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let own = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("checkpoint connection");
        sqlx::query("CREATE TABLE scratch (x BLOB)")
            .execute(&store.writer)
            .await
            .expect("scratch table");
        (dir, store, own)
    }

    #[tokio::test]
    async fn commits_never_checkpoint() {
        let (_dir, store, _own) = setup().await;
        let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.writer)
            .await
            .expect("pragma");
        assert_eq!(pages, 0, "the writer must leave checkpoints to the task");
    }

    /// Under steady writes, passive passes alone never let the log start again (the writer is
    /// always inside a transaction); a round that finishes on the writer connection does.
    #[tokio::test]
    async fn the_log_starts_again_under_steady_writes() {
        for (finish_from, bounded) in [(0, true), (i64::MAX, false)] {
            let (_dir, store, own) = setup().await;
            let writer = store.writer.clone();
            let writes = tokio::spawn(async move {
                for _ in 0..400 {
                    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                    sqlx::query("INSERT INTO scratch VALUES (randomblob(3000))")
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                Ok::<_, sqlx::Error>(())
            });
            let mut longest = 0;
            while !writes.is_finished() {
                let pass = round(&own, &store.writer, finish_from)
                    .await
                    .expect("round");
                longest = longest.max(pass.log);
                tokio::task::yield_now().await;
            }
            writes.await.expect("join").expect("writes");
            // 400 transactions write about 800 frames; a round that finishes lets the log start
            // again, so it holds only what was written since the round before.
            assert_eq!(
                longest < 400,
                bounded,
                "finish_from {finish_from}: the log reached {longest} frames"
            );
        }
    }
}
