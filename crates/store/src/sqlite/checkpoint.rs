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
    let mut finished = None;
    loop {
        tokio::select! {
            // Never sent: an error means the store is gone.
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = round(&own, &writer, FINISH_FRAMES, &mut finished).await {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
    own.close().await;
}

/// Passive passes while they shrink what is left to copy ([`passes`]); then, if the log is
/// `finish_from` frames long or more, one pass on the writer connection ([`finish`]). Returns
/// the last pass.
pub(super) async fn round(
    own: &SqlitePool,
    writer: &SqlitePool,
    finish_from: i64,
    finished: &mut Option<i64>,
) -> Result<Pass, sqlx::Error> {
    let pass = passes(own).await?;
    finish(writer, finish_from, finished, pass).await
}

/// The first step of a round: passive passes on the task's own connection (they never wait
/// for the writer), while they shrink what is left to copy.
pub(super) async fn passes(own: &SqlitePool) -> Result<Pass, sqlx::Error> {
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
    Ok(pass)
}

/// The second step of a round, after `pass` (the last of [`passes`]): if the log is
/// `finish_from` frames long or more, one pass on the writer connection, between two of its
/// transactions, unless the log is still the one the last such pass left whole (`finished`:
/// nothing was written since, and the next write starts it again; an idle server does not
/// take the writer ten times a second). Returns the last pass.
pub(super) async fn finish(
    writer: &SqlitePool,
    finish_from: i64,
    finished: &mut Option<i64>,
    mut pass: Pass,
) -> Result<Pass, sqlx::Error> {
    let unchanged = pass.whole() && *finished == Some(pass.log);
    if pass.log >= finish_from && !unchanged {
        let mut conn = writer.acquire().await?;
        pass = passive(&mut *conn).await?;
        *finished = pass.whole().then_some(pass.log);
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
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    /// A writer connection set up as the store sets up its own, and a connection for the
    /// checkpoints, on a scratch database: no store, so no checkpoint task of its own runs
    /// beside the test's rounds (a pass that meets another checkpoint reports busy).
    async fn setup() -> (tempfile::TempDir, SqlitePool, SqlitePool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = |opts: SqliteConnectOptions| async move {
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .expect("connect")
        };
        let writer = pool(opts.clone().pragma("wal_autocheckpoint", "0")).await;
        let own = pool(opts).await;
        sqlx::query("CREATE TABLE scratch (x BLOB)")
            .execute(&writer)
            .await
            .expect("scratch table");
        (dir, writer, own)
    }

    #[tokio::test]
    async fn commits_never_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.dialect.writer)
            .await
            .expect("pragma");
        assert_eq!(pages, 0, "the writer must leave checkpoints to the task");
    }

    /// Once a finishing pass has left the log whole and nothing has been written since, a round
    /// does not take the writer connection again.
    #[tokio::test]
    async fn an_idle_log_is_not_finished_twice() {
        let (_dir, writer, own) = setup().await;
        sqlx::query("INSERT INTO scratch VALUES (randomblob(3000))")
            .execute(&writer)
            .await
            .expect("write");
        let mut finished = None;
        let first = round(&own, &writer, 0, &mut finished).await.expect("round");
        assert!(first.whole() && finished == Some(first.log));
        // The writer connection is busy now; a round that tried to take it would wait forever.
        let _held = writer.acquire().await.expect("writer");
        let again = tokio::time::timeout(
            Duration::from_secs(30),
            round(&own, &writer, 0, &mut finished),
        )
        .await
        .expect("the round waited for the writer connection")
        .expect("round");
        assert_eq!(again.log, first.log);
    }

    /// Under steady writes, passive passes alone never let the log start again (the writer is
    /// always inside a transaction); a round that finishes on the writer connection does.
    ///
    /// Steady writes are driven step by step, not left to the scheduler: each round's passive
    /// passes run while the writer is inside a transaction (as they do when the writer begins
    /// its next transaction as it commits the last), and its finishing step runs between that
    /// commit and the next transaction, where the task's real round takes the writer
    /// connection. The outcome is the same on any machine, however busy.
    #[tokio::test]
    async fn the_log_starts_again_under_steady_writes() {
        for (finish_from, bounded) in [(0, true), (i64::MAX, false)] {
            let (_dir, writer, own) = setup().await;
            let (mut longest, mut finished) = (0, None);
            for _ in 0..400 {
                let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.expect("begin");
                sqlx::query("INSERT INTO scratch VALUES (randomblob(3000))")
                    .execute(&mut *tx)
                    .await
                    .expect("write");
                let pass = passes(&own).await.expect("passive passes");
                tx.commit().await.expect("commit");
                let pass = finish(&writer, finish_from, &mut finished, pass)
                    .await
                    .expect("finish");
                longest = longest.max(pass.log);
            }
            // 400 transactions write about 1,300 frames; a round that finishes lets the log start
            // again, so it holds only what one transaction wrote.
            if bounded {
                assert!(
                    longest < 16,
                    "finish_from {finish_from}: the log reached {longest} frames"
                );
            } else {
                assert!(
                    longest >= 1000,
                    "finish_from {finish_from}: the log reached only {longest} frames"
                );
            }
        }
    }
}
