//! A project: its clusters (`/groups/{groupId}`), database users and IP access list.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;
use tessera_http::authz::Verb;

use super::{enc, field, group_page, may, respond, submit, GroupPage};
use crate::api::{results, s};
use crate::layout::{csrf, ok, page, post_button, time_left, Place};
use crate::session::Signed;
use crate::Console;

fn place<'a>(ctx: &'a GroupPage<'_>, current: &'a str) -> Place<'a> {
    Place {
        org: Some((ctx.org.id, &ctx.org.name)),
        group: Some((ctx.group.id, &ctx.group.name)),
        current,
    }
}

/// `GET /groups/{groupId}`: the project's clusters and their MongoDB employee access.
pub async fn overview(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let list = ctx
                .api
                .get(&format!("/groups/{}/clusters?itemsPerPage=500", ctx.group.id), "2024-08-05")
                .await?;
            let now = console.app.clock.now();
            Ok(ok(page(
                &ctx.group.name,
                Some(&signed),
                &place(&ctx, "Clusters"),
                html! {
                    h1 { (ctx.group.name) }
                    h2 { "Clusters" }
                    @if results(&list).is_empty() { p { "No clusters." } } @else {
                        table {
                            thead { tr { th scope="col" { "Name" } th scope="col" { "State" } th scope="col" { "MongoDB employee access" } } }
                            tbody {
                                @for c in results(&list) {
                                    tr {
                                        td { a href={ "/groups/" (ctx.group.id) "/clusters/" (enc(s(c, "name"))) } { (s(c, "name")) } }
                                        td { (s(c, "stateName")) }
                                        td { (super::clusters::grant_summary(c, now)) }
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

/// `GET /groups/{groupId}/databaseUsers`.
pub async fn database_users(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let list = ctx
                .api
                .get(&format!("/groups/{}/databaseUsers?itemsPerPage=500", ctx.group.id), "2023-01-01")
                .await?;
            Ok(ok(page(
                "Database users",
                Some(&signed),
                &place(&ctx, "Database users"),
                html! {
                    h1 { "Database users" }
                    @if results(&list).is_empty() { p { "No database users." } } @else {
                        table {
                            thead { tr { th scope="col" { "User" } th scope="col" { "Authentication database" } th scope="col" { "Roles" } } }
                            tbody {
                                @for u in results(&list) {
                                    tr {
                                        td { (s(u, "username")) }
                                        td { (s(u, "databaseName")) }
                                        td {
                                            @for r in u["roles"].as_array().cloned().unwrap_or_default() {
                                                (s(&r, "roleName")) "@" (s(&r, "databaseName")) br;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.hint { "Database users are created through the API or the Atlas CLI." }
                },
            )))
        }
        .await,
    )
}

const LIST: &str = "/groups/{groupId}/accessList";
const ONE: &str = "/groups/{groupId}/accessList/{entryValue}";

/// `GET /groups/{groupId}/accessList`.
pub async fn access_list(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let base = format!("/groups/{}/accessList", ctx.group.id);
            let list = ctx.api.get(&format!("{base}?itemsPerPage=500"), "2023-01-01").await?;
            let can_add = may(ctx.principal, Verb::Post, LIST, ctx.on());
            let can_remove = may(ctx.principal, Verb::Delete, ONE, ctx.on());
            let now = console.app.clock.now();
            Ok(ok(page(
                "IP access list",
                Some(&signed),
                &place(&ctx, "IP access list"),
                html! {
                    h1 { "IP access list" }
                    @if results(&list).is_empty() { p { "No entries: nothing may connect to this project's clusters." } } @else {
                        table #access-list {
                            thead { tr { th scope="col" { "Entry" } th scope="col" { "Comment" } th scope="col" { "Expires" } @if can_remove { th scope="col" { span.visually-hidden { "Actions" } } } } }
                            tbody {
                                @for e in results(&list) {
                                    @let value = entry_value(e);
                                    tr {
                                        td { code { (value) } }
                                        td { (s(e, "comment")) }
                                        td {
                                            @match e["deleteAfterDate"].as_str().and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok()) {
                                                Some(d) => { (time_left(now, d.with_timezone(&chrono::Utc))) }
                                                None => { "never" }
                                            }
                                        }
                                        @if can_remove {
                                            td { (post_button(&signed, &format!("{base}/remove"), "Remove", &format!("Remove {value}"), &[("entry", value)])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if can_add {
                        h2 { "Add an entry" }
                        form.stack method="post" action=(base) {
                            (csrf(&signed))
                            label for="entry" { "IP address or CIDR block" }
                            input #entry name="entry" required placeholder="203.0.113.7/32";
                            label for="comment" { "Comment" }
                            input #comment name="comment" maxlength="80";
                            button type="submit" { "Add entry" }
                        }
                    }
                },
            )))
        }
        .await,
    )
}

/// An entry's value as the API names it in a path: its CIDR block, else its address.
fn entry_value(e: &serde_json::Value) -> &str {
    match s(e, "cidrBlock") {
        "" => s(e, "ipAddress"),
        c => c,
    }
}

/// `POST /groups/{groupId}/accessList`.
pub async fn add_entry(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let entry = field(&form, "entry");
            let mut item = if entry.contains('/') {
                json!({ "cidrBlock": entry })
            } else {
                json!({ "ipAddress": entry })
            };
            let comment = field(&form, "comment");
            if !comment.is_empty() {
                item["comment"] = json!(comment);
            }
            let base = format!("/groups/{}/accessList", ctx.group.id);
            submit(
                &ctx.api,
                &signed,
                &form,
                (
                    Method::POST,
                    base.clone(),
                    "2023-01-01",
                    Some(json!([item])),
                ),
                &base,
            )
            .await
        }
        .await,
    )
}

/// `POST /groups/{groupId}/accessList/remove`.
pub async fn remove_entry(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let base = format!("/groups/{}/accessList", ctx.group.id);
            let path = format!("{base}/{}", enc(field(&form, "entry")));
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::DELETE, path, "2023-01-01", None),
                &base,
            )
            .await
        }
        .await,
    )
}
