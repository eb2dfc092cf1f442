//! Who is calling: the `Caller` extractor authenticates every API request.
//!
//! HTTP Digest (RFC 7616) with programmatic API keys, as every Atlas client does, or a Bearer
//! access token of a service account. A missing or failed credential gets the 401 challenge in
//! Atlas' exact shape. Roles are read at request time, so a role change applies at once.

use crate::auth_failures::UNKNOWN_PRINCIPAL;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::{header, request::Parts, HeaderValue};
use serde_json::json;
use tessera_domain::access::allows;
use tessera_domain::EventType;
use tessera_domain::{Principal, PrincipalKind};
use tessera_protocols::digest::{self, DigestFailure};
use tessera_store::events::Actor;
use tessera_store::ApiKeyRecord;

use crate::client_addr::client_addr;
use crate::error::ApiError;
use crate::oauth::note_access;
use crate::state::{AppState, DigestKey};
use crate::tokens::TokenRejection;
use std::sync::Arc;

/// The authenticated principal of a request.
pub struct Caller(pub Principal);

/// A principal already authenticated by this process: the browser console's signed-in person,
/// whose requests the console makes to this router in process (a request extension, which no
/// request from the network can carry). Authorization is the route table's, as for any caller.
#[derive(Clone, Debug)]
pub struct InProcessCaller(pub Principal);

fn challenge(state: &AppState, stale: bool) -> ApiError {
    let nonce = state.crypto.nonces.issue(state.clock.now());
    let mut err = ApiError::unauthorized();
    for value in digest::challenges(&nonce, stale) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            err = err.with_header(header::WWW_AUTHENTICATE, v);
        }
    }
    err
}

pub fn principal_of_key(key: &ApiKeyRecord) -> Principal {
    Principal {
        kind: PrincipalKind::ApiKey {
            id: key.id,
            public_key: key.public_key.clone(),
        },
        org_id: key.org_id,
        org_roles: key.org_roles.clone(),
        group_roles: key.group_roles.iter().cloned().collect(),
        remote_address: None,
    }
}

/// The API key with public key `public_key` and its unsealed HA1 values: from the cache, or
/// read from the store and unsealed once.
async fn digest_key(
    state: &AppState,
    public_key: &str,
) -> Result<Option<Arc<DigestKey>>, ApiError> {
    let version = state.store.api_keys_version();
    // The cache is only as current as the change feed: while this node is out of date with
    // the store, the key is read from the store (in time, or 503).
    let fresh = state.registry.is_fresh();
    if fresh {
        if let Some(key) = state.api_keys.get(version, public_key) {
            return Ok(Some(key));
        }
    }
    let read = state.store.get_api_key_by_public_key(public_key);
    let record = if fresh {
        read.await?
    } else {
        tokio::time::timeout(crate::STALE_WAIT, read)
            .await
            .map_err(|_| {
                tracing::warn!("digest: the store did not answer in time while out of date");
                ApiError::unavailable()
            })??
    };
    let Some(record) = record else {
        return Ok(None);
    };
    let open = |sealed: &[u8]| {
        let ha1 = state
            .crypto
            .sealer
            .open(sealed, record.public_key.as_bytes())
            .map_err(|_| ApiError::internal("sealed HA1 could not be opened: wrong server key?"))?;
        String::from_utf8(ha1).map_err(ApiError::internal)
    };
    let md5 = open(&record.ha1_md5_sealed)?;
    let sha256 = open(&record.ha1_sha256_sealed)?;
    let key = Arc::new(DigestKey::new(record, md5, sha256));
    state.api_keys.insert(version, key.clone());
    Ok(Some(key))
}

async fn digest_caller(
    parts: &Parts,
    state: &AppState,
    value: &str,
) -> Result<Principal, ApiError> {
    let failed = |org, principal: &str| {
        note_failure(
            parts,
            state,
            EventType::ApiKeyAuthenticationFailed,
            org,
            principal,
        )
    };
    let Ok(creds) = digest::parse_authorization(value) else {
        failed(None, UNKNOWN_PRINCIPAL);
        return Err(challenge(state, false));
    };
    let Some(key) = digest_key(state, &creds.username).await? else {
        // Only a well-formed public key is logged (a swapped user/password must not leak).
        if creds.username.len() == 8 && creds.username.bytes().all(|b| b.is_ascii_lowercase()) {
            tracing::info!(public_key = %creds.username, "digest: unknown public key");
            failed(None, &creds.username);
        } else {
            failed(None, UNKNOWN_PRINCIPAL);
            tracing::info!(
                username_len = creds.username.len(),
                "digest: malformed public key"
            );
        }
        return Err(challenge(state, false));
    };
    let ha1 = key.ha1(creds.algorithm);
    let target = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| &u.0)
        .unwrap_or(&parts.uri);
    let target = target.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let now = state.clock.now();
    match digest::verify(
        &creds,
        parts.method.as_str(),
        target,
        ha1,
        &state.crypto.nonces,
        now,
    ) {
        Ok(()) => {
            // The access list is checked only once the key is proven: an unauthenticated
            // probe learns nothing about it.
            let peer = client_addr(parts, &state.settings.trusted_proxies);
            let list = &key.record.access_list;
            if !allows(list.iter().map(|e| &e.entry), peer) {
                tracing::info!(public_key = %key.record.public_key, %peer, "digest: address not on the key's access list");
                return Err(not_on_access_list(peer));
            }
            if let Some(e) = list.iter().find(|e| e.entry.contains(peer)) {
                state
                    .registry
                    .note_key_access_use(key.record.id, e.entry.key(), peer, now);
            }
            Ok(principal_of_key(&key.record))
        }
        Err(DigestFailure::Stale) => Err(challenge(state, true)),
        Err(failure) => {
            tracing::info!(public_key = %key.record.public_key, ?failure, "digest authentication failed");
            failed(Some(key.record.org_id), &key.record.public_key);
            Err(challenge(state, false))
        }
    }
}

