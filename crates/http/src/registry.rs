//! The in-memory mirror of service accounts, revoked tokens and usage counters.
//!
//! Why: token issuance and Bearer authentication are the hot paths (thousands per second per
//! core). They must not wait on a database round trip, and never on a write. So every
//! service account (with its secrets' keyed hashes and its access list) is loaded at start and
//! kept in memory; every change goes through [`Registry::write`], which writes the store
//! first and then reloads that one account, so the mirror never shows what the store does not
//! hold. Usage counters (`lastUsedAt`, access-list `requestCount`) accumulate in memory and
//! are flushed in batches (Atlas allows such a delay).
//!
//! Several nodes sharing one database each hold a mirror, kept current by the store's change
//! feed ([`Registry::apply`]). How current is bounded: the feed's heartbeat
//! ([`tessera_store::Change::Synced`]) says up to when every change was applied, and past
//! the staleness bound without one (or while a failed catch-up waits to be retried) the
//! mirror is not trusted ([`Registry::is_fresh`]): what depends on revocation and account state
//! is answered from the database or refused. A store without a feed (the embedded SQLite) is
//! only changed by this process, so its mirror is always current.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, RwLock};
use tessera_domain::{ApiKeyId, ClientId, SecretId};
use tessera_protocols::jwt::Claims;
use tessera_store::{AccessUse, ServiceAccount, Store, StoreResult};

/// A token whose signature, issuer and audience were verified once.
#[derive(Debug)]
pub struct VerifiedToken {
    pub claims: Claims,
    pub client_id: ClientId,
    pub secret_id: SecretId,
}

/// Most verified tokens remembered; past this the cache is pruned of expired entries, then
/// cleared if still full.
const VERIFIED_CACHE_MAX: usize = 100_000;

#[derive(Default)]
pub struct Registry {
    accounts: RwLock<HashMap<ClientId, Arc<ServiceAccount>>>,
    writes: tokio::sync::Mutex<()>,
    revoked: RwLock<crate::revoked::RevokedTokens>,
    verified: RwLock<HashMap<String, Arc<VerifiedToken>>>,
    /// When each secret last minted a token, with the account it belongs to.
    secret_use: Mutex<HashMap<SecretId, (ClientId, DateTime<Utc>)>>,
    access_use: Mutex<PendingUse<ClientId>>,
    /// The same counters for API-key access lists (the keys themselves live in the store and
    /// the Digest cache, not here).
    key_access_use: Mutex<PendingUse<ApiKeyId>>,
    /// Failed authentications waiting to be written as events.
    pub auth_failures: crate::auth_failures::AuthFailures,
    /// Set when a reload failed and dropped an account from the mirror (fail closed); the
    /// next flush re-reads every account, so the account comes back once the store answers.
    stale: std::sync::atomic::AtomicBool,
    /// How current the mirror is, for a store that several nodes share.
    freshness: Freshness,
}

/// Nanoseconds on the boot-time clock: monotonic like `Instant`, but it keeps counting while
/// the machine or VM is suspended (Linux `CLOCK_BOOTTIME`; elsewhere the monotonic clock). Not
/// the time of day: this is how old the mirror is, not a domain time.
fn boot_nanos() -> i128 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let clock = rustix::time::ClockId::Boottime;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let clock = rustix::time::ClockId::Monotonic;
    let t = rustix::time::clock_gettime(clock);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// How current the mirror is (see the module documentation).
#[derive(Default)]
struct Freshness {
    /// `None`: no feed (a store only this process changes), always current.
    bound: Option<std::time::Duration>,
    /// The last heartbeat applied: every change committed before it is in the mirror. Kept as
    /// an `Instant` and, since that clock stops while the machine or VM is suspended, as a
    /// reading of the boot-time clock ([`boot_nanos`]), which does not; the mirror is trusted
    /// only while both are within the bound.
    synced_at: Mutex<Option<(std::time::Instant, i128)>>,
    /// A change could not be applied (the store failed while re-reading): the mirror is not
    /// trusted until everything has been re-read.
    catch_up_failed: std::sync::atomic::AtomicBool,
    /// Woken whenever `synced_at` moves.
    moved: tokio::sync::Notify,
}

/// Access-list uses not yet flushed, by (owner, entry key).
type PendingUse<O> = HashMap<(O, String), AccessUse<O>>;

fn note_use<O: Copy + Eq + std::hash::Hash>(
    map: &Mutex<PendingUse<O>>,
    owner: O,
    entry_key: String,
    addr: IpAddr,
    at: DateTime<Utc>,
) {
    let mut map = lock(map);
    let u = map
        .entry((owner, entry_key.clone()))
        .or_insert_with(|| AccessUse {
            account: owner,
            entry_key,
            at,
            address: addr.to_string(),
            count: 0,
        });
    u.at = at;
    u.address = addr.to_string();
    u.count += 1;
}

