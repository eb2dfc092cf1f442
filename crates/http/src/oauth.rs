//! OAuth 2.0 endpoints (CONTRACT §5): client-credentials token, RFC 7009 revocation, RFC 7662
//! introspection, RFC 8414 metadata and the JWKS.
//!
//! Errors here use the OAuth shape (`{"error_description","error"}`), except the rate limit,
//! which answers in the Atlas error shape as Atlas does.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as GovClockTrait;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use serde_json::json;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use tessera_domain::access::allows;
use tessera_domain::secrets::SecretHasher;
use tessera_domain::service_accounts::{secret_is_active, TOKEN_LIFETIME_SECS};
use tessera_domain::{ClientId, Clock, SecretId};
use tessera_domain::{EventId, EventType};
use tessera_protocols::basic::parse_basic;
use tessera_store::events::{Actor, NewEvent};
use tessera_store::ServiceAccount;

use crate::client_addr::client_addr;
use crate::error::ApiError;
use crate::state::AppState;

/// The OAuth error bodies of seed 000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// The seed's "The provided credentials are not valid." for a missing or garbled Basic
    /// header.
    InvalidRequest,
    /// A malformed form: `invalid_request` with a description that names the problem.
    InvalidForm(FormProblem),
    UnsupportedGrantType,
    InvalidGrant,
    InvalidClient,
    AccessDenied,
    RateLimited {
        path: &'static str,
        limit: u32,
        retry_after_secs: u64,
    },
    ServerError,
    /// The database is unreachable, or this node is out of date with it and could not catch
    /// up in time: 503 `temporarily_unavailable`, nothing decided.
    Unavailable,
}

impl From<tessera_store::StoreError> for OAuthError {
    fn from(e: tessera_store::StoreError) -> Self {
        match e {
            tessera_store::StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "oauth: store unavailable");
                OAuthError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "oauth: store error");
                OAuthError::ServerError
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            OAuthError::InvalidRequest => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The provided credentials are not valid.",
            ),
            OAuthError::InvalidForm(problem) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                problem.describe(),
            ),
            OAuthError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant type.",
            ),
            OAuthError::InvalidGrant => {
                (StatusCode::BAD_REQUEST, "invalid_grant", "Invalid grant.")
            }
            OAuthError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid credentials provided.",
            ),
            OAuthError::AccessDenied => (
                StatusCode::FORBIDDEN,
                "access_denied",
                "IP access list validation failed for the service account.",
            ),
            OAuthError::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Unexpected error.",
            ),
            OAuthError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service cannot decide this now (its database is unreachable or this node \
                 is out of date with it). Try again.",
            ),
            OAuthError::RateLimited {
                path,
                limit,
                retry_after_secs,
            } => {
                let mut resp = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    format!("Resource {path} is limited to {limit} requests every 1 minutes."),
                )
                .with_params([json!(path), json!(limit), json!(1)])
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
        };
        let body = json!({"error_description": description, "error": error}).to_string();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if self == OAuthError::InvalidClient {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"MMS Public API\""),
            );
        }
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// What is wrong with a request's form (RFC 6749 §5.2 `invalid_request`), named in the
/// `error_description` so a client learns what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormProblem {
    NotAForm,
    Garbled,
    Unreadable,
    Repeated(&'static str),
    Missing(&'static str),
}

impl FormProblem {
    fn describe(self) -> &'static str {
        match self {
            FormProblem::NotAForm => "The request body must be application/x-www-form-urlencoded.",
            FormProblem::Garbled => "The request body is not a valid form.",
            FormProblem::Unreadable => "The request body could not be read (it may be too large).",
            FormProblem::Repeated("grant_type") => "The grant_type parameter must appear once.",
            FormProblem::Repeated("token") => "The token parameter must appear once.",
            FormProblem::Repeated(_) => "A request parameter appears more than once.",
            FormProblem::Missing("grant_type") => "The grant_type parameter is missing.",
            FormProblem::Missing("token") => "The token parameter is missing.",
            FormProblem::Missing(_) => "A required request parameter is missing.",
        }
    }
}

/// The parameters this module reads, so a repeated one can be named with a static string.
const KNOWN_PARAMS: &[&str] = &["grant_type", "token", "scope", "token_type_hint"];

/// Adapts the domain clock to governor, so rate-limit windows move with the same clock as
/// everything else (tests move it; nothing sleeps).
#[derive(Clone)]
pub struct GovernorClock(pub Arc<dyn Clock>);

impl GovClockTrait for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ns = self.0.now().timestamp_nanos_opt().unwrap_or(0);
        Nanos::from(u64::try_from(ns).unwrap_or(0))
    }
}

