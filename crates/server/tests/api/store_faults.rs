//! Fault injection: a store that delegates to the real SQLite store and fails on purpose.
//! Fail closed: an account the registry cannot re-read after a change stops authenticating.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tessera_domain::clusters::EmployeeAccessGrant;
use tessera_domain::federation as fed;
use tessera_domain::EventId;
use tessera_domain::{
    ApiKeyId, ClientId, ClusterId, GroupId, GroupRole, OperatorId, OrgId, OrgRole, SecretId,
};
use tessera_store::events::{AuthFailure, EventQuery, EventRecord, ExportCursor, NewEvent};
use tessera_store::{
    AccessListEntry, AccessUse, AddSecretOutcome, ApiKeyRecord, Cluster, DeleteGroupOutcome,
    DeleteKeyAccessOutcome, DeleteOrgOutcome, Group, GroupChanges, GroupClusters, GroupFilter,
    Listed, NewOrg, Operator, Org, OrgChanges, Page, RevokeGrantOutcome, SaSecret, ServiceAccount,
    Store, StoreError, StoreResult,
};
use tessera_store::{AccountStore, ApiKeyStore, ClusterStore, EventStore, OrgStore, TokenStore};

use crate::harness::{basic, TestServer};

/// The real store, except that `get_service_account` fails while `fail_account_reads` is set
/// and `record_employee_access_use` while `fail_access_use` is set. Every other call goes
/// through unchanged.
pub struct FailingStore {
    inner: Arc<dyn Store>,
    pub fail_account_reads: AtomicBool,
    /// A change feed, as a store shared by several nodes has one: the tests publish on it.
    pub feed: tokio::sync::broadcast::Sender<tessera_store::Change>,
    pub fail_access_use: AtomicBool,
}

#[async_trait]
impl Store for FailingStore {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.inner.meta(key).await
    }

    async fn swap_meta(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.swap_meta(key, expected, new, events).await
    }

    async fn bootstrap(
        &self,
        new: NewOrg<'_>,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        self.inner.bootstrap(new, at, events).await
    }

    async fn close(&self) {
        self.inner.close().await
    }

    fn api_keys_version(&self) -> Option<u64> {
        self.inner.api_keys_version()
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<tessera_store::Change>> {
        Some(self.feed.subscribe())
    }
}

#[async_trait]
impl OrgStore for FailingStore {
    async fn create_org(&self, new: NewOrg<'_>, events: &[NewEvent]) -> StoreResult<()> {
        self.inner.create_org(new, events).await
    }

    async fn create_org_owned(
        &self,
        new: NewOrg<'_>,
        owner: tessera_domain::UserId,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        self.inner.create_org_owned(new, owner, events).await
    }

    async fn get_org(&self, id: OrgId) -> StoreResult<Option<Org>> {
        self.inner.get_org(id).await
    }

    async fn list_orgs(
        &self,
        ids: &[OrgId],
        name: Option<&str>,
        page: Page,
    ) -> StoreResult<Listed<Org>> {
        self.inner.list_orgs(ids, name, page).await
    }

