//! The registry's unit of work: the one way an existing service account changes.
//!
//! Under the registry's write lock: the account is re-read from the mirror and the route's
//! check decides on that copy, the store is written (the change and its events, in one
//! transaction), and the account is reloaded into the mirror before the lock is released. So
//! the mirror never shows what the store does not hold, and no decision is made on a copy a
//! concurrent change outdated (a promotion to `ORG_OWNER`, an unassignment, a deletion).

use std::sync::Arc;
use tessera_domain::ClientId;
use tessera_store::ServiceAccount;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A decision about an account that must be made on the account as read under the registry's
/// write lock (see [`change_account`]). Org routes pass [`no_check`]; project routes check the
/// account's reach there.
pub type AccountCheck<'a> = &'a (dyn Fn(&ServiceAccount) -> ApiResult<()> + Send + Sync);

/// For callers whose authorization does not depend on the account's state (org routes,
/// already authorized on the org).
pub fn no_check(_: &ServiceAccount) -> ApiResult<()> {
    Ok(())
}

/// Takes the registry's write lock, re-reads the account under it and runs `check` on that
/// copy. A decision made on a copy read before the lock could miss a change that landed in
/// between (an account promoted to `ORG_OWNER`, unassigned from the project, deleted): the
/// lock is what orders this change after those.
async fn lock_account<'s>(
    state: &'s AppState,
    id: ClientId,
    check: AccountCheck<'_>,
) -> ApiResult<(tokio::sync::MutexGuard<'s, ()>, Arc<ServiceAccount>)> {
    let guard = state.registry.write().await;
    let account = state
        .registry
        .get(id)
        .ok_or_else(|| ApiError::service_account_not_found(&id.to_string()))?;
    check(&account)?;
    Ok((guard, account))
}

/// The one way an existing service account changes (the registry's unit of work): under the
/// registry's write lock, `check` decides on the account as the registry holds it, `write`
/// changes the store (with the change's events, in one transaction), and the account is
/// re-read into the registry before the lock is released, so the mirror never shows what the
/// store does not hold and no decision is made on a copy that a concurrent change outdated.
/// Returns `write`'s value and the account as stored (`None` once deleted).
pub async fn change_account<T, Fut>(
    state: &AppState,
    id: ClientId,
    check: AccountCheck<'_>,
    write: impl FnOnce(Arc<ServiceAccount>) -> Fut,
) -> ApiResult<(T, Option<Arc<ServiceAccount>>)>
where
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let (_guard, account) = lock_account(state, id, check).await?;
    let out = write(account).await?;
    let stored = state.registry.reload(state.store.as_ref(), id).await?;
    Ok((out, stored))
}

/// [`change_account`] for a change after which the account still exists.
pub async fn change_existing<T, Fut>(
    state: &AppState,
    id: ClientId,
    check: AccountCheck<'_>,
    write: impl FnOnce(Arc<ServiceAccount>) -> Fut,
) -> ApiResult<(T, Arc<ServiceAccount>)>
where
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let (out, stored) = change_account(state, id, check, write).await?;
    Ok((
        out,
        stored.ok_or_else(|| ApiError::service_account_not_found(&id.to_string()))?,
    ))
}

pub async fn reload(state: &AppState, id: ClientId) -> ApiResult<Arc<ServiceAccount>> {
    state
        .registry
        .reload(state.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::service_account_not_found(&id.to_string()))
}
