//! Loading the mirror and keeping it in step with the store: the start, one account, every
//! account, a change another node committed, and the reads before a refusal.

use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use tessera_domain::ClientId;
use tessera_store::{ServiceAccount, Store, StoreResult};

use super::freshness::boot_nanos;
use super::{lock, write, Registry};

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
}
