//! The names of the events Tessera records: one per kind of change (CONTRACT §11).
//!
//! Service-account names are Atlas'; the others follow Atlas' style where Atlas has no name
//! we could confirm (ours, listed in docs/api.md and stable once shipped).

use crate::ValidationError;

macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// A kind of event.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            /// Every event type Tessera records.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The wire name (`eventTypeName`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// The event type with this wire name, if Tessera records it.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    OrgCreated = "ORG_CREATED",
    OrgRenamed = "ORG_RENAMED",
    /// `skipDefaultAlertsSettings` changed (ours).
    OrgSettingsChanged = "ORG_SETTINGS_CHANGED",
    OrgDeleted = "ORG_DELETED",
    GroupCreated = "GROUP_CREATED",
    GroupRenamed = "GROUP_RENAMED",
    GroupTagsChanged = "GROUP_TAGS_MODIFIED",
    /// `withDefaultAlertsSettings` changed (ours).
    GroupSettingsChanged = "GROUP_SETTINGS_CHANGED",
    GroupDeleted = "GROUP_DELETED",
    ApiKeyCreated = "API_KEY_CREATED",
    ApiKeyDeleted = "API_KEY_DELETED",
    ApiKeyRolesChanged = "API_KEY_ROLES_CHANGED",
    ApiKeyDescriptionChanged = "API_KEY_DESCRIPTION_CHANGED",
    ApiKeyAddedToGroup = "API_KEY_ADDED_TO_GROUP",
    ApiKeyRemovedFromGroup = "API_KEY_REMOVED_FROM_GROUP",
    ApiKeyAccessListEntryAdded = "API_KEY_ACCESS_LIST_ENTRY_ADDED",
    ApiKeyAccessListEntryDeleted = "API_KEY_ACCESS_LIST_ENTRY_DELETED",
    MongodbUserAdded = "MONGODB_USER_ADDED",
    MongodbUserUpdated = "MONGODB_USER_UPDATED",
    MongodbUserDeleted = "MONGODB_USER_DELETED",
    NetworkPermissionEntryAdded = "NETWORK_PERMISSION_ENTRY_ADDED",
    NetworkPermissionEntryUpdated = "NETWORK_PERMISSION_ENTRY_UPDATED",
    NetworkPermissionEntryRemoved = "NETWORK_PERMISSION_ENTRY_REMOVED",
    ServiceAccountCreated = "SERVICE_ACCOUNT_CREATED",
    ServiceAccountDeleted = "SERVICE_ACCOUNT_DELETED",
    ServiceAccountRolesChanged = "SERVICE_ACCOUNT_ROLES_CHANGED",
    ServiceAccountDetailsChanged = "SERVICE_ACCOUNT_DETAILS_CHANGED",
    ServiceAccountAddedToGroup = "SERVICE_ACCOUNT_ADDED_TO_GROUP",
    ServiceAccountRemovedFromGroup = "SERVICE_ACCOUNT_REMOVED_FROM_GROUP",
    ServiceAccountAccessListEntryAdded = "SERVICE_ACCOUNT_ACCESS_LIST_ENTRY_ADDED",
    ServiceAccountAccessListEntryDeleted = "SERVICE_ACCOUNT_ACCESS_LIST_ENTRY_DELETED",
    ServiceAccountSecretAdded = "SERVICE_ACCOUNT_SECRET_ADDED",
    ServiceAccountSecretDeleted = "SERVICE_ACCOUNT_SECRET_DELETED",
    /// A token revoked at `/api/oauth/revoke` (ours).
    ServiceAccountTokenRevoked = "SERVICE_ACCOUNT_TOKEN_REVOKED",
    /// Failed Digest authentications with one public key from one address in one minute,
    /// aggregated (ours).
    ApiKeyAuthenticationFailed = "API_KEY_AUTHENTICATION_FAILED",
    /// Failed Basic (token, revoke, introspect) or Bearer authentications of one client id
    /// from one address in one minute, aggregated (ours).
    ServiceAccountAuthenticationFailed = "SERVICE_ACCOUNT_AUTHENTICATION_FAILED",
    /// The browser console (ours): failed sign-ins (a bad password or code, or too many
    /// attempts), per person or address and minute, aggregated like the other failures.
    ConsoleSignInFailed = "CONSOLE_AUTHENTICATION_FAILED",
    /// A person signed in to the console (ours), and signed out.
    ConsoleSignedIn = "CONSOLE_SIGNED_IN",
    ConsoleSignedOut = "CONSOLE_SIGNED_OUT",
    /// People (Atlas' names): an invitation to the organization made (a pending member).
    InvitedToOrg = "INVITED_TO_ORG",
    /// An active member added (a user created with its roles, the owner of a new org).
    JoinedOrg = "JOINED_ORG",
    /// An active member removed from the organization.
    RemovedFromOrg = "REMOVED_FROM_ORG",
    /// A pending member's invitation deleted (ours, in Atlas' style).
    OrgInvitationDeleted = "ORG_INVITATION_DELETED",
    /// A member's organization roles, or own roles in a project, changed.
    UserRolesChanged = "USER_ROLES_CHANGED_AUDIT",
    /// A member given roles in a project.
    JoinedGroup = "JOINED_GROUP",
    /// A member's roles in a project removed.
    RemovedFromGroup = "REMOVED_FROM_GROUP",
    /// A person's profile (names, country, mobile number) changed (ours, in Atlas' style).
    UserProfileChanged = "USER_PROFILE_CHANGED",
    TeamCreated = "TEAM_CREATED",
    TeamDeleted = "TEAM_DELETED",
    TeamNameChanged = "TEAM_NAME_CHANGED",
    JoinedTeam = "JOINED_TEAM",
    RemovedFromTeam = "REMOVED_FROM_TEAM",
    TeamAddedToGroup = "TEAM_ADDED_TO_GROUP",
    TeamRemovedFromGroup = "TEAM_REMOVED_FROM_GROUP",
    TeamRolesModified = "TEAM_ROLES_MODIFIED",
    /// Custom database roles (Atlas' names).
    CustomRoleAdded = "CUSTOM_ROLE_ADDED",
    CustomRoleUpdated = "CUSTOM_ROLE_UPDATED",
    CustomRoleDeleted = "CUSTOM_ROLE_DELETED",
    /// A managed X.509 client certificate issued to a database user (ours).
    X509CertificateCreated = "MONGODB_USER_X509_CERT_CREATED",
    /// A project's customer-managed X.509 CA set or changed (ours).
    X509CustomerCaUpdated = "X509_CUSTOMER_CA_UPDATED",
    /// A project's customer-managed X.509 cleared (ours).
    X509CustomerCaDisabled = "X509_CUSTOMER_CA_DISABLED",
    /// A project limit set or reset (ours, in Atlas' style).
    GroupLimitChanged = "GROUP_LIMIT_CHANGED",
    /// Federated authentication (ours, in Atlas' style; see docs/events.md): an
    /// organization's federation settings created on first need.
    FederationSettingsCreated = "FEDERATION_SETTINGS_CREATED",
    IdentityProviderCreated = "IDENTITY_PROVIDER_CREATED",
    IdentityProviderUpdated = "IDENTITY_PROVIDER_UPDATED",
    IdentityProviderDeleted = "IDENTITY_PROVIDER_DELETED",
    ConnectedOrgConfigUpdated = "CONNECTED_ORG_CONFIG_UPDATED",
    RoleMappingCreated = "ROLE_MAPPING_CREATED",
    RoleMappingUpdated = "ROLE_MAPPING_UPDATED",
    RoleMappingDeleted = "ROLE_MAPPING_DELETED",
    /// A cluster record created (Atlas).
    ClusterCreated = "CLUSTER_CREATED",
    /// A cluster record changed (Atlas' name; the change is applied at once here).
    ClusterUpdated = "CLUSTER_UPDATE_SUBMITTED",
    /// A cluster record deleted (Atlas' name; the record is gone at once here).
    ClusterDeleted = "CLUSTER_DELETE_SUBMITTED",
    /// MongoDB employee access to a cluster granted or replaced (Atlas).
    EmployeeAccessGranted = "EMPLOYEE_ACCESS_GRANTED",
    /// An active grant revoked (Atlas).
    EmployeeAccessRevoked = "EMPLOYEE_ACCESS_REVOKED",
    /// A grant reached its expiry; recorded when first observed (ours, in Atlas' style).
    EmployeeAccessExpired = "EMPLOYEE_ACCESS_EXPIRED",
    /// Support staff were allowed into a cluster under its grant (ours, in Atlas' style).
    EmployeeAccessUsed = "EMPLOYEE_ACCESS_USED",
    /// A support operator created with `tessera operators create` (ours; no organization).
    /// A signing key added to the server keys a database holds (`tessera rotate-signing-key`
    /// with a master key; ours). The target holds the new key's `kid`, never key material.
    SigningKeyRotated = "SIGNING_KEY_ROTATED",
    SupportOperatorCreated = "SUPPORT_OPERATOR_CREATED",
    /// A support operator deleted with `tessera operators delete` (ours; no organization).
    SupportOperatorDeleted = "SUPPORT_OPERATOR_DELETED",
    /// Failed Basic authentications at the support decisions endpoint naming one operator id
    /// from one address in one minute, aggregated (ours; no organization).
    SupportOperatorAuthenticationFailed = "SUPPORT_OPERATOR_AUTHENTICATION_FAILED",
}

/// Parses an `eventType` filter value. Atlas' list of event types is long and changes often,
/// so any well-formed name is accepted (a name Tessera never records matches nothing); a
/// malformed one is refused.
pub fn parse_event_type_filter(s: &str) -> Result<String, ValidationError> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ValidationError::new(
            "eventType",
            "must match ^[A-Z][A-Z0-9_]*$",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.as_str()), Some(*t));
            assert!(seen.insert(t.as_str()), "duplicate {}", t.as_str());
            assert!(parse_event_type_filter(t.as_str()).is_ok());
        }
        assert_eq!(EventType::from_name("NOPE"), None);
    }

    #[test]
    fn filters_are_upper_snake_names() {
        for ok in ["CLUSTER_CREATED", "A", "X9_Y"] {
            assert!(parse_event_type_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "lower", "_X", "9X", "A-B", "A B", &"A".repeat(101)] {
            assert!(parse_event_type_filter(bad).is_err(), "{bad}");
        }
    }
}
