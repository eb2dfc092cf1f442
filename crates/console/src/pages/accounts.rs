//! Service accounts: the list with each secret's expiry and last use, creation (the new
//! secret shown once, on the account's page, then never again), and deletion.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::{json, Value};
use tessera_domain::OrgRole;
use tessera_http::authz::Verb;

use super::{
    bad_input, enc, field, may, org_page, respond, set_flash, submit, take_flash, OrgPage,
};
use crate::api::{results, s};
use crate::layout::{csrf, ok, page, post_button, Place};
use crate::session::Signed;
use crate::Console;

const V: &str = "2024-08-05";
const LIST: &str = "/orgs/{orgId}/serviceAccounts";
const ONE: &str = "/orgs/{orgId}/serviceAccounts/{clientId}";

fn secrets_table(account: &Value) -> Markup {
    let secrets = account["secrets"].as_array().cloned().unwrap_or_default();
    html! {
        @if secrets.is_empty() { p { "No secrets." } } @else {
            table {
                thead { tr { th scope="col" { "Secret" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Last used" } } }
                tbody {
                    @for sec in &secrets {
                        tr {
                            td { code { (s(sec, "maskedSecretValue")) } }
                            td { (s(sec, "createdAt")) }
                            td { (s(sec, "expiresAt")) }
                            td { @if s(sec, "lastUsedAt").is_empty() { "never" } @else { (s(sec, "lastUsedAt")) } }
                        }
                    }
                }
            }
        }
    }
}

fn place<'a>(ctx: &'a OrgPage<'_>) -> Place<'a> {
    Place {
        org: Some((ctx.org.id, &ctx.org.name)),
        current: "Service accounts",
        ..Place::default()
    }
}

/// `GET /orgs/{orgId}/serviceAccounts`.
pub async fn list(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/serviceAccounts", ctx.org.id);
            let list = ctx.api.get(&format!("{base}?itemsPerPage=500"), V).await?;
            let can_create = may(ctx.principal, Verb::Post, LIST, ctx.on());
            Ok(ok(page(
                "Service accounts",
                Some(&signed),
                &place(&ctx),
                html! {
                    h1 { "Service accounts" }
                    @if results(&list).is_empty() { p { "No service accounts yet." } } @else {
                        table #accounts {
                            thead { tr { th scope="col" { "Name" } th scope="col" { "Client ID" } th scope="col" { "Roles" } th scope="col" { "Secrets expire" } th scope="col" { "Last used" } } }
                            tbody {
                                @for a in results(&list) {
                                    @let secrets = a["secrets"].as_array().cloned().unwrap_or_default();
                                    tr {
                                        td { a href={ (base) "/" (enc(s(a, "clientId"))) } { (s(a, "name")) } }
                                        td { code { (s(a, "clientId")) } }
                                        td { (roles(a)) }
                                        td { @for sec in &secrets { (s(sec, "expiresAt")) br; } }
                                        td { @for sec in &secrets { @if s(sec, "lastUsedAt").is_empty() { "never" } @else { (s(sec, "lastUsedAt")) } br; } }
                                    }
                                }
                            }
                        }
                    }
                    @if can_create {
                        h2 { "New service account" }
                        form.stack method="post" action=(base) {
                            (csrf(&signed))
                            label for="name" { "Name" }
                            input #name name="name" required maxlength="64";
                            label for="description" { "Description" }
                            input #description name="description" required maxlength="250";
                            label for="role" { "Role" }
                            select #role name="role" {
                                @for r in OrgRole::ALL {
                                    option value=(r.as_str()) selected[r.as_str() == super::DEFAULT_ORG_ROLE] { (r.as_str()) }
                                }
                            }
                            label for="hours" { "Secret expires after (hours)" }
                            input #hours name="hours" type="number" min="8" max="8766" value="720" required;
                            button type="submit" { "Create service account" }
                        }
                    }
                },
            )))
        }
        .await,
    )
}

fn roles(a: &Value) -> String {
    a["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `POST /orgs/{orgId}/serviceAccounts`: creates the account; its secret goes to the
/// session's one-time message and the browser to the account's page.
pub async fn create(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            signed.check_csrf(&form)?;
            let ctx = org_page(&console, &signed, &org).await?;
            let hours: i64 = field(&form, "hours")
                .parse()
                .map_err(|_| bad_input("The secret's lifetime must be a number of hours."))?;
            let body = json!({
                "name": field(&form, "name"),
                "description": field(&form, "description"),
                "roles": [field(&form, "role")],
                "secretExpiresAfterHours": hours,
            });
            let path = format!("/orgs/{}/serviceAccounts", ctx.org.id);
            let made = ctx.api.ok(Method::POST, &path, V, Some(&body)).await?;
            let client_id = s(&made, "clientId").to_owned();
            if let Some(secret) = made["secrets"][0]["secret"].as_str() {
                set_flash(&console, &signed, secret).await?;
            }
            Ok(Redirect::to(&format!("{path}/{}", enc(&client_id))).into_response())
        }
        .await,
    )
}

/// `GET /orgs/{orgId}/serviceAccounts/{clientId}`: the account; a secret just made is shown
/// here once (taken from the session's one-time message).
pub async fn detail(
    State(console): State<Console>,
    signed: Signed,
    Path((org, client)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let path = format!("/orgs/{}/serviceAccounts/{}", ctx.org.id, enc(&client));
            let a = ctx.api.get(&path, V).await?;
            let fresh = take_flash(&console, &signed).await?;
            let can_delete = may(ctx.principal, Verb::Delete, ONE, ctx.on());
            Ok(ok(page(
                s(&a, "name"),
                Some(&signed),
                &place(&ctx),
                html! {
                    h1 { (s(&a, "name")) }
                    @if let Some(secret) = fresh {
                        section.secret aria-labelledby="new-secret-title" {
                            h2 #new-secret-title { "Your new client secret" }
                            p { "Copy it now: it will not be shown again." }
                            p.copyable {
                                code #new-secret { (secret) }
                                button type="button" data-copy="new-secret" { "Copy" }
                            }
                        }
                    }
                    dl {
                        dt { "Client ID" } dd { code { (s(&a, "clientId")) } }
                        dt { "Description" } dd { (s(&a, "description")) }
                        dt { "Roles" } dd { (roles(&a)) }
                        dt { "Created" } dd { (s(&a, "createdAt")) }
                    }
                    h2 { "Secrets" }
                    (secrets_table(&a))
                    @if can_delete {
                        (post_button(&signed, &format!("/orgs/{}/serviceAccounts/{}/delete", ctx.org.id, enc(&client)), "Delete service account", "Delete service account", &[]))
                    }
                },
            )))
        }
        .await,
    )
}

/// `POST …/{clientId}/delete`.
pub async fn delete(
    State(console): State<Console>,
    signed: Signed,
    Path((org, client)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let path = format!("/orgs/{}/serviceAccounts/{}", ctx.org.id, enc(&client));
            let back = format!("/orgs/{}/serviceAccounts", ctx.org.id);
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::DELETE, path, V, None),
                &back,
            )
            .await
        }
        .await,
    )
}
