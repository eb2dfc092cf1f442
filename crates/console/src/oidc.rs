//! Sign-in through an OpenID Connect identity provider (authorization code with PKCE, the
//! `openidconnect` crate): the providers are the OIDC workforce identity providers an
//! organization signs in through (the federation API's connected org configs). The provider
//! is a public client (Atlas' workforce providers have no client secret), so PKCE (S256) is
//! what binds the code to this browser; `state` and `nonce` are checked too, and the sign-in
//! in progress is sealed in the store and taken once.
//!
//! At the callback the ID token is verified (signature by the provider's JWKS, issuer,
//! audience, expiry, nonce); the person is the token's `userClaim` (an email address) and
//! their groups its `groupsClaim`. In each organization connected to the provider (and whose
//! domain restriction admits the address), the person's roles become the post-sign-in grants
//! plus the role mappings of their groups (`tessera_domain::federation::roles_from_groups`),
//! written as one people edit with its events; an organization that maps no role to them
//! leaves their membership as it is.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use serde_json::Value;
use tessera_domain::federation::{sign_in_grants, IdentityProvider, IdpType, SignInGrants};
use tessera_domain::people::{CloudUser, Member, OrgPeople};
use tessera_domain::{
    GroupId, GroupRole, IdentityProviderId, OrgId, OrgRole, Principal, PrincipalKind,
};
use tessera_store::PeopleEdit;

use crate::layout::PageError;
use crate::login::{keep, pending, start_session, Pending, Step};
use crate::session::{self, clear, new_id, LOGIN_COOKIE};
use crate::Console;

/// The identity providers the sign-in page offers: (id, display name).
pub async fn offered(console: &Console) -> Result<Vec<(String, String)>, PageError> {
    Ok(console
        .app
        .store
        .oidc_workforce_providers()
        .await?
        .into_iter()
        .map(|p| (p.id.to_string(), p.config.display_name))
        .collect())
}

fn refused(detail: &str) -> PageError {
    PageError::new(StatusCode::UNAUTHORIZED, "Sign-in failed", detail)
}

async fn provider(console: &Console, id: &str) -> Result<IdentityProvider, PageError> {
    let id = IdentityProviderId::parse(id).map_err(|_| PageError::not_found())?;
    let p = console
        .app
        .store
        .identity_provider(id)
        .await?
        .filter(|p| p.config.idp_type == IdpType::Workforce)
        .ok_or_else(PageError::not_found)?;
    Ok(p)
}

fn redirect_uri(console: &Console) -> Result<RedirectUrl, PageError> {
    RedirectUrl::new(format!(
        "{}/login/oidc/callback",
        console.app.settings.public_url
    ))
    .map_err(|e| PageError::internal(&e.to_string()))
}

async fn client(
    console: &Console,
    p: &IdentityProvider,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    PageError,
> {
    let issuer = IssuerUrl::new(p.config.issuer_uri.clone())
        .map_err(|_| refused("The identity provider's issuer is not a URL."))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &console.http)
        .await
        .map_err(|e| {
            tracing::warn!(idp = %p.id, error = %e, "OIDC discovery failed");
            PageError::new(
                StatusCode::BAD_GATEWAY,
                "Identity provider unavailable",
                "The identity provider could not be reached. Try again later.",
            )
        })?;
    let client_id = p
        .config
        .client_id
        .clone()
        .ok_or_else(|| refused("The identity provider has no client id."))?;
    Ok(
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id), None)
            .set_redirect_uri(redirect_uri(console)?),
    )
}