/// (client network, client id). Unparsable ids share one bucket per network, so junk ids
/// cannot grow the limiter; IPv6 clients are keyed by their /64, which one host controls.
type Key = (IpAddr, Option<ClientId>);

fn limit_key(peer: IpAddr, client_id: &str) -> Key {
    let net = match peer {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(std::net::Ipv6Addr::from(o))
        }
        v4 => v4,
    };
    (net, ClientId::parse(client_id).ok())
}
type Limiter = RateLimiter<Key, HashMapStateStore<Key>, GovernorClock, NoOpMiddleware<Nanos>>;

/// Per (client address, clientId) limits on the token and revocation endpoints.
pub struct OAuthLimits {
    per_minute: u32,
    clock: GovernorClock,
    token: Option<Limiter>,
    revoke: Option<Limiter>,
    introspect: Option<Limiter>,
}

impl OAuthLimits {
    /// `per_minute == 0` turns the limit off.
    pub fn new(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        let clock = GovernorClock(clock);
        let make = || {
            NonZeroU32::new(per_minute)
                .map(|n| RateLimiter::hashmap_with_clock(Quota::per_minute(n), clock.clone()))
        };
        Self {
            per_minute,
            token: make(),
            revoke: make(),
            introspect: make(),
            clock,
        }
    }

    fn check(
        &self,
        limiter: &Option<Limiter>,
        path: &'static str,
        key: Key,
    ) -> Result<(), OAuthError> {
        let Some(l) = limiter else { return Ok(()) };
        l.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            OAuthError::RateLimited {
                path,
                limit: self.per_minute,
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets idle keys so the limiter's memory stays bounded.
    pub fn prune(&self) {
        for l in [&self.token, &self.revoke, &self.introspect]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
        }
    }
}

/// The client's address (see `client_addr`).
pub struct Peer(pub IpAddr);

impl FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(client_addr(parts, &state.settings.trusted_proxies)))
    }
}

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !is_form {
        return Err(OAuthError::InvalidForm(FormProblem::NotAForm));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidForm(FormProblem::Garbled))?;
    // RFC 6749 §3.2: parameters must not be repeated.
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(k2, _)| k2 == k) {
            let name = KNOWN_PARAMS
                .iter()
                .find(|p| **p == k)
                .copied()
                .unwrap_or("");
            return Err(OAuthError::InvalidForm(FormProblem::Repeated(name)));
        }
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Takes the headers (without copying them) and the form body, up to the body limit.
async fn read_request(state: &AppState, req: Request) -> Result<(HeaderMap, Bytes), OAuthError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, state.settings.max_body_bytes)
        .await
        .map_err(|_| OAuthError::InvalidForm(FormProblem::Unreadable))?;
    Ok((parts.headers, body))
}

