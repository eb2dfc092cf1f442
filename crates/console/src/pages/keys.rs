//! Programmatic API keys and their access lists.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::{json, Value};
use tessera_http::authz::Verb;

use super::{enc, field, may, org_page, respond, submit, OrgPage};
use crate::api::{results, s};
use crate::layout::{csrf, ok, page, post_button, Place};
use crate::session::Signed;
use crate::Console;

const V: &str = "2023-01-01";
const ACCESS: &str = "/orgs/{orgId}/apiKeys/{apiUserId}/accessList";
const ACCESS_ONE: &str = "/orgs/{orgId}/apiKeys/{apiUserId}/accessList/{ipAddress}";

fn place<'a>(ctx: &'a OrgPage<'_>) -> Place<'a> {
    Place {
        org: Some((ctx.org.id, &ctx.org.name)),
        current: "API keys",
        ..Place::default()
    }
}

fn roles(k: &Value) -> String {
    k["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| s(x, "roleName"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /orgs/{orgId}/apiKeys`.
pub async fn list(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/apiKeys", ctx.org.id);
            let list = ctx.api.get(&format!("{base}?itemsPerPage=500"), V).await?;
            Ok(ok(page(
                "API keys",
                Some(&signed),
                &place(&ctx),
                html! {
                    h1 { "API keys" }
                    @if results(&list).is_empty() { p { "No API keys." } } @else {
                        table {
                            thead { tr { th scope="col" { "Public key" } th scope="col" { "Description" } th scope="col" { "Roles" } } }
                            tbody {
                                @for k in results(&list) {
                                    tr {
                                        td { a href={ (base) "/" (enc(s(k, "id"))) } { code { (s(k, "publicKey")) } } }
                                        td { (s(k, "desc")) }
                                        td { (roles(k)) }
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

/// `GET /orgs/{orgId}/apiKeys/{keyId}`: the key and its access list.
pub async fn detail(
    State(console): State<Console>,
    signed: Signed,
    Path((org, key)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/apiKeys/{}", ctx.org.id, enc(&key));
            let k = ctx.api.get(&base, V).await?;
            let list = ctx.api.get(&format!("{base}/accessList?itemsPerPage=500"), V).await?;
            let can_add = may(ctx.principal, Verb::Post, ACCESS, ctx.on());
            let can_remove = may(ctx.principal, Verb::Delete, ACCESS_ONE, ctx.on());
            Ok(ok(page(
                s(&k, "publicKey"),
                Some(&signed),
                &place(&ctx),
                html! {
                    h1 { "API key " code { (s(&k, "publicKey")) } }
                    dl {
                        dt { "Description" } dd { (s(&k, "desc")) }
                        dt { "Roles" } dd { (roles(&k)) }
                    }
                    h2 { "Access list" }
                    @if results(&list).is_empty() { p { "No entries: the key may be used from any address." } } @else {
                        table {
                            thead { tr { th scope="col" { "Entry" } th scope="col" { "Last used" } @if can_remove { th scope="col" { span.visually-hidden { "Actions" } } } } }
                            tbody {
                                @for e in results(&list) {
                                    @let value = match s(e, "cidrBlock") { "" => s(e, "ipAddress"), c => c };
                                    tr {
                                        td { code { (value) } }
                                        td { @if s(e, "lastUsed").is_empty() { "never" } @else { (s(e, "lastUsed")) } }
                                        @if can_remove {
                                            td { (post_button(&signed, &format!("{base}/accessList/remove"), "Remove", &format!("Remove {value}"), &[("entry", value)])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if can_add {
                        form.stack method="post" action={ (base) "/accessList" } {
                            (csrf(&signed))
                            label for="entry" { "IP address or CIDR block" }
                            input #entry name="entry" required;
                            button type="submit" { "Add entry" }
                        }
                    }
                },
            )))
        }
        .await,
    )
}

/// `POST /orgs/{orgId}/apiKeys/{keyId}/accessList`.
pub async fn add_entry(
    State(console): State<Console>,
    signed: Signed,
    Path((org, key)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/apiKeys/{}", ctx.org.id, enc(&key));
            let entry = field(&form, "entry");
            let item = if entry.contains('/') {
                json!({ "cidrBlock": entry })
            } else {
                json!({ "ipAddress": entry })
            };
            submit(
                &ctx.api,
                &signed,
                &form,
                (
                    Method::POST,
                    format!("{base}/accessList"),
                    V,
                    Some(json!([item])),
                ),
                &base,
            )
            .await
        }
        .await,
    )
}

/// `POST /orgs/{orgId}/apiKeys/{keyId}/accessList/remove`.
pub async fn remove_entry(
    State(console): State<Console>,
    signed: Signed,
    Path((org, key)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let base = format!("/orgs/{}/apiKeys/{}", ctx.org.id, enc(&key));
            let path = format!("{base}/accessList/{}", enc(field(&form, "entry")));
            submit(
                &ctx.api,
                &signed,
                &form,
                (Method::DELETE, path, V, None),
                &base,
            )
            .await
        }
        .await,
    )
}
