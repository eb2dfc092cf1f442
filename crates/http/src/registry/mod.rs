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
//!
//! Here: the mirror and its lookups, revocations and verified tokens. [`loading`]: the start,
//! reloads, changes from the feed and the reads before a refusal; `freshness`: the staleness
//! bound; `usage`: the counters and their flush; [`unit_of_work`]: the one way a service
//! account changes (check under the write lock, write the store, reload).

mod freshness;
pub mod loading;
pub mod unit_of_work;
mod usage;

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tessera_domain::{ApiKeyId, ClientId, SecretId};
use tessera_protocols::jwt::Claims;
use tessera_store::ServiceAccount;

use freshness::Freshness;
use usage::PendingUse;

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
    pub fn get(&self, id: ClientId) -> Option<Arc<ServiceAccount>> {
        read(&self.accounts).get(&id).cloned()
    }

    /// Serializes changes to accounts. Hold the guard across "write store, then
    /// [`Registry::reload`]".
    pub async fn write(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
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
}
