//! Failed authentications, counted in memory and written as events in batches.
//!
//! A failed Digest, Basic (token, revoke, introspect) or Bearer authentication is an event
//! (CONTRACT §11), but writing one row per failure would let a flood of bad credentials grow
//! the table and the write load without bound. So failures are aggregated per (event type,
//! principal, client address, minute): the store keeps one event per such key whose `count`
//! grows. In memory at most [`MAX_PENDING`] keys wait for the next flush; past that, further
//! failures are counted under one overflow key per minute and type, so memory is bounded too.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use tessera_domain::{EventType, OrgId};
use tessera_store::events::{Actor, AuthFailure};
use tessera_store::{Store, StoreResult};

/// Keys waiting for a flush, at most.
pub const MAX_PENDING: usize = 10_000;

/// The principal of a failure whose credential named nobody we can trust.
pub const UNKNOWN_PRINCIPAL: &str = "-";

#[derive(Default)]
pub struct AuthFailures {
    pending: Mutex<HashMap<String, AuthFailure>>,
}

fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

impl AuthFailures {
    /// Counts one failure. `principal` is a well-formed public key or client id (never a
    /// password, secret or token), or [`UNKNOWN_PRINCIPAL`].
    pub fn note(
        &self,
        event_type: EventType,
        org_id: Option<OrgId>,
        principal: &str,
        actor: Actor,
        address: IpAddr,
        now: DateTime<Utc>,
    ) {
        let mut failure = AuthFailure {
            event_type,
            org_id,
            principal: principal.to_owned(),
            actor,
            remote_address: Some(address),
            minute: minute_of(now),
            count: 1,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = failure.key();
        if !pending.contains_key(&key) && pending.len() >= MAX_PENDING {
            // Bounded memory: the overflow of a flood is still counted, without detail.
            failure.org_id = None;
            failure.principal = UNKNOWN_PRINCIPAL.to_owned();
            failure.actor = Actor::Anonymous;
            failure.remote_address = None;
            key = failure.key();
        }
        pending
            .entry(key)
            .and_modify(|f| f.count += 1)
            .or_insert(failure);
    }

    /// Failures counted since the last flush (for tests and metrics).
    pub fn pending(&self) -> u64 {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.values().map(|f| f.count).sum()
    }

    /// Writes the pending counts as events; on failure they stay pending for the next flush.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<()> {
        let batch: Vec<AuthFailure> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending).into_values().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = store.record_auth_failures(&batch).await {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for f in batch {
                pending
                    .entry(f.key())
                    .and_modify(|p| p.count += f.count)
                    .or_insert(f);
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn failures_aggregate_per_principal_address_and_minute() {
        let f = AuthFailures::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let ty = EventType::ApiKeyAuthenticationFailed;
        // 1_700_000_000 is 22:13:20; the minute runs to +40 s.
        for s in [0, 10, 39] {
            f.note(ty, None, "abcdefgh", Actor::Anonymous, a, t(s));
        }
        f.note(ty, None, "abcdefgh", Actor::Anonymous, a, t(41)); // next minute
        f.note(ty, None, "abcdefgh", Actor::Anonymous, b, t(0)); // other address
        f.note(ty, None, "zzzzzzzz", Actor::Anonymous, a, t(0)); // other principal
        let pending = f.pending.lock().unwrap();
        assert_eq!(pending.len(), 4);
        assert_eq!(pending.values().map(|x| x.count).max(), Some(3));
    }

    #[test]
    fn memory_is_bounded_under_a_flood() {
        let f = AuthFailures::default();
        let ty = EventType::ServiceAccountAuthenticationFailed;
        for i in 0..(MAX_PENDING as u32 + 5_000) {
            let addr: IpAddr = std::net::Ipv4Addr::from(0x0a00_0000 + i).into();
            f.note(ty, None, "p", Actor::Anonymous, addr, t(0));
        }
        assert!(f.pending.lock().unwrap().len() <= MAX_PENDING + 1);
        assert_eq!(
            f.pending(),
            MAX_PENDING as u64 + 5_000,
            "every failure is counted"
        );
    }
}