/// The Basic credentials of a request: (clientId as sent, secret).
fn basic(
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
async fn authenticate_client(
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
fn check_client(
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

pub const TOKEN_PATH: &str = "/api/oauth/token";
pub const REVOKE_PATH: &str = "/api/oauth/revoke";
pub const INTROSPECT_PATH: &str = "/api/oauth/introspect";

/// `POST /api/oauth/token`: client credentials grant.
pub async fn token(State(state): State<AppState>, Peer(peer): Peer, req: Request) -> Response {
    let (headers, body) = match read_request(&state, req).await {
        Ok(hb) => hb,
        Err(e) => return e.into_response(),
    };
    token_inner(&state, peer, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn token_inner(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let (client_id, secret) = basic(headers)?;
    state.oauth_limits.check(
        &state.oauth_limits.token,
        TOKEN_PATH,
        limit_key(peer, &client_id),
    )?;
    let form = parse_form(headers, body)?;
    match param(&form, "grant_type") {
        None => return Err(OAuthError::InvalidForm(FormProblem::Missing("grant_type"))),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    // Tessera's client-credentials grant carries no scope: a token's rights are its
    // account's roles.
    if param(&form, "scope").is_some_and(|s| !s.is_empty()) {
        return Err(OAuthError::InvalidGrant);
    }
    let (account, secret_id) = authenticate_client(state, &client_id, &secret, peer).await?;
    let now = state.clock.now();
    let minted = state
        .tokens
        .current()
        .mint(&account, secret_id, now)
        .map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            OAuthError::ServerError
        })?;
    state
        .registry
        .note_secret_use(account.client_id, secret_id, now);
    note_access(state, &account, peer);
    tracing::debug!(client_id = %account.client_id, jti = %minted.claims.jti, "token issued");
    let body = format!(
        "{{\"access_token\":\"{}\",\"expires_in\":{TOKEN_LIFETIME_SECS},\"token_type\":\"Bearer\"}}",
        minted.token
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// Client authentication shared by revocation and introspection.
async fn authenticated_client(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    limit: Option<&Option<Limiter>>,
    path: &'static str,
) -> Result<Arc<ServiceAccount>, OAuthError> {
    let (client_id, secret) = basic(headers)?;
    if let Some(l) = limit {
        state
            .oauth_limits
            .check(l, path, limit_key(peer, &client_id))?;
    }
    let (account, _) = authenticate_client(state, &client_id, &secret, peer).await?;
    note_access(state, &account, peer);
    Ok(account)
}

/// `POST /api/oauth/revoke` (RFC 7009).
pub async fn revoke(State(state): State<AppState>, Peer(peer): Peer, req: Request) -> Response {
    let (headers, body) = match read_request(&state, req).await {
        Ok(hb) => hb,
        Err(e) => return e.into_response(),
    };
    revoke_inner(&state, peer, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn revoke_inner(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let account = authenticated_client(
        state,
        peer,
        headers,
        Some(&state.oauth_limits.revoke),
        REVOKE_PATH,
    )
    .await?;
    let form = parse_form(headers, body)?;
    let token = param(&form, "token")
        .filter(|t| !t.is_empty())
        .ok_or(OAuthError::InvalidForm(FormProblem::Missing("token")))?;
    // `token_type_hint` is optional and only a hint (RFC 7009 §2.1); we have one token type.
    let now = state.clock.now();
    // 200 with no body, `Content-Type: application/json` as in seed 000.
    let ok = || {
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
        )
            .into_response()
    };
    // Unknown, malformed and expired tokens: nothing to do, and 200 (RFC 7009 §2.2).
    let Ok(claims) = state.tokens.current().verify_signature(token, now) else {
        return Ok(ok());
    };
    if claims.sub != account.client_id.to_string() {
        tracing::warn!(client_id = %account.client_id, "revocation of another client's token refused");
        return Err(OAuthError::InvalidGrant);
    }
    if state.registry.is_revoked(&claims.jti) {
        return Ok(ok());
    }
    // Kept until the token can no longer be accepted at all: exp plus the verification leeway.
    let exp =
        chrono::DateTime::from_timestamp(claims.exp.saturating_add(crate::tokens::LEEWAY_SECS), 0)
            .unwrap_or(now);
    let event = NewEvent {
        id: EventId::generate(now),
        created: now,
        event_type: EventType::ServiceAccountTokenRevoked,
        org_id: Some(account.org_id),
        group_id: None,
        actor: Actor::ServiceAccount(account.client_id),
        remote_address: Some(peer),
        target: vec![
            ("targetClientId", account.client_id.to_string()),
            ("tokenId", claims.jti.clone()),
        ],
    };
    state
        .store
        .revoke_token(&claims.jti, account.client_id, exp, event)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "recording a revocation failed");
            OAuthError::from(e)
        })?;
    state.registry.add_revoked(&claims.jti, exp);
    state.registry.forget_verified(token);
    tracing::info!(client_id = %account.client_id, jti = %claims.jti, "token revoked");
    Ok(ok())
}

/// `POST /api/oauth/introspect` (RFC 7662), for authenticated clients. Tokens of other
/// organizations are reported inactive.
pub async fn introspect(State(state): State<AppState>, Peer(peer): Peer, req: Request) -> Response {
    let (headers, body) = match read_request(&state, req).await {
        Ok(hb) => hb,
        Err(e) => return e.into_response(),
    };
    let result: Result<Response, OAuthError> = async {
        let caller = authenticated_client(
            &state,
            peer,
            &headers,
            Some(&state.oauth_limits.introspect),
            INTROSPECT_PATH,
        )
        .await?;
        let form = parse_form(&headers, &body)?;
        let token = param(&form, "token")
            .filter(|t| !t.is_empty())
            .ok_or(OAuthError::InvalidForm(FormProblem::Missing("token")))?;
        let now = state.clock.now();
        let body = match crate::auth::authenticate_bearer(&state, token, now).await? {
            Ok((v, account)) if account.org_id == caller.org_id => json!({
                "active": true,
                "client_id": v.claims.sub,
                "sub": v.claims.sub,
                "iss": v.claims.iss,
                "aud": v.claims.aud,
                "exp": v.claims.exp,
                "iat": v.claims.iat,
                "jti": v.claims.jti,
                "token_type": "Bearer",
                "org_id": v.claims.org_id,
            }),
            _ => json!({"active": false}),
        };
        Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body.to_string(),
        )
            .into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.tokens.current().jwks().to_string(),
    )
        .into_response()
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn metadata(State(state): State<AppState>) -> Response {
    let base = state.public_url();
    let body = json!({
        "issuer": state.tokens.current().issuer(),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
        "introspection_endpoint": format!("{base}{INTROSPECT_PATH}"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