    async fn update_org(
        &self,
        id: OrgId,
        changes: &OrgChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Org>> {
        self.inner.update_org(id, changes, events).await
    }

    async fn delete_org(&self, id: OrgId, events: &[NewEvent]) -> StoreResult<DeleteOrgOutcome> {
        self.inner.delete_org(id, events).await
    }

    async fn create_group(
        &self,
        group: &Group,
        creator: Option<ApiKeyId>,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        self.inner.create_group(group, creator, events).await
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        self.inner.get_group(id).await
    }

    async fn get_group_by_name(&self, org: OrgId, name: &str) -> StoreResult<Option<Group>> {
        self.inner.get_group_by_name(org, name).await
    }

    async fn list_groups(
        &self,
        org: OrgId,
        name: Option<&str>,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<Group>> {
        self.inner.list_groups(org, name, filter, page).await
    }

    async fn update_group(
        &self,
        id: GroupId,
        changes: &GroupChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Group>> {
        self.inner.update_group(id, changes, events).await
    }

    async fn delete_group(
        &self,
        id: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteGroupOutcome> {
        self.inner.delete_group(id, events).await
    }
}

#[async_trait]
impl ClusterStore for FailingStore {
    async fn create_cluster(&self, cluster: &Cluster, events: &[NewEvent]) -> StoreResult<bool> {
        self.inner.create_cluster(cluster, events).await
    }

    async fn get_cluster(&self, group: GroupId, name: &str) -> StoreResult<Option<Cluster>> {
        self.inner.get_cluster(group, name).await
    }

    async fn list_clusters(&self, group: GroupId, page: Page) -> StoreResult<Listed<Cluster>> {
        self.inner.list_clusters(group, page).await
    }

    async fn cluster_counts(&self, groups: &[GroupId]) -> StoreResult<Vec<u64>> {
        self.inner.cluster_counts(groups).await
    }

    async fn list_clusters_by_group(
        &self,
        org: OrgId,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<GroupClusters>> {
        self.inner.list_clusters_by_group(org, filter, page).await
    }

    async fn update_cluster(
        &self,
        group: GroupId,
        name: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
        events: &[NewEvent],
    ) -> StoreResult<Option<Cluster>> {
        self.inner
            .update_cluster(group, name, changes, events)
            .await
    }

    async fn delete_cluster(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.delete_cluster(group, name, events).await
    }

    async fn set_employee_access_grant(
        &self,
        group: GroupId,
        name: &str,
        grant: EmployeeAccessGrant,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .set_employee_access_grant(group, name, grant, events)
            .await
    }

    async fn revoke_employee_access(
        &self,
        group: GroupId,
        name: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<RevokeGrantOutcome> {
        self.inner
            .revoke_employee_access(group, name, now, events)
            .await
    }

    async fn unrecorded_expired_grants(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Cluster>> {
        self.inner.unrecorded_expired_grants(now, limit).await
    }

    async fn record_grant_expiry(
        &self,
        cluster: ClusterId,
        expires_at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .record_grant_expiry(cluster, expires_at, events)
            .await
    }

    async fn record_employee_access_use(
        &self,
        cluster: ClusterId,
        grant: EmployeeAccessGrant,
        event: &NewEvent,
    ) -> StoreResult<bool> {
        if self.fail_access_use.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected access-use failure".into()));
        }
        self.inner
            .record_employee_access_use(cluster, grant, event)
            .await
    }

    async fn create_operator(&self, operator: &Operator, events: &[NewEvent]) -> StoreResult<()> {
        self.inner.create_operator(operator, events).await
    }

    async fn get_operator(&self, id: OperatorId) -> StoreResult<Option<Operator>> {
        self.inner.get_operator(id).await
    }

    async fn list_operators(&self) -> StoreResult<Vec<Operator>> {
        self.inner.list_operators().await
    }

    async fn delete_operator(&self, id: OperatorId, events: &[NewEvent]) -> StoreResult<bool> {
        self.inner.delete_operator(id, events).await
    }
}

#[async_trait]
impl ApiKeyStore for FailingStore {
    async fn create_api_key(&self, key: &ApiKeyRecord, events: &[NewEvent]) -> StoreResult<()> {
        self.inner.create_api_key(key, events).await
    }

    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.get_api_key(id).await
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.get_api_key_by_public_key(public_key).await
    }

    async fn list_org_api_keys(&self, org: OrgId, page: Page) -> StoreResult<Listed<ApiKeyRecord>> {
        self.inner.list_org_api_keys(org, page).await
    }

    async fn list_group_api_keys(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ApiKeyRecord>> {
        self.inner.list_group_api_keys(group, page).await
    }

    async fn update_api_key(
        &self,
        id: ApiKeyId,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .update_api_key(id, description, org_roles, group_roles, events)
            .await
    }

    async fn set_api_key_group_roles(
        &self,
        id: ApiKeyId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .set_api_key_group_roles(id, group, roles, events)
            .await
    }

    async fn remove_api_key_from_group(
        &self,
        id: ApiKeyId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .remove_api_key_from_group(id, group, events)
            .await
    }

    async fn delete_api_key(&self, id: ApiKeyId, events: &[NewEvent]) -> StoreResult<bool> {
        self.inner.delete_api_key(id, events).await
    }

    async fn add_api_key_access_entries(
        &self,
        id: ApiKeyId,
        entries: &[(AccessListEntry, NewEvent)],
    ) -> StoreResult<bool> {
        self.inner.add_api_key_access_entries(id, entries).await
    }

    async fn delete_api_key_access_entry(
        &self,
        id: ApiKeyId,
        entry_key: &str,
        keep_admitting: Option<std::net::IpAddr>,
        events: &[NewEvent],
    ) -> StoreResult<DeleteKeyAccessOutcome> {
        self.inner
            .delete_api_key_access_entry(id, entry_key, keep_admitting, events)
            .await
    }

    async fn record_api_key_access_use(&self, uses: &[AccessUse<ApiKeyId>]) -> StoreResult<()> {
        self.inner.record_api_key_access_use(uses).await
    }
}

#[async_trait]
impl AccountStore for FailingStore {
    async fn list_service_accounts(&self) -> StoreResult<Vec<ServiceAccount>> {
        self.inner.list_service_accounts().await
    }

    async fn list_org_service_accounts(
        &self,
        org: OrgId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        self.inner.list_org_service_accounts(org, page).await
    }
    async fn list_group_service_accounts(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        self.inner.list_group_service_accounts(group, page).await
    }
    async fn get_service_account(&self, id: ClientId) -> StoreResult<Option<ServiceAccount>> {
        if self.fail_account_reads.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected failure".into()));
        }
        self.inner.get_service_account(id).await
    }

    async fn create_service_account(
        &self,
        account: &ServiceAccount,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        self.inner.create_service_account(account, events).await
    }

    async fn update_service_account(
        &self,
        id: ClientId,
        name: Option<&str>,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .update_service_account(id, name, description, org_roles, group_roles, events)
            .await
    }

    async fn delete_service_account(&self, id: ClientId, events: &[NewEvent]) -> StoreResult<bool> {
        self.inner.delete_service_account(id, events).await
    }

    async fn add_service_account_secret(
        &self,
        id: ClientId,
        secret: &SaSecret,
        max_active: usize,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<AddSecretOutcome> {
        self.inner
            .add_service_account_secret(id, secret, max_active, now, events)
            .await
    }

    async fn delete_service_account_secret(
        &self,
        id: ClientId,
        secret: SecretId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .delete_service_account_secret(id, secret, events)
            .await
    }

    async fn record_secret_use(&self, uses: &[(SecretId, DateTime<Utc>)]) -> StoreResult<()> {
        self.inner.record_secret_use(uses).await
    }

    async fn add_access_entries(
        &self,
        id: ClientId,
        entries: &[AccessListEntry],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.add_access_entries(id, entries, events).await
    }

    async fn delete_access_entry(
        &self,
        id: ClientId,
        entry_key: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.delete_access_entry(id, entry_key, events).await
    }

    async fn record_access_use(&self, uses: &[AccessUse]) -> StoreResult<()> {
        self.inner.record_access_use(uses).await
    }

    async fn set_service_account_group_roles(
        &self,
        id: ClientId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .set_service_account_group_roles(id, group, roles, events)
            .await
    }

    async fn remove_service_account_from_group(
        &self,
        id: ClientId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .remove_service_account_from_group(id, group, events)
            .await
    }
}

#[async_trait]
impl TokenStore for FailingStore {
    async fn revoke_token(
        &self,
        jti: &str,
        account: ClientId,
        expires_at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()> {
        self.inner
            .revoke_token(jti, account, expires_at, event)
            .await
    }

    async fn revoked_tokens(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        self.inner.revoked_tokens(now).await
    }

    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.purge_revoked_tokens(now).await
    }
}

#[async_trait]
impl EventStore for FailingStore {
    async fn list_events(&self, q: &EventQuery) -> StoreResult<Listed<EventRecord>> {
        self.inner.list_events(q).await
    }

    async fn get_event(&self, id: EventId) -> StoreResult<Option<EventRecord>> {
        self.inner.get_event(id).await
    }

    async fn export_events(
        &self,
        org: Option<OrgId>,
        after: ExportCursor,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        self.inner.export_events(org, after, limit).await
    }

    async fn record_auth_failures(&self, failures: &[AuthFailure]) -> StoreResult<()> {
        self.inner.record_auth_failures(failures).await
    }
}

#[async_trait]
impl tessera_store::PeopleStore for FailingStore {
    async fn org_people(&self, org: OrgId) -> StoreResult<tessera_domain::people::OrgPeople> {
        self.inner.org_people(org).await
    }

    async fn edit_people(
        &self,
        org: OrgId,
        now: DateTime<Utc>,
        edit: &mut (dyn tessera_store::PeopleEdit + '_),
    ) -> StoreResult<tessera_store::Edited> {
        self.inner.edit_people(org, now, edit).await
    }

    async fn create_cloud_user(
        &self,
        user: &tessera_domain::people::CloudUser,
        now: DateTime<Utc>,
        memberships: &mut [(OrgId, &mut (dyn tessera_store::PeopleEdit + '_))],
        events: &[NewEvent],
    ) -> StoreResult<tessera_store::Edited> {
        self.inner
            .create_cloud_user(user, now, memberships, events)
            .await
    }

    async fn get_cloud_user(
        &self,
        id: tessera_domain::UserId,
    ) -> StoreResult<Option<tessera_domain::people::CloudUser>> {
        self.inner.get_cloud_user(id).await
    }

    async fn find_cloud_user(
        &self,
        username: &str,
    ) -> StoreResult<Option<tessera_domain::people::CloudUser>> {
        self.inner.find_cloud_user(username).await
    }

    async fn update_cloud_user_profile(
        &self,
        user: &tessera_domain::people::CloudUser,
        orgs: &[OrgId],
        events: &[NewEvent],
    ) -> StoreResult<Option<bool>> {
        self.inner
            .update_cloud_user_profile(user, orgs, events)
            .await
    }

    async fn orgs_of_user(&self, id: tessera_domain::UserId) -> StoreResult<Vec<OrgId>> {
        self.inner.orgs_of_user(id).await
    }
}

#[async_trait]
impl tessera_store::CustomRoleStore for FailingStore {
    async fn list_custom_roles(
        &self,
        group: GroupId,
    ) -> StoreResult<Vec<tessera_domain::custom_roles::CustomRole>> {
        self.inner.list_custom_roles(group).await
    }

    async fn put_custom_role(
        &self,
        group: GroupId,
        role: &tessera_domain::custom_roles::CustomRole,
        create: bool,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<tessera_store::PutRole> {
        self.inner
            .put_custom_role(group, role, create, now, events)
            .await
    }

    async fn delete_custom_role(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<tessera_store::DeleteRole> {
        self.inner.delete_custom_role(group, name, events).await
    }
}

#[async_trait]
impl tessera_store::X509Store for FailingStore {
    async fn project_ca(&self, group: GroupId) -> StoreResult<Option<(String, String)>> {
        self.inner.project_ca(group).await
    }

    async fn ensure_project_ca(
        &self,
        group: GroupId,
        ca: (String, String),
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(String, String)>> {
        self.inner.ensure_project_ca(group, ca, now).await
    }

    async fn record_user_cert(
        &self,
        cert: &tessera_store::UserCert,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.record_user_cert(cert, events).await
    }

    async fn list_user_certs(
        &self,
        group: GroupId,
        username: &str,
    ) -> StoreResult<Vec<tessera_store::UserCert>> {
        self.inner.list_user_certs(group, username).await
    }
}

#[async_trait]
impl tessera_store::SettingsStore for FailingStore {
    async fn get_settings(
        &self,
        scope: tessera_store::SettingsScope,
    ) -> StoreResult<Option<String>> {
        self.inner.get_settings(scope).await
    }

    async fn put_settings(
        &self,
        scope: tessera_store::SettingsScope,
        body: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.put_settings(scope, body, events).await
    }

    async fn group_limits(&self, group: GroupId) -> StoreResult<Vec<(String, i64)>> {
        self.inner.group_limits(group).await
    }

    async fn set_group_limit(
        &self,
        group: GroupId,
        name: &str,
        value: Option<i64>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.set_group_limit(group, name, value, events).await
    }
}

#[async_trait]
impl tessera_store::NetworkStore for FailingStore {
    async fn list_network_access(
        &self,
        group: GroupId,
    ) -> StoreResult<Vec<tessera_domain::network::NetworkEntry>> {
        self.inner.list_network_access(group).await
    }

    async fn put_network_access(
        &self,
        group: GroupId,
        puts: &[tessera_store::NetworkPut],
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<bool> {
        self.inner.put_network_access(group, puts, now).await
    }

    async fn delete_network_access(
        &self,
        group: GroupId,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .delete_network_access(group, key, now, events)
            .await
    }
}

#[async_trait]
impl tessera_store::DatabaseUserStore for FailingStore {
    async fn list_database_users(
        &self,
        group: GroupId,
    ) -> StoreResult<Vec<tessera_store::DatabaseUser>> {
        self.inner.list_database_users(group).await
    }

    async fn get_database_user(
        &self,
        group: GroupId,
        database: &str,
        username: &str,
    ) -> StoreResult<Option<tessera_store::DatabaseUser>> {
        self.inner
            .get_database_user(group, database, username)
            .await
    }

    async fn create_database_user(
        &self,
        user: &tessera_store::DatabaseUser,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.create_database_user(user, now, events).await
    }

    async fn update_database_user(
        &self,
        user: &tessera_store::DatabaseUser,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.update_database_user(user, now, events).await
    }

    async fn delete_database_user(
        &self,
        group: GroupId,
        database: &str,
        username: &str,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner
            .delete_database_user(group, database, username, now, events)
            .await
    }
}

/// Starts a server on a [`FailingStore`] and hands back both.
pub async fn start_failing() -> (TestServer, Arc<FailingStore>) {
    let mut slot = None;
    let s = TestServer::start_with_store(
        |_| {},
        |inner| {
            let f = Arc::new(FailingStore {
                inner,
                fail_account_reads: AtomicBool::new(false),
                feed: tokio::sync::broadcast::channel(64).0,
                fail_access_use: AtomicBool::new(false),
            });
            slot = Some(f.clone());
            f
        },
    )
    .await;
    (s, slot.unwrap())
}

#[tokio::test]
async fn a_failed_registry_reload_drops_the_account() {
    let (s, store) = start_failing().await;
    let o = s.owner();
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    let (renamed, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let (rotated, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let (bystander, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let t_renamed = s.token(&renamed).await;
    let t_rotated = s.token(&rotated).await;
    let t_bystander = s.token(&bystander).await;
    for t in [&t_renamed, &t_rotated, &t_bystander] {
        s.bearer(t, Method::GET, &org, None).await.expect(200);
    }
    // Nothing pending from here on, so a later flush re-reads accounts only because a reload
    // failed.
    let st = &s.running.state;
    st.registry
        .flush(st.store.as_ref(), st.clock.now())
        .await
        .unwrap();

    store.fail_account_reads.store(true, Ordering::SeqCst);
    // The writes reach the store, but the reload after them fails: 500, no detail.
    let r = s
        .v2024(
            &o,
            Method::PATCH,
            &s.sa_path(&format!("/{}", renamed.id)),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    r.expect_error(500, "UNEXPECTED_ERROR");
    assert!(!r.text.contains("injected"), "{}", r.text);
    let r = s
        .v2024(
            &o,
            Method::POST,
            &s.sa_path(&format!("/{}/secrets", rotated.id)),
            Some(json!({"secretExpiresAfterHours": 8})),
        )
        .await;
    r.expect_error(500, "UNEXPECTED_ERROR");

    // Fail closed: the mirror no longer holds either account, and while the store cannot be
    // read neither its tokens nor its secrets are accepted (rather than serving a copy older
    // than the store): the token is undecidable (503), the client is not authenticated.
    for (c, t) in [(&renamed, &t_renamed), (&rotated, &t_rotated)] {
        s.bearer(t, Method::GET, &org, None)
            .await
            .expect_error(503, "SERVICE_UNAVAILABLE");
        let r = s
            .token_request(
                Some(&basic(&c.id, &c.secret)),
                "grant_type=client_credentials",
            )
            .await;
        assert!(r.status.as_u16() >= 500, "{} {}", r.status, r.text);
        assert!(!r.text.contains("injected"), "{}", r.text);
    }
    store.fail_account_reads.store(false, Ordering::SeqCst);
    let snap = s.snapshot().await;
    assert!(snap.contains("'Renamed'"), "the write itself was committed");

    // An account whose reload did not fail is untouched.
    s.bearer(&t_bystander, Method::GET, &org, None)
        .await
        .expect(200);

    // Once the store answers again, the next flush (with no usage to write) re-reads every
    // account: the dropped ones come back as the store holds them.
    st.registry
        .flush(st.store.as_ref(), st.clock.now())
        .await
        .unwrap();
    for t in [&t_renamed, &t_rotated] {
        s.bearer(t, Method::GET, &org, None).await.expect(200);
    }
    for c in [&renamed, &rotated, &bystander] {
        s.token(c).await;
    }
    let r = s
        .v2024(
            &o,
            Method::GET,
            &s.sa_path(&format!("/{}", renamed.id)),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Renamed");
    s.stop().await;
}

/// Polls `check` (the change is applied by another task) until it holds. The bound (60 s)
/// only turns a hang into a failure: on a busy machine the other task may wait its turn for
/// seconds, and that is not what is tested.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..6000 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling interval
    }
    panic!("{what} never happened");
}

/// Another node's changes arrive on the store's change feed; this node applies them to its
/// registry: a secret deleted elsewhere stops minting, a revocation made elsewhere ends the
/// token, and a resync drops an account deleted elsewhere.
#[tokio::test]
async fn changes_from_another_node_reach_the_registry() {
    use tessera_store::Change;
    let (s, store) = start_failing().await;
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    let (c, created) = s.new_service_account(&["ORG_OWNER"]).await;
    let (gone, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let client = ClientId::parse(&c.id).unwrap();
    let secret = SecretId::parse(created["secrets"][0]["id"].as_str().unwrap()).unwrap();
    let token = s.token(&c).await;
    let token_gone = s.token(&gone).await;
    // "Another node": a second handle on the same database, writing behind this server.
    let other = tessera::export::open_store(&s.store_config())
        .await
        .unwrap();

    // A revocation made elsewhere: not known here until it is published.
    let (jti, exp) = jti_and_expiry(&token);
    other
        .revoke_token(&jti, client, exp, revoked_event(client))
        .await
        .unwrap();
    s.bearer(&token, Method::GET, &org, None).await.expect(200);
    store
        .feed
        .send(Change::Revoked {
            jti,
            expires_at: exp,
        })
        .unwrap();
    eventually("the revocation from another node", || async {
        s.bearer(&token, Method::GET, &org, None).await.status == 401
    })
    .await;

    // A secret deleted elsewhere keeps minting here only until its account's change arrives.
    assert!(other
        .delete_service_account_secret(client, secret, &[])
        .await
        .unwrap());
    let auth = basic(&c.id, &c.secret);
    let mint = || s.token_request(Some(&auth), "grant_type=client_credentials");
    assert_eq!(mint().await.status.as_u16(), 200, "not yet published");
    store.feed.send(Change::Account(client)).unwrap();
    eventually("the secret deletion from another node", || async {
        mint().await.status.as_u16() == 401
    })
    .await;

    // An account deleted elsewhere, announced only by a resync (as after a reconnect).
    assert!(other
        .delete_service_account(ClientId::parse(&gone.id).unwrap(), &[])
        .await
        .unwrap());
    s.bearer(&token_gone, Method::GET, &org, None)
        .await
        .expect(200);
    store.feed.send(Change::Everything).unwrap();
    eventually("the resync", || async {
        s.bearer(&token_gone, Method::GET, &org, None).await.status == 401
    })
    .await;
    s.stop().await;
}

/// Issue 14 item 4: a change this node could not apply (the store failed while re-reading the
/// account) leaves it untrusted — Bearer requests answer 503, never from memory — until a
/// heartbeat's catch-up has re-read everything, revocations included: a revocation it never
/// heard of is then refused.
#[tokio::test]
async fn a_failed_change_keeps_the_node_stale_until_everything_is_read_again() {
    use tessera_store::Change;
    let (s, store) = start_failing().await;
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let client = ClientId::parse(&c.id).unwrap();
    let token = s.token(&c).await;
    s.bearer(&token, Method::GET, &org, None).await.expect(200);
    // Revoked by "another node" whose change this node never hears of.
    let other = tessera::export::open_store(&s.store_config())
        .await
        .unwrap();
    let (jti, exp) = jti_and_expiry(&token);
    other
        .revoke_token(&jti, client, exp, revoked_event(client))
        .await
        .unwrap();
    // A change arrives and cannot be applied: the node stops trusting its memory.
    store.fail_account_reads.store(true, Ordering::SeqCst);
    store.feed.send(Change::Account(client)).unwrap();
    eventually("the change was applied and failed: not ready", || async {
        s.raw(Method::GET, "/readyz", &[], None).await.status == 503
    })
    .await;
    let r = s.bearer(&token, Method::GET, &org, None).await;
    assert_eq!(
        r.status, 503,
        "a node that failed a change answered from memory"
    );
    assert_eq!(r.error_code(), "SERVICE_UNAVAILABLE");
    // The store answers again: the next heartbeat re-reads everything, and the revocation it
    // never heard of holds (a heartbeat alone, without the catch-up, would trust the stale
    // memory and accept the token).
    store.fail_account_reads.store(false, Ordering::SeqCst);
    eventually("the catch-up reads the missed revocation", || async {
        store
            .feed
            .send(Change::Synced(std::time::Instant::now()))
            .unwrap();
        let r = s.bearer(&token, Method::GET, &org, None).await;
        assert_ne!(r.status, 200, "the missed revocation was not read");
        r.status == 401
    })
    .await;
    // And the account itself is trusted again: a new token works.
    let fresh = s.token(&c).await;
    s.bearer(&fresh, Method::GET, &org, None).await.expect(200);
    s.stop().await;
}

/// A token's `jti` and expiry, read from its payload.
fn jti_and_expiry(token: &str) -> (String, DateTime<Utc>) {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let exp = DateTime::from_timestamp(claims["exp"].as_i64().unwrap(), 0).unwrap();
    (jti, exp)
}

fn revoked_event(client: ClientId) -> NewEvent {
    NewEvent {
        id: EventId::generate(crate::harness::t0()),
        created: crate::harness::t0(),
        event_type: tessera_domain::EventType::ServiceAccountTokenRevoked,
        org_id: None,
        group_id: None,
        actor: tessera_store::events::Actor::ServiceAccount(client),
        remote_address: None,
        target: Vec::new(),
    }
}

#[async_trait]
impl tessera_store::ConsoleStore for FailingStore {
    async fn create_session(
        &self,
        id_hash: &str,
        session: &tessera_store::ConsoleSession,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        self.inner.create_session(id_hash, session, events).await
    }
    async fn console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<tessera_store::ConsoleSession>> {
        self.inner.console_session(id_hash, now).await
    }
    async fn set_session_roles(&self, id_hash: &str, roles: &[String]) -> StoreResult<()> {
        self.inner.set_session_roles(id_hash, roles).await
    }
    async fn end_session(&self, id_hash: &str, events: &[NewEvent]) -> StoreResult<bool> {
        self.inner.end_session(id_hash, events).await
    }
    async fn set_flash(&self, id_hash: &str, sealed: &[u8]) -> StoreResult<()> {
        self.inner.set_flash(id_hash, sealed).await
    }
    async fn take_flash(&self, id_hash: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.take_flash(id_hash).await
    }
    async fn put_login(
        &self,
        id_hash: &str,
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.put_login(id_hash, sealed, expires_at).await
    }
    async fn get_login(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get_login(id_hash, now).await
    }
    async fn take_login(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Vec<u8>>> {
        self.inner.take_login(id_hash, now).await
    }
    async fn totp_factor(
        &self,
        user: tessera_domain::UserId,
    ) -> StoreResult<Option<tessera_store::TotpFactor>> {
        self.inner.totp_factor(user).await
    }
    async fn start_totp(&self, user: tessera_domain::UserId, sealed: &[u8]) -> StoreResult<bool> {
        self.inner.start_totp(user, sealed).await
    }
    async fn use_totp_step(
        &self,
        user: tessera_domain::UserId,
        step: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner.use_totp_step(user, step, now).await
    }
}

#[async_trait]
impl tessera_store::FederationStore for FailingStore {
    async fn ensure_federation_settings(
        &self,
        org: OrgId,
        id: tessera_domain::FederationSettingsId,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<Option<fed::FederationSettings>> {
        self.inner
            .ensure_federation_settings(org, id, now, events)
            .await
    }

    async fn federation_settings(
        &self,
        id: tessera_domain::FederationSettingsId,
    ) -> StoreResult<Option<fed::FederationSettings>> {
        self.inner.federation_settings(id).await
    }

    async fn identity_providers(
        &self,
        federation: tessera_domain::FederationSettingsId,
    ) -> StoreResult<Vec<fed::IdentityProvider>> {
        self.inner.identity_providers(federation).await
    }

    async fn identity_provider(
        &self,
        id: tessera_domain::IdentityProviderId,
    ) -> StoreResult<Option<fed::IdentityProvider>> {
        self.inner.identity_provider(id).await
    }

    async fn create_identity_provider(
        &self,
        idp: &fed::IdentityProvider,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.create_identity_provider(idp, events).await
    }

    async fn update_identity_provider(
        &self,
        idp: &fed::IdentityProvider,
        events: &[NewEvent],
    ) -> StoreResult<Option<bool>> {
        self.inner.update_identity_provider(idp, events).await
    }

    async fn delete_identity_provider(
        &self,
        federation: tessera_domain::FederationSettingsId,
        id: tessera_domain::IdentityProviderId,
        events: &[NewEvent],
    ) -> StoreResult<tessera_store::DeleteProvider> {
        self.inner
            .delete_identity_provider(federation, id, events)
            .await
    }

    async fn connected_org_configs(
        &self,
        federation: tessera_domain::FederationSettingsId,
    ) -> StoreResult<Vec<fed::ConnectedOrgConfig>> {
        self.inner.connected_org_configs(federation).await
    }

    async fn connected_org_config(
        &self,
        org: OrgId,
    ) -> StoreResult<Option<fed::ConnectedOrgConfig>> {
        self.inner.connected_org_config(org).await
    }

    async fn put_connected_org_config(
        &self,
        config: &fed::ConnectedOrgConfig,
        events: &[NewEvent],
    ) -> StoreResult<tessera_store::PutConfig> {
        self.inner.put_connected_org_config(config, events).await
    }

    async fn role_mappings(&self, org: OrgId) -> StoreResult<Vec<fed::RoleMapping>> {
        self.inner.role_mappings(org).await
    }

    async fn put_role_mapping(
        &self,
        mapping: &fed::RoleMapping,
        create: bool,
        events: &[NewEvent],
    ) -> StoreResult<tessera_store::PutMapping> {
        self.inner.put_role_mapping(mapping, create, events).await
    }

    async fn delete_role_mapping(
        &self,
        org: OrgId,
        id: tessera_domain::RoleMappingId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        self.inner.delete_role_mapping(org, id, events).await
    }

    async fn oidc_workforce_providers(&self) -> StoreResult<Vec<fed::IdentityProvider>> {
        self.inner.oidc_workforce_providers().await
    }

    async fn connected_orgs_of_provider(
        &self,
        id: tessera_domain::IdentityProviderId,
    ) -> StoreResult<Vec<(fed::ConnectedOrgConfig, Vec<fed::RoleMapping>)>> {
        self.inner.connected_orgs_of_provider(id).await
    }
}
