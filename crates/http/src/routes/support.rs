//! Support access decisions (ours): `POST /api/tessera/v1/support/decisions`.
//!
//! The platform's support staff act on a customer's cluster only through this question: may
//! staff member X access cluster C at level L now? Only operator credentials (made by the
//! `tessera operators` CLI, stored keyed-hashed) may ask, with HTTP Basic
//! `operatorId:secret`; a customer's Digest key or Bearer token is refused (403), so no
//! customer credential can make support access appear used or allowed.
//!
//! The answer comes from the cluster's grant at the domain clock's `now`
//! (`tessera_domain::clusters::decide_support_access`). Every allowed decision is written as
//! `EMPLOYEE_ACCESS_USED` in the project's log before the answer, and only if the
//! grant it was decided on is still the stored one: a store failure is a 500, never an
//! unrecorded "allowed".

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tessera_domain::authorization::Presenter;
use tessera_domain::clusters::{decide_support_access, ClusterName, EmployeeAccessLevel};
use tessera_domain::names::StaffMember;
use tessera_domain::{EventId, EventType, GroupId, OperatorId};
use tessera_protocols::basic::parse_basic;
use tessera_store::events::{Actor, NewEvent};
use tessera_store::Operator;

use super::clusters::observe_expiry;
use crate::auth_failures::UNKNOWN_PRINCIPAL;
use crate::authz::RouteRule;
use crate::client_addr::client_addr;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::render::Reply;
use crate::state::AppState;

/// The base path of Tessera's own API.
pub const BASE: &str = "/api/tessera/v1";

/// The longest `staffMember` accepted.
pub use tessera_domain::names::MAX_STAFF_MEMBER_LEN;

/// An authenticated support operator, with the request's client address, admitted by its
/// route's rule (the table's `Operator`: operator credentials only).
pub struct OperatorCaller {
    pub operator: Operator,
    pub remote_address: std::net::IpAddr,
}

fn operator_challenge() -> ApiError {
    ApiError::unauthorized().with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Tessera support\""),
    )
}

fn operator_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "OPERATOR_CREDENTIALS_REQUIRED",
        "Only support operator credentials (HTTP Basic) may use this resource.",
    )
}

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let rule = RouteRule::of(parts)?;
        let Some(value) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(operator_challenge());
        };
        let scheme = value.split_whitespace().next().unwrap_or("");
        let customer =
            scheme.eq_ignore_ascii_case("digest") || scheme.eq_ignore_ascii_case("bearer");
        if customer && !rule.admits(Presenter::Customer) {
            // A customer's API key or service-account token: never an operator.
            return Err(operator_only());
        }
        let address = client_addr(parts, &state.settings.trusted_proxies);
        let failed = |principal: &str| {
            tracing::info!("support decision: operator authentication failed");
            state.registry.auth_failures.note(
                EventType::SupportOperatorAuthenticationFailed,
                None,
                principal,
                Actor::Anonymous,
                address,
                state.clock.now(),
            );
            operator_challenge()
        };
        let Ok((id, secret)) = parse_basic(value) else {
            return Err(failed(UNKNOWN_PRINCIPAL));
        };
        let (operator, principal) = match OperatorId::parse(&id) {
            Ok(id) => (state.store.get_operator(id).await?, id.to_string()),
            // Only a well-formed id is recorded (a swapped id/secret must not leak).
            Err(_) => (None, UNKNOWN_PRINCIPAL.to_owned()),
        };
        // One HMAC whether or not the operator exists: similar timing for both failures.
        let computed = state.crypto.hasher.hash(secret.expose());
        let Some(operator) = operator.filter(|op| {
            tessera_domain::secrets::SecretHasher::hashes_match(&computed, &op.secret_hash)
        }) else {
            return Err(failed(&principal));
        };
        if !rule.admits(Presenter::Operator) {
            return Err(operator_only());
        }
        Ok(OperatorCaller {
            operator,
            remote_address: address,
        })
    }
}

/// The question.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionIn {
    staff_member: String,
    group_id: String,
    cluster_name: String,
    grant_type: String,
}

fn answer(
    allowed: bool,
    reason: &str,
    grant: Option<tessera_domain::clusters::EmployeeAccessGrant>,
) -> Reply {
    Reply::ok(json!({
        "allowed": allowed,
        "reason": reason,
        "grantType": grant.map(|g| g.level.as_str()),
        "expiresAt": grant.map(|g| tessera_domain::time::format(g.expires_at)),
    }))
}

/// How often a decision is retaken when the grant changed between the read and the write.
const ATTEMPTS: usize = 3;

pub async fn decide(
    State(state): State<AppState>,
    op: OperatorCaller,
    ApiJson(body): ApiJson<DecisionIn>,
) -> ApiResult<Reply> {
    let staff = StaffMember::parse(&body.staff_member)?;
    let group_id = GroupId::parse(&body.group_id)?;
    let name = ClusterName::parse("clusterName", &body.cluster_name)?;
    let level: EmployeeAccessLevel = body
        .grant_type
        .parse()
        .map_err(|_| ApiError::invalid_enum("grantType", &body.grant_type))?;
    for _ in 0..ATTEMPTS {
        let Some(cluster) = state.store.get_cluster(group_id, name.as_str()).await? else {
            return Ok(answer(false, "UNKNOWN_CLUSTER", None));
        };
        observe_expiry(&state, &cluster).await;
        let now = state.clock.now();
        let decision = decide_support_access(cluster.grant, level, now);
        let tessera_domain::clusters::SupportDecision::Allowed(grant) = decision else {
            let shown = cluster.grant.filter(|g| g.is_active(now));
            return Ok(answer(false, decision.reason(), shown));
        };
        let ev = NewEvent {
            id: EventId::generate(now),
            created: now,
            event_type: EventType::EmployeeAccessUsed,
            org_id: Some(cluster.org_id),
            group_id: Some(cluster.group_id),
            actor: Actor::System,
            remote_address: Some(op.remote_address),
            target: vec![
                ("employeeIdentifier", staff.as_str().to_owned()),
                ("clusterName", cluster.name.clone()),
                ("clusterId", cluster.id.to_string()),
                ("grantType", level.as_str().to_owned()),
                ("operatorId", op.operator.id.to_string()),
                ("operatorName", op.operator.name.clone()),
            ],
        };
        if state
            .store
            .record_employee_access_use(cluster.id, grant, &ev)
            .await?
        {
            tracing::info!(cluster_id = %cluster.id, operator_id = %op.operator.id, grant_type = %level, "support access allowed");
            return Ok(answer(true, decision.reason(), Some(grant)));
        }
        // The grant changed (revoked or replaced) after it was read: decide again.
    }
    Ok(answer(false, "GRANT_CHANGED", None))
}
