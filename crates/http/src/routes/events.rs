//! The event logs: `/orgs/{orgId}/events[/{eventId}]` (Organization Member) and
//! `/groups/{groupId}/events[/{eventId}]` (Project Read Only), on both surfaces.
//!
//! An org's log shows a caller only the events it could read where they happened
//! (`Principal::org_log_visibility`): the org's own events, and the events of the projects
//! whose log it may read. The store filters in its query, so pages and `totalCount` count
//! only what is shown; an event outside that view is `EVENT_NOT_FOUND`.
//!
//! [`event_out`] is the one mapping from a stored event to its wire shape (`EventViewForOrg` /
//! `EventViewForNdsGroup`); `tessera events export` prints the same documents.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use tessera_domain::events::parse_event_type_filter;
use tessera_domain::time::format;
use tessera_domain::{EventId, GroupVisibility, OrgLogVisibility, Principal};
use tessera_store::events::{Actor, EventQuery, EventRecord, EventScope, EventVisibility};
use tessera_store::GroupFilter;

use super::{authorize_org, group_for, Base};
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathParams;
use crate::query::{
    invalid_param, parse_bool_param, parse_date_param, Pagination, Query, QueryPairs,
};
use crate::render::Reply;
use crate::state::AppState;

/// At most this many `eventType` values in one listing (each is a bound SQL parameter).
pub const MAX_EVENT_TYPES: usize = 100;

/// Target fields the subset's event views name at top level; every target field is in `raw`.
/// `employeeIdentifier` is the support staff member of an `EMPLOYEE_ACCESS_USED`.
const TOP_LEVEL_TARGETS: &[&str] = &[
    "targetPublicKey",
    "whitelistEntry",
    "employeeIdentifier",
    "resourceType",
    "resourceId",
];

fn actor_kind(actor: &Actor) -> &'static str {
    match actor {
        Actor::ApiKey { .. } => "API_KEY",
        Actor::ServiceAccount(_) => "SERVICE_ACCOUNT",
        Actor::System => "SYSTEM",
        Actor::Anonymous => "ANONYMOUS",
        Actor::User { .. } => "USER",
    }
}

/// The wire document of one event. `base` is the surface's absolute base URL; `scope` is the
/// log it is read through (its `links` point there), or `None` for the event's own
/// organization (its project when it has no organization), as the export prints it.
pub fn event_out(
    base: &str,
    scope: Option<EventScope>,
    e: EventRecord,
    include_raw: bool,
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(e.id.to_string()));
    out.insert("created".into(), json!(format(e.created)));
    out.insert("eventTypeName".into(), json!(e.event_type));
    if let Some(o) = e.org_id {
        out.insert("orgId".into(), json!(o.to_string()));
    }
    if let Some(g) = e.group_id {
        out.insert("groupId".into(), json!(g.to_string()));
    }
    match &e.actor {
        Actor::ApiKey { id, public_key } => {
            out.insert("apiKeyId".into(), json!(id.to_string()));
            out.insert("publicKey".into(), json!(public_key));
        }
        Actor::ServiceAccount(client_id) => {
            out.insert("clientId".into(), json!(client_id.to_string()));
        }
        // Atlas' event views name a person by `userId` and `username`.
        Actor::User { id, username } => {
            out.insert("userId".into(), json!(id.to_string()));
            out.insert("username".into(), json!(username));
        }
        Actor::System | Actor::Anonymous => {}
    }
    if let Some(addr) = &e.remote_address {
        out.insert("remoteAddress".into(), json!(addr));
    }
    for (k, v) in &e.target {
        if TOP_LEVEL_TARGETS.contains(&k.as_str()) {
            out.insert(k.clone(), json!(v));
        }
    }
    if e.event_type.ends_with("_AUTHENTICATION_FAILED") {
        out.insert("count".into(), json!(e.count));
    }
    out.insert("isGlobalAdmin".into(), json!(false));
    let href = match scope {
        Some(EventScope::Org(o)) => Some(format!("{base}/orgs/{o}/events/{}", e.id)),
        Some(EventScope::Group(g)) => Some(format!("{base}/groups/{g}/events/{}", e.id)),
        // Where the event is read: its project's log, or its org's (which holds the org's
        // own events only).
        None => match (e.org_id, e.group_id) {
            (_, Some(g)) => Some(format!("{base}/groups/{g}/events/{}", e.id)),
            (Some(o), None) => Some(format!("{base}/orgs/{o}/events/{}", e.id)),
            (None, None) => None,
        },
    };
    let links: Vec<Value> = href
        .map(|h| json!({"href": h, "rel": "self"}))
        .into_iter()
        .collect();
    out.insert("links".into(), Value::Array(links));
    if include_raw {
        let mut raw = Map::new();
        for (k, v) in e.target {
            raw.insert(k, json!(v));
        }
        raw.insert("actorKind".into(), json!(actor_kind(&e.actor)));
        raw.insert("count".into(), json!(e.count));
        out.insert("raw".into(), Value::Object(raw));
    }
    Value::Object(out)
}

