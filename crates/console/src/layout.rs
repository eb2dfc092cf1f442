//! The page shell and the pieces every page uses. maud escapes every interpolated string, so a
//! name with markup in it is shown as text; nothing here writes inline script or style (the
//! CSP allows neither).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use tessera_domain::{GroupId, OrgId};
use tessera_store::StoreError;

use crate::session::Signed;

/// A page's place: the organization and project it is about, for the header's links.
#[derive(Default)]
pub struct Place<'a> {
    pub org: Option<(OrgId, &'a str)>,
    pub group: Option<(GroupId, &'a str)>,
    /// The nav entry of the page itself (`aria-current`).
    pub current: &'a str,
}

const ORG_NAV: &[(&str, &str)] = &[
    ("Projects", ""),
    ("Users", "/users"),
    ("Teams", "/teams"),
    ("API keys", "/apiKeys"),
    ("Service accounts", "/serviceAccounts"),
    ("Events", "/events"),
];

const GROUP_NAV: &[(&str, &str)] = &[
    ("Clusters", ""),
    ("Database users", "/databaseUsers"),
    ("IP access list", "/accessList"),
    ("Users", "/users"),
    ("Events", "/events"),
];

fn nav(base: &str, entries: &[(&str, &str)], current: &str, label: &str) -> Markup {
    html! {
        nav aria-label=(label) {
            ul {
                @for (name, path) in entries {
                    li {
                        @if *name == current {
                            a href={ (base) (path) } aria-current="page" { (name) }
                        } @else {
                            a href={ (base) (path) } { (name) }
                        }
                    }
                }
            }
        }
    }
}

/// A whole page.
pub fn page(title: &str, signed: Option<&Signed>, place: &Place<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tessera" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Tessera" }
                    @if let Some((id, name)) = place.org {
                        span.sep aria-hidden="true" { "/" }
                        a href={ "/orgs/" (id) } { (name) }
                    }
                    @if let Some((id, name)) = place.group {
                        span.sep aria-hidden="true" { "/" }
                        a href={ "/groups/" (id) } { (name) }
                    }
                    @if let Some(s) = signed {
                        span.who { (s.user.username) }
                        form.inline method="post" action="/logout" {
                            (csrf(s))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some((id, _)) = place.group {
                    (nav(&format!("/groups/{id}"), GROUP_NAV, place.current, "Project"))
                } @else if let Some((id, _)) = place.org {
                    (nav(&format!("/orgs/{id}"), ORG_NAV, place.current, "Organization"))
                }
                main id="main" { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

/// A one-button form that posts `fields` to `action`.
pub fn post_button(
    signed: &Signed,
    action: &str,
    label: &str,
    accessible: &str,
    fields: &[(&str, &str)],
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(signed))
            @for (k, v) in fields {
                input type="hidden" name=(k) value=(v);
            }
            button type="submit" aria-label=(accessible) { (label) }
        }
    }
}

/// An error message the page shows (an alert).
pub fn alert(message: &str) -> Markup {
    html! { p.alert role="alert" { (message) } }
}

/// A page that could not be shown, or a change that was refused: its status and why.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &str, detail: &str) -> Self {
        Self {
            status,
            title: title.to_owned(),
            detail: detail.to_owned(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or you may not see it.",
        )
    }

    pub fn internal(why: &str) -> Self {
        tracing::error!(why, "console page failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete this request. Try again later.",
        )
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The store did not answer. Try again in a moment.",
            ),
            other => Self::internal(&other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = page(
            &self.title,
            None,
            &Place::default(),
            html! {
                h1 { (self.title) }
                (alert(&self.detail))
                p { a href="/" { "Back to your organizations" } }
            },
        );
        (self.status, Html(body.into_string())).into_response()
    }
}

/// A rendered page as a response.
pub fn ok(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// Time left until `end`, in words ("2 h 5 min").
pub fn time_left(now: chrono::DateTime<chrono::Utc>, end: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (end - now).num_seconds();
    if secs <= 0 {
        return "ended".to_owned();
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => "less than a minute".to_owned(),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}