/// The 403 for a credential used from an address its access list does not admit (Atlas).
fn not_on_access_list(peer: std::net::IpAddr) -> ApiError {
    let ip = peer.to_string();
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "IP_ADDRESS_NOT_ON_ACCESS_LIST",
        format!("IP address {ip} is not allowed to access this resource."),
    )
    .with_params([json!(ip)])
}

fn principal_of_account(
    account: &tessera_store::ServiceAccount,
    secret_id: tessera_domain::SecretId,
) -> Principal {
    Principal {
        kind: PrincipalKind::ServiceAccount {
            client_id: account.client_id,
            secret_id,
        },
        org_id: account.org_id,
        org_roles: account.org_roles.clone(),
        group_roles: account.group_roles.iter().cloned().collect(),
        remote_address: None,
    }
}

/// Counts a failed authentication of this request (written as an event in the next flush).
fn note_failure(
    parts: &Parts,
    state: &AppState,
    event_type: EventType,
    org: Option<tessera_domain::OrgId>,
    principal: &str,
) {
    state.registry.auth_failures.note(
        event_type,
        org,
        principal,
        Actor::Anonymous,
        client_addr(parts, &state.settings.trusted_proxies),
        state.clock.now(),
    );
}

fn bearer_challenge() -> ApiError {
    ApiError::unauthorized().with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"MMS Public API\", error=\"invalid_token\""),
    )
}

/// What is needed to decide on a token cannot be had now (the store is unreachable, or this
/// node is out of date with it and could not catch up in time): 503.
#[derive(Debug)]
pub struct Undecidable;

impl From<Undecidable> for ApiError {
    fn from(_: Undecidable) -> Self {
        ApiError::unavailable()
    }
}

impl From<Undecidable> for crate::oauth::OAuthError {
    fn from(_: Undecidable) -> Self {
        crate::oauth::OAuthError::Unavailable
    }
}

/// Full verification of a Bearer token (see [`crate::tokens::TokenService::authenticate`]),
/// on a mirror that is current (else [`Undecidable`]); a token whose account or secret the
/// mirror does not hold is checked again after reading that account from the store, since
/// it may have been created on another node a moment ago.
pub async fn authenticate_bearer(
    state: &AppState,
    token: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<
    Result<
        (
            Arc<crate::registry::VerifiedToken>,
            Arc<tessera_store::ServiceAccount>,
        ),
        TokenRejection,
    >,
    Undecidable,
> {
    if !state
        .registry
        .ensure_fresh(state.store.as_ref(), crate::STALE_WAIT)
        .await
    {
        tracing::warn!("bearer token not decided: this node is out of date with the store");
        return Err(Undecidable);
    }
    let tokens = state.tokens.current();
    match tokens.authenticate(&state.registry, token, now) {
        Err(TokenRejection::AccountGone(id)) => {
            state
                .registry
                .get_or_load(state.store.as_ref(), id)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "bearer: reading an unknown account failed");
                    Undecidable
                })?;
        }
        Err(TokenRejection::SecretGone(id)) => {
            state
                .registry
                .refresh(state.store.as_ref(), id, |a| {
                    state.registry.has_new_secret(a)
                })
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "bearer: re-reading an account failed");
                    Undecidable
                })?;
        }
        decided => return Ok(decided),
    }
    Ok(tokens.authenticate(&state.registry, token, now))
}

async fn bearer_caller(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<Principal, ApiError> {
    let now = state.clock.now();
    let (verified, account) =
        authenticate_bearer(state, token, now)
            .await?
            .map_err(|rejection| {
                tracing::info!(?rejection, "bearer token refused");
                // The token's subject is not trusted before verification: counted per address.
                note_failure(
                    parts,
                    state,
                    EventType::ServiceAccountAuthenticationFailed,
                    None,
                    UNKNOWN_PRINCIPAL,
                );
                bearer_challenge()
            })?;
    let peer = client_addr(parts, &state.settings.trusted_proxies);
    if !allows(account.access_list.iter().map(|e| &e.entry), peer) {
        return Err(not_on_access_list(peer));
    }
    note_access(state, &account, peer);
    Ok(principal_of_account(&account, verified.secret_id))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(InProcessCaller(principal)) = parts.extensions.get::<InProcessCaller>() {
            return Ok(Caller(principal.clone()));
        }
        let Some(value) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(challenge(state, false));
        };
        let scheme = value.split_whitespace().next().unwrap_or("");
        let mut principal = if scheme.eq_ignore_ascii_case("digest") {
            digest_caller(parts, state, value).await?
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let token = value[scheme.len()..].trim();
            bearer_caller(parts, state, token).await?
        } else {
            return Err(challenge(state, false));
        };
        // For the events this request causes.
        principal.remote_address = Some(client_addr(parts, &state.settings.trusted_proxies));
        Ok(Caller(principal))
    }
}
