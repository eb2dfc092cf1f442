//! How current the mirror is, for a store several nodes share: the feed's heartbeat and the
//! staleness bound (see the module documentation of `super`).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Mutex;
use tessera_store::Store;

use super::{lock, Registry};

/// Nanoseconds on the boot-time clock: monotonic like `Instant`, but it keeps counting while
/// the machine or VM is suspended (Linux `CLOCK_BOOTTIME`; elsewhere the monotonic clock). Not
/// the time of day: this is how old the mirror is, not a domain time.
pub(super) fn boot_nanos() -> i128 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let clock = rustix::time::ClockId::Boottime;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let clock = rustix::time::ClockId::Monotonic;
    let t = rustix::time::clock_gettime(clock);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// How current the mirror is (see the module documentation).
#[derive(Default)]
pub(super) struct Freshness {
    /// `None`: no feed (a store only this process changes), always current.
    pub(super) bound: Option<std::time::Duration>,
    /// The last heartbeat applied: every change committed before it is in the mirror. Kept as
    /// an `Instant` and, since that clock stops while the machine or VM is suspended, as a
    /// reading of the boot-time clock ([`boot_nanos`]), which does not; the mirror is trusted
    /// only while both are within the bound.
    pub(super) synced_at: Mutex<Option<(std::time::Instant, i128)>>,
    /// A change could not be applied (the store failed while re-reading): the mirror is not
    /// trusted until everything has been re-read.
    pub(super) catch_up_failed: std::sync::atomic::AtomicBool,
    /// Woken whenever `synced_at` moves.
    pub(super) moved: tokio::sync::Notify,
}

impl Registry {
    pub(super) fn mark_synced(&self, at: std::time::Instant) {
        // The boot-clock time the poll started (not when it was applied: never later).
        let boot = boot_nanos() - i128::try_from(at.elapsed().as_nanos()).unwrap_or(i128::MAX);
        {
            let mut synced = lock(&self.freshness.synced_at);
            if synced.is_none_or(|(s, _)| s < at) {
                *synced = Some((at, boot));
            }
        }
        self.freshness.moved.notify_waiters();
    }

    /// Whether the mirror may be trusted for decisions that depend on revocation and account
    /// state: always without a feed; with one, within the staleness bound of the feed's last
    /// heartbeat (by `Instant` and by the boot-time clock: after a suspend it is stale until
    /// the next heartbeat) and with no failed catch-up pending.
    pub fn is_fresh(&self) -> bool {
        let Some(bound) = self.freshness.bound else {
            return true;
        };
        if self.freshness.catch_up_failed.load(SeqCst) {
            return false;
        }
        let bound_ns = i128::try_from(bound.as_nanos()).unwrap_or(i128::MAX);
        lock(&self.freshness.synced_at)
            .is_some_and(|(at, boot)| at.elapsed() <= bound && boot_nanos() - boot <= bound_ns)
    }

    /// [`Registry::is_fresh`], or, when the mirror is stale, asks the feed to read the
    /// database now and waits up to `wait` for it to answer. `false`: still stale (refuse).
    pub async fn ensure_fresh(&self, store: &dyn Store, wait: std::time::Duration) -> bool {
        if self.is_fresh() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + wait;
        store.nudge_feed();
        loop {
            let moved = self.freshness.moved.notified();
            if self.is_fresh() {
                return true;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return self.is_fresh();
            }
        }
    }
}

#[cfg(test)]
mod freshness_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn with_bound(bound: Duration) -> Registry {
        let mut reg = Registry::default();
        reg.freshness.bound = Some(bound);
        reg
    }

    #[test]
    fn without_a_feed_the_mirror_is_always_fresh() {
        assert!(Registry::default().is_fresh());
    }

    #[test]
    fn a_heartbeat_keeps_the_mirror_fresh_only_within_the_bound() {
        let reg = with_bound(Duration::from_secs(2));
        assert!(!reg.is_fresh(), "no heartbeat yet");
        reg.mark_synced(Instant::now());
        assert!(reg.is_fresh());
        // A heartbeat older than the bound by `Instant`.
        *lock(&reg.freshness.synced_at) = Instant::now()
            .checked_sub(Duration::from_secs(3))
            .map(|at| (at, boot_nanos()));
        assert!(!reg.is_fresh());
    }

    #[test]
    fn time_spent_suspended_still_makes_the_mirror_stale() {
        // After a suspend, `Instant` says the heartbeat is recent; the boot-time clock, which
        // counted the hour spent suspended, says it is not.
        let reg = with_bound(Duration::from_secs(2));
        let an_hour_ago = boot_nanos() - 3_600 * 1_000_000_000;
        *lock(&reg.freshness.synced_at) = Some((Instant::now(), an_hour_ago));
        assert!(!reg.is_fresh());
    }

    #[test]
    fn a_failed_catch_up_makes_the_mirror_stale_whatever_the_heartbeat() {
        let reg = with_bound(Duration::from_secs(2));
        reg.mark_synced(Instant::now());
        reg.freshness.catch_up_failed.store(true, SeqCst);
        assert!(!reg.is_fresh());
    }
}
