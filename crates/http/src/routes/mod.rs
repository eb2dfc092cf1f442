//! Handlers, one module per resource family. Each handler: authenticate (`Caller`), parse
//! ids, authorize with the domain's decision on its route's rule (`RouteRule`, from the
//! table in `crate::authz`), call the store, map to wire types.

pub mod access_entries;
pub mod api_key_access;
pub mod api_keys;
pub mod cloud_users;
pub mod cluster_access;
pub mod cluster_extras;
pub mod clusters;
pub mod custom_roles;
pub mod database_users;
pub mod events;
pub mod federation;
pub mod federation_orgs;
pub mod group_service_accounts;
pub mod group_users;
pub mod groups;
pub mod invitations;
pub mod network_access;
pub mod orgs;
pub mod people;
pub mod people_edit;
pub mod service_accounts;
pub mod settings;
pub mod support;
pub mod system_status;
pub mod teams;
pub mod x509;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_domain::authorization::On;
use tessera_domain::{Decision, GroupId, OrgId, Principal, Rule};
use tessera_store::{Group, Org};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::version::Dialect;

/// Absolute base URL of the surface the request came in on (for `links`).
pub struct Base(pub String);

impl FromRequestParts<AppState> for Base {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let prefix = match parts.extensions.get::<Dialect>() {
            Some(Dialect::V1) => Dialect::V1.base(),
            _ => Dialect::V2.base(),
        };
        Ok(Base(format!("{}{prefix}", state.public_url())))
    }
}

/// The surface a request came in on: its dialect and absolute base URL (for lists whose
/// shape differs between v2 and v1.0).
pub struct Surface {
    pub base: String,
    pub dialect: Dialect,
}

impl FromRequestParts<AppState> for Surface {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let dialect = match parts.extensions.get::<Dialect>() {
            Some(Dialect::V1) => Dialect::V1,
            _ => Dialect::V2,
        };
        Ok(Surface {
            base: format!("{}{}", state.public_url(), dialect.base()),
            dialect,
        })
    }
}

/// Authorizes an operation on the caller's own organization (its lists; creating an
/// organization): 403 when the rule refuses.
pub fn authorize_own(caller: &Principal, rule: Rule) -> ApiResult<()> {
    match caller.authorize(rule, On::Own) {
        Decision::Allow => Ok(()),
        Decision::Forbidden | Decision::NotFound => Err(ApiError::forbidden()),
    }
}

/// Authorizes an org-level operation without touching the store: a caller's credential exists
/// only while its organization does, so a role there proves the organization exists.
pub fn authorize_org(caller: &Principal, raw_id: &str, rule: Rule) -> ApiResult<OrgId> {
    let id = OrgId::parse(raw_id)?;
    match caller.authorize(rule, On::Org(id)) {
        Decision::NotFound => Err(ApiError::org_not_found(raw_id)),
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::Allow => Ok(id),
    }
}

/// A pair of colon actions on a resource (`{userId}:addRole` / `{userId}:removeRole`): the
/// resource's id and whether the first action was asked. Any other action, or none, is the 404
/// of an unserved route.
pub fn add_or_remove<'a>(
    param: &'a str,
    (add, remove): (&str, &str),
    uri: &axum::http::Uri,
) -> ApiResult<(&'a str, bool)> {
    match param.split_once(':') {
        Some((id, a)) if a == add => Ok((id, true)),
        Some((id, a)) if a == remove => Ok((id, false)),
        _ => Err(ApiError::route_not_found(uri.path())),
    }
}

/// One page of an in-memory list.
pub fn paginate<T>(items: Vec<T>, page: tessera_store::Page) -> tessera_store::Listed<T> {
    let total = items.len() as u64;
    let items = items
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .collect();
    tessera_store::Listed { items, total }
}

/// Loads an organization the caller may act on under `rule`: 404 when the caller has no role
/// in it (whether or not it exists), 403 when it lacks the role.
pub async fn org_for(
    state: &AppState,
    caller: &Principal,
    raw_id: &str,
    rule: Rule,
) -> ApiResult<Org> {
    let id = OrgId::parse(raw_id)?;
    match caller.authorize(rule, On::Org(id)) {
        Decision::NotFound => Err(ApiError::org_not_found(raw_id)),
        decision => {
            let org = state
                .store
                .get_org(id)
                .await?
                .ok_or_else(|| ApiError::org_not_found(raw_id))?;
            if decision == Decision::Forbidden {
                return Err(ApiError::forbidden());
            }
            Ok(org)
        }
    }
}

/// Loads a project the caller may act on under `rule` (same 404-before-403 rule).
pub async fn group_for(
    state: &AppState,
    caller: &Principal,
    raw_id: &str,
    rule: Rule,
) -> ApiResult<Group> {
    let id = GroupId::parse(raw_id)?;
    let group = state
        .store
        .get_group(id)
        .await?
        .ok_or_else(|| ApiError::group_not_found(raw_id))?;
    let on = On::Group {
        org: group.org_id,
        group: group.id,
    };
    match caller.authorize(rule, on) {
        Decision::NotFound => Err(ApiError::group_not_found(raw_id)),
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::Allow => Ok(group),
    }
}
