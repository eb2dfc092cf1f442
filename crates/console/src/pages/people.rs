//! People: an organization's users (invite, remove), its teams (create), a project's users.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::{json, Value};
use tessera_domain::OrgRole;
use tessera_http::authz::Verb;

use super::{enc, field, group_page, may, org_page, respond, submit, OrgPage};
use crate::api::{results, s};
use crate::layout::{csrf, ok, page, post_button, Place};
use crate::session::Signed;
use crate::Console;

const USERS_V: &str = "2025-02-19";

fn place<'a>(ctx: &'a OrgPage<'_>, current: &'a str) -> Place<'a> {
    Place {
        org: Some((ctx.org.id, &ctx.org.name)),
        current,
        ..Place::default()
    }
}

fn strings(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /orgs/{orgId}/users`.
pub async fn org_users(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/users", ctx.org.id);
            let list = ctx.api.get(&format!("{base}?itemsPerPage=500"), USERS_V).await?;
            let can_invite = may(ctx.principal, Verb::Post, "/orgs/{orgId}/users", ctx.on());
            let can_remove = may(ctx.principal, Verb::Delete, "/orgs/{orgId}/users/{userId}", ctx.on());
            Ok(ok(page(
                "Users",
                Some(&signed),
                &place(&ctx, "Users"),
                html! {
                    h1 { "Users" }
                    table #users {
                        thead { tr { th scope="col" { "User" } th scope="col" { "Status" } th scope="col" { "Roles" } @if can_remove { th scope="col" { span.visually-hidden { "Actions" } } } } }
                        tbody {
                            @for u in results(&list) {
                                tr {
                                    td { (s(u, "username")) }
                                    td { (s(u, "orgMembershipStatus")) }
                                    td { (strings(&u["roles"]["orgRoles"])) }
                                    @if can_remove {
                                        td { (post_button(&signed, &format!("{base}/{}/remove", enc(s(u, "id"))), "Remove", &format!("Remove {}", s(u, "username")), &[])) }
                                    }
                                }
                            }
                        }
                    }
                    @if can_invite {
                        h2 { "Invite a user" }
                        form.stack method="post" action=(base) {
                            (csrf(&signed))
                            label for="username" { "Email" }
                            input #username name="username" type="email" required;
                            label for="role" { "Role" }
                            select #role name="role" {
                                @for r in OrgRole::ALL {
                                    option value=(r.as_str()) selected[r.as_str() == super::DEFAULT_ORG_ROLE] { (r.as_str()) }
                                }
                            }
                            button type="submit" { "Invite" }
                        }
                    }
                },
            )))
        }
        .await,
    )
}

/// `POST /orgs/{orgId}/users`: an invitation.
pub async fn invite(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/users", ctx.org.id);
            let body = json!({ "username": field(&form, "username"), "roles": { "orgRoles": [field(&form, "role")] } });
            submit(&ctx.api, &signed, &form, (Method::POST, base.clone(), USERS_V, Some(body)), &base).await
        }
        .await,
    )
}

/// `POST /orgs/{orgId}/users/{userId}/remove`.
pub async fn remove(
    State(console): State<Console>,
    signed: Signed,
    Path((org, user)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/users", ctx.org.id);
            let path = format!("{base}/{}", enc(&user));
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::DELETE, path, USERS_V, None),
                &base,
            )
            .await
        }
        .await,
    )
}

/// `GET /orgs/{orgId}/teams`.
pub async fn teams(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/teams", ctx.org.id);
            let list = ctx
                .api
                .get(&format!("{base}?itemsPerPage=500"), "2023-01-01")
                .await?;
            let can_create = may(ctx.principal, Verb::Post, "/orgs/{orgId}/teams", ctx.on());
            Ok(ok(page(
                "Teams",
                Some(&signed),
                &place(&ctx, "Teams"),
                html! {
                    h1 { "Teams" }
                    @if results(&list).is_empty() { p { "No teams." } } @else {
                        ul { @for t in results(&list) { li { (s(t, "name")) } } }
                    }
                    @if can_create {
                        h2 { "New team" }
                        form.stack method="post" action=(base) {
                            (csrf(&signed))
                            label for="name" { "Team name" }
                            input #name name="name" required;
                            label for="members" { "Members (emails, comma-separated)" }
                            input #members name="members" required;
                            button type="submit" { "Create team" }
                        }
                    }
                },
            )))
        }
        .await,
    )
}

/// `POST /orgs/{orgId}/teams`.
pub async fn create_team(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/teams", ctx.org.id);
            let members: Vec<&str> = field(&form, "members")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect();
            let body = json!({ "name": field(&form, "name"), "usernames": members });
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::POST, base.clone(), "2023-01-01", Some(body)),
                &base,
            )
            .await
        }
        .await,
    )
}

/// `GET /groups/{groupId}/users`.
pub async fn group_users(
    State(console): State<Console>,
    signed: Signed,
    Path(group): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = group_page(&console, &signed, &group).await?;
            let list = ctx
                .api
                .get(
                    &format!("/groups/{}/users?itemsPerPage=500", ctx.group.id),
                    USERS_V,
                )
                .await?;
            Ok(ok(page(
                "Project users",
                Some(&signed),
                &Place {
                    org: Some((ctx.org.id, &ctx.org.name)),
                    group: Some((ctx.group.id, &ctx.group.name)),
                    current: "Users",
                },
                html! {
                    h1 { "Project users" }
                    table {
                        thead { tr { th scope="col" { "User" } th scope="col" { "Roles" } } }
                        tbody {
                            @for u in results(&list) {
                                tr { td { (s(u, "username")) } td { (strings(&u["roles"])) } }
                            }
                        }
                    }
                },
            )))
        }
        .await,
    )
}
