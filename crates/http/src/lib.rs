//! Tessera's HTTP layer.
//!
//! [`app`] builds the whole router from one route table ([`api_routes`]) mounted at
//! `/api/atlas/v2` (versioned media types) and at `/api/public/v1.0` (`application/json`; also
//! at `/api/atlas/v1.0`, where Atlas' own v1.0 clients look for it).
//! The dialect is a parameter carried in request extensions, not a copy of the handlers.
//!
//! Every route registered here has its authorization rule in [`authz::TABLE`], one row per
//! (mount, method, path); handlers read it with [`authz::RouteRule`]. `tests/tidy.rs` reads the
//! `.route(` calls of this file and fails when a route has no row or a row no route.
//!
//! Architecture invariant: this crate is the only one that knows about HTTP and JSON wire
//! shapes. It never builds SQL; it calls `tessera_store::Store`.

pub mod audit;
pub mod auth;
pub mod auth_failures;
pub mod authz;
pub mod client_addr;
pub mod cluster_schema;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod query;
pub mod registry;
pub mod render;
mod revoked;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod tokens;
pub mod version;
pub mod wire;

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;

use error::ApiError;
use routes::federation_orgs as fed_orgs;
use routes::service_accounts as sa;
use routes::{api_key_access, api_keys, events, groups, network_access as net, orgs};
use routes::{group_users, invitations, people, settings, teams};
pub use state::{AppState, AppStateInner, Crypto, HttpSettings};

/// How long a request waits for a node that is out of date with the store to catch up
/// before it is refused with 503 (see `registry::Registry::ensure_fresh`).
pub const STALE_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);
use version::{versioned, Dialect, Versions, V2023, V2024};

/// One family of routes that share their resource versions.
fn family(router: Router<AppState>, versions: Versions) -> Router<AppState> {
    router.route_layer(from_fn_with_state(versions, versioned))
}

