//! Local sign-in: a password (argon2id), then a TOTP code (enrolled at the first sign-in).
//! Between the two steps the sign-in waits in the store, sealed, behind its own cookie; a
//! session starts only after the code. Every attempt takes a cell of the sign-in limits and
//! every failure is an event (aggregated per person or address and minute).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped};
use serde::{Deserialize, Serialize};
use tessera_domain::people::CloudUser;
use tessera_domain::{EventType, UserId};
use tessera_http::audit;
use tessera_http::auth_failures::UNKNOWN_PRINCIPAL;
use tessera_store::events::Actor;
use tessera_store::ConsoleSession;

use crate::layout::{alert, ok, page, PageError, Place};
use crate::session::{
    self, clear, cookie, id_hash, new_id, principals_of, read_cookie, role_strings, Signed,
    LOGIN_COOKIE, SESSION_COOKIE, SESSION_HOURS,
};
use crate::{totp, Console};

/// How long a sign-in may wait between its steps.
const PENDING_MINUTES: i64 = 10;
/// Wrong codes one password step allows before the password is asked again.
const CODE_TRIES: u32 = 3;
const PRE_COOKIE: &str = "__Host-tessera-pre";

/// A sign-in in progress, sealed in the store.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    pub csrf: String,
    pub attempts: u32,
    pub step: Step,
}

#[derive(Serialize, Deserialize)]
pub enum Step {
    /// The password was right; the code is next.
    Code { user: String },
    /// Gone to an identity provider; its answer is next.
    Oidc {
        idp: String,
        state: String,
        nonce: String,
        verifier: String,
    },
}

/// Keeps `pending` under a new cookie id; the `Set-Cookie` value.
pub async fn keep(console: &Console, pending: &Pending) -> Result<header::HeaderValue, PageError> {
    let id = new_id()?;
    keep_as(console, &id, pending).await?;
    Ok(cookie(LOGIN_COOKIE, &id, PENDING_MINUTES * 60))
}

async fn keep_as(console: &Console, id: &str, pending: &Pending) -> Result<(), PageError> {
    let hash = id_hash(console, "login", id);
    let json = serde_json::to_vec(pending).map_err(|e| PageError::internal(&e.to_string()))?;
    let sealed = console.app.crypto.sealer.seal(&json, hash.as_bytes());
    let expires = console.app.clock.now() + chrono::Duration::minutes(PENDING_MINUTES);
    console.app.store.put_login(&hash, &sealed, expires).await?;
    Ok(())
}

/// The sign-in in progress this browser holds: read (`take == false`) or taken (once).
pub async fn pending(
    console: &Console,
    headers: &HeaderMap,
    take: bool,
) -> Result<Option<(String, Pending)>, PageError> {
    let Some(id) = read_cookie(headers, LOGIN_COOKIE) else {
        return Ok(None);
    };
    let hash = id_hash(console, "login", id);
    let now = console.app.clock.now();
    let store = &console.app.store;
    let sealed = if take {
        store.take_login(&hash, now).await?
    } else {
        store.get_login(&hash, now).await?
    };
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let json = console
        .app
        .crypto
        .sealer
        .open(&sealed, hash.as_bytes())
        .map_err(|_| PageError::internal("a sign-in in progress could not be opened"))?;
    let p = serde_json::from_slice(&json).map_err(|e| PageError::internal(&e.to_string()))?;
    Ok(Some((id.to_owned(), p)))
}

/// Counts a failed sign-in (an event, aggregated). `person` is a known username only: what
/// someone typed into the name field may be a password.
pub fn failed(
    console: &Console,
    user: Option<&CloudUser>,
    org: Option<tessera_domain::OrgId>,
    peer: std::net::IpAddr,
) {
    console.app.registry.auth_failures.note(
        EventType::ConsoleSignInFailed,
        org,
        user.map(|u| u.username.as_str())
            .unwrap_or(UNKNOWN_PRINCIPAL),
        Actor::Anonymous,
        peer,
        console.app.clock.now(),
    );
}

async fn first_org(console: &Console, user: UserId) -> Option<tessera_domain::OrgId> {
    console
        .app
        .store
        .orgs_of_user(user)
        .await
        .ok()
        .and_then(|v| v.into_iter().next())
}

