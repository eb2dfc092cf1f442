//! The records the store reads and writes: domain types, never a row.

use chrono::{DateTime, Utc};
use tessera_domain::access::AccessEntry;
use tessera_domain::clusters::EmployeeAccessGrant;
use tessera_domain::{
    ApiKeyId, ClientId, ClusterId, GroupId, GroupRole, OperatorId, OrgId, OrgRole, SecretId,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub skip_default_alerts: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub org_id: OrgId,
    pub name: String,
    pub with_default_alerts: bool,
    pub region_usage_restrictions: Option<String>,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
}

/// A partial update of an organization.
#[derive(Clone, Debug, Default)]
pub struct OrgChanges {
    pub name: Option<String>,
    pub skip_default_alerts: Option<bool>,
}

/// A partial update of a project.
#[derive(Clone, Debug, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub with_default_alerts: Option<bool>,
    pub tags: Option<Vec<Tag>>,
}

/// A programmatic API key as stored: no clear-text secret, only sealed Digest material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub public_key: String,
    pub description: String,
    pub private_key_masked: String,
    pub ha1_md5_sealed: Vec<u8>,
    pub ha1_sha256_sealed: Vec<u8>,
    pub org_roles: Vec<OrgRole>,
    /// Project memberships, ordered by project id.
    pub group_roles: Vec<(GroupId, Vec<GroupRole>)>,
    pub created_at: DateTime<Utc>,
    /// The key's IP access list (CONTRACT §7), ordered by entry; empty admits every address.
    pub access_list: Vec<AccessListEntry>,
}

/// A service-account secret as stored: a keyed hash, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaSecret {
    pub id: SecretId,
    pub hash: Vec<u8>,
    pub masked: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One access-list entry with its read-only usage counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessListEntry {
    pub entry: AccessEntry,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_address: Option<String>,
    pub request_count: u64,
}

/// A service account with everything that belongs to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    pub client_id: ClientId,
    pub org_id: OrgId,
    pub name: String,
    pub description: String,
    pub org_roles: Vec<OrgRole>,
    /// Project assignments, ordered by project id.
    pub group_roles: Vec<(GroupId, Vec<GroupRole>)>,
    pub created_at: DateTime<Utc>,
    /// Ordered by id (creation order).
    pub secrets: Vec<SaSecret>,
    /// Ordered by entry.
    pub access_list: Vec<AccessListEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddSecretOutcome {
    Added,
    /// The account already has the maximum number of unexpired secrets.
    TooMany,
    NotFound,
}

/// Usage of one access-list entry since the last flush. `O` names the list's owner: a
/// service account (`ClientId`) or an API key (`ApiKeyId`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUse<O = ClientId> {
    pub account: O,
    pub entry_key: String,
    pub at: DateTime<Utc>,
    pub address: String,
    pub count: u64,
}

/// A page request: `offset` items skipped, at most `limit` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

impl Page {
    pub const ALL: Page = Page {
        offset: 0,
        limit: u32::MAX as u64,
    };
}

/// One page of results and the total number of matching items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Which projects of an org a listing may return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupFilter {
    All,
    Only(Vec<GroupId>),
}

/// The result of removing one entry from an API key's access list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteKeyAccessOutcome {
    Deleted,
    /// The key, or that entry of it, does not exist.
    NotFound,
    /// The list left behind would be non-empty and no longer admit the address that had to
    /// stay admitted; nothing was changed.
    WouldLockOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOrgOutcome {
    Deleted,
    NotFound,
    HasProjects,
}

/// The result of deleting a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteGroupOutcome {
    Deleted,
    NotFound,
    /// The project still has clusters; nothing was changed.
    HasClusters,
}

/// A cluster record (CONTRACT §10): what roles, grants and events attach to. Tessera hosts no
/// database; `body` holds the other top-level fields the client sent, kept as given.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub id: ClusterId,
    pub group_id: GroupId,
    /// The project's organization (read with the record, not stored on it).
    pub org_id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub state_name: String,
    /// Every other top-level field of the client's document.
    pub body: serde_json::Map<String, serde_json::Value>,
    /// The stored employee-access grant, active or not: whether it is active is decided
    /// against the current time (`EmployeeAccessGrant::is_active`).
    pub grant: Option<EmployeeAccessGrant>,
    /// Whether the grant's expiry has been recorded as an event.
    pub grant_expiry_recorded: bool,
}

/// A project with (some of) its clusters, for the cross-project listing.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupClusters {
    pub group: Group,
    pub clusters: Vec<Cluster>,
}

/// The result of revoking a cluster's employee access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeGrantOutcome {
    /// An active grant was removed (and the events written).
    Revoked,
    /// No grant was active at that instant: nothing changed, no event.
    NoActiveGrant,
    /// No such cluster.
    NotFound,
}

/// A support operator (ours): credentials only the `tessera` CLI creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    /// Keyed hash of the secret, never the value.
    pub secret_hash: Vec<u8>,
    pub masked: String,
    pub created_at: DateTime<Utc>,
}

/// What a newly created organization starts with, written in the same transaction.
#[derive(Clone, Debug)]
pub struct NewOrg<'a> {
    pub org: &'a Org,
    pub group: Option<&'a Group>,
    pub api_key: Option<&'a ApiKeyRecord>,
}

/// A change another process made to a shared database (PostgreSQL's change log, read by each
/// node), for the in-memory state each node keeps (see `architecture.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A service account changed or is gone: re-read it.
    Account(ClientId),
    /// A token was revoked.
    Revoked {
        jti: String,
        expires_at: DateTime<Utc>,
    },
    /// API keys changed ([`Store::api_keys_version`] has already moved).
    ApiKeys,
    /// The server keys (signing keys included) in the database changed: re-read them.
    ServerKeys,
    /// Anything may have changed (an org or project deletion, or a reader that fell behind):
    /// re-read everything.
    Everything,
    /// Not a change: the feed's heartbeat. Every change committed before this instant has
    /// been published ahead of it.
    Synced(std::time::Instant),
}

/// One entry of a project IP access list to add or update, with the event for each outcome:
/// `added` when the project has no active entry of its key, `updated` when its comment or end
/// changes. An entry sent again unchanged writes neither.
#[derive(Clone, Debug)]
pub struct NetworkPut {
    pub entry: tessera_domain::network::NetworkEntry,
    pub added: crate::events::NewEvent,
    pub updated: crate::events::NewEvent,
}

/// A project's database user (`tessera_domain::database_users`). `scram` holds the SCRAM
/// credentials as JSON (salts, iteration counts, stored and server keys; no password) for a
/// SCRAM user, `None` for the other kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseUser {
    pub group_id: GroupId,
    pub database_name: String,
    pub username: String,
    pub auth: tessera_domain::database_users::DbAuth,
    pub roles: Vec<tessera_domain::database_users::DbRole>,
    pub scopes: Vec<tessera_domain::database_users::DbScope>,
    pub labels: Vec<Tag>,
    pub description: Option<String>,
    pub delete_after: Option<DateTime<Utc>>,
    pub scram: Option<String>,
    pub created_at: DateTime<Utc>,
}
