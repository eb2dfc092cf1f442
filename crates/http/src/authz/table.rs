//! The table itself: one row per route the router registers (see the parent module).

use tessera_domain::authorization::Rule::{self, *};
use tessera_domain::Requirement::*;

use super::{Entry, Mount, Verb};
use crate::oauth::{INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH};

const fn api(verb: Verb, path: &'static str, rule: Rule) -> Entry {
    Entry {
        mount: Mount::Api,
        verb,
        path,
        rule,
    }
}

const fn root(verb: Verb, path: &'static str, rule: Rule) -> Entry {
    Entry {
        mount: Mount::Root,
        verb,
        path,
        rule,
    }
}

const fn tessera(verb: Verb, path: &'static str, rule: Rule) -> Entry {
    Entry {
        mount: Mount::Tessera,
        verb,
        path,
        rule,
    }
}

/// A row of a federation's route, `/federationSettings/{federationSettingsId}` and `$rest`:
/// every one needs Organization Owner of the federation's organization.
macro_rules! fed {
    ($verb:ident $rest:literal) => {
        api(
            $verb,
            concat!("/federationSettings/{federationSettingsId}", $rest),
            Org(OrgOwner),
        )
    };
}

use Verb::{Delete as DELETE, Get as GET, Patch as PATCH, Post as POST, Put as PUT};

