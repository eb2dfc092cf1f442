//! Revoked tokens: recorded durably before the revocation is acknowledged, one event per
//! token revoked, and (where the dialect wants it) group-committed.

use chrono::{DateTime, Utc};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::ClientId;
use tokio::sync::oneshot;

use super::*;
use crate::events::NewEvent;
use crate::*;

/// Group commit for revocations: each `revoke_token` call queues its row; whoever holds the
/// commit turn writes every queued row in one transaction (one fsync) and answers each waiter
/// after the commit.
#[derive(Debug, Default)]
pub(crate) struct RevocationQueue {
    pending: std::sync::Mutex<Vec<PendingRevocation>>,
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
pub(crate) struct PendingRevocation {
    jti: String,
    account: ClientId,
    expires_at: DateTime<Utc>,
    event: NewEvent,
    done: Option<oneshot::Sender<StoreResult<()>>>,
}

impl<D: Dialect> SqlStore<D> {
    /// Writes a batch of revocations in one unit of work, a few hundred rows per statement.
    /// One revocation, one event: only the rows this batch inserted (not a token revoked
    /// before or by a concurrent batch that committed first, nor the second of two
    /// revocations of one token in this batch) get theirs, and a notice for other nodes.
    async fn write_revocations(&self, batch: &[PendingRevocation]) -> StoreResult<()> {
        const ROWS_PER_STATEMENT: usize = 256;
        let mut tx = self.work().await?;
        let mut inserted = std::collections::HashSet::new();
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO revoked_tokens (jti, account_id, expires_at) VALUES {} \
                 ON CONFLICT (jti) DO NOTHING RETURNING jti",
                vec!["(?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut q = query_scalar::<String>(sql);
            for r in chunk {
                q = q
                    .bind(r.jti.as_str())
                    .bind(r.account.hex())
                    .bind(to_millis(r.expires_at));
            }
            inserted.extend(q.fetch_all(&mut *tx).await?);
        }
        let mut events = Vec::new();
        let mut changes = Vec::new();
        for r in batch {
            if inserted.remove(&r.jti) {
                events.push(r.event.clone());
                changes.push(Change::Revoked {
                    jti: r.jti.clone(),
                    expires_at: r.expires_at,
                });
            }
        }
        tx.commit_all(&events, &changes).await
    }
}

#[async_trait::async_trait]
impl<D: Dialect> TokenStore for SqlStore<D> {
    async fn revoke_token(
        &self,
        jti: &str,
        account: ClientId,
        expires_at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()> {
        let row = PendingRevocation {
            jti: jti.to_owned(),
            account,
            expires_at,
            event,
            done: None,
        };
        if !D::GROUP_COMMIT_REVOCATIONS {
            // One short transaction per call: the database commits concurrent transactions
            // together on its own.
            return self.write_revocations(std::slice::from_ref(&row)).await;
        }
        let (done, mut answer) = oneshot::channel();
        self.revocations
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(PendingRevocation {
                done: Some(done),
                ..row
            });
        // Whoever gets the turn commits everything queued so far, ours included unless an
        // earlier turn already took it; the turn is held until every waiter is answered. A
        // waiter whose row another turn committed returns as soon as it is answered, without
        // queueing for the turn: otherwise every answered waiter would take and hand on the
        // turn one after another, each hand-off waiting for the runtime to run the next task,
        // and on a saturated core that chain was the revocations' latency tail.
        let _turn = tokio::select! {
            biased;
            answered = &mut answer => {
                return answered.unwrap_or_else(|_| Err(abandoned()));
            }
            turn = self.revocations.turn.lock() => turn,
        };
        match answer.try_recv() {
            Ok(result) => return result,
            Err(oneshot::error::TryRecvError::Closed) => return Err(abandoned()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let batch = std::mem::take(
            &mut *self
                .revocations
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let result = self.write_revocations(&batch).await;
        for r in batch {
            if let Some(done) = r.done {
                let _ = done.send(result.clone());
            }
        }
        answer.try_recv().unwrap_or_else(|_| Err(abandoned()))
    }

    async fn revoked_tokens(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows = query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?")
            .bind(to_millis(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("jti")?, from_millis(r.try_get("expires_at")?))))
            .collect()
    }

    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.work().await?;
        let r = query("DELETE FROM revoked_tokens WHERE expires_at <= ?")
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?;
        tx.commit_all(&[], &[]).await?;
        Ok(r.rows_affected())
    }
}

fn abandoned() -> StoreError {
    StoreError::Backend("revocation batch abandoned before commit".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use chrono::TimeZone as _;
    use tessera_domain::{EventId, OrgId};

    /// One batch of the group commit may hold the same token twice (two concurrent
    /// revocations queued before one commit), beside a token revoked by an earlier batch:
    /// each token revoked by this batch gets exactly one event, and the earlier one none.
    #[tokio::test]
    async fn a_batch_writes_one_event_per_token_it_revokes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let org = OrgId::generate(now);
        let client = ClientId::generate(now);
        let pending = |jti: &str| PendingRevocation {
            jti: jti.to_owned(),
            account: client,
            expires_at: now + chrono::Duration::hours(1),
            event: NewEvent {
                id: EventId::generate(now),
                created: now,
                event_type: tessera_domain::EventType::ServiceAccountTokenRevoked,
                org_id: Some(org),
                group_id: None,
                actor: crate::events::Actor::ServiceAccount(client),
                remote_address: None,
                target: vec![("tokenId", jti.to_owned())],
            },
            done: None,
        };
        store
            .write_revocations(&[pending("earlier")])
            .await
            .expect("first batch");
        let batch = [
            pending("twice"),
            pending("earlier"),
            pending("once"),
            pending("twice"),
        ];
        store.write_revocations(&batch).await.expect("second batch");
        let rows = query(
            "SELECT json_extract(target, '$.tokenId') AS t, COUNT(*) AS n FROM events \
             WHERE event_type = 'SERVICE_ACCOUNT_TOKEN_REVOKED' GROUP BY t ORDER BY t",
        )
        .fetch_all(&store.pool)
        .await
        .expect("per token");
        let per_token: Vec<(String, i64)> = rows
            .iter()
            .map(|r| (r.try_get("t").unwrap(), r.try_get("n").unwrap()))
            .collect();
        assert_eq!(
            per_token,
            [
                ("earlier".to_owned(), 1),
                ("once".to_owned(), 1),
                ("twice".to_owned(), 1)
            ],
            "one event per token revoked"
        );
    }
}