/// `eventType` (repeatable), `minDate`, `maxDate`, `includeRaw` of a listing.
struct Filters {
    types: Vec<String>,
    min: Option<chrono::DateTime<chrono::Utc>>,
    max: Option<chrono::DateTime<chrono::Utc>>,
    include_raw: bool,
}

fn filters(q: &QueryPairs) -> ApiResult<Filters> {
    let raw_types = q.get_all("eventType");
    if raw_types.len() > MAX_EVENT_TYPES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_PARAMETER",
            format!("Query parameter eventType may be given at most {MAX_EVENT_TYPES} times."),
        )
        .with_params([json!("eventType"), json!(MAX_EVENT_TYPES)]));
    }
    let mut types = Vec::with_capacity(raw_types.len());
    for t in raw_types {
        let t = parse_event_type_filter(t)
            .map_err(|_| invalid_param("eventType", t, "an event type name (^[A-Z][A-Z0-9_]*$)"))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    let min = parse_date_param(q, "minDate")?;
    let max = parse_date_param(q, "maxDate")?;
    if let (Some(lo), Some(hi)) = (min, max) {
        if hi < lo {
            let value = q.get("maxDate")?.unwrap_or_default();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY_PARAMETER",
                format!("Invalid value {value} for query parameter maxDate: it is before minDate."),
            )
            .with_params([json!("maxDate"), json!(value)]));
        }
    }
    Ok(Filters {
        types,
        min,
        max,
        include_raw: include_raw(q)?,
    })
}

fn include_raw(q: &QueryPairs) -> ApiResult<bool> {
    Ok(parse_bool_param(q, "includeRaw")?.unwrap_or(false))
}

fn event_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "EVENT_NOT_FOUND",
        format!("No event with ID {id} exists."),
    )
    .with_params([json!(id)])
}

/// The store's filter for what of an org's log the caller may read.
fn visible_events(v: OrgLogVisibility) -> EventVisibility {
    EventVisibility {
        org_events: v.org_events,
        groups: match v.groups {
            GroupVisibility::All => GroupFilter::All,
            GroupVisibility::Only(ids) => GroupFilter::Only(ids),
        },
    }
}

async fn list_scope(
    state: &AppState,
    base: &str,
    scope: EventScope,
    visible: EventVisibility,
    page: &Pagination,
    f: Filters,
) -> ApiResult<Reply> {
    let listed = state
        .store
        .list_events(&EventQuery {
            scope,
            types: f.types,
            min: f.min,
            max: f.max,
            page: page.page(),
            include_count: page.include_count,
            visible,
        })
        .await?;
    let raw = f.include_raw;
    Ok(Reply::ok(
        page.list(listed, |e| event_out(base, Some(scope), e, raw)),
    ))
}

