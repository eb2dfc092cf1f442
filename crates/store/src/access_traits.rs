//! The storage interface of the access plane's newer areas (people, custom database roles,
//! X.509, settings and limits), one trait per area as in `traits.rs`; [`crate::Store`] is all
//! of them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_domain::{ClusterId, GroupId, OrgId};

use crate::events::NewEvent;
use crate::StoreResult;

/// An edit of an organization's people (`tessera_domain::people`), run by
/// [`PeopleStore::edit_people`] in one unit of work: `apply` changes the document (or refuses),
/// the store checks the domain's rules on the result, and `events` names the events of what
/// changed (`changes`, empty when nothing did: then nothing is written).
pub trait PeopleEdit: Send {
    fn apply(
        &mut self,
        people: &mut tessera_domain::people::OrgPeople,
    ) -> Result<(), tessera_domain::people::PeopleError>;
    fn events(
        &self,
        before: &tessera_domain::people::OrgPeople,
        after: &tessera_domain::people::OrgPeople,
        changes: &[tessera_domain::people::PeopleChange],
    ) -> Vec<NewEvent>;
}

/// What an edit of an organization's people came to.
#[derive(Debug)]
pub enum Edited {
    /// Committed (or nothing to change): the document after it, and the events written.
    Done {
        people: tessera_domain::people::OrgPeople,
        events: Vec<NewEvent>,
    },
    /// The edit or the domain's rules refused it; nothing was written.
    Refused(tessera_domain::people::PeopleError),
    /// The organization is gone.
    NoOrg,
}