fn pending_use<O: Copy + Eq + std::hash::Hash>(
    map: &Mutex<PendingUse<O>>,
    owner: O,
    entry_key: &str,
) -> Option<(DateTime<Utc>, String, u64)> {
    lock(map)
        .get(&(owner, entry_key.to_owned()))
        .map(|u| (u.at, u.address.clone(), u.count))
}

/// Forgets the `flushed` uses (now in the store), keeping what arrived meanwhile.
fn settle_use<O: Copy + Eq + std::hash::Hash>(
    map: &Mutex<PendingUse<O>>,
    flushed: &[AccessUse<O>],
) {
    let mut pending = lock(map);
    for u in flushed {
        let key = (u.account, u.entry_key.clone());
        let done = match pending.get_mut(&key) {
            Some(p) if p.count == u.count => true,
            Some(p) => {
                p.count -= u.count;
                false
            }
            None => false,
        };
        if done {
            pending.remove(&key);
        }
    }
}

/// The account `id` as being changed in `changed`, cloned from the mirror on first use;
/// `None` when the mirror no longer holds it.
fn changed_or_clone<'a>(
    map: &HashMap<ClientId, Arc<ServiceAccount>>,
    changed: &'a mut HashMap<ClientId, ServiceAccount>,
    id: ClientId,
) -> Option<&'a mut ServiceAccount> {
    match changed.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => Some(e.insert((**map.get(&id)?).clone())),
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// Loads every account and the live revocation list. With `staleness_bound` (a store
    /// several nodes share, whose changes arrive through its feed), the mirror is trusted only
    /// that long after the feed's last heartbeat.
    pub async fn load(
        store: &dyn Store,
        now: DateTime<Utc>,
        staleness_bound: Option<std::time::Duration>,
    ) -> StoreResult<Self> {
        let started = std::time::Instant::now();
        let mut reg = Registry::default();
        reg.freshness.bound = staleness_bound;
        // What the load reads is current as of its start.
        *lock(&reg.freshness.synced_at) = Some((started, boot_nanos()));
        let accounts = store.list_service_accounts().await?;
        let revoked = store.revoked_tokens(now).await?;
        write(&reg.accounts).extend(accounts.into_iter().map(|a| (a.client_id, Arc::new(a))));
        write(&reg.revoked).extend(revoked);
        Ok(reg)
    }

    pub fn get(&self, id: ClientId) -> Option<Arc<ServiceAccount>> {
        read(&self.accounts).get(&id).cloned()
    }

    /// Serializes changes to accounts. Hold the guard across "write store, then
    /// [`Registry::reload`]".
    pub async fn write(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    /// Re-reads one account from the store into the mirror (removing it when it is gone).
    pub async fn reload(
        &self,
        store: &dyn Store,
        id: ClientId,
    ) -> StoreResult<Option<Arc<ServiceAccount>>> {
        let fresh = match store.get_service_account(id).await {
            Ok(a) => a.map(Arc::new),
            Err(e) => {
                // Fail closed: an account we cannot re-read must not keep authenticating
                // from a stale copy. The next flush brings it back from the store.
                write(&self.accounts).remove(&id);
                self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        };
        let mut map = write(&self.accounts);
        match &fresh {
            Some(a) => {
                map.insert(id, a.clone());
            }
            None => {
                map.remove(&id);
            }
        }
        Ok(fresh)
    }

    /// Re-reads every account of an organization (after an org-wide change such as a delete).
    pub async fn reload_all(&self, store: &dyn Store) -> StoreResult<()> {
        let all = match store.list_service_accounts().await {
            Ok(all) => all,
            Err(e) => {
                self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        };
        let mut map = write(&self.accounts);
        map.clear();
        for a in all {
            map.insert(a.client_id, Arc::new(a));
        }
        Ok(())
    }

    /// Applies a change another node committed, under the same write lock as local changes.
    /// A change that cannot be applied (the store failed while re-reading) leaves the mirror
    /// untrusted until [`Registry::catch_up`] has re-read everything, revocations included.
    pub async fn apply(
        &self,
        store: &dyn Store,
        change: &tessera_store::Change,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        use tessera_store::Change;
        let result = match change {
            Change::Account(id) => {
                let _guard = self.write().await;
                self.reload(store, *id).await.map(|_| ())
            }
            Change::Revoked { jti, expires_at } => {
                self.add_revoked(jti, *expires_at);
                Ok(())
            }
            // The store has already moved its API-key version; nothing is held here. Server
            // keys are the server's to re-read.
            Change::ApiKeys | Change::ServerKeys => Ok(()),
            Change::Everything => self.reload_everything(store, now).await,
            Change::Synced(at) => {
                if self.freshness.catch_up_failed.load(SeqCst) {
                    // Everything is re-read first; the mirror is trusted from the heartbeat
                    // after that.
                    self.catch_up(store, now).await?;
                }
                self.mark_synced(*at);
                return Ok(());
            }
        };
        if result.is_err() {
            self.freshness.catch_up_failed.store(true, SeqCst);
        }
        result
    }

    /// Re-reads the live revocations and every account.
    async fn reload_everything(&self, store: &dyn Store, now: DateTime<Utc>) -> StoreResult<()> {
        metrics::counter!("tessera_registry_full_reloads_total").increment(1);
        let revoked = store.revoked_tokens(now).await?;
        write(&self.revoked).extend(revoked);
        let _guard = self.write().await;
        self.reload_all(store).await
    }

    /// After a change could not be applied: re-reads everything, revocations included, and
    /// trusts the mirror again only when that succeeded.
    pub async fn catch_up(&self, store: &dyn Store, now: DateTime<Utc>) -> StoreResult<()> {
        match self.reload_everything(store, now).await {
            Ok(()) => {
                self.freshness.catch_up_failed.store(false, SeqCst);
                tracing::info!("caught up after a failed change; the mirror is trusted again");
                Ok(())
            }
            Err(e) => {
                self.freshness.catch_up_failed.store(true, SeqCst);
                Err(e)
            }
        }
    }

    fn mark_synced(&self, at: std::time::Instant) {
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

    /// The account, or, when the mirror does not hold it (it may have been created on another
    /// node a moment ago), as the store has it (then held). `Ok(None)`: the store does not
    /// have it either.
    pub async fn get_or_load(
        &self,
        store: &dyn Store,
        id: ClientId,
    ) -> StoreResult<Option<Arc<ServiceAccount>>> {
        if let Some(a) = self.get(id) {
            return Ok(Some(a));
        }
        // Unknown ids (anyone can send them) cost one indexed read and never wait for the
        // write lock that account changes take; only an account the store holds is taken in.
        if store.get_service_account(id).await?.is_none() {
            return Ok(None);
        }
        let _guard = self.write().await;
        if let Some(a) = self.get(id) {
            return Ok(Some(a));
        }
        self.reload(store, id).await
    }

    /// The account as the store holds it, taken into the mirror (under the write lock) only
    /// when `news` says the store's copy holds something worth it (a secret created on
    /// another node a moment ago, not yet applied here). A request that only repeats what the
    /// mirror already refuses (anyone may send them) costs one read and no lock.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        id: ClientId,
        news: impl Fn(&ServiceAccount) -> bool,
    ) -> StoreResult<Option<Arc<ServiceAccount>>> {
        match store.get_service_account(id).await? {
            Some(a) if news(&a) => {
                let _guard = self.write().await;
                self.reload(store, id).await
            }
            other => Ok(other.map(Arc::new)),
        }
    }

    /// Whether `account` (as the store holds it) has a secret the mirror's copy does not.
    pub fn has_new_secret(&self, account: &ServiceAccount) -> bool {
        let held = self.get(account.client_id);
        account.secrets.iter().any(|s| {
            held.as_ref()
                .is_none_or(|h| !h.secrets.iter().any(|m| m.id == s.id))
        })
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        read(&self.revoked).contains(jti)
    }

    pub fn add_revoked(&self, jti: &str, exp: DateTime<Utc>) {
        write(&self.revoked).insert(jti, exp);
    }

    pub fn verified(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        read(&self.verified).get(token).cloned()
    }

    pub fn remember_verified(&self, token: &str, v: Arc<VerifiedToken>, now: DateTime<Utc>) {
        let mut map = write(&self.verified);
        if map.len() >= VERIFIED_CACHE_MAX {
            let now_s = now.timestamp();
            map.retain(|_, t| t.claims.exp > now_s);
            if map.len() >= VERIFIED_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(token.to_owned(), v);
    }

    pub fn forget_verified(&self, token: &str) {
        write(&self.verified).remove(token);
    }

    pub fn note_secret_use(&self, account: ClientId, secret: SecretId, at: DateTime<Utc>) {
        lock(&self.secret_use).insert(secret, (account, at));
    }

    /// `lastUsedAt` including uses not yet flushed.
    pub fn secret_last_used(
        &self,
        secret: SecretId,
        stored: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let pending = lock(&self.secret_use).get(&secret).map(|(_, at)| *at);
        match (pending, stored) {
            (Some(p), Some(s)) => Some(p.max(s)),
            (p, s) => p.or(s),
        }
    }

    pub fn note_access_use(
        &self,
        account: ClientId,
        entry_key: String,
        addr: IpAddr,
        at: DateTime<Utc>,
    ) {
        note_use(&self.access_use, account, entry_key, addr, at);
    }

    /// Pending access-list usage for display: (lastUsedAt, lastUsedAddress, extra count).
    pub fn access_pending(
        &self,
        account: ClientId,
        entry_key: &str,
    ) -> Option<(DateTime<Utc>, String, u64)> {
        pending_use(&self.access_use, account, entry_key)
    }

    /// Counts a request of API key `key` admitted by its access-list entry `entry_key`.
    pub fn note_key_access_use(
        &self,
        key: ApiKeyId,
        entry_key: String,
        addr: IpAddr,
        at: DateTime<Utc>,
    ) {
        note_use(&self.key_access_use, key, entry_key, addr, at);
    }

    /// Pending API-key access-list usage: (lastUsed, lastUsedAddress, extra count).
    pub fn key_access_pending(
        &self,
        key: ApiKeyId,
        entry_key: &str,
    ) -> Option<(DateTime<Utc>, String, u64)> {
        pending_use(&self.key_access_use, key, entry_key)
    }

    /// Applies flushed usage to the mirror as the store applied it: a secret's `lastUsedAt`
    /// moves forward, an entry's last use and address are replaced and its count grows.
    /// Call under [`Registry::write`].
    fn apply_usage(&self, secrets: &[(SecretId, (ClientId, DateTime<Utc>))], access: &[AccessUse]) {
        let mut map = write(&self.accounts);
        let mut changed: HashMap<ClientId, ServiceAccount> = HashMap::new();
        for (secret, (owner, at)) in secrets {
            let Some(a) = changed_or_clone(&map, &mut changed, *owner) else {
                continue;
            };
            if let Some(s) = a.secrets.iter_mut().find(|s| s.id == *secret) {
                s.last_used_at = Some(s.last_used_at.map_or(*at, |prev| prev.max(*at)));
            }
        }
        for u in access {
            let Some(a) = changed_or_clone(&map, &mut changed, u.account) else {
                continue;
            };
            if let Some(e) = a
                .access_list
                .iter_mut()
                .find(|e| e.entry.key() == u.entry_key)
            {
                e.last_used_at = Some(u.at);
                e.last_used_address = Some(u.address.clone());
                e.request_count = e.request_count.saturating_add(u.count);
            }
        }
        for (id, a) in changed {
            map.insert(id, Arc::new(a));
        }
    }

    /// Writes pending usage to the store, then applies it to the affected accounts in the
    /// mirror (copy-on-write; no store read, so the cost follows the accounts used, not the
    /// accounts held). On a store error the pending usage is kept for the next flush.
    pub async fn flush(&self, store: &dyn Store, now: DateTime<Utc>) -> StoreResult<()> {
        let secrets: Vec<(SecretId, (ClientId, DateTime<Utc>))> = lock(&self.secret_use)
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        let access: Vec<AccessUse> = lock(&self.access_use).values().cloned().collect();
        let key_access: Vec<AccessUse<ApiKeyId>> =
            lock(&self.key_access_use).values().cloned().collect();
        if !secrets.is_empty() {
            let writes: Vec<(SecretId, DateTime<Utc>)> =
                secrets.iter().map(|(id, (_, at))| (*id, *at)).collect();
            store.record_secret_use(&writes).await?;
        }
        if !access.is_empty() {
            store.record_access_use(&access).await?;
        }
        if !key_access.is_empty() {
            // API keys are read from the store per request (or the Digest cache, which does
            // not show counters): nothing to reload.
            store.record_api_key_access_use(&key_access).await?;
            settle_use(&self.key_access_use, &key_access);
        }
        self.auth_failures.flush(store).await?;
        let _guard = self.write().await;
        self.apply_usage(&secrets, &access);
        {
            let mut pending = lock(&self.secret_use);
            for (id, used) in &secrets {
                if pending.get(id) == Some(used) {
                    pending.remove(id);
                }
            }
        }
        settle_use(&self.access_use, &access);
        // Taken under the write lock: a reload that fails after this point sets it again.
        if self.stale.swap(false, std::sync::atomic::Ordering::SeqCst) {
            if let Err(e) = self.reload_all(store).await {
                self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        }
        store.purge_revoked_tokens(now).await?;
        write(&self.revoked).purge_expired(now);
        Ok(())
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
