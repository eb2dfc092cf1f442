//! The storage interface, one trait per area; [`Store`] is all of them. Methods on a
//! `dyn Store` reach every area without importing its trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_domain::clusters::EmployeeAccessGrant;
use tessera_domain::{
    ApiKeyId, ClientId, ClusterId, EventId, GroupId, GroupRole, OperatorId, OrgId, OrgRole,
    SecretId,
};

use crate::events::{AuthFailure, EventQuery, EventRecord, ExportCursor, NewEvent};
use crate::*;

/// Organizations and projects.
#[async_trait]
pub trait OrgStore: Send + Sync {
    async fn create_org(&self, new: NewOrg<'_>, events: &[NewEvent]) -> StoreResult<()>;
    /// [`OrgStore::create_org`], with `owner` (a person Tessera knows) its first active
    /// `ORG_OWNER`, in the same unit of work.
    async fn create_org_owned(
        &self,
        new: NewOrg<'_>,
        owner: tessera_domain::UserId,
        events: &[NewEvent],
    ) -> StoreResult<()>;
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
}

/// Cluster records, MongoDB employee access grants and support operators (CONTRACT §10).
#[async_trait]
pub trait ClusterStore: Send + Sync {
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
}

/// Programmatic API keys, their roles, project memberships and access lists.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
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
}

/// Service accounts, their secrets, access lists and project assignments.
#[async_trait]
pub trait AccountStore: Send + Sync {
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
}

/// Revoked OAuth tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
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

    /// Revoked token ids that have not yet expired at `now`.
    async fn revoked_tokens(&self, now: DateTime<Utc>)
        -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Forgets revocations of tokens that expired before `now`.
    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// The event log.
/// Database users of projects.
#[async_trait]
pub trait DatabaseUserStore: Send + Sync {
    /// A project's users by (database, username), those past their end included.
    async fn list_database_users(&self, group: GroupId) -> StoreResult<Vec<DatabaseUser>>;
    async fn get_database_user(
        &self,
        group: GroupId,
        database: &str,
        username: &str,
    ) -> StoreResult<Option<DatabaseUser>>;
    /// Creates the user with its event; `Conflict("database_user")` when the project has an
    /// active user of that name (one past its end is replaced); `false` when the project is
    /// gone.
    async fn create_database_user(
        &self,
        user: &DatabaseUser,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Replaces the user's mutable fields (everything but its names, kind and creation);
    /// `false` when there is no active user of that name.
    async fn update_database_user(
        &self,
        user: &DatabaseUser,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// `false` when there is no active user of that name (one past its end is removed
    /// without an event).
    async fn delete_database_user(
        &self,
        group: GroupId,
        database: &str,
        username: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
}

/// Project IP access lists (`tessera_domain::network`).
#[async_trait]
pub trait NetworkStore: Send + Sync {
    /// A project's entries by key, those past their end included (the caller's clock decides
    /// what is active: `NetworkEntry::is_active`).
    async fn list_network_access(
        &self,
        group: GroupId,
    ) -> StoreResult<Vec<tessera_domain::network::NetworkEntry>>;
    /// Adds or updates entries in one unit of work, each writing the event of what it changed
    /// (`NetworkPut`); `false` when the project is gone.
    async fn put_network_access(
        &self,
        group: GroupId,
        puts: &[NetworkPut],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Removes the entry of this key; `false` when there is none, or it had already ended.
    async fn delete_network_access(
        &self,
        group: GroupId,
        key: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
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
}

/// The whole store: every area, and what concerns the database as a whole.
#[async_trait]
pub trait Store:
    OrgStore
    + ClusterStore
    + ApiKeyStore
    + AccountStore
    + TokenStore
    + EventStore
    + NetworkStore
    + DatabaseUserStore
    + PeopleStore
    + SettingsStore
    + CustomRoleStore
    + X509Store
    + ConsoleStore
    + FederationStore
    + Send
    + Sync
    + 'static
{
    /// Succeeds when the backend answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;

    /// The value of a server-level marker (e.g. `bootstrapped_at`).
    async fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Compare-and-set of a server-level value: with `expected` `None`, sets it only if it is
    /// absent; with `Some(old)`, replaces it only while it is still `old`. `true` when written.
    /// Nodes sharing a database agree on one value this way (the sealed server keys).
    /// `events` are written with the swap, only when it happened.
    async fn swap_meta(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool>;

    /// Creates the first org, project and key and sets the `bootstrapped_at` marker, all or
    /// nothing. Fails with `Conflict("bootstrap")` when the marker is already set.
    async fn bootstrap(
        &self,
        new: NewOrg<'_>,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<()>;

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
