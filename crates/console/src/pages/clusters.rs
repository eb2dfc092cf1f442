//! A cluster's MongoDB employee access: the grant (level, end, time left), granting with a
//! level and an end time, revoking, and every use of the access (`EMPLOYEE_ACCESS_USED`).

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::Method;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{html, Markup};
use serde_json::{json, Value};
use tessera_domain::clusters::EmployeeAccessLevel;
use tessera_http::authz::Verb;

use super::{bad_input, enc, field, group_page, may, respond, submit};
use crate::api::{results, s};
use crate::layout::{csrf, ok, page, post_button, time_left, Place};
use crate::session::Signed;
use crate::Console;

const V: &str = "2024-08-05";
const ACTION: &str = "/groups/{groupId}/clusters/{clusterName}";

/// The grant in a cluster document, in words.
pub fn grant_summary(c: &Value, now: DateTime<Utc>) -> Markup {
    let g = &c["mongoDBEmployeeAccessGrant"];
    let end = g["expirationTime"]
        .as_str()
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&Utc));
    html! {
        @match end {
            Some(end) if end > now => {
                (s(g, "grantType")) " until " (end.format("%Y-%m-%d %H:%M UTC")) " (" (time_left(now, end)) " left)"
            }
            _ => { "none" }
        }
    }
}

/// `GET /groups/{groupId}/clusters/{name}`.
pub async fn detail(
    State(console): State<Console>,
    signed: Signed,
    Path((group, name)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let base = format!("/groups/{}/clusters/{}", ctx.group.id, enc(&name));
            let c = ctx.api.get(&base, V).await?;
            let uses = ctx
                .api
                .get(
                    &format!(
                        "/groups/{}/events?eventType=EMPLOYEE_ACCESS_USED&includeRaw=true&itemsPerPage=100",
                        ctx.group.id
                    ),
                    "2023-01-01",
                )
                .await?;
            let uses: Vec<&Value> = results(&uses)
                .iter()
                .filter(|e| e["raw"]["clusterName"].as_str() == Some(name.as_str()))
                .collect();
            let now = console.app.clock.now();
            let active = c["mongoDBEmployeeAccessGrant"]["expirationTime"]
                .as_str()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .is_some_and(|d| d.with_timezone(&Utc) > now);
            let can_manage = may(ctx.principal, Verb::Post, ACTION, ctx.on());
            let default_end = (now + chrono::Duration::hours(24)).format("%Y-%m-%dT%H:%M").to_string();
            Ok(ok(page(
                &name,
                Some(&signed),
                &Place {
                    org: Some((ctx.org.id, &ctx.org.name)),
                    group: Some((ctx.group.id, &ctx.group.name)),
                    current: "Clusters",
                },
                html! {
                    h1 { (s(&c, "name")) }
                    dl {
                        dt { "State" } dd { (s(&c, "stateName")) }
                        dt { "MongoDB version" } dd { (match s(&c, "mongoDBVersion") { "" => s(&c, "mongoDBMajorVersion"), v => v }) }
                    }
                    section aria-labelledby="access-title" {
                        h2 #access-title { "MongoDB employee access" }
                        p #grant { "Current grant: " (grant_summary(&c, now)) }
                        @if can_manage && active {
                            (post_button(&signed, &format!("/groups/{}/clusters/{}/revoke", ctx.group.id, enc(&name)), "Revoke access", "Revoke access", &[]))
                        }
                        @if can_manage {
                            form.stack method="post" action={ "/groups/" (ctx.group.id) "/clusters/" (enc(&name)) "/grant" } {
                                (csrf(&signed))
                                label for="level" { "Access level" }
                                select #level name="level" {
                                    @for l in EmployeeAccessLevel::ALL { option value=(l.as_str()) { (l.as_str()) } }
                                }
                                label for="until" { "Expires at" }
                                input #until name="until" type="datetime-local" value=(default_end) required;
                                span.hint { "UTC" }
                                button type="submit" { "Grant access" }
                            }
                        }
                    }
                    section aria-labelledby="uses-title" {
                        h2 #uses-title { "Uses" }
                        @if uses.is_empty() { p { "MongoDB employees have not used access to this cluster." } } @else {
                            table #uses {
                                thead { tr { th scope="col" { "When" } th scope="col" { "Employee" } th scope="col" { "Event" } } }
                                tbody {
                                    @for e in &uses {
                                        tr { td { (s(e, "created")) } td { (s(e, "employeeIdentifier")) } td { (s(e, "eventTypeName")) } }
                                    }
                                }
                            }
                        }
                    }
                },
            )))
        }
        .await,
    )
}

/// `POST …/grant`: `level` and `until` (a `datetime-local` value, read as UTC).
pub async fn grant(
    State(console): State<Console>,
    signed: Signed,
    Path((group, name)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            signed.check_csrf(&form)?;
            let ctx = group_page(&console, &signed, &group).await?;
            let until = field(&form, "until");
            let end = NaiveDateTime::parse_from_str(until, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(until, "%Y-%m-%dT%H:%M:%S"))
                .map_err(|_| bad_input("The end time must be a date and time (UTC)."))?
                .and_utc();
            let body = json!({
                "grantType": field(&form, "level"),
                "expirationTime": end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            let path = format!(
                "/groups/{}/clusters/{}:grantMongoDBEmployeeAccess",
                ctx.group.id,
                enc(&name)
            );
            let back = format!("/groups/{}/clusters/{}", ctx.group.id, enc(&name));
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::POST, path, V, Some(body)),
                &back,
            )
            .await
        }
        .await,
    )
}

/// `POST …/revoke`.
pub async fn revoke(
    State(console): State<Console>,
    signed: Signed,
    Path((group, name)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let path = format!(
                "/groups/{}/clusters/{}:revokeMongoDBEmployeeAccess",
                ctx.group.id,
                enc(&name)
            );
            let back = format!("/groups/{}/clusters/{}", ctx.group.id, enc(&name));
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::POST, path, V, None),
                &back,
            )
            .await
        }
        .await,
    )
}