/// The route table shared by both dialects (each route's rule: [`authz::TABLE`], `Mount::Api`).
pub fn api_routes() -> Router<AppState> {
    let foundation = Router::new()
        .route("/", get(routes::system_status::get))
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route(
            "/orgs/{orgId}",
            get(orgs::get).patch(orgs::update).delete(orgs::delete),
        )
        .route("/orgs/{orgId}/groups", get(orgs::list_groups))
        .route("/orgs/{orgId}/events", get(events::list_org))
        .route("/orgs/{orgId}/events/{eventId}", get(events::get_org))
        .route("/clusters", get(routes::clusters::list_all))
        .route("/eventTypes", get(events::list_types))
        .route("/groups/{groupId}/ipAddresses", get(net::ip_addresses))
        .route(
            "/groups/{groupId}/databaseUsers/{username}/certs",
            get(routes::x509::list).post(routes::x509::create),
        )
        .route(
            "/groups/{groupId}/userSecurity",
            get(routes::x509::get_user_security).patch(routes::x509::update_user_security),
        )
        .route(
            "/groups/{groupId}/userSecurity/customerX509",
            axum::routing::delete(routes::x509::disable_customer_x509),
        )
        .route(
            "/groups/{groupId}/customDBRoles/roles",
            get(routes::custom_roles::list).post(routes::custom_roles::create),
        )
        .route(
            "/groups/{groupId}/customDBRoles/roles/{roleName}",
            get(routes::custom_roles::get)
                .patch(routes::custom_roles::update)
                .delete(routes::custom_roles::delete),
        )
        .route(
            "/groups/{groupId}/containers",
            get(routes::cluster_extras::containers),
        )
        .route(
            "/groups/{groupId}/databaseUsers",
            get(routes::database_users::list).post(routes::database_users::create),
        )
        .route(
            "/groups/{groupId}/databaseUsers/{databaseName}/{username}",
            get(routes::database_users::get)
                .patch(routes::database_users::update)
                .delete(routes::database_users::delete),
        )
        .route(
            "/groups/{groupId}/accessList",
            get(net::list).post(net::create),
        )
        .route(
            "/groups/{groupId}/accessList/{entryValue}",
            get(net::get).delete(net::delete),
        )
        .route(
            "/groups/{groupId}/accessList/{entryValue}/status",
            get(net::status),
        )
        // Cloud Manager's name for the same list, before July 2021.
        .route(
            "/groups/{groupId}/whitelist",
            get(net::list).post(net::create),
        )
        .route(
            "/groups/{groupId}/whitelist/{entryValue}",
            get(net::get).delete(net::delete),
        )
        .route("/groups/{groupId}/events", get(events::list_group))
        .route("/groups/{groupId}/events/{eventId}", get(events::get_group))
        .route(
            "/orgs/{orgId}/apiKeys",
            get(api_keys::list_org).post(api_keys::create_org),
        )
        .route(
            "/orgs/{orgId}/apiKeys/{apiUserId}",
            get(api_keys::get_org)
                .patch(api_keys::update_org)
                .delete(api_keys::delete_org),
        )
        .route(
            "/orgs/{orgId}/apiKeys/{apiUserId}/accessList",
            get(api_key_access::list).post(api_key_access::add),
        )
        .route(
            "/orgs/{orgId}/apiKeys/{apiUserId}/accessList/{ipAddress}",
            get(api_key_access::get).delete(api_key_access::delete),
        )
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{groupId}",
            get(groups::get)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route("/groups/byName/{groupName}", get(groups::get_by_name))
        .route(
            "/groups/{groupId}/apiKeys",
            get(api_keys::list_group).post(api_keys::create_group),
        )
        .route(
            "/groups/{groupId}/apiKeys/{apiUserId}",
            post(api_keys::assign)
                .patch(api_keys::update_group)
                .delete(api_keys::unassign),
        );
    let service_accounts = Router::new()
        .route(
            "/orgs/{orgId}/serviceAccounts",
            get(sa::list).post(sa::create),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}",
            get(sa::get).patch(sa::update).delete(sa::delete),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}/secrets",
            post(sa::create_secret),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}",
            axum::routing::delete(sa::delete_secret),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}/accessList",
            get(sa::list_access).post(sa::add_access),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}/accessList/{ipAddress}",
            axum::routing::delete(sa::delete_access),
        )
        .route(
            "/orgs/{orgId}/serviceAccounts/{clientId}/groups",
            get(sa::list_groups),
        )
        .route(
            "/groups/{groupId}/serviceAccounts",
            get(routes::group_service_accounts::list).post(routes::group_service_accounts::create),
        )
        // `POST` is `{clientId}:invite` (the handler splits off the action).
        .route(
            "/groups/{groupId}/serviceAccounts/{clientId}",
            get(routes::group_service_accounts::get)
                .patch(routes::group_service_accounts::update)
                .delete(routes::group_service_accounts::delete)
                .post(routes::group_service_accounts::action),
        )
        .route(
            "/groups/{groupId}/serviceAccounts/{clientId}/secrets",
            post(routes::group_service_accounts::create_secret),
        )
        .route(
            "/groups/{groupId}/serviceAccounts/{clientId}/secrets/{secretId}",
            axum::routing::delete(routes::group_service_accounts::delete_secret),
        )
        .route(
            "/groups/{groupId}/serviceAccounts/{clientId}/accessList",
            get(routes::group_service_accounts::list_access)
                .post(routes::group_service_accounts::add_access),
        )
        .route(
            "/groups/{groupId}/serviceAccounts/{clientId}/accessList/{ipAddress}",
            axum::routing::delete(routes::group_service_accounts::delete_access),
        );
    // Reading clusters: 2023-02-01 (the Atlas CLI's `clusters list|describe`) and 2024-08-05.
    let cluster_reads = Router::new()
        .route("/groups/{groupId}/clusters", get(routes::clusters::list))
        .route(
            "/groups/{groupId}/clusters/{clusterName}",
            get(routes::clusters::get),
        );
    // Creating and changing: 2024-08-05 and 2024-10-23 (the same document).
    let cluster_writes = Router::new()
        .route("/groups/{groupId}/clusters", post(routes::clusters::create))
        .route(
            "/groups/{groupId}/clusters/{clusterName}",
            axum::routing::patch(routes::clusters::update),
        );
    // `POST` is `{clusterName}:grantMongoDBEmployeeAccess` or
    // `{clusterName}:revokeMongoDBEmployeeAccess` (the handler splits off the action).
    let clusters = Router::new().route(
        "/groups/{groupId}/clusters/{clusterName}",
        post(routes::clusters::action),
    );
    // Process arguments: 2023-01-01 and 2024-08-05 (the same fields here).
    let process_args = Router::new().route(
        "/groups/{groupId}/clusters/{clusterName}/processArgs",
        get(routes::cluster_extras::process_args)
            .patch(routes::cluster_extras::update_process_args),
    );
    // `deleteCluster` exists at 2023-02-01 (the only version in Atlas' description, which the
    // Atlas CLI, the Go SDK and Terraform send) and at 2024-08-05.
    let flex = Router::new().route(
        "/groups/{groupId}/flexClusters",
        get(routes::clusters::list_flex),
    );
    let cluster_delete = Router::new().route(
        "/groups/{groupId}/clusters/{clusterName}",
        axum::routing::delete(routes::clusters::delete),
    );
    let control_plane =
        Router::new().route("/unauth/controlPlaneIPAddresses", get(net::control_plane));
    // People, teams, invitations, settings and limits at 2023-01-01 (their only version).
    let people_2023 = Router::new()
        .route("/users", post(routes::cloud_users::create_user))
        .route(
            "/users/{userId}",
            get(routes::cloud_users::get_user).patch(routes::cloud_users::update_user),
        )
        .route(
            "/users/byName/{userName}",
            get(routes::cloud_users::get_user_by_name),
        )
        .route(
            "/orgs/{orgId}/users/{userId}/roles",
            axum::routing::put(people::put_roles),
        )
        .route(
            "/groups/{groupId}/users/{userId}/roles",
            axum::routing::put(group_users::put_roles),
        )
        .route(
            "/orgs/{orgId}/invites",
            get(invitations::list)
                .post(invitations::create)
                .patch(invitations::update_by_name),
        )
        .route(
            "/orgs/{orgId}/invites/{invitationId}",
            get(invitations::get)
                .patch(invitations::update_by_id)
                .delete(invitations::delete),
        )
        .route(
            "/groups/{groupId}/invites",
            get(invitations::list_project)
                .post(invitations::create_project)
                .patch(invitations::update_project_by_name),
        )
        .route(
            "/groups/{groupId}/invites/{invitationId}",
            get(invitations::get_project)
                .patch(invitations::update_project_by_id)
                .delete(invitations::delete_project),
        )
        .route("/orgs/{orgId}/teams", get(teams::list).post(teams::create))
        .route(
            "/orgs/{orgId}/teams/{teamId}",
            get(teams::get).patch(teams::rename).delete(teams::delete),
        )
        .route(
            "/orgs/{orgId}/teams/byName/{teamName}",
            get(teams::get_by_name),
        )
        .route("/orgs/{orgId}/teams/{teamId}/users", post(teams::add_users))
        .route(
            "/orgs/{orgId}/teams/{teamId}/users/{userId}",
            axum::routing::delete(teams::remove_user),
        )
        .route(
            "/groups/{groupId}/teams",
            get(teams::list_project).post(teams::assign),
        )
        .route(
            "/groups/{groupId}/teams/{teamId}",
            get(teams::get_project)
                .patch(teams::update_roles)
                .delete(teams::unassign),
        )
        .route(
            "/orgs/{orgId}/settings",
            get(settings::get_org).patch(settings::update_org),
        )
        .route(
            "/groups/{groupId}/settings",
            get(settings::get_group).patch(settings::update_group),
        )
        .route("/groups/{groupId}/limits", get(settings::list_limits))
        .route(
            "/groups/{groupId}/limits/{limitName}",
            get(settings::get_limit)
                .patch(settings::set_limit)
                .delete(settings::delete_limit),
        )
        .route(
            "/groups/{groupId}/managedSlowMs",
            get(settings::managed_slow_ms),
        );
    // "MongoDB Cloud Users" of organizations, projects and teams at 2025-02-19.
    let people_2025 = Router::new()
        .route(
            "/orgs/{orgId}/users",
            get(people::list).post(people::create),
        )
        .route(
            "/orgs/{orgId}/users/{userId}",
            get(people::get)
                .patch(people::update)
                .delete(people::delete)
                .post(people::action),
        )
        .route(
            "/groups/{groupId}/users",
            get(group_users::list).post(group_users::add),
        )
        .route(
            "/groups/{groupId}/users/{userId}",
            get(group_users::get)
                .delete(group_users::delete)
                .post(group_users::action),
        )
        .route("/orgs/{orgId}/teams/{teamId}/users", get(teams::list_users))
        .route("/orgs/{orgId}/teams/{teamId}", post(teams::action));
    let project_access =
        Router::new().route("/groups/{groupId}/access", post(group_users::add_access));
    // Federated authentication (OIDC identity providers): 2023-01-01, except an identity
    // provider's create, get, update and delete (2023-11-15).
    let federation = Router::new()
        .route(
            "/orgs/{orgId}/federationSettings",
            get(routes::federation::get_settings),
        )
        .route(
            "/federationSettings/{federationSettingsId}/identityProviders",
            get(routes::federation::list_providers),
        )
        .route(
            "/federationSettings/{federationSettingsId}/connectedOrgConfigs",
            get(fed_orgs::list_configs),
        )
        .route(
            "/federationSettings/{federationSettingsId}/connectedOrgConfigs/{orgId}",
            get(fed_orgs::get_config)
                .patch(fed_orgs::update_config)
                .delete(fed_orgs::remove_config),
        )
        .route(
            "/federationSettings/{federationSettingsId}/connectedOrgConfigs/{orgId}/roleMappings",
            get(fed_orgs::list_mappings).post(fed_orgs::create_mapping),
        )
        .route(
            "/federationSettings/{federationSettingsId}/connectedOrgConfigs/{orgId}/roleMappings/{id}",
            get(fed_orgs::get_mapping)
                .put(fed_orgs::update_mapping)
                .delete(fed_orgs::delete_mapping),
        );
    let identity_providers = Router::new()
        .route(
            "/federationSettings/{federationSettingsId}/identityProviders",
            post(routes::federation::create_provider),
        )
        .route(
            "/federationSettings/{federationSettingsId}/identityProviders/{identityProviderId}",
            get(routes::federation::get_provider)
                .patch(routes::federation::update_provider)
                .delete(routes::federation::delete_provider),
        );
    family(foundation, V2023)
        .merge(family(control_plane, version::V_CONTROL_PLANE))
        .merge(family(service_accounts, V2024))
        .merge(family(clusters, V2024))
        .merge(family(cluster_reads, version::V_CLUSTER_READ))
        .merge(family(process_args, version::V_PROCESS_ARGS))
        .merge(family(cluster_writes, version::V_CLUSTER_WRITE))
        .merge(family(cluster_delete, version::V_DELETE_CLUSTER))
        .merge(family(flex, version::V_FLEX))
        .merge(family(people_2023, V2023))
        .merge(family(people_2025, version::V_USERS))
        .merge(family(project_access, version::V_PROJECT_ACCESS))
        .merge(family(federation, V2023))
        .merge(family(identity_providers, version::V_IDENTITY_PROVIDERS))
}

