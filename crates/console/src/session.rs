//! Sessions: a random id in an `HttpOnly`, `Secure`, `SameSite=Lax` cookie, kept in the store
//! as its keyed hash. Every request re-reads the session and the person's roles: a session
//! whose person lost a role it began with (or left every organization) ends there, and the
//! roles a page acts with are the ones held now. State-changing requests must carry the
//! session's CSRF token and must not come from another site (`Sec-Fetch-Site`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use subtle::ConstantTimeEq;
use tessera_domain::authorization::sessions;
use tessera_domain::people::CloudUser;
use tessera_domain::{OrgId, Principal, UserId};
use tessera_http::client_addr::client_addr;
use tessera_store::ConsoleSession;

use crate::layout::PageError;
use crate::Console;

pub const SESSION_COOKIE: &str = "__Host-tessera-session";
pub const LOGIN_COOKIE: &str = "__Host-tessera-login";
/// A session's absolute lifetime (ours).
pub const SESSION_HOURS: i64 = 12;

/// A new random id (256 bits, base64url).
pub fn new_id() -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| PageError::internal("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// How a cookie id is found in the store: its keyed hash (a stolen database holds no id).
pub fn id_hash(console: &Console, purpose: &str, id: &str) -> String {
    let mac = console
        .app
        .crypto
        .hasher
        .hash(&format!("console-{purpose}:{id}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure`.
pub fn cookie(name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; Secure; SameSite=Lax"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// The `Set-Cookie` that removes `name`.
pub fn clear(name: &str) -> HeaderValue {
    cookie(name, "", 0)
}

/// A cookie's value from the request.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The client's address (behind trusted proxies, the forwarded one).
pub fn peer(console: &Console, parts: &Parts) -> IpAddr {
    client_addr(parts, &console.app.settings.trusted_proxies)
}

/// A request that changes something must come from a page of this site: a browser says
/// where a request comes from in `Sec-Fetch-Site` (and `Origin`); another site's form is
/// refused even before its CSRF token is looked at.
pub fn same_site(parts: &Parts) -> bool {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return true;
    }
    match parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        Some("same-origin") | Some("none") | None => {}
        Some(_) => return false,
    }
    true
}

/// A signed-in person, for this request.
pub struct Signed {
    pub user: CloudUser,
    pub id_hash: String,
    pub session: ConsoleSession,
    pub peer: IpAddr,
    pub connect: Option<ConnectInfo<SocketAddr>>,
    /// Their principal in each organization they are an active member of, read now.
    pub principals: HashMap<OrgId, Principal>,
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The roles a person holds now, across their organizations, as the marks a session keeps.
pub fn role_strings(principals: &HashMap<OrgId, Principal>) -> Vec<String> {
    sessions::role_marks(principals.values())
}

/// A person's principals in every organization they are an active member of.
pub async fn principals_of(
    console: &Console,
    user: UserId,
    peer: IpAddr,
) -> Result<HashMap<OrgId, Principal>, PageError> {
    let store = &console.app.store;
    let mut out = HashMap::new();
    for org in store.orgs_of_user(user).await? {
        let people = store.org_people(org).await?;
        if let Some(p) = people.principal(user, Some(peer)) {
            out.insert(org, p);
        }
    }
    Ok(out)
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let Some(id) = read_cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let hash = id_hash(console, "session", id);
        let store = &console.app.store;
        let now = console.app.clock.now();
        let session = store
            .console_session(&hash, now)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let Some(session) = session else {
            return Err(to_login());
        };
        let user = store
            .get_cloud_user(session.user_id)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let peer = peer(console, parts);
        let ended = || async {
            let _ = store.end_session(&hash, &[]).await;
            let mut res = Redirect::to("/login?ended=1").into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, clear(SESSION_COOKIE));
            res
        };
        let Some(user) = user else {
            return Err(ended().await);
        };
        let principals = principals_of(console, user.id, peer)
            .await
            .map_err(IntoResponse::into_response)?;
        let now_roles = role_strings(&principals);
        // A role the session began with is gone: the session ends (the person signs in again
        // with what they hold now); one removed from every organization is signed out too.
        if sessions::lost_a_role(&session.roles, &now_roles) {
            tracing::info!(user = %user.id, "console session ended: a role it began with was removed");
            return Err(ended().await);
        }
        if sessions::gained_a_role(&session.roles, &now_roles) {
            store
                .set_session_roles(&hash, &now_roles)
                .await
                .map_err(|e| PageError::from(e).into_response())?;
        }
        if !same_site(parts) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another site.",
            )
            .into_response());
        }
        Ok(Signed {
            user,
            id_hash: hash,
            session,
            peer,
            connect: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
            principals,
        })
    }
}

impl Signed {
    /// The form's CSRF token is this session's (constant-time).
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), PageError> {
        let given = form.get("csrf").map(String::as_bytes).unwrap_or_default();
        if bool::from(given.ct_eq(self.session.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Refused",
                "The form's security token is missing or does not belong to this session. \
                 Reload the page and try again.",
            ))
        }
    }

    /// The person's principal in `org`, or a 404 page when they are not an active member.
    pub fn principal_in(&self, org: OrgId) -> Result<&Principal, PageError> {
        self.principals.get(&org).ok_or_else(PageError::not_found)
    }
}