/// One event of `scope`'s log: 404 `EVENT_NOT_FOUND` when it is unknown, belongs elsewhere, or
/// (in an org's log) happened where `caller` may not read it.
async fn get_in_scope(
    state: &AppState,
    caller: &Principal,
    base: &str,
    scope: EventScope,
    raw_id: &str,
    id: EventId,
    include_raw: bool,
) -> ApiResult<Reply> {
    let event = state
        .store
        .get_event(id)
        .await?
        .filter(|e| match scope {
            // The org's log holds its own events only.
            EventScope::Org(o) => {
                e.org_id == Some(o)
                    && e.group_id.is_none()
                    && caller.may_read_org_event(o, e.group_id)
            }
            EventScope::Group(g) => e.group_id == Some(g),
        })
        .ok_or_else(|| event_not_found(raw_id))?;
    Ok(Reply::ok(event_out(base, Some(scope), event, include_raw)))
}

pub async fn list_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    page: Pagination,
    Query(q): Query,
    path: PathParams,
) -> ApiResult<Reply> {
    let f = filters(&q)?;
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let visible = visible_events(caller.org_log_visibility(org));
    list_scope(&state, &base, EventScope::Org(org), visible, &page, f).await
}

pub async fn get_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    Query(q): Query,
    path: PathParams,
) -> ApiResult<Reply> {
    let raw = include_raw(&q)?;
    let raw_id = path.get("eventId");
    let id = EventId::parse(raw_id)?;
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    get_in_scope(
        &state,
        &caller,
        &base,
        EventScope::Org(org),
        raw_id,
        id,
        raw,
    )
    .await
}

pub async fn list_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    page: Pagination,
    Query(q): Query,
    path: PathParams,
) -> ApiResult<Reply> {
    let f = filters(&q)?;
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let whole = EventVisibility::ALL;
    list_scope(&state, &base, EventScope::Group(group.id), whole, &page, f).await
}

pub async fn get_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    Query(q): Query,
    path: PathParams,
) -> ApiResult<Reply> {
    let raw = include_raw(&q)?;
    let raw_id = path.get("eventId");
    let id = EventId::parse(raw_id)?;
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let scope = EventScope::Group(group.id);
    get_in_scope(&state, &caller, &base, scope, raw_id, id, raw).await
}

/// `listEventTypes` (any authenticated caller): the event types Tessera writes, each with a
/// description made from its name (`API_KEY_CREATED` → "API key created"). None is alertable:
/// Tessera has no alerts.
pub async fn list_types(
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    page: Pagination,
) -> ApiResult<Reply> {
    super::authorize_own(&caller, rule)?;
    let all: Vec<_> = tessera_domain::EventType::ALL.to_vec();
    let listed = super::paginate(all, page.page());
    Ok(Reply::ok(page.list(listed, |t| {
        json!({"alertable": false, "description": describe(t.as_str()), "eventType": t.as_str()})
    })))
}

/// `API_KEY_CREATED` → "API key created".
fn describe(name: &str) -> String {
    const ACRONYMS: &[&str] = &["API", "IP", "ORG", "X509", "SCRAM", "OIDC", "LDAP", "AWS"];
    let words: Vec<String> = name
        .split('_')
        .enumerate()
        .map(|(i, w)| match (i, ACRONYMS.contains(&w)) {
            (_, true) if w != "ORG" => w.to_owned(),
            (0, _) => {
                let lower = w.to_ascii_lowercase();
                let mut c = lower.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
            _ => w.to_ascii_lowercase(),
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptions_read_as_words() {
        assert_eq!(super::describe("API_KEY_CREATED"), "API key created");
        assert_eq!(super::describe("ORG_RENAMED"), "Org renamed");
        assert_eq!(
            super::describe("GROUP_TAGS_MODIFIED"),
            "Group tags modified"
        );
    }
}