fn too_many(retry_after: u64) -> Response {
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::response::Html(
            login_page(
                Some("Too many attempts. Wait a minute and try again."),
                "",
                &[],
            )
            .into_string(),
        ),
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The sign-in page; `providers` are (id, display name) of the identity providers offered.
fn login_page(error: Option<&str>, csrf: &str, providers: &[(String, String)]) -> Markup {
    page(
        "Sign in",
        None,
        &Place::default(),
        html! {
            h1 { "Sign in to Tessera" }
            @if let Some(e) = error { (alert(e)) }
            form.stack method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Email" }
                input #username type="email" name="username" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            @if !providers.is_empty() {
                h2 { "Or sign in with your organization" }
                ul.providers {
                    @for (id, name) in providers {
                        li { a.button href={ "/login/oidc/" (id) } { "Sign in with " (name) } }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct LoginQuery {
    ended: Option<String>,
}

/// `GET /login`: the form, with a fresh double-submit token (cookie and field).
pub async fn page_handler(console: &Console, q: &LoginQuery) -> Result<Response, PageError> {
    let token = new_id()?;
    let providers = crate::oidc::offered(console).await?;
    let note = q
        .ended
        .as_ref()
        .map(|_| "Your session ended. Sign in again.");
    let mut res = ok(login_page(note, &token, &providers));
    res.headers_mut()
        .append(header::SET_COOKIE, cookie(PRE_COOKIE, &token, 3600));
    Ok(res)
}

pub async fn login_form(State(console): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    page_handler(&console, &q).await.into_response()
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        tessera_protocols::password::hash("not a password anyone has").unwrap_or_default()
    })
}

/// `POST /login`: the password step.
pub async fn password(
    State(console): State<Console>,
    parts: axum::http::request::Parts,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    password_step(&console, &parts.headers, &parts, &form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn password_step(
    console: &Console,
    headers: &HeaderMap,
    parts: &axum::http::request::Parts,
    form: &HashMap<String, String>,
) -> Result<Response, PageError> {
    let peer = session::peer(console, parts);
    let token = form.get("csrf").map(String::as_str).unwrap_or("");
    let expected = read_cookie(headers, PRE_COOKIE).unwrap_or("");
    if token.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            token.as_bytes(),
            expected.as_bytes(),
        ))
        || !session::same_site(parts)
    {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Refused",
            "The sign-in form expired. Reload the page and try again.",
        ));
    }
    let username = form
        .get("username")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let pass = form.get("password").map(String::as_str).unwrap_or("");
    let user = console.app.store.find_cloud_user(&username).await?;
    if let Err(t) = console.limits.attempt(&username, peer) {
        let org = match &user {
            Some(u) => first_org(console, u.id).await,
            None => None,
        };
        failed(console, user.as_ref(), org, peer);
        return Ok(too_many(t.retry_after_secs));
    }
    let phc = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    // argon2 is slow on purpose: off the async workers.
    let pass = pass.to_owned();
    let verified =
        tokio::task::spawn_blocking(move || tessera_protocols::password::verify(&phc, &pass))
            .await
            .unwrap_or(false);
    let Some(user) = user
        .clone()
        .filter(|u| verified && u.password_hash.is_some())
    else {
        let org = match &user {
            Some(u) => first_org(console, u.id).await,
            None => None,
        };
        failed(console, user.as_ref(), org, peer);
        let providers = crate::oidc::offered(console).await?;
        let mut res = (
            StatusCode::UNAUTHORIZED,
            axum::response::Html(
                login_page(Some("Wrong email or password."), expected, &providers).into_string(),
            ),
        )
            .into_response();
        res.headers_mut()
            .append(header::SET_COOKIE, cookie(PRE_COOKIE, expected, 3600));
        return Ok(res);
    };
    let pending = Pending {
        csrf: new_id()?,
        attempts: 0,
        step: Step::Code {
            user: user.id.to_string(),
        },
    };
    let set = keep(console, &pending).await?;
    let mut res = Redirect::to("/login/totp").into_response();
    res.headers_mut().append(header::SET_COOKIE, set);
    res.headers_mut()
        .append(header::SET_COOKIE, clear(PRE_COOKIE));
    Ok(res)
}

/// The code step's user and their second factor's secret (started now if there is none).
async fn factor_of(console: &Console, user: UserId) -> Result<(Vec<u8>, bool), PageError> {
    let store = &console.app.store;
    let aad = format!("totp:{user}");
    if store.totp_factor(user).await?.is_none() {
        let secret = totp::new_secret().map_err(|_| PageError::internal("no randomness"))?;
        let sealed = console.app.crypto.sealer.seal(&secret, aad.as_bytes());
        store.start_totp(user, &sealed).await?;
    }
    let f = store
        .totp_factor(user)
        .await?
        .ok_or_else(|| PageError::internal("second factor vanished"))?;
    let secret = console
        .app
        .crypto
        .sealer
        .open(&f.secret_sealed, aad.as_bytes())
        .map_err(|_| PageError::internal("a second factor could not be opened"))?;
    Ok((secret, f.enrolled))
}

fn code_user(p: &Pending) -> Option<UserId> {
    match &p.step {
        Step::Code { user } => UserId::parse(user).ok(),
        Step::Oidc { .. } => None,
    }
}

async fn totp_view(
    console: &Console,
    p: &Pending,
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let user_id = code_user(p).ok_or_else(PageError::not_found)?;
    let user = console
        .app
        .store
        .get_cloud_user(user_id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let (secret, enrolled) = factor_of(console, user_id).await?;
    let uri = totp::otpauth_uri(&secret, &user.username);
    Ok(page(
        "Two-factor authentication",
        None,
        &Place::default(),
        html! {
            h1 { "Two-factor authentication" }
            @if let Some(e) = error { (alert(e)) }
            @if !enrolled {
                p { "Add Tessera to your authenticator app: scan the code or enter the key by hand. This key is shown only until your first code is accepted." }
                figure.qr {
                    @if let Some(svg) = totp::qr_svg(&uri) { (PreEscaped(svg)) }
                    figcaption { "Key: " code #totp-secret { (totp::base32(&secret)) } }
                }
            }
            form.stack method="post" action="/login/totp" {
                input type="hidden" name="csrf" value=(p.csrf);
                label for="code" { "Authentication code" }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
                button type="submit" { "Verify" }
            }
        },
    ))
}

/// `GET /login/totp`.
pub async fn totp_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let run = async {
        let Some((_, p)) = pending(&console, &headers, false).await? else {
            return Ok(Redirect::to("/login").into_response());
        };
        Ok::<_, PageError>(ok(totp_view(&console, &p, None).await?))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /login/totp`: the code step. The sign-in is taken; a wrong code puts it back (up to
/// [`CODE_TRIES`] codes per password).
pub async fn totp(
    State(console): State<Console>,
    parts: axum::http::request::Parts,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    code_step(&console, &parts, &form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn code_step(
    console: &Console,
    parts: &axum::http::request::Parts,
    form: &HashMap<String, String>,
) -> Result<Response, PageError> {
    let peer = session::peer(console, parts);
    let Some((id, mut p)) = pending(console, &parts.headers, true).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        token.as_bytes(),
        p.csrf.as_bytes(),
    )) || !session::same_site(parts)
    {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form expired. Sign in again.",
        ));
    }
    let user_id = code_user(&p).ok_or_else(PageError::not_found)?;
    let user = console
        .app
        .store
        .get_cloud_user(user_id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let org = first_org(console, user.id).await;
    if let Err(t) = console.limits.attempt(&user.username, peer) {
        failed(console, Some(&user), org, peer);
        return Ok(too_many(t.retry_after_secs));
    }
    let (secret, _) = factor_of(console, user.id).await?;
    let now = console.app.clock.now();
    let code = form.get("code").map(String::as_str).unwrap_or("");
    let accepted = match totp::matching_step(&secret, code, now.timestamp()) {
        Some(step) => console.app.store.use_totp_step(user.id, step, now).await?,
        None => false,
    };
    if !accepted {
        failed(console, Some(&user), org, peer);
        p.attempts += 1;
        if p.attempts >= CODE_TRIES {
            return Ok(Redirect::to("/login").into_response());
        }
        keep_as(console, &id, &p).await?;
        let view = totp_view(
            console,
            &p,
            Some("That code is not valid. Enter the current code from your app."),
        )
        .await?;
        return Ok((
            StatusCode::UNAUTHORIZED,
            axum::response::Html(view.into_string()),
        )
            .into_response());
    }
    let mut res = start_session(console, &user, "local", peer).await?;
    res.headers_mut()
        .append(header::SET_COOKIE, clear(LOGIN_COOKIE));
    Ok(res)
}

/// Starts a session for `user` (signed in `via` local or an identity provider): the cookie,
/// the stored session with the roles held now, a `CONSOLE_SIGNED_IN` event in each of their
/// organizations; then to `/`.
pub async fn start_session(
    console: &Console,
    user: &CloudUser,
    via: &str,
    peer: std::net::IpAddr,
) -> Result<Response, PageError> {
    let id = new_id()?;
    let hash = id_hash(console, "session", &id);
    let now = console.app.clock.now();
    let principals = principals_of(console, user.id, peer).await?;
    let events: Vec<_> = principals
        .values()
        .map(|p| {
            audit::event(
                &console.app,
                p,
                EventType::ConsoleSignedIn,
                p.org_id,
                None,
                vec![("via", via.to_owned())],
            )
        })
        .collect();
    let session = ConsoleSession {
        user_id: user.id,
        csrf: new_id()?,
        via: via.to_owned(),
        roles: role_strings(&principals),
        created_at: now,
        expires_at: now + chrono::Duration::hours(SESSION_HOURS),
    };
    console
        .app
        .store
        .create_session(&hash, &session, &events)
        .await?;
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookie(SESSION_COOKIE, &id, SESSION_HOURS * 3600),
    );
    Ok(res)
}

/// `POST /logout`: ends the session (with its CSRF token), clears the cookie.
pub async fn logout(
    State(console): State<Console>,
    signed: Signed,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let run = async {
        signed.check_csrf(&form)?;
        let events: Vec<_> = signed
            .principals
            .values()
            .map(|p| {
                audit::event(
                    &console.app,
                    p,
                    EventType::ConsoleSignedOut,
                    p.org_id,
                    None,
                    vec![],
                )
            })
            .collect();
        console
            .app
            .store
            .end_session(&signed.id_hash, &events)
            .await?;
        let mut res = Redirect::to("/login").into_response();
        res.headers_mut()
            .append(header::SET_COOKIE, clear(SESSION_COOKIE));
        Ok::<_, PageError>(res)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