/// The OAuth 2.0 endpoints and discovery documents.
fn oauth_routes() -> Router<AppState> {
    Router::new()
        .route(oauth::TOKEN_PATH, post(oauth::token))
        .route("/api/private/ipinfo", get(net::ipinfo))
        .route(oauth::REVOKE_PATH, post(oauth::revoke))
        .route(oauth::INTROSPECT_PATH, post(oauth::introspect))
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
}

async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

/// An unknown path under an API base path: 401 with the Digest challenge before 404, since
/// Digest clients send credentials only after a challenge and would otherwise never learn
/// whether theirs are good.
async fn api_not_found(_: auth::Caller, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

/// The routes whose last segment may carry a colon action, and the actions each serves.
const ACTION_ROUTES: &[(&str, &[&str])] = &[
    ("{clientId}", &["invite"]),
    ("{userId}", &["addRole", "removeRole"]),
    ("{teamId}", &["addUser", "removeUser"]),
    (
        "{clusterName}",
        &["grantMongoDBEmployeeAccess", "revokeMongoDBEmployeeAccess"],
    ),
];

/// The router cannot split a path segment at `:`, so `{clientId}` and `{clientId}:invite`
/// (and `{clusterName}` and `{clusterName}:grantMongoDBEmployeeAccess`) share one route.
/// Each is its own resource with its own methods: an action takes only `POST`, the resource
/// itself `GET`, `HEAD`, `PATCH` and `DELETE`; any other method (`OPTIONS` included) is a 405
/// whose `Allow` names the methods of the one addressed. A `POST` that names no served action
/// (`clusters/tenantUpgrade`, `c1:pause`) is no operation at any version: it is marked
/// [`version::NotAnOperation`], so it is not version-negotiated, and its handler answers 404
/// after authentication. Runs before version negotiation and around the 405 fallback (see `dialect_router`).
async fn colon_action_methods(
    method: axum::http::Method,
    matched: axum::extract::MatchedPath,
    params: axum::extract::RawPathParams,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    let Some((param, actions)) = ACTION_ROUTES
        .iter()
        .find(|(p, _)| matched.as_str().ends_with(&format!("/{p}")))
    else {
        return next.run(request).await;
    };
    let param = param.trim_matches(|c| c == '{' || c == '}');
    let action = params
        .iter()
        .find(|(name, _)| *name == param)
        .and_then(|(_, value)| value.split_once(':'))
        .map(|(_, a)| a.to_owned());
    let allow = match (&action, &method) {
        (Some(a), &Method::POST) => {
            if !actions.contains(&a.as_str()) {
                request.extensions_mut().insert(version::NotAnOperation);
            }
            return next.run(request).await;
        }
        (None, &Method::POST) => {
            request.extensions_mut().insert(version::NotAnOperation);
            return next.run(request).await;
        }
        (None, m) if [Method::GET, Method::HEAD, Method::PATCH, Method::DELETE].contains(m) => {
            return next.run(request).await;
        }
        (Some(_), _) => "POST",
        (None, _) => "GET, HEAD, PATCH, DELETE",
    };
    ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
        .with_header(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static(allow),
        )
        .into_response()
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("handler panicked").into_response()
}

fn dialect_router(dialect: Dialect, max_body: usize) -> Router<AppState> {
    api_routes()
        .fallback(api_not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        // After the 405 fallback is set, so it wraps that too; outside every version layer.
        .route_layer(from_fn(colon_action_methods))
        .layer(from_fn_with_state(
            (dialect, render::BodyLimit(max_body)),
            render::render,
        ))
}

/// Tessera's own API (`/api/tessera/v1`): support decisions, for operator credentials only.
/// Rendered like the v1.0 surface (`application/json`, our error shape).
fn tessera_router(max_body: usize) -> Router<AppState> {
    Router::new()
        .route("/support/decisions", post(routes::support::decide))
        .route(
            "/groups/{groupId}/clusters/{clusterName}/access",
            get(routes::cluster_access::access),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(from_fn_with_state(
            (Dialect::V1, render::BodyLimit(max_body)),
            render::render,
        ))
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let max_body = state.settings.max_body_bytes;
    Router::new()
        .nest(Dialect::V2.base(), dialect_router(Dialect::V2, max_body))
        .nest(Dialect::V1.base(), dialect_router(Dialect::V1, max_body))
        .nest(
            version::V1_ATLAS_BASE,
            dialect_router(Dialect::V1, max_body),
        )
        .nest(routes::support::BASE, tessera_router(max_body))
        .merge(oauth_routes())
        .route("/healthz", get(telemetry::healthz))
        .route("/readyz", get(telemetry::readyz))
        .route("/metrics", get(telemetry::metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(telemetry::observe))
        .with_state(state)
}
