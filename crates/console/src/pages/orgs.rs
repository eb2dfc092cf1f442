//! Organizations: the person's organizations and pending invitations (`/`), an organization's
//! projects (`/orgs/{orgId}`), and accepting an invitation.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use tessera_domain::{OrgId, Principal, PrincipalKind};
use tessera_http::authz::Verb;
use tessera_http::routes::people_edit;

use super::{may, org_page, respond};
use crate::api::{results, s};
use crate::layout::{csrf, ok, page, PageError, Place};
use crate::session::Signed;
use crate::Console;

/// `GET /`: the organizations the person is an active member of, and their open invitations.
pub async fn home(State(console): State<Console>, signed: Signed) -> Response {
    respond(
        async {
            let store = &console.app.store;
            let mut orgs = Vec::new();
            for id in signed.principals.keys() {
                if let Some(o) = store.get_org(*id).await? {
                    orgs.push(o);
                }
            }
            orgs.sort_by_key(|o| o.name.to_lowercase());
            let now = console.app.clock.now();
            let mut invitations = Vec::new();
            for id in store.orgs_of_user(signed.user.id).await? {
                if signed.principals.contains_key(&id) {
                    continue;
                }
                let people = store.org_people(id).await?;
                let open = people
                    .member(signed.user.id)
                    .is_some_and(|m| !m.is_active() && !m.is_expired(now));
                if open {
                    if let Some(o) = store.get_org(id).await? {
                        invitations.push(o);
                    }
                }
            }
            Ok(ok(page(
                "Organizations",
                Some(&signed),
                &Place::default(),
                html! {
                    h1 { "Organizations" }
                    @if orgs.is_empty() {
                        p { "You are not a member of any organization yet." }
                    }
                    ul.cards {
                        @for o in &orgs {
                            li { a href={ "/orgs/" (o.id) } { (o.name) } }
                        }
                    }
                    @if !invitations.is_empty() {
                        h2 { "Invitations" }
                        ul {
                            @for o in &invitations {
                                li {
                                    form.inline method="post" action={ "/invitations/" (o.id) "/accept" } {
                                        (csrf(&signed))
                                        button type="submit" { "Accept invitation to " (o.name) }
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

/// `GET /orgs/{orgId}`: the organization's projects the person may see.
pub async fn overview(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let ctx = org_page(&console, &signed, &org).await?;
            let groups = ctx
                .api
                .get(&format!("/orgs/{}/groups?itemsPerPage=500", ctx.org.id), "2023-01-01")
                .await?;
            let can_create = may(ctx.principal, Verb::Post, "/groups", ctx.on());
            Ok(ok(page(
                &ctx.org.name,
                Some(&signed),
                &Place {
                    org: Some((ctx.org.id, &ctx.org.name)),
                    current: "Projects",
                    ..Place::default()
                },
                html! {
                    h1 { (ctx.org.name) }
                    h2 { "Projects" }
                    ul.cards {
                        @for g in results(&groups) {
                            li { a href={ "/groups/" (s(g, "id")) } { (s(g, "name")) } }
                        }
                    }
                    @if results(&groups).is_empty() { p { "No projects you can see." } }
                    @if can_create { p.hint { "Projects are created through the API (POST /api/atlas/v2/groups)." } }
                },
            )))
        }
        .await,
    )
}

/// `POST /invitations/{orgId}/accept`: the person accepts their open invitation to the
/// organization; their membership becomes active with the roles it was offered.
pub async fn accept(
    State(console): State<Console>,
    signed: Signed,
    Path(org): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    respond(
        async {
            signed.check_csrf(&form)?;
            let org = OrgId::parse(&org).map_err(|_| PageError::not_found())?;
            let now = console.app.clock.now();
            let me = signed.user.id;
            // The person acts for themselves, with no role yet in the organization.
            let caller = Principal {
                kind: PrincipalKind::User {
                    id: me,
                    username: signed.user.username.clone(),
                },
                org_id: org,
                org_roles: Vec::new(),
                group_roles: HashMap::new(),
                remote_address: Some(signed.peer),
            };
            people_edit::edit(&console.app, &caller, org, move |people| {
                let m = people.member_mut(me)?;
                if m.is_active() {
                    return Ok(());
                }
                if m.is_expired(now) {
                    return Err(tessera_domain::people::PeopleError::InvitationNotFound(
                        me.to_string(),
                    ));
                }
                m.invitation = None;
                Ok(())
            })
            .await
            .map_err(|e| PageError::new(e.status, "Could not accept", &e.detail))?;
            Ok(Redirect::to(&format!("/orgs/{org}")).into_response())
        }
        .await,
    )
}
