//! The browser console: server-rendered pages (maud templates compiled into the binary, one
//! stylesheet and one small script, no Node build) at `/`.
//!
//! The console is a client of the API in process. A signed-in person is a `Principal` of kind
//! `User` in the organization a page is about (`OrgPeople::principal`: their own roles and
//! their teams', read at every request); every read and every change is a request to the API
//! router itself, carrying that principal ([`tessera_http::auth::InProcessCaller`]), so the
//! route table decides it exactly as for an API key, and the handler validates, writes and
//! records events as it does for any client. What a page offers is asked of the same table
//! ([`tessera_http::authz::permits`]): a person sees no button the API would refuse them.
//!
//! Sign-in (`login`, `oidc`): a local password (argon2id) and a TOTP second factor, or an
//! OpenID Connect provider configured through the federation API (authorization code with
//! PKCE). Sessions live in the store (`ConsoleStore`), found by the keyed hash of a random
//! cookie id; every form carries the session's CSRF token (`session`).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{from_fn, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tessera_http::AppState;

mod api;
mod assets;
mod layout;
mod limits;
mod login;
mod oidc;
mod pages;
mod session;
mod totp;

pub use limits::SignInLimits;

/// What every console handler has: the API's state (store, clock, crypto), the API router to
/// call in process, the sign-in limits and the OIDC client's HTTP client.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

pub struct Inner {
    pub app: AppState,
    pub api: Router,
    pub limits: SignInLimits,
    pub http: reqwest::Client,
    /// Whether cookies get `Secure` (always, unless the operator serves plain HTTP on a
    /// non-loopback address on purpose; browsers keep `Secure` cookies on loopback HTTP).
    pub secure_cookies: bool,
}

impl std::ops::Deref for Console {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The Content-Security-Policy of every page: scripts and styles only from this origin (no
/// `unsafe-inline`), no framing, forms only to this origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The console's routes, for `api` (the API router, state applied) to be merged with.
pub fn router(app: AppState, api: Router) -> Router {
    let http = reqwest::Client::builder()
        // An identity provider's answers are never followed elsewhere (SSRF).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let limits = SignInLimits::new(app.clock.clone());
    let console = Console(Arc::new(Inner {
        app,
        api,
        limits,
        http,
        secure_cookies: true,
    }));
    Router::new()
        .route("/", get(pages::orgs::home))
        .route("/login", get(login::login_form).post(login::password))
        .route("/login/totp", get(login::totp_page).post(login::totp))
        .route("/login/oidc/callback", get(oidc::callback))
        .route("/login/oidc/{idp}", get(oidc::start))
        .route("/logout", post(login::logout))
        .route("/static/{file}", get(assets::serve))
        .merge(pages::routes())
        .layer(from_fn(security_headers))
        .with_state(console)
}
