//! The event log of an organization or a project: filter by type, and a live tail (the page's
//! script asks `…/events/rows` for the newest rows every few seconds and adds the new ones).

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use tessera_domain::EventType;

use super::{enc, group_page, org_page, respond};
use crate::api::{results, s};
use crate::layout::{ok, page, PageError, Place};
use crate::session::Signed;
use crate::Console;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(rename = "eventType")]
    event_type: Option<String>,
}

impl Filter {
    fn chosen(&self) -> Option<&'static str> {
        let t = self.event_type.as_deref()?;
        EventType::ALL.iter().map(|e| e.as_str()).find(|n| *n == t)
    }

    fn query(&self) -> String {
        match self.chosen() {
            Some(t) => format!("?itemsPerPage=50&eventType={t}"),
            None => "?itemsPerPage=50".to_owned(),
        }
    }
}

fn who(e: &Value) -> String {
    for k in ["username", "publicKey", "clientId"] {
        if let Some(v) = e[k].as_str() {
            return v.to_owned();
        }
    }
    "system".to_owned()
}

/// An event's details: the fields the API shows at the top level besides the common ones.
fn details(e: &Value) -> String {
    const COMMON: &[&str] = &[
        "id",
        "created",
        "eventTypeName",
        "orgId",
        "groupId",
        "links",
        "isGlobalAdmin",
        "username",
        "userId",
        "publicKey",
        "apiKeyId",
        "clientId",
        "remoteAddress",
    ];
    e.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !COMMON.contains(&k.as_str()))
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn rows(list: &Value) -> Markup {
    html! {
        @for e in results(list) {
            tr data-id=(s(e, "id")) {
                td { (s(e, "created")) }
                td { code { (s(e, "eventTypeName")) } }
                td { (who(e)) }
                td { (s(e, "remoteAddress")) }
                td { (details(e)) }
            }
        }
    }
}

fn log_page(base: &str, list: &Value, filter: &Filter) -> Markup {
    let chosen = filter.chosen();
    html! {
        h1 { "Events" }
        form.filters method="get" action=(base) {
            label for="eventType" { "Event type" }
            select #eventType name="eventType" {
                option value="" { "All types" }
                @for t in EventType::ALL {
                    option value=(t.as_str()) selected[chosen == Some(t.as_str())] { (t.as_str()) }
                }
            }
            button type="submit" { "Filter" }
            span.live {
                input #live type="checkbox" data-tail={ (base) "/rows" (filter.query()) };
                label for="live" { "Live" }
            }
        }
        table #events {
            thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "By" } th scope="col" { "From" } th scope="col" { "Details" } } }
            tbody aria-live="polite" { (rows(list)) }
        }
        @if results(list).is_empty() { p #no-events { "No events." } }
    }
}

/// Which log a page shows.
enum Scope {
    Org(String),
    Group(String),
}

/// The log of `scope`: the whole page, or (`rows_only`) the newest rows for the live tail.
async fn log(
    console: &Console,
    signed: &Signed,
    scope: Scope,
    filter: &Filter,
    rows_only: bool,
) -> Result<Response, PageError> {
    let (api, base, place) = match &scope {
        Scope::Org(org) => {
            let ctx = org_page(console, signed, org).await?;
            let base = format!("/orgs/{}/events", ctx.org.id);
            (ctx.api, base, (ctx.org.id, ctx.org.name, None))
        }
        Scope::Group(group) => {
            let ctx = group_page(console, signed, group).await?;
            let base = format!("/groups/{}/events", enc(&ctx.group.id.to_string()));
            let g = Some((ctx.group.id, ctx.group.name));
            (ctx.api, base, (ctx.org.id, ctx.org.name, g))
        }
    };
    let list = api
        .get(&format!("{base}{}", filter.query()), "2023-01-01")
        .await?;
    if rows_only {
        return Ok(Html(rows(&list).into_string()).into_response());
    }
    let (org_id, org_name, group) = place;
    let place = Place {
        org: Some((org_id, &org_name)),
        group: group.as_ref().map(|(id, name)| (*id, name.as_str())),
        current: "Events",
    };
    Ok(ok(page(
        "Events",
        Some(signed),
        &place,
        log_page(&base, &list, filter),
    )))
}

/// `GET /orgs/{orgId}/events`.
pub async fn org(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    respond(log(&console, &signed, Scope::Org(org), &filter, false).await)
}

/// `GET /orgs/{orgId}/events/rows`: the newest rows, for the live tail.
pub async fn org_rows(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    respond(log(&console, &signed, Scope::Org(org), &filter, true).await)
}

/// `GET /groups/{groupId}/events`.
pub async fn group(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    respond(log(&console, &signed, Scope::Group(group), &filter, false).await)
}

/// `GET /groups/{groupId}/events/rows`.
pub async fn group_rows(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    respond(log(&console, &signed, Scope::Group(group), &filter, true).await)
}