/// Every route, and what it needs. The requirements are the subset's `x-rolesRequirements`
/// (CONTRACT §9) where it names one; the comments say where Tessera adds to it.
pub static TABLE: &[Entry] = &[
    // The caller's own organization (`getSystemStatus`, and lists that show only its own
    // organization and the projects it may see).
    api(GET, "/", Authenticated),
    api(GET, "/orgs", Authenticated),
    api(POST, "/orgs", CreateOrg),
    api(GET, "/groups", Authenticated),
    api(GET, "/clusters", Authenticated),
    api(GET, "/eventTypes", Authenticated),
    // Atlas' control-plane addresses: no credential.
    api(GET, "/unauth/controlPlaneIPAddresses", Public),
    // Organizations.
    api(GET, "/orgs/{orgId}", Org(OrgMember)),
    api(PATCH, "/orgs/{orgId}", Org(OrgOwner)),
    api(DELETE, "/orgs/{orgId}", Org(OrgOwner)),
    // Shows only the projects the caller may see (`Principal::visible_groups`).
    api(GET, "/orgs/{orgId}/groups", Org(OrgMember)),
    // Show only the events of where the caller may read the log
    // (`Principal::org_log_visibility`, `may_read_org_event`).
    api(GET, "/orgs/{orgId}/events", Org(OrgMember)),
    api(GET, "/orgs/{orgId}/events/{eventId}", Org(OrgMember)),
    // Organization API keys and their access lists.
    api(GET, "/orgs/{orgId}/apiKeys", Org(OrgMember)),
    api(POST, "/orgs/{orgId}/apiKeys", Org(OrgOwner)),
    api(GET, "/orgs/{orgId}/apiKeys/{apiUserId}", Org(OrgMember)),
    api(PATCH, "/orgs/{orgId}/apiKeys/{apiUserId}", Org(OrgOwner)),
    api(DELETE, "/orgs/{orgId}/apiKeys/{apiUserId}", Org(OrgOwner)),
    api(
        GET,
        "/orgs/{orgId}/apiKeys/{apiUserId}/accessList",
        Org(OrgMember),
    ),
    // The subset names no role for changing a key's list; every other change to a key needs
    // the owner.
    api(
        POST,
        "/orgs/{orgId}/apiKeys/{apiUserId}/accessList",
        Org(OrgOwner),
    ),
    api(
        GET,
        "/orgs/{orgId}/apiKeys/{apiUserId}/accessList/{ipAddress}",
        Org(OrgMember),
    ),
    api(
        DELETE,
        "/orgs/{orgId}/apiKeys/{apiUserId}/accessList/{ipAddress}",
        KeepsOwnAccess(&Org(OrgOwner)),
    ),
    // People ("MongoDB Cloud Users"). A person's account: the Organization Owner of each
    // organization its roles name (the Project Owner of each project); reading one, an
    // Organization Member where it is a member.
    api(
        POST,
        "/users",
        Membership {
            org: OrgOwner,
            group: ProjectOwner,
        },
    ),
    // Cloud Manager's profile update: the Organization Owner of every organization the
    // person belongs to (decided per organization).
    api(
        PATCH,
        "/users/{userId}",
        Membership {
            org: OrgOwner,
            group: ProjectOwner,
        },
    ),
    api(
        GET,
        "/users/{userId}",
        Membership {
            org: OrgMember,
            group: ProjectReadOnly,
        },
    ),
    api(
        GET,
        "/users/byName/{userName}",
        Membership {
            org: OrgMember,
            group: ProjectReadOnly,
        },
    ),
    api(GET, "/orgs/{orgId}/users", Org(OrgMember)),
    api(POST, "/orgs/{orgId}/users", Org(OrgOwner)),
    api(GET, "/orgs/{orgId}/users/{userId}", Org(OrgMember)),
    api(PATCH, "/orgs/{orgId}/users/{userId}", Org(OrgOwner)),
    api(DELETE, "/orgs/{orgId}/users/{userId}", Org(OrgOwner)),
    // `{userId}:addRole` / `{userId}:removeRole`.
    api(POST, "/orgs/{orgId}/users/{userId}", Org(OrgOwner)),
    // "Organization User Admin" in the description: a role Tessera does not have; its owner.
    api(PUT, "/orgs/{orgId}/users/{userId}/roles", Org(OrgOwner)),
    api(GET, "/groups/{groupId}/users", Group(ProjectReadOnly)),
    api(POST, "/groups/{groupId}/users", Group(ProjectOwner)),
    api(
        GET,
        "/groups/{groupId}/users/{userId}",
        Group(ProjectReadOnly),
    ),
    api(
        DELETE,
        "/groups/{groupId}/users/{userId}",
        Group(ProjectOwner),
    ),
    api(
        POST,
        "/groups/{groupId}/users/{userId}",
        Group(ProjectOwner),
    ),
    // "Group User Admin" in the description: read as the Project Owner.
    api(
        PUT,
        "/groups/{groupId}/users/{userId}/roles",
        Group(ProjectOwner),
    ),
    api(POST, "/groups/{groupId}/access", Group(ProjectOwner)),
    // Invitations to an organization.
    api(GET, "/orgs/{orgId}/invites", Org(OrgOwner)),
    api(POST, "/orgs/{orgId}/invites", Org(OrgOwner)),
    api(PATCH, "/orgs/{orgId}/invites", Org(OrgOwner)),
    api(GET, "/orgs/{orgId}/invites/{invitationId}", Org(OrgOwner)),
    api(PATCH, "/orgs/{orgId}/invites/{invitationId}", Org(OrgOwner)),
    api(
        DELETE,
        "/orgs/{orgId}/invites/{invitationId}",
        Org(OrgOwner),
    ),
    api(GET, "/groups/{groupId}/invites", Group(ProjectOwner)),
    api(POST, "/groups/{groupId}/invites", Group(ProjectOwner)),
    api(PATCH, "/groups/{groupId}/invites", Group(ProjectOwner)),
    api(
        GET,
        "/groups/{groupId}/invites/{invitationId}",
        Group(ProjectOwner),
    ),
    api(
        PATCH,
        "/groups/{groupId}/invites/{invitationId}",
        Group(ProjectOwner),
    ),
    api(
        DELETE,
        "/groups/{groupId}/invites/{invitationId}",
        Group(ProjectOwner),
    ),
    // Teams.
    api(GET, "/orgs/{orgId}/teams", Org(OrgMember)),
    api(POST, "/orgs/{orgId}/teams", Org(OrgOwner)),
    api(GET, "/orgs/{orgId}/teams/{teamId}", Org(OrgMember)),
    api(PATCH, "/orgs/{orgId}/teams/{teamId}", Org(OrgOwner)),
    api(DELETE, "/orgs/{orgId}/teams/{teamId}", Org(OrgOwner)),
    // `{teamId}:addUser` / `{teamId}:removeUser`.
    api(POST, "/orgs/{orgId}/teams/{teamId}", Org(OrgOwner)),
    api(GET, "/orgs/{orgId}/teams/byName/{teamName}", Org(OrgMember)),
    api(GET, "/orgs/{orgId}/teams/{teamId}/users", Org(OrgMember)),
    api(POST, "/orgs/{orgId}/teams/{teamId}/users", Org(OrgOwner)),
    api(
        DELETE,
        "/orgs/{orgId}/teams/{teamId}/users/{userId}",
        Org(OrgOwner),
    ),
    api(GET, "/groups/{groupId}/teams", Group(ProjectReadOnly)),
    api(POST, "/groups/{groupId}/teams", Group(ProjectOwner)),
    api(
        GET,
        "/groups/{groupId}/teams/{teamId}",
        Group(ProjectReadOnly),
    ),
    api(
        PATCH,
        "/groups/{groupId}/teams/{teamId}",
        Group(ProjectOwner),
    ),
    api(
        DELETE,
        "/groups/{groupId}/teams/{teamId}",
        Group(ProjectOwner),
    ),
    // Settings and limits.
    api(GET, "/orgs/{orgId}/settings", Org(OrgMember)),
    api(PATCH, "/orgs/{orgId}/settings", Org(OrgOwner)),
    api(GET, "/groups/{groupId}/settings", Group(ProjectReadOnly)),
    api(PATCH, "/groups/{groupId}/settings", Group(ProjectOwner)),
    api(GET, "/groups/{groupId}/limits", Group(ProjectReadOnly)),
    api(
        GET,
        "/groups/{groupId}/limits/{limitName}",
        Group(ProjectReadOnly),
    ),
    api(
        PATCH,
        "/groups/{groupId}/limits/{limitName}",
        Group(ProjectOwner),
    ),
    api(
        DELETE,
        "/groups/{groupId}/limits/{limitName}",
        Group(ProjectOwner),
    ),
    api(
        GET,
        "/groups/{groupId}/managedSlowMs",
        Group(ProjectReadOnly),
    ),
    // Projects. Creating one: the organization named in the body.
    api(POST, "/groups", Org(OrgGroupCreator)),
    api(GET, "/groups/{groupId}", Group(ProjectReadOnly)),
    api(PATCH, "/groups/{groupId}", Group(ProjectOwner)),
    api(DELETE, "/groups/{groupId}", Group(ProjectOwner)),
    api(GET, "/groups/byName/{groupName}", Group(ProjectReadOnly)),
    api(GET, "/groups/{groupId}/events", Group(ProjectReadOnly)),
    api(
        GET,
        "/groups/{groupId}/events/{eventId}",
        Group(ProjectReadOnly),
    ),
    // A project's API keys.
    api(GET, "/groups/{groupId}/apiKeys", Group(ProjectReadOnly)),
    api(
        POST,
        "/groups/{groupId}/apiKeys",
        GroupMember(ProjectAccessManager),
    ),
    // Assigning an existing org key with any roles: the project owner only.
    api(
        POST,
        "/groups/{groupId}/apiKeys/{apiUserId}",
        Group(ProjectOwner),
    ),
    api(
        PATCH,
        "/groups/{groupId}/apiKeys/{apiUserId}",
        GroupMember(ProjectAccessManager),
    ),
    api(
        DELETE,
        "/groups/{groupId}/apiKeys/{apiUserId}",
        GroupMember(ProjectAccessManager),
    ),
    // Organization service accounts.
    api(GET, "/orgs/{orgId}/serviceAccounts", Org(OrgReadOnly)),
    api(POST, "/orgs/{orgId}/serviceAccounts", Org(OrgOwner)),
    api(
        GET,
        "/orgs/{orgId}/serviceAccounts/{clientId}",
        Org(OrgReadOnly),
    ),
    api(
        PATCH,
        "/orgs/{orgId}/serviceAccounts/{clientId}",
        Org(OrgOwner),
    ),
    api(
        DELETE,
        "/orgs/{orgId}/serviceAccounts/{clientId}",
        Org(OrgOwner),
    ),
    api(
        POST,
        "/orgs/{orgId}/serviceAccounts/{clientId}/secrets",
        Org(OrgOwner),
    ),
    api(
        DELETE,
        "/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}",
        Org(OrgOwner),
    ),
    api(
        GET,
        "/orgs/{orgId}/serviceAccounts/{clientId}/accessList",
        Org(OrgReadOnly),
    ),
    api(
        POST,
        "/orgs/{orgId}/serviceAccounts/{clientId}/accessList",
        Org(OrgOwner),
    ),
    api(
        DELETE,
        "/orgs/{orgId}/serviceAccounts/{clientId}/accessList/{ipAddress}",
        KeepsOwnAccess(&Org(OrgOwner)),
    ),
    api(
        GET,
        "/orgs/{orgId}/serviceAccounts/{clientId}/groups",
        Org(OrgReadOnly),
    ),
    // Service accounts through a project. Changes to the account as a whole also need the
    // account's whole reach (`GroupAccount`); those confined to the project (its roles there,
    // unassigning) do not.
    api(
        GET,
        "/groups/{groupId}/serviceAccounts",
        Group(ProjectReadOnly),
    ),
    api(
        POST,
        "/groups/{groupId}/serviceAccounts",
        Group(ProjectOwner),
    ),
    api(
        GET,
        "/groups/{groupId}/serviceAccounts/{clientId}",
        Group(ProjectReadOnly),
    ),
    // Its reach is needed when the name or description changes, not for roles here alone.
    api(
        PATCH,
        "/groups/{groupId}/serviceAccounts/{clientId}",
        GroupAccount(ProjectOwner),
    ),
    // Unassigns the account from the project.
    api(
        DELETE,
        "/groups/{groupId}/serviceAccounts/{clientId}",
        Group(ProjectOwner),
    ),
    // `{clientId}:invite`: assigning an org account to a project, the org owner only.
    api(
        POST,
        "/groups/{groupId}/serviceAccounts/{clientId}",
        Group(OrgOwner),
    ),
    api(
        POST,
        "/groups/{groupId}/serviceAccounts/{clientId}/secrets",
        GroupAccount(ProjectOwner),
    ),
    api(
        DELETE,
        "/groups/{groupId}/serviceAccounts/{clientId}/secrets/{secretId}",
        GroupAccount(ProjectOwner),
    ),
    api(
        GET,
        "/groups/{groupId}/serviceAccounts/{clientId}/accessList",
        Group(ProjectReadOnly),
    ),
    api(
        POST,
        "/groups/{groupId}/serviceAccounts/{clientId}/accessList",
        GroupAccount(ProjectAccessManager),
    ),
    api(
        DELETE,
        "/groups/{groupId}/serviceAccounts/{clientId}/accessList/{ipAddress}",
        KeepsOwnAccess(&GroupAccount(ProjectAccessManager)),
    ),
    // Clusters (CONTRACT §10): "Project Read Only", "Project Cluster Creator", "Project
    // Cluster Manager", "Project Owner".
    api(
        GET,
        "/groups/{groupId}/clusters/{clusterName}/processArgs",
        Group(ProjectReadOnly),
    ),
    api(
        PATCH,
        "/groups/{groupId}/clusters/{clusterName}/processArgs",
        Group(ProjectClusterManager),
    ),
    api(GET, "/groups/{groupId}/containers", Group(ProjectReadOnly)),
    // X.509 for database users.
    api(
        GET,
        "/groups/{groupId}/databaseUsers/{username}/certs",
        Group(ProjectReadOnly),
    ),
    api(
        POST,
        "/groups/{groupId}/databaseUsers/{username}/certs",
        Group(ProjectOwner),
    ),
    api(GET, "/groups/{groupId}/userSecurity", Group(ProjectOwner)),
    api(PATCH, "/groups/{groupId}/userSecurity", Group(ProjectOwner)),
    api(
        DELETE,
        "/groups/{groupId}/userSecurity/customerX509",
        Group(ProjectOwner),
    ),
    // Custom database roles.
    api(
        GET,
        "/groups/{groupId}/customDBRoles/roles",
        Group(ProjectReadOnly),
    ),
    api(
        POST,
        "/groups/{groupId}/customDBRoles/roles",
        Group(ProjectOwner),
    ),
    api(
        GET,
        "/groups/{groupId}/customDBRoles/roles/{roleName}",
        Group(ProjectReadOnly),
    ),
    api(
        PATCH,
        "/groups/{groupId}/customDBRoles/roles/{roleName}",
        Group(ProjectOwner),
    ),
    api(
        DELETE,
        "/groups/{groupId}/customDBRoles/roles/{roleName}",
        Group(ProjectOwner),
    ),
    api(GET, "/groups/{groupId}/clusters", Group(ProjectReadOnly)),
    api(
        GET,
        "/groups/{groupId}/flexClusters",
        Group(ProjectReadOnly),
    ),
    // Database users.
    api(
        GET,
        "/groups/{groupId}/databaseUsers",
        Group(ProjectReadOnly),
    ),
    api(
        POST,
        "/groups/{groupId}/databaseUsers",
        Group(ProjectDatabaseAccessAdmin),
    ),
    api(
        GET,
        "/groups/{groupId}/databaseUsers/{databaseName}/{username}",
        Group(ProjectReadOnly),
    ),
    api(
        PATCH,
        "/groups/{groupId}/databaseUsers/{databaseName}/{username}",
        Group(ProjectDatabaseAccessAdmin),
    ),
    api(
        DELETE,
        "/groups/{groupId}/databaseUsers/{databaseName}/{username}",
        Group(ProjectDatabaseAccessAdmin),
    ),
    // The project IP access list (and its v1.0 name, `whitelist`).
    api(GET, "/groups/{groupId}/ipAddresses", Group(ProjectReadOnly)),
    api(GET, "/groups/{groupId}/accessList", Group(ProjectReadOnly)),
    api(POST, "/groups/{groupId}/accessList", Group(ProjectOwner)),
    api(
        GET,
        "/groups/{groupId}/accessList/{entryValue}",
        Group(ProjectReadOnly),
    ),
    api(
        DELETE,
        "/groups/{groupId}/accessList/{entryValue}",
        Group(ProjectOwner),
    ),
    api(
        GET,
        "/groups/{groupId}/accessList/{entryValue}/status",
        Group(ProjectReadOnly),
    ),
    api(GET, "/groups/{groupId}/whitelist", Group(ProjectReadOnly)),
    api(POST, "/groups/{groupId}/whitelist", Group(ProjectOwner)),
    api(
        GET,
        "/groups/{groupId}/whitelist/{entryValue}",
        Group(ProjectReadOnly),
    ),
    api(
        DELETE,
        "/groups/{groupId}/whitelist/{entryValue}",
        Group(ProjectOwner),
    ),
    api(
        POST,
        "/groups/{groupId}/clusters",
        Group(ProjectClusterManager),
    ),
    api(
        GET,
        "/groups/{groupId}/clusters/{clusterName}",
        Group(ProjectReadOnly),
    ),
    api(
        PATCH,
        "/groups/{groupId}/clusters/{clusterName}",
        Group(ProjectClusterManager),
    ),
    api(
        DELETE,
        "/groups/{groupId}/clusters/{clusterName}",
        Group(ProjectOwner),
    ),
    // `{clusterName}:grantMongoDBEmployeeAccess` and `:revokeMongoDBEmployeeAccess`: "Project
    // Support Access Manager" in the subset; issue 8 also admits the cluster managers.
    api(
        POST,
        "/groups/{groupId}/clusters/{clusterName}",
        Group(ProjectEmployeeAccessManager),
    ),
    // Federated authentication: "Organization Owner" (of the organization, or of the one
    // whose federation `federationSettingsId` names) for every operation, reads included.
    api(GET, "/orgs/{orgId}/federationSettings", Org(OrgOwner)),
    fed!(GET "/identityProviders"),
    fed!(POST "/identityProviders"),
    fed!(GET "/identityProviders/{identityProviderId}"),
    fed!(PATCH "/identityProviders/{identityProviderId}"),
    fed!(DELETE "/identityProviders/{identityProviderId}"),
    fed!(GET "/connectedOrgConfigs"),
    fed!(GET "/connectedOrgConfigs/{orgId}"),
    fed!(PATCH "/connectedOrgConfigs/{orgId}"),
    fed!(DELETE "/connectedOrgConfigs/{orgId}"),
    fed!(GET "/connectedOrgConfigs/{orgId}/roleMappings"),
    fed!(POST "/connectedOrgConfigs/{orgId}/roleMappings"),
    fed!(GET "/connectedOrgConfigs/{orgId}/roleMappings/{id}"),
    fed!(PUT "/connectedOrgConfigs/{orgId}/roleMappings/{id}"),
    fed!(DELETE "/connectedOrgConfigs/{orgId}/roleMappings/{id}"),
    // OAuth 2.0 (CONTRACT §5).
    root(POST, TOKEN_PATH, ClientCredentials),
    root(POST, REVOKE_PATH, OwnTokens),
    root(POST, INTROSPECT_PATH, OwnOrgTokens),
    root(GET, "/.well-known/jwks.json", Public),
    root(GET, "/.well-known/oauth-authorization-server", Public),
    // The caller's own address (MongoDB's MCP server adds it to access lists).
    root(GET, "/api/private/ipinfo", Authenticated),
    // Support decisions (ours).
    tessera(POST, "/support/decisions", Operator),
    // What a cluster's mongod needs to enforce access (ours): operator credentials only.
    tessera(
        GET,
        "/groups/{groupId}/clusters/{clusterName}/access",
        Operator,
    ),
    // Health, readiness, metrics.
    root(GET, "/healthz", Public),
    root(GET, "/readyz", Public),
    root(GET, "/metrics", Public),
];
