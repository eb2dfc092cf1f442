//! Event records: what the store writes in the same transaction as the change it describes,
//! and what it reads back for the event log.

use chrono::{DateTime, Utc};
use std::net::IpAddr;
use tessera_domain::{ApiKeyId, ClientId, EventId, EventType, GroupId, OrgId};

use crate::{GroupFilter, Page};

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A programmatic API key (Digest).
    ApiKey { id: ApiKeyId, public_key: String },
    /// A service account (Bearer token, or Basic at the OAuth endpoints).
    ServiceAccount(ClientId),
    /// Tessera itself (bootstrap, the `tessera` CLI).
    System,
    /// Nobody authenticated (failed authentications).
    Anonymous,
    /// A person (a MongoDB Cloud user), signed in.
    User {
        id: tessera_domain::UserId,
        username: String,
    },
}

/// An event to write with a change. Built by the HTTP layer, which knows who acted and from
/// where; the store writes it only if the change happened, in the change's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub id: EventId,
    pub created: DateTime<Utc>,
    pub event_type: EventType,
    pub org_id: Option<OrgId>,
    pub group_id: Option<GroupId>,
    pub actor: Actor,
    pub remote_address: Option<IpAddr>,
    /// The ids of what changed, as (wire name, value): `targetPublicKey`, `targetApiKeyId`,
    /// `targetClientId`, `secretId`, `whitelistEntry` (an access-list entry, as Atlas names
    /// it), `tokenId` (a token's `jti`), `groupName`, `principal` (of a failed
    /// authentication). Never a secret, key, token or hash.
    pub target: Vec<(&'static str, String)>,
}

/// A failed authentication to count: one row per (principal, address, minute), whose
/// `count` grows, so a flood cannot grow the table without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    pub event_type: EventType,
    /// The org of the principal, when it exists.
    pub org_id: Option<OrgId>,
    /// The public key or client id that was tried (only well-formed ones are recorded).
    pub principal: String,
    pub actor: Actor,
    pub remote_address: Option<IpAddr>,
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    pub count: u64,
}

impl AuthFailure {
    /// The aggregation key: one event per (type, principal, address, minute).
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.event_type.as_str(),
            self.principal,
            self.remote_address
                .map(|a| a.to_string())
                .unwrap_or_default(),
            self.minute.timestamp()
        )
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub id: EventId,
    pub created: DateTime<Utc>,
    /// The stored name (a name this binary does not know is still shown).
    pub event_type: String,
    pub org_id: Option<OrgId>,
    pub group_id: Option<GroupId>,
    pub actor: Actor,
    pub remote_address: Option<String>,
    pub target: Vec<(String, String)>,
    pub count: u64,
}

/// Whose log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventScope {
    /// An organization's log: its own events and those of its projects.
    Org(OrgId),
    /// A project's log.
    Group(GroupId),
}

/// A listing of one log, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    pub scope: EventScope,
    /// Any of these names; empty = all.
    pub types: Vec<String>,
    /// Inclusive bounds on `created`.
    pub min: Option<DateTime<Utc>>,
    pub max: Option<DateTime<Utc>>,
    pub page: Page,
    pub include_count: bool,
    /// Which of an org's log's events the reader may see; a project's log ignores it (its
    /// route authorizes the project as a whole). Filtered in the query, so pages and
    /// `totalCount` count only what is shown.
    pub visible: EventVisibility,
}

/// The part of an org's event log a reader may see: the org's own events (those of no
/// project), and the events of these projects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventVisibility {
    pub org_events: bool,
    pub groups: GroupFilter,
}

impl EventVisibility {
    /// The whole log.
    pub const ALL: Self = Self {
        org_events: true,
        groups: GroupFilter::All,
    };

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }
}

/// Where an export resumes: after this event (in `created`, then `id` order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportCursor {
    pub created: DateTime<Utc>,
    pub id: Option<EventId>,
}