/// `GET /login/oidc/{idp}`: to the provider, with PKCE, `state` and `nonce`.
pub async fn start(State(console): State<Console>, Path(idp): Path<String>) -> Response {
    let run = async {
        let p = provider(&console, &idp).await?;
        let client = client(&console, &p).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        let mut scopes = p.config.requested_scopes.clone();
        if scopes.is_empty() {
            scopes = vec!["email".into(), "profile".into()];
        }
        for s in scopes.into_iter().filter(|s| s != "openid") {
            req = req.add_scope(Scope::new(s));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        let set = keep(
            &console,
            &Pending {
                csrf: new_id()?,
                attempts: 0,
                step: Step::Oidc {
                    idp: p.id.to_string(),
                    state: state.secret().clone(),
                    nonce: nonce.secret().clone(),
                    verifier: verifier.secret().clone(),
                },
            },
        )
        .await?;
        let mut res = Redirect::to(url.as_str()).into_response();
        res.headers_mut().append(header::SET_COOKIE, set);
        Ok::<_, PageError>(res)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/oidc/callback`: the code exchanged (with the PKCE verifier), the ID token
/// verified, the person's roles set from their groups, a session started.
pub async fn callback(
    State(console): State<Console>,
    parts: axum::http::request::Parts,
    Query(q): Query<Callback>,
) -> Response {
    let peer = session::peer(&console, &parts);
    let run = async {
        // Taken once, whatever happens next: a callback is never replayed.
        let Some((_, p)) = pending(&console, &parts.headers, true).await? else {
            return Err(refused(
                "This sign-in expired or was already used. Start again.",
            ));
        };
        let Step::Oidc {
            idp,
            state,
            nonce,
            verifier,
        } = p.step
        else {
            return Err(refused("This sign-in expired. Start again."));
        };
        if let Some(e) = q.error {
            tracing::info!(error = %e, "identity provider refused the sign-in");
            return Err(refused("The identity provider did not sign you in."));
        }
        let given = q.state.unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            state.as_bytes(),
        )) {
            return Err(refused("The sign-in's state does not match. Start again."));
        }
        let provider = provider(&console, &idp).await?;
        let client = client(&console, &provider).await?;
        let code = q
            .code
            .ok_or_else(|| refused("The identity provider sent no code."))?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| PageError::internal(&e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&console.http)
            .await
            .map_err(|e| {
                tracing::info!(error = %e, "OIDC code exchange failed");
                refused("The identity provider did not accept the sign-in.")
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| refused("The identity provider sent no ID token."))?;
        let mut verifier = client.id_token_verifier();
        if let Some(aud) = provider.config.audience.clone() {
            verifier = verifier.set_other_audience_verifier_fn(move |a| **a == aud);
        }
        id_token
            .claims(&verifier, &Nonce::new(nonce))
            .map_err(|e| {
                tracing::info!(error = %e, "OIDC ID token refused");
                refused("The identity provider's ID token was not valid.")
            })?;
        // Verified above (signature, issuer, audience, expiry, nonce): its claims are read
        // as JSON for the provider's own claim names.
        let claims = payload(&id_token.to_string())?;
        let user_claim = provider.config.user_claim.as_deref().unwrap_or("sub");
        let username = claims[user_claim]
            .as_str()
            .map(str::to_lowercase)
            .and_then(|u| tessera_domain::people::parse_username("username", &u).ok())
            .ok_or_else(|| refused("The ID token does not name you by an email address."))?;
        let groups_claim = provider.config.groups_claim.as_deref().unwrap_or("groups");
        let groups: Vec<String> = claims[groups_claim]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let user = provision(&console, &provider, &username, &groups).await?;
        let mut res =
            start_session(&console, &user, &format!("oidc:{}", provider.id), peer).await?;
        res.headers_mut()
            .append(header::SET_COOKIE, clear(LOGIN_COOKIE));
        Ok(res)
    };
    run.await.unwrap_or_else(|e| {
        crate::login::failed(&console, None, None, peer);
        e.into_response()
    })
}

/// The claims of a compact JWS (its middle part).
fn payload(jwt: &str) -> Result<Value, PageError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| refused("The ID token is malformed."))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| refused("The ID token is malformed."))?;
    serde_json::from_slice(&bytes).map_err(|_| refused("The ID token is malformed."))
}

/// The person signing in, created if new, with the roles each connected organization maps
/// to their groups.
async fn provision(
    console: &Console,
    provider: &IdentityProvider,
    username: &str,
    groups: &[String],
) -> Result<CloudUser, PageError> {
    let store = &console.app.store;
    let now = console.app.clock.now();
    let mut grants: Vec<(OrgId, SignInGrants)> = Vec::new();
    for (config, mappings) in store.connected_orgs_of_provider(provider.id).await? {
        if let Some((org_roles, projects)) = sign_in_grants(&config, &mappings, groups, username) {
            grants.push((config.org_id, (org_roles, projects)));
        }
    }
    let existing = store.find_cloud_user(username).await?;
    let user = existing.clone().unwrap_or_else(|| CloudUser {
        id: tessera_domain::UserId::generate(now),
        username: username.to_owned(),
        first_name: None,
        last_name: None,
        country: None,
        mobile_number: None,
        password_hash: None,
        created_at: now,
    });
    let actor = |org: OrgId, roles: &[OrgRole]| Principal {
        kind: PrincipalKind::User {
            id: user.id,
            username: user.username.clone(),
        },
        org_id: org,
        org_roles: roles.to_vec(),
        group_roles: Default::default(),
        remote_address: None,
    };
    let actors: Vec<Principal> = grants.iter().map(|(o, (r, _))| actor(*o, r)).collect();
    let mut edits: Vec<(OrgId, Box<dyn PeopleEdit + '_>)> = Vec::new();
    for ((org, (org_roles, groups)), caller) in grants.into_iter().zip(actors.iter()) {
        let person = user.clone();
        edits.push((
            org,
            Box::new(tessera_http::routes::people_edit::Edit::new(
                &console.app,
                caller,
                move |p: &mut OrgPeople| set_roles(p, person, org_roles, groups),
            )),
        ));
    }
    if existing.is_none() {
        let mut refs: Vec<(OrgId, &mut (dyn PeopleEdit + '_))> =
            edits.iter_mut().map(|(o, e)| (*o, &mut **e as _)).collect();
        store.create_cloud_user(&user, now, &mut refs, &[]).await?;
    } else {
        for (org, e) in edits.iter_mut() {
            if let tessera_store::Edited::Refused(why) =
                store.edit_people(*org, now, &mut **e).await?
            {
                // The organization's own rules win (its last owner stays); sign-in goes on.
                tracing::warn!(%org, %why, "role mapping not applied at sign-in");
            }
        }
    }
    Ok(user)
}

/// The person's membership with exactly the mapped roles (active: signing in through the
/// organization's provider accepts any open invitation).
fn set_roles(
    p: &mut OrgPeople,
    user: CloudUser,
    org_roles: Vec<OrgRole>,
    groups: BTreeMap<GroupId, Vec<GroupRole>>,
) -> Result<(), tessera_domain::people::PeopleError> {
    match p.member_mut(user.id) {
        Ok(m) => {
            m.invitation = None;
            m.org_roles = org_roles;
            m.group_roles = groups;
            Ok(())
        }
        Err(_) => p.add_member(Member {
            user,
            invitation: None,
            org_roles,
            group_roles: groups,
        }),
    }
}
