//! Client authentication (HTTP Basic with the client id and secret) and its decision.

use super::*;

/// The Basic credentials of a request: (clientId as sent, secret).
pub(super) fn basic(
    headers: &HeaderMap,
) -> Result<(String, tessera_domain::secrets::SecretValue), OAuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(OAuthError::InvalidRequest)?;
    parse_basic(value).map_err(|_| OAuthError::InvalidRequest)
}

/// Checks a client's credentials against the mirror: same work and the same answer for an
/// unknown client, a wrong secret and an expired one. The mirror must be current (else 503);
/// an account it does not hold, or whose secrets do not match, is read from the store before
/// the client is refused (it may have been created or given a secret on another node a
/// moment ago).
pub(super) async fn authenticate_client(
    state: &AppState,
    client_id: &str,
    secret: &tessera_domain::secrets::SecretValue,
    peer: IpAddr,
) -> Result<(Arc<ServiceAccount>, SecretId), OAuthError> {
    if !state
        .registry
        .ensure_fresh(state.store.as_ref(), crate::STALE_WAIT)
        .await
    {
        tracing::warn!(%peer, "oauth: refused, this node is out of date with the store");
        return Err(OAuthError::Unavailable);
    }
    let presented = state.crypto.hasher.hash(secret.expose());
    let parsed = ClientId::parse(client_id).ok();
    let mut account = match parsed {
        Some(id) => state.registry.get_or_load(state.store.as_ref(), id).await?,
        None => None,
    };
    if let Some(a) = &account {
        let known = a
            .secrets
            .iter()
            .any(|s| SecretHasher::hashes_match(&presented, &s.hash));
        if !known {
            account = state
                .registry
                .refresh(state.store.as_ref(), a.client_id, |fresh| {
                    fresh
                        .secrets
                        .iter()
                        .any(|s| SecretHasher::hashes_match(&presented, &s.hash))
                })
                .await?;
        }
    }
    check_client(state, account, parsed, client_id, &presented, peer)
}

/// [`authenticate_client`]'s decision on the account as read.
pub(super) fn check_client(
    state: &AppState,
    account: Option<Arc<ServiceAccount>>,
    parsed: Option<ClientId>,
    client_id: &str,
    presented: &[u8],
    peer: IpAddr,
) -> Result<(Arc<ServiceAccount>, SecretId), OAuthError> {
    let failed = |org, principal: &str| {
        state.registry.auth_failures.note(
            EventType::ServiceAccountAuthenticationFailed,
            org,
            principal,
            Actor::Anonymous,
            peer,
            state.clock.now(),
        )
    };
    let Some(account) = account else {
        match parsed {
            Some(id) => failed(None, &id.to_string()),
            None => failed(None, crate::auth_failures::UNKNOWN_PRINCIPAL),
        }
        // Only a well-formed client id is logged: a client that swapped id and secret must
        // not get its secret written to the log.
        match parsed {
            Some(id) => tracing::info!(client_id = %id, %peer, "oauth: unknown client"),
            None => {
                tracing::info!(client_id_len = client_id.len(), %peer, "oauth: malformed client id")
            }
        }
        return Err(OAuthError::InvalidClient);
    };
    let now = state.clock.now();
    let matched = account
        .secrets
        .iter()
        .filter(|s| SecretHasher::hashes_match(presented, &s.hash))
        .map(|s| (s.id, s.expires_at))
        .next_back();
    match matched {
        Some((id, expires_at)) if secret_is_active(expires_at, now) => {
            if !allows(account.access_list.iter().map(|e| &e.entry), peer) {
                tracing::info!(client_id = %account.client_id, %peer, "oauth: address not on access list");
                return Err(OAuthError::AccessDenied);
            }
            Ok((account, id))
        }
        Some(_) => {
            tracing::info!(client_id = %account.client_id, %peer, "oauth: expired secret");
            failed(Some(account.org_id), &account.client_id.to_string());
            Err(OAuthError::InvalidClient)
        }
        None => {
            tracing::info!(client_id = %account.client_id, %peer, "oauth: wrong secret");
            failed(Some(account.org_id), &account.client_id.to_string());
            Err(OAuthError::InvalidClient)
        }
    }
}

/// Records access-list usage for the entry that let `peer` in.
pub fn note_access(state: &AppState, account: &ServiceAccount, peer: IpAddr) {
    if let Some(e) = account.access_list.iter().find(|e| e.entry.contains(peer)) {
        state
            .registry
            .note_access_use(account.client_id, e.entry.key(), peer, state.clock.now());
    }
}
