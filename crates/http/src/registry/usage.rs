//! Usage counters held in memory until the next flush: when each secret last minted a token,
//! and access-list uses (of service accounts and API keys), shown with what is stored and
//! written in batches.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tessera_domain::{ApiKeyId, ClientId, SecretId};
use tessera_store::{AccessUse, ServiceAccount, Store, StoreResult};

use super::{lock, write, Registry};

/// Access-list uses not yet flushed, by (owner, entry key).
pub(super) type PendingUse<O> = HashMap<(O, String), AccessUse<O>>;

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

impl Registry {
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
