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
use tessera_domain::{ClientId, Clock, Rule, SecretId};
use tessera_domain::{EventId, EventType};
use tessera_protocols::basic::parse_basic;
use tessera_store::events::{Actor, NewEvent};
use tessera_store::ServiceAccount;

use crate::authz::RouteRule;
use crate::client_addr::client_addr;
use crate::error::ApiError;
use crate::state::AppState;

mod client;
mod error;
mod limits;

pub use client::note_access;
use client::*;
pub use error::{FormProblem, OAuthError};
use limits::*;
pub use limits::{GovernorClock, OAuthLimits};

/// The parameters this module reads, so a repeated one can be named with a static string.
const KNOWN_PARAMS: &[&str] = &["grant_type", "token", "scope", "token_type_hint"];

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
pub async fn revoke(
    State(state): State<AppState>,
    Peer(peer): Peer,
    RouteRule(rule): RouteRule,
    req: Request,
) -> Response {
    let (headers, body) = match read_request(&state, req).await {
        Ok(hb) => hb,
        Err(e) => return e.into_response(),
    };
    revoke_inner(&state, peer, rule, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn revoke_inner(
    state: &AppState,
    peer: IpAddr,
    rule: Rule,
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
    // The table's `OwnTokens` (RFC 7009): a client revokes only its own tokens.
    if !rule.may_revoke(account.client_id, &claims.sub) {
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
/// organizations are reported inactive (the table's `OwnOrgTokens`).
pub async fn introspect(
    State(state): State<AppState>,
    Peer(peer): Peer,
    RouteRule(rule): RouteRule,
    req: Request,
) -> Response {
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
            Ok((v, account)) if rule.may_introspect(caller.org_id, account.org_id) => json!({
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
