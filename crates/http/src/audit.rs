//! Events for the changes a request makes: who (the caller), from where (its client
//! address), when (the domain clock), and the ids of what changed. Handlers build them here
//! and hand them to the store method that makes the change, which writes them in the same
//! transaction, and only if the change happened.

use tessera_domain::{EventId, EventType, GroupId, OrgId, Principal, PrincipalKind};
use tessera_store::events::{Actor, NewEvent};

use crate::state::AppState;

pub fn actor_of(p: &Principal) -> Actor {
    match &p.kind {
        PrincipalKind::ApiKey { id, public_key } => Actor::ApiKey {
            id: *id,
            public_key: public_key.clone(),
        },
        PrincipalKind::ServiceAccount { client_id, .. } => Actor::ServiceAccount(*client_id),
        PrincipalKind::User { id, username } => Actor::User {
            id: *id,
            username: username.clone(),
        },
    }
}

fn new_event(
    state: &AppState,
    actor: Actor,
    remote_address: Option<std::net::IpAddr>,
    event_type: EventType,
    org: OrgId,
    group: Option<GroupId>,
    target: Vec<(&'static str, String)>,
) -> NewEvent {
    let now = state.clock.now();
    NewEvent {
        id: EventId::generate(now),
        created: now,
        event_type,
        org_id: Some(org),
        group_id: group,
        actor,
        remote_address,
        target,
    }
}

/// One event of `caller`'s request in `org` (and `group`), about `target`.
pub fn event(
    state: &AppState,
    caller: &Principal,
    event_type: EventType,
    org: OrgId,
    group: Option<GroupId>,
    target: Vec<(&'static str, String)>,
) -> NewEvent {
    new_event(
        state,
        actor_of(caller),
        caller.remote_address,
        event_type,
        org,
        group,
        target,
    )
}

/// The ids naming an API key that a change is about.
pub fn key_target(key: &tessera_store::ApiKeyRecord) -> Vec<(&'static str, String)> {
    vec![
        ("targetPublicKey", key.public_key.clone()),
        ("targetApiKeyId", key.id.to_string()),
    ]
}

/// The ids naming a service account that a change is about.
pub fn account_target(client_id: tessera_domain::ClientId) -> Vec<(&'static str, String)> {
    vec![("targetClientId", client_id.to_string())]
}

/// Events for a change of description and/or roles: one per kind of change.
pub fn update_events(
    state: &AppState,
    caller: &Principal,
    org: OrgId,
    group: Option<GroupId>,
    details: Option<EventType>,
    roles: Option<EventType>,
    target: &[(&'static str, String)],
) -> Vec<NewEvent> {
    [details, roles]
        .into_iter()
        .flatten()
        .map(|t| event(state, caller, t, org, group, target.to_vec()))
        .collect()
}

/// An event of Tessera itself (bootstrap, the `tessera` CLI).
pub fn system_event(
    state: &AppState,
    event_type: EventType,
    org: OrgId,
    group: Option<GroupId>,
    target: Vec<(&'static str, String)>,
) -> NewEvent {
    new_event(state, Actor::System, None, event_type, org, group, target)
}
