//! The console's pages. Each reads through the API in process ([`crate::api::Api`]) with the
//! person's principal in the page's organization, and shows an action only when the route
//! table would admit it ([`may`]). Every change is a form post (CSRF-checked) that becomes one
//! API call and then a redirect (post/redirect/get), so a reload never repeats a change.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tessera_domain::authorization::On;
use tessera_domain::{GroupId, OrgId, Principal};
use tessera_http::authz::{permits, Verb};
use tessera_store::{Group, Org};

use crate::api::Api;
use crate::layout::PageError;
use crate::session::Signed;
use crate::Console;

pub mod accounts;
pub mod clusters;
pub mod events;
pub mod keys;
pub mod orgs;
pub mod people;
pub mod project;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/invitations/{orgId}/accept", post(orgs::accept))
        .route("/orgs/{orgId}", get(orgs::overview))
        .route(
            "/orgs/{orgId}/users",
            get(people::org_users).post(people::invite),
        )
        .route("/orgs/{orgId}/users/{userId}/remove", post(people::remove))
        .route(
            "/orgs/{orgId}/teams",
            get(people::teams).post(people::create_team),
        )
        .route("/orgs/{orgId}/apiKeys", get(keys::list))
        .route("/orgs/{orgId}/apiKeys/{keyId}", get(keys::detail))
        .route(
            "/orgs/{orgId}/apiKeys/{keyId}/accessList",
            post(keys::add_entry),
        )
        .route(
            "/orgs/{orgId}/apiKeys/{keyId}/accessList/remove",
            post(keys::remove_entry),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}",
            get(accounts::detail),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}/delete",
            post(accounts::delete),
        )
        .route("/orgs/{orgId}/events", get(events::org))
        .route("/orgs/{orgId}/events/rows", get(events::org_rows))
        .route("/groups/{groupId}", get(project::overview))
        .route(
            "/groups/{groupId}/databaseUsers",
            get(project::database_users),
        )
        .route(
            "/groups/{groupId}/accessList",
            get(project::access_list).post(project::add_entry),
        )
        .route(
            "/groups/{groupId}/accessList/remove",
            post(project::remove_entry),
        )
        .route("/groups/{groupId}/users", get(people::group_users))
        .route("/groups/{groupId}/clusters/{name}", get(clusters::detail))
        .route(
            "/groups/{groupId}/clusters/{name}/grant",
            post(clusters::grant),
        )
        .route(
            "/groups/{groupId}/clusters/{name}/revoke",
            post(clusters::revoke),
        )
        .route("/groups/{groupId}/events", get(events::group))
        .route("/groups/{groupId}/events/rows", get(events::group_rows))
}

/// The role a new member or service account form starts with (a UI default only: the API
/// decides what may be given).
pub const DEFAULT_ORG_ROLE: &str = "ORG_MEMBER";

/// Whether the route table lets `p` call `verb path` (an API route pattern) on `on`.
pub fn may(p: &Principal, verb: Verb, path: &str, on: On) -> bool {
    permits(p, verb, path, on)
}

/// An organization page's context: the organization and the person's principal in it.
pub struct OrgPage<'a> {
    pub org: Org,
    pub principal: &'a Principal,
    pub api: Api<'a>,
}

impl OrgPage<'_> {
    pub fn on(&self) -> On {
        On::Org(self.org.id)
    }
}

pub async fn org_page<'a>(
    console: &'a Console,
    signed: &'a Signed,
    org: &str,
) -> Result<OrgPage<'a>, PageError> {
    let id = OrgId::parse(org).map_err(|_| PageError::not_found())?;
    let principal = signed.principal_in(id)?;
    let org = console
        .app
        .store
        .get_org(id)
        .await?
        .ok_or_else(PageError::not_found)?;
    Ok(OrgPage {
        org,
        principal,
        api: Api::new(console, signed, principal),
    })
}

/// A project page's context: the project, its organization and the person's principal there.
pub struct GroupPage<'a> {
    pub group: Group,
    pub org: Org,
    pub principal: &'a Principal,
    pub api: Api<'a>,
}

impl GroupPage<'_> {
    pub fn on(&self) -> On {
        On::Group {
            org: self.org.id,
            group: self.group.id,
        }
    }
}

pub async fn group_page<'a>(
    console: &'a Console,
    signed: &'a Signed,
    group: &str,
) -> Result<GroupPage<'a>, PageError> {
    let id = GroupId::parse(group).map_err(|_| PageError::not_found())?;
    let store = &console.app.store;
    let group = store
        .get_group(id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let principal = signed.principal_in(group.org_id)?;
    let org = store
        .get_org(group.org_id)
        .await?
        .ok_or_else(PageError::not_found)?;
    Ok(GroupPage {
        group,
        org,
        principal,
        api: Api::new(console, signed, principal),
    })
}

/// A form post: the CSRF token checked, then `change`'s API call; on success a redirect to
/// `back`, else the API's refusal as the page (its status: a forged post the table refuses is
/// a 403 here as in the API).
pub async fn submit(
    api: &Api<'_>,
    signed: &Signed,
    form: &HashMap<String, String>,
    call: (Method, String, &str, Option<Value>),
    back: &str,
) -> Result<Response, PageError> {
    signed.check_csrf(form)?;
    let (method, path, version, body) = call;
    api.ok(method, &path, version, body.as_ref()).await?;
    Ok(Redirect::to(back).into_response())
}

/// A handler's result as a response.
pub fn respond(r: Result<Response, PageError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// A form field, trimmed ("" when absent).
pub fn field<'f>(form: &'f HashMap<String, String>, name: &str) -> &'f str {
    form.get(name).map(|s| s.trim()).unwrap_or("")
}

/// Seals `text` as the session's one-time message (a secret shown once, on the next page).
pub async fn set_flash(console: &Console, signed: &Signed, text: &str) -> Result<(), PageError> {
    let sealed = console
        .app
        .crypto
        .sealer
        .seal(text.as_bytes(), signed.id_hash.as_bytes());
    console
        .app
        .store
        .set_flash(&signed.id_hash, &sealed)
        .await?;
    Ok(())
}

/// Takes the session's one-time message, if any.
pub async fn take_flash(console: &Console, signed: &Signed) -> Result<Option<String>, PageError> {
    let Some(sealed) = console.app.store.take_flash(&signed.id_hash).await? else {
        return Ok(None);
    };
    let plain = console
        .app
        .crypto
        .sealer
        .open(&sealed, signed.id_hash.as_bytes())
        .map_err(|_| PageError::internal("a one-time message could not be opened"))?;
    Ok(String::from_utf8(plain).ok())
}

/// A bad form value, as a 400 page.
pub fn bad_input(detail: &str) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Check what you entered", detail)
}

/// The id path segment of an API document (`id`), percent-encoded for a path.
pub fn enc(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}
