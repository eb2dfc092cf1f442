//! Tessera's domain core.
//!
//! Architecture invariant: this crate performs no I/O. It knows nothing about HTTP, SQL or the
//! clock: every function that depends on time takes `now` as an argument (see [`clock`]), so
//! expiry of secrets, tokens, nonces and grants is tested without sleeping.

pub mod access;
pub mod authorization;
pub mod clock;
pub mod clusters;
pub mod custom_roles;
pub mod database_users;
pub mod events;
pub mod federation;
pub mod ids;
pub mod limits;
pub mod names;
pub mod network;
pub mod people;
pub mod principal;
pub mod roles;
pub mod secrets;
pub mod service_accounts;
pub mod time;

pub use authorization::{Decision, GroupVisibility, OrgLogVisibility, Requirement, Rule};
pub use clock::{Clock, ManualClock, SystemClock};
pub use events::EventType;
pub use ids::{
    ApiKeyId, ClientId, ClusterId, EventId, FederationSettingsId, GroupId, IdentityProviderId,
    InvitationId, ObjectId, OperatorId, OrgId, RoleMappingId, SecretId, TeamId, UserId,
};
pub use principal::{Principal, PrincipalKind};
pub use roles::{GroupRole, OrgRole};

/// A value failed validation. `field` names the input, `reason` says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
