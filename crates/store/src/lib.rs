//! Storage for Tessera: one interface ([`Store`]), one implementation per backend.
//!
//! Architecture invariant: SQL lives only in this crate. Handlers and protocols see records
//! made of domain types and never a connection, a row or a dialect.
//!
//! Every method that changes more than one row does so in one transaction: a failed request
//! leaves nothing half-written.
//!
//! The unit of work: every method that makes a change takes the events that describe it
//! (`events: &[NewEvent]`) and writes them in the change's own transaction, only if the change
//! happened. A change without its event, or an event without its change, cannot be committed
//! (CONTRACT §11). Write transactions start as writers (`BEGIN IMMEDIATE` on SQLite; row
//! locks where a check-then-write needs them on PostgreSQL), so a read-then-write never fails
//! or races another writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_domain::access::AccessEntry;
use tessera_domain::clusters::EmployeeAccessGrant;
use tessera_domain::{
    ApiKeyId, ClientId, ClusterId, EventId, GroupId, GroupRole, OperatorId, OrgId, OrgRole,
    SecretId,
};

use events::{AuthFailure, EventQuery, EventRecord, ExportCursor, NewEvent};

pub mod events;
pub mod postgres;
mod sqlite;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule would be broken (the string names which).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The backend failed. The message is for logs, never for clients.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The backend could not be reached, or did not answer in time (a stopped server, a lost
    /// connection). Whether a write in flight committed is unknown; it was not acknowledged.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store a database URL names and applies pending migrations: `postgres://` or
/// `postgresql://` is PostgreSQL ([`PgStore`]), `sqlite:` the embedded SQLite
/// ([`SqliteStore`]); any other scheme is refused.
pub async fn open_url(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    open_url_with(url, postgres::feed::FeedSettings::default()).await
}

/// [`open_url`], with PostgreSQL's change feed driven by `feed`.
pub async fn open_url_with(
    url: &str,
    feed: postgres::feed::FeedSettings,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    if postgres::is_postgres_url(url) {
        Ok(std::sync::Arc::new(PgStore::open_with(url, feed).await?))
    } else if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open_url(url).await?))
    } else {
        Err(StoreError::Backend(
            "database URL must start with sqlite:, postgres:// or postgresql://".into(),
        ))
    }
}

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the backend answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;

    /// The value of a server-level marker (e.g. `bootstrapped_at`).
    async fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Compare-and-set of a server-level value: with `expected` `None`, sets it only if it is
    /// absent; with `Some(old)`, replaces it only while it is still `old`. `true` when written.
    /// Nodes sharing a database agree on one value this way (the sealed server keys).
    async fn swap_meta(&self, key: &str, expected: Option<&str>, new: &str) -> StoreResult<bool>;

    /// Creates the first org, project and key and sets the `bootstrapped_at` marker, all or
    /// nothing. Fails with `Conflict("bootstrap")` when the marker is already set.
    async fn bootstrap(
        &self,
        new: NewOrg<'_>,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<()>;

    async fn create_org(&self, new: NewOrg<'_>, events: &[NewEvent]) -> StoreResult<()>;
    async fn get_org(&self, id: OrgId) -> StoreResult<Option<Org>>;
    async fn list_orgs(
        &self,
        ids: &[OrgId],
        name: Option<&str>,
        page: Page,
    ) -> StoreResult<Listed<Org>>;
    /// Applies only the given fields (concurrent changes to other fields are kept) and returns
    /// the organization as stored; `None` when it is gone.
    async fn update_org(
        &self,
        id: OrgId,
        changes: &OrgChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Org>>;
    async fn delete_org(&self, id: OrgId, events: &[NewEvent]) -> StoreResult<DeleteOrgOutcome>;

    /// Creates a project; when `creator` is given, that API key becomes its `GROUP_OWNER`.
    /// `Conflict("group_name")` when the org already has a project of that name.
    async fn create_group(
        &self,
        group: &Group,
        creator: Option<ApiKeyId>,
        events: &[NewEvent],
    ) -> StoreResult<()>;
    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    async fn get_group_by_name(&self, org: OrgId, name: &str) -> StoreResult<Option<Group>>;
    async fn list_groups(
        &self,
        org: OrgId,
        name: Option<&str>,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<Group>>;
    /// Applies only the given fields and returns the project as stored; `None` when it is
    /// gone; `Conflict("group_name")` on a duplicate name.
    async fn update_group(
        &self,
        id: GroupId,
        changes: &GroupChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Group>>;
    /// Deletes a project unless it still has clusters (checked in the same transaction).
    async fn delete_group(
        &self,
        id: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteGroupOutcome>;

    /// Creates a cluster record; `false` when the project is gone (nothing written);
    /// `Conflict("cluster_name")` when the project already has a cluster of that name.
    async fn create_cluster(&self, cluster: &Cluster, events: &[NewEvent]) -> StoreResult<bool>;
    async fn get_cluster(&self, group: GroupId, name: &str) -> StoreResult<Option<Cluster>>;
    /// A project's clusters in creation order.
    async fn list_clusters(&self, group: GroupId, page: Page) -> StoreResult<Listed<Cluster>>;
    /// How many clusters each of `groups` has, in the order given (0 for a project without
    /// clusters or that does not exist). The default asks `list_clusters` once per project; a
    /// backend may answer with one query.
    async fn cluster_counts(&self, groups: &[GroupId]) -> StoreResult<Vec<u64>> {
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let none = Page {
                offset: 0,
                limit: 0,
            };
            out.push(self.list_clusters(*g, none).await?.total);
        }
        Ok(out)
    }
    /// The projects of `org` that `filter` admits and that have clusters, each with all of
    /// its clusters; paged by project (in id order).
    async fn list_clusters_by_group(
        &self,
        org: OrgId,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<GroupClusters>>;
    /// Merges `changes` into the cluster's stored fields (top level: a key replaces the
    /// stored one), read and written in one transaction; `None` when the cluster is gone.
    async fn update_cluster(
        &self,
        group: GroupId,
        name: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
        events: &[NewEvent],
    ) -> StoreResult<Option<Cluster>>;
    async fn delete_cluster(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Sets (replaces) the cluster's grant; `false` when the cluster is gone.
    async fn set_employee_access_grant(
        &self,
        group: GroupId,
        name: &str,
        grant: EmployeeAccessGrant,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Removes the cluster's grant if it is active at `now` and writes `events` with it;
    /// otherwise changes nothing.
    async fn revoke_employee_access(
        &self,
        group: GroupId,
        name: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<RevokeGrantOutcome>;
    /// Grants expired at `now` whose expiry has no event yet (at most `limit`).
    async fn unrecorded_expired_grants(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Cluster>>;
    /// Marks the expiry of the cluster's grant (the one expiring at `expires_at`) as recorded
    /// and writes `events`, once: `false` (nothing written) when it is already recorded or
    /// the grant has changed.
    async fn record_grant_expiry(
        &self,
        cluster: ClusterId,
        expires_at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Writes the event of an allowed support access, only if the cluster's grant is still
    /// exactly `grant` (so a revoke or replacement that committed first wins); `false`
    /// otherwise, with nothing written.
    async fn record_employee_access_use(
        &self,
        cluster: ClusterId,
        grant: EmployeeAccessGrant,
        event: &NewEvent,
    ) -> StoreResult<bool>;

    /// `Conflict("operator_name")` when the name is taken.
    async fn create_operator(&self, operator: &Operator, events: &[NewEvent]) -> StoreResult<()>;
    async fn get_operator(&self, id: OperatorId) -> StoreResult<Option<Operator>>;
    async fn list_operators(&self) -> StoreResult<Vec<Operator>>;
    async fn delete_operator(&self, id: OperatorId, events: &[NewEvent]) -> StoreResult<bool>;

    /// Inserts the key with its org roles and project memberships.
    async fn create_api_key(&self, key: &ApiKeyRecord, events: &[NewEvent]) -> StoreResult<()>;
    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>>;
    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_org_api_keys(&self, org: OrgId, page: Page) -> StoreResult<Listed<ApiKeyRecord>>;
    async fn list_group_api_keys(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ApiKeyRecord>>;
    /// Changes description, org roles and/or the roles in one project, in one transaction;
    /// `false` when the key is gone.
    async fn update_api_key(
        &self,
        id: ApiKeyId,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Sets (inserts or replaces) the key's roles in a project.
    async fn set_api_key_group_roles(
        &self,
        id: ApiKeyId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    async fn remove_api_key_from_group(
        &self,
        id: ApiKeyId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    async fn delete_api_key(&self, id: ApiKeyId, events: &[NewEvent]) -> StoreResult<bool>;
    /// Adds entries to an API key's access list, ignoring ones already present. Each entry
    /// comes with the event that records its addition, written (in the same transaction) only
    /// when the entry was new. `false` when the key is gone (nothing written).
    async fn add_api_key_access_entries(
        &self,
        id: ApiKeyId,
        entries: &[(AccessListEntry, NewEvent)],
    ) -> StoreResult<bool>;
    /// Removes one entry (`entry_key`, CIDR notation) from an API key's access list. With
    /// `keep_admitting`, the delete is refused (`WouldLockOut`, nothing written) when the list
    /// left behind would be non-empty and no longer admit that address: the check and the
    /// delete are one transaction, so two concurrent deletes cannot lock a caller out together.
    async fn delete_api_key_access_entry(
        &self,
        id: ApiKeyId,
        entry_key: &str,
        keep_admitting: Option<std::net::IpAddr>,
        events: &[NewEvent],
    ) -> StoreResult<DeleteKeyAccessOutcome>;
    /// Adds to the usage counters of API-key access-list entries (batched by the caller).
    /// Counters are not part of what authentication reads, so this does not move
    /// [`Store::api_keys_version`].
    async fn record_api_key_access_use(&self, uses: &[AccessUse<ApiKeyId>]) -> StoreResult<()>;

    /// Every service account (the HTTP layer keeps them in memory; see `architecture.md`).
    async fn list_service_accounts(&self) -> StoreResult<Vec<ServiceAccount>>;
    /// One page of an organization's accounts, ordered by client id, read with the store's
    /// own pagination (never the whole organization).
    async fn list_org_service_accounts(
        &self,
        org: OrgId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>>;
    /// One page of the accounts assigned to a project, ordered by client id.
    async fn list_group_service_accounts(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>>;
    async fn get_service_account(&self, id: ClientId) -> StoreResult<Option<ServiceAccount>>;
    /// Inserts the account with its secrets, project roles and access list.
    async fn create_service_account(
        &self,
        account: &ServiceAccount,
        events: &[NewEvent],
    ) -> StoreResult<()>;
    /// Changes name, description, org roles and/or the roles in one project, in one
    /// transaction; `false` when the account is gone.
    async fn update_service_account(
        &self,
        id: ClientId,
        name: Option<&str>,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Deletes the account and (by cascade) its secrets, access list and assignments.
    async fn delete_service_account(&self, id: ClientId, events: &[NewEvent]) -> StoreResult<bool>;
    /// Adds a secret unless the account already has `max_active` secrets unexpired at `now`
    /// (checked in the same transaction).
    async fn add_service_account_secret(
        &self,
        id: ClientId,
        secret: &SaSecret,
        max_active: usize,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<AddSecretOutcome>;
    async fn delete_service_account_secret(
        &self,
        id: ClientId,
        secret: SecretId,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Records when secrets last minted a token (batched by the caller).
    async fn record_secret_use(&self, uses: &[(SecretId, DateTime<Utc>)]) -> StoreResult<()>;
    /// Adds entries, ignoring ones already present; `false` when the account is gone.
    async fn add_access_entries(
        &self,
        id: ClientId,
        entries: &[AccessListEntry],
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    async fn delete_access_entry(
        &self,
        id: ClientId,
        entry_key: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Adds to the usage counters of access-list entries (batched by the caller).
    async fn record_access_use(&self, uses: &[AccessUse]) -> StoreResult<()>;
    /// Sets (inserts or replaces) the account's roles in a project.
    async fn set_service_account_group_roles(
        &self,
        id: ClientId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    async fn remove_service_account_from_group(
        &self,
        id: ClientId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool>;

    /// Durably records a revoked token id until its expiry: returns only after the row is
    /// committed. Concurrent calls may share one commit (group commit). `event` is written
    /// only when this call recorded the revocation: revoking a token already revoked (before,
    /// or by a concurrent call) succeeds and writes no second event.
    async fn revoke_token(
        &self,
        jti: &str,
        account: ClientId,
        expires_at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// One page of an org's or project's log, newest first.
    async fn list_events(&self, q: &EventQuery) -> StoreResult<Listed<EventRecord>>;
    async fn get_event(&self, id: EventId) -> StoreResult<Option<EventRecord>>;
    /// Up to `limit` events after `after` in (`created`, `id`) order, for export.
    async fn export_events(
        &self,
        org: Option<OrgId>,
        after: ExportCursor,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Adds failed authentications to their per-(principal, address, minute) events.
    async fn record_auth_failures(&self, failures: &[AuthFailure]) -> StoreResult<()>;

    /// Revoked token ids that have not yet expired at `now`.
    async fn revoked_tokens(&self, now: DateTime<Utc>)
        -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Forgets revocations of tokens that expired before `now`.
    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// A number that changes after every write that may change what `get_api_key*` returns
    /// (a key's roles, project memberships, access list or existence; project and org deletion), so a caller
    /// may cache API keys and drop its cache when the number moves. `None` when the backend does
    /// not track it: API keys must then not be cached.
    fn api_keys_version(&self) -> Option<u64> {
        None
    }

    /// Changes committed by any node sharing this store, from the moment of the call (take it
    /// before reading what they would change). `None` for a store only one process uses (the
    /// embedded SQLite default), where this process makes every change itself.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Asks the change feed to read the database now (a node that has gone stale and wants
    /// to know at once). Does nothing for a store without a feed.
    fn nudge_feed(&self) {}

    /// Closes the connection pool; later calls fail.
    async fn close(&self);
}

pub(crate) fn join_roles<R: std::fmt::Display>(roles: &[R]) -> String {
    roles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn split_roles<R: std::str::FromStr>(s: &str) -> StoreResult<Vec<R>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|r| {
            r.parse()
                .map_err(|_| StoreError::Backend(format!("unknown role {r:?} in store")))
        })
        .collect()
}

/// A shipped migration is never edited: a database that applied it keeps its checksum, and
/// sqlx refuses to open it with a different file. These are the checksums (SHA-384, as sqlx
/// records them) of every shipped migration; a new migration adds its line here, an edited
/// one fails this test instead of failing at a customer's next start.
#[cfg(test)]
mod shipped_migrations {
    const SQLITE: &[(i64, &str)] = &[
        (
            1,
            "3c980713aa14f68f11a69527cb1632fcec88e7045816d6ea04fb3cec19471639bbb6526067f7be76b23ec3122137fc2f",
        ),
        (
            2,
            "7c6d3fe61f501b27f4f3e67f6bfbd3ecc1d5cc34a8f5afd24eac7d9cf2bf22a90e0dbcbe5996c13de01fe66aabf54cb9",
        ),
        (
            3,
            "7f8970a0946085e074791ac7fbb04849a82ee880e840534977f969bc5ed21f7435eee40f73e4af4fa2a98fa5a9e5a111",
        ),
        (
            4,
            "3205e1a72ccf4c5765f689606698d4a66df3b229adf373d93fd02151f3aa3e8b30f3886a26e8238f822361cf1d78c1b5",
        ),
        (
            5,
            "7bed2951969fa0f85d87583a370ad6527df2882a4c1a1ad0afc8c91f49e0000cc3838544f93662432bec431fbdeb13c1",
        ),
    ];
    const POSTGRES: &[(i64, &str)] = &[
        (
            1,
            "db47f2ea5dc0b7f67d609d63b284a4e19c369a0fe5f74ed8347551d98a03f7861fc87dbc845bdb02964cf09a545daf76",
        ),
        (
            2,
            "3c4c3e25ed5d9f4939655eafb2aafb7dcd798faccb313675fe53ab518e12c80be3f1b8c5e871fdd29b77df9e35168a40",
        ),
        (
            3,
            "f1f990d19c98bddb5402ca7c73ef6f1256aaeef4f1c869749d007555fc5540728458455c897a2e2c86d5a7a8fc776902",
        ),
        (
            4,
            "b9f72eef6329323b4cb5d5ac363609e04b11cbe4aa8f1a7e7624a8f1b356b08560e055f798cedcd7a80d8d9bb6163ed0",
        ),
        (
            5,
            "b8bac4c9ec7d41b6bc40cf3f313748fb1c4bae6dbf1d1f353a90f742209c3c0d749a0379adfb6436b00e368e4ba0cb9c",
        ),
        (
            6,
            "943be7520914bcba6f7f228eeaa8da9bd17b056902d17bf85d1d4403b18378ee308316df4b3d0e90887d5a992a55e65f",
        ),
    ];

    fn checksums(m: &sqlx::migrate::Migrator) -> Vec<(i64, String)> {
        m.iter()
            .map(|m| {
                let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
                (m.version, hex)
            })
            .collect()
    }

    fn check(dialect: &str, m: &sqlx::migrate::Migrator, shipped: &[(i64, &str)]) {
        let now = checksums(m);
        for (version, sum) in shipped {
            let found = now.iter().find(|(v, _)| v == version);
            assert!(
                found.is_some_and(|(_, s)| s == sum),
                "{dialect} migration {version} was edited or removed (shipped checksum {sum}, now {found:?}); add a new migration instead"
            );
        }
        for (version, sum) in &now {
            assert!(
                shipped.iter().any(|(v, _)| v == version),
                "{dialect} migration {version} is not listed as shipped; add (\"{version}\", \"{sum}\") to this test"
            );
        }
    }

    #[test]
    fn shipped_sqlite_migrations_are_never_edited() {
        check("SQLite", &crate::sqlite::MIGRATOR, SQLITE);
    }

    #[test]
    fn shipped_postgres_migrations_are_never_edited() {
        check("PostgreSQL", &crate::postgres::MIGRATOR, POSTGRES);
    }
}