/// People: MongoDB Cloud users, memberships, teams and invitations.
#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// An organization's people, as stored (invitations past their end included: the
    /// caller's clock decides, `OrgPeople::without_expired`).
    async fn org_people(&self, org: OrgId) -> StoreResult<tessera_domain::people::OrgPeople>;
    /// Runs `edit` on the organization's people in one unit of work (see [`PeopleEdit`]).
    async fn edit_people(
        &self,
        org: OrgId,
        now: DateTime<Utc>,
        edit: &mut (dyn PeopleEdit + '_),
    ) -> StoreResult<Edited>;
    /// Creates a user with its memberships (an edit per organization) and `events`, all or
    /// nothing; `Conflict("username")` when the name is taken.
    async fn create_cloud_user(
        &self,
        user: &tessera_domain::people::CloudUser,
        now: DateTime<Utc>,
        memberships: &mut [(OrgId, &mut (dyn PeopleEdit + '_))],
        events: &[NewEvent],
    ) -> StoreResult<Edited>;
    async fn get_cloud_user(
        &self,
        id: tessera_domain::UserId,
    ) -> StoreResult<Option<tessera_domain::people::CloudUser>>;
    /// The user of that name (case-insensitive).
    async fn find_cloud_user(
        &self,
        username: &str,
    ) -> StoreResult<Option<tessera_domain::people::CloudUser>>;
    /// Replaces a person's profile (names, country, mobile number), with `events`, only if it
    /// changed and the person still belongs to exactly `orgs` (checked in the same unit of
    /// work, so a membership gained meanwhile is not passed over); `None` when the person or
    /// its memberships changed, `Some(changed)` otherwise.
    async fn update_cloud_user_profile(
        &self,
        user: &tessera_domain::people::CloudUser,
        orgs: &[OrgId],
        events: &[NewEvent],
    ) -> StoreResult<Option<bool>>;
    /// The organizations a user belongs to (active or pending).
    async fn orgs_of_user(&self, id: tessera_domain::UserId) -> StoreResult<Vec<OrgId>>;
}

/// What a put of a custom database role came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PutRole {
    /// Written (or nothing to change: then no event).
    Done,
    /// A create of a name the project has.
    Exists,
    /// An update of a name the project has not.
    Missing,
    /// The project's roles together would break a rule (`custom_roles::check_project`).
    Invalid(tessera_domain::ValidationError),
    NoGroup,
}

/// What a delete of a custom database role came to.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteRole {
    Deleted,
    Missing,
    /// Other custom roles inherit it, or database users hold it: their names.
    InUse(Vec<String>),
}

/// Custom database roles of projects.
#[async_trait]
pub trait CustomRoleStore: Send + Sync {
    async fn list_custom_roles(
        &self,
        group: GroupId,
    ) -> StoreResult<Vec<tessera_domain::custom_roles::CustomRole>>;
    /// Creates (`create`) or replaces a role, in one unit of work under the project's row
    /// lock, checking the project's roles together; `events` only when something changed.
    async fn put_custom_role(
        &self,
        group: GroupId,
        role: &tessera_domain::custom_roles::CustomRole,
        create: bool,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<PutRole>;
    /// Deletes a role no other role inherits and no database user holds.
    async fn delete_custom_role(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<DeleteRole>;
}

/// Whose settings.
#[derive(Clone, Copy, Debug)]
pub enum SettingsScope {
    Org(OrgId),
    Group(GroupId),
    /// A cluster's process arguments.
    ProcessArgs(ClusterId),
    /// A project's `userSecurity` (customer-managed X.509).
    UserSecurity(GroupId),
}

/// A managed X.509 certificate issued to a database user (never its key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCert {
    pub group_id: GroupId,
    pub username: String,
    pub serial: i64,
    pub subject: String,
    pub created_at: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// X.509 for database users: the per-project CA and the certificates it issued.
#[async_trait]
pub trait X509Store: Send + Sync {
    /// The project's CA (certificate PEM, sealed key), if one was made.
    async fn project_ca(&self, group: GroupId) -> StoreResult<Option<(String, String)>>;
    /// Keeps `ca` as the project's CA unless it has one (another node's, made at the same
    /// time, wins); the CA kept. `None` when the project is gone.
    async fn ensure_project_ca(
        &self,
        group: GroupId,
        ca: (String, String),
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(String, String)>>;
    /// Records an issued certificate with its events, if the project still has the database
    /// user (an active X.509 managed user on `$external`); `false` otherwise.
    async fn record_user_cert(&self, cert: &UserCert, events: &[NewEvent]) -> StoreResult<bool>;
    /// A user's certificates, newest first.
    async fn list_user_certs(&self, group: GroupId, username: &str) -> StoreResult<Vec<UserCert>>;
}

/// Organization and project settings (a JSON document each) and project limits.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The settings document, `None` until first changed.
    async fn get_settings(&self, scope: SettingsScope) -> StoreResult<Option<String>>;
    /// Replaces the document, with `events` only when it changed (`true`);
    /// `Conflict("owner")` when the organization or project is gone.
    async fn put_settings(
        &self,
        scope: SettingsScope,
        body: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// The limits set away from their defaults, by name.
    async fn group_limits(&self, group: GroupId) -> StoreResult<Vec<(String, i64)>>;
    /// Sets (`Some`) or resets (`None`) a limit, with `events` only when it changed (`true`).
    async fn set_group_limit(
        &self,
        group: GroupId,
        name: &str,
        value: Option<i64>,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
}

/// A browser console session (ours): who, its CSRF token, how it began (`local` or
/// `oidc:<identity provider id>`), the roles held when it began, and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user_id: tessera_domain::UserId,
    pub csrf: String,
    pub via: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A person's TOTP second factor: the sealed secret, whether enrolment finished, and the last
/// time step a code was accepted for (a code is accepted once).
#[derive(Clone, Debug)]
pub struct TotpFactor {
    pub secret_sealed: Vec<u8>,
    pub enrolled: bool,
    pub last_step: i64,
}

/// The browser console's sessions, sign-ins in progress and second factors. Sessions and
/// sign-ins are keyed by the keyed hash of their cookie's id (`id_hash`).
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Starts a session; `events` (the sign-in) are written with it.
    async fn create_session(
        &self,
        id_hash: &str,
        session: &ConsoleSession,
        events: &[NewEvent],
    ) -> StoreResult<()>;
    /// The session, while it has not expired at `now`.
    async fn console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConsoleSession>>;
    /// Replaces the roles a session is checked against (after the person gained one).
    async fn set_session_roles(&self, id_hash: &str, roles: &[String]) -> StoreResult<()>;
    /// Ends a session; `events` are written only if it existed. `true` when it did.
    async fn end_session(&self, id_hash: &str, events: &[NewEvent]) -> StoreResult<bool>;
    /// Sets the session's one-time message (sealed by the caller).
    async fn set_flash(&self, id_hash: &str, sealed: &[u8]) -> StoreResult<()>;
    /// Reads and clears the session's one-time message, in one unit of work.
    async fn take_flash(&self, id_hash: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Keeps a sign-in in progress (sealed) until `expires_at`.
    async fn put_login(
        &self,
        id_hash: &str,
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A sign-in in progress that has not expired at `now`, left in place.
    async fn get_login(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Vec<u8>>>;
    /// Takes (reads and deletes) a sign-in in progress that has not expired at `now`.
    async fn take_login(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Vec<u8>>>;
    /// A person's second factor, if one was started.
    async fn totp_factor(&self, user: tessera_domain::UserId) -> StoreResult<Option<TotpFactor>>;
    /// Starts (or restarts, while not enrolled) a person's second factor. `false` when an
    /// enrolled factor exists (it is not replaced).
    async fn start_totp(&self, user: tessera_domain::UserId, sealed: &[u8]) -> StoreResult<bool>;
    /// Accepts a code's time step: marks the factor enrolled and `step` used, only if `step`
    /// is later than the last one used (`false`: a replay).
    async fn use_totp_step(
        &self,
        user: tessera_domain::UserId,
        step: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

/// What a change of a connected org config came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PutConfig {
    /// Written (`true`) or nothing to change (`false`: no event).
    Done(bool),
    /// The organization has no connected org config (no federation settings).
    Missing,
    /// An IdP it names is not one of the federation's.
    UnknownProvider(tessera_domain::IdentityProviderId),
}

/// What a put of a role mapping came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PutMapping {
    /// Written (`true`) or nothing to change (`false`: no event).
    Done(bool),
    /// An update of a mapping the connected org has not.
    Missing,
    /// Another mapping of the connected org has that `externalGroupName`.
    Duplicate,
    /// The connected org config is gone, or names no IdP (Atlas: mappings need one).
    NoProvider,
    /// The mapping breaks a rule (`RoleMapping::check`, on the org's projects as they are).
    Invalid(tessera_domain::ValidationError),
}

/// What a delete of an identity provider came to.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteProvider {
    Deleted,
    Missing,
    /// A connected org signs in or reaches data through it.
    InUse,
}

/// Federated authentication: federation settings, OIDC identity providers, connected org
/// configs and role mappings (`tessera_domain::federation`). Every change runs in one unit of
/// work under the federation's row lock (so "in use" and uniqueness checks hold across
/// nodes), with its events, only when something changed.
#[async_trait]
pub trait FederationStore: Send + Sync {
    /// The organization's federation settings, made (with its connected org config, as `id`,
    /// and `events`) when it has none; `None` when the organization is gone.
    async fn ensure_federation_settings(
        &self,
        org: OrgId,
        id: tessera_domain::FederationSettingsId,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<Option<tessera_domain::federation::FederationSettings>>;
    async fn federation_settings(
        &self,
        id: tessera_domain::FederationSettingsId,
    ) -> StoreResult<Option<tessera_domain::federation::FederationSettings>>;
    /// A federation's identity providers, oldest first.
    async fn identity_providers(
        &self,
        federation: tessera_domain::FederationSettingsId,
    ) -> StoreResult<Vec<tessera_domain::federation::IdentityProvider>>;
    async fn identity_provider(
        &self,
        id: tessera_domain::IdentityProviderId,
    ) -> StoreResult<Option<tessera_domain::federation::IdentityProvider>>;
    /// Creates an IdP in its federation; `false` when the federation is gone.
    async fn create_identity_provider(
        &self,
        idp: &tessera_domain::federation::IdentityProvider,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Replaces an IdP's configuration (and `updated_at`) when it changed: `None` when the
    /// federation has no such IdP, `Some(changed)` otherwise.
    async fn update_identity_provider(
        &self,
        idp: &tessera_domain::federation::IdentityProvider,
        events: &[NewEvent],
    ) -> StoreResult<Option<bool>>;
    /// Deletes an IdP no connected org uses.
    async fn delete_identity_provider(
        &self,
        federation: tessera_domain::FederationSettingsId,
        id: tessera_domain::IdentityProviderId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteProvider>;
    /// The connected org configs of a federation.
    async fn connected_org_configs(
        &self,
        federation: tessera_domain::FederationSettingsId,
    ) -> StoreResult<Vec<tessera_domain::federation::ConnectedOrgConfig>>;
    async fn connected_org_config(
        &self,
        org: OrgId,
    ) -> StoreResult<Option<tessera_domain::federation::ConnectedOrgConfig>>;
    /// Replaces a connected org config (every IdP it names must be its federation's).
    async fn put_connected_org_config(
        &self,
        config: &tessera_domain::federation::ConnectedOrgConfig,
        events: &[NewEvent],
    ) -> StoreResult<PutConfig>;
    /// A connected org's role mappings, by `externalGroupName` (project assignments of
    /// projects deleted since are left out).
    async fn role_mappings(
        &self,
        org: OrgId,
    ) -> StoreResult<Vec<tessera_domain::federation::RoleMapping>>;
    /// Creates (`create`) or replaces a role mapping, checking it on the org's projects as
    /// they are in the same unit of work.
    async fn put_role_mapping(
        &self,
        mapping: &tessera_domain::federation::RoleMapping,
        create: bool,
        events: &[NewEvent],
    ) -> StoreResult<PutMapping>;
    /// Deletes a role mapping; `false` when the connected org has no such mapping.
    async fn delete_role_mapping(
        &self,
        org: OrgId,
        id: tessera_domain::RoleMappingId,
        events: &[NewEvent],
    ) -> StoreResult<bool>;
    /// Every OIDC WORKFORCE IdP that at least one connected org config uses as its
    /// `identityProviderId` (what the console offers at sign-in).
    async fn oidc_workforce_providers(
        &self,
    ) -> StoreResult<Vec<tessera_domain::federation::IdentityProvider>>;
    /// The connected org configs that sign in through IdP `id`, each with its role mappings.
    async fn connected_orgs_of_provider(
        &self,
        id: tessera_domain::IdentityProviderId,
    ) -> StoreResult<
        Vec<(
            tessera_domain::federation::ConnectedOrgConfig,
            Vec<tessera_domain::federation::RoleMapping>,
        )>,
    >;
}
