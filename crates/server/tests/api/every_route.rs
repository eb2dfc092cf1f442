//! Every API route, both surfaces: missing or bad credentials are 401, another org's or an
//! unknown project's id is 404, a malformed id is 400 — and none of it changes the store.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Key, TestServer};

const V2023: &str = "application/vnd.atlas.2023-01-01+json";
const V2024: &str = "application/vnd.atlas.2024-08-05+json";
const V2025: &str = "application/vnd.atlas.2025-02-19+json";
const V20230201: &str = "application/vnd.atlas.2023-02-01+json";
const U: &str = "cccccccccccccccccccccccc";
const V20231115: &str = "application/vnd.atlas.2023-11-15+json";

/// (method, path template, version). `{org}`, `{group}`, `{key}`, `{sa}`, `{secret}` are
/// filled in; `{ip}` is an access-list entry.
fn routes() -> Vec<(Method, &'static str, &'static str)> {
    use Method as M;
    vec![
        (M::GET, "/orgs", V2023),
        (M::POST, "/orgs", V2023),
        (M::GET, "/orgs/{org}", V2023),
        (M::PATCH, "/orgs/{org}", V2023),
        (M::DELETE, "/orgs/{org}", V2023),
        (M::GET, "/orgs/{org}/groups", V2023),
        (M::GET, "/orgs/{org}/events", V2023),
        (M::GET, "/orgs/{org}/events/cccccccccccccccccccccccc", V2023),
        (M::GET, "/orgs/{org}/apiKeys", V2023),
        (M::POST, "/orgs/{org}/apiKeys", V2023),
        (M::GET, "/orgs/{org}/apiKeys/{key}", V2023),
        (M::PATCH, "/orgs/{org}/apiKeys/{key}", V2023),
        (M::DELETE, "/orgs/{org}/apiKeys/{key}", V2023),
        (M::GET, "/orgs/{org}/apiKeys/{key}/accessList", V2023),
        (M::POST, "/orgs/{org}/apiKeys/{key}/accessList", V2023),
        (M::GET, "/orgs/{org}/apiKeys/{key}/accessList/{ip}", V2023),
        (
            M::DELETE,
            "/orgs/{org}/apiKeys/{key}/accessList/{ip}",
            V2023,
        ),
        (M::GET, "", V2023),
        (M::GET, "/groups", V2023),
        (M::POST, "/groups", V2023),
        (M::GET, "/groups/{group}", V2023),
        (M::PATCH, "/groups/{group}", V2023),
        (M::DELETE, "/groups/{group}", V2023),
        (M::GET, "/groups/byName/Project0", V2023),
        (M::GET, "/groups/{group}/events", V2023),
        (
            M::GET,
            "/groups/{group}/events/cccccccccccccccccccccccc",
            V2023,
        ),
        (M::GET, "/groups/{group}/apiKeys", V2023),
        (M::POST, "/groups/{group}/apiKeys", V2023),
        (M::POST, "/groups/{group}/apiKeys/{key}", V2023),
        (M::PATCH, "/groups/{group}/apiKeys/{key}", V2023),
        (M::DELETE, "/groups/{group}/apiKeys/{key}", V2023),
        (M::GET, "/orgs/{org}/serviceAccounts", V2024),
        (M::POST, "/orgs/{org}/serviceAccounts", V2024),
        (M::GET, "/orgs/{org}/serviceAccounts/{sa}", V2024),
        (M::PATCH, "/orgs/{org}/serviceAccounts/{sa}", V2024),
        (M::DELETE, "/orgs/{org}/serviceAccounts/{sa}", V2024),
        (M::GET, "/orgs/{org}/serviceAccounts/{sa}/groups", V2024),
        (M::POST, "/orgs/{org}/serviceAccounts/{sa}/secrets", V2024),
        (
            M::DELETE,
            "/orgs/{org}/serviceAccounts/{sa}/secrets/{secret}",
            V2024,
        ),
        (M::GET, "/orgs/{org}/serviceAccounts/{sa}/accessList", V2024),
        (
            M::POST,
            "/orgs/{org}/serviceAccounts/{sa}/accessList",
            V2024,
        ),
        (
            M::DELETE,
            "/orgs/{org}/serviceAccounts/{sa}/accessList/{ip}",
            V2024,
        ),
        (M::GET, "/groups/{group}/serviceAccounts", V2024),
        (M::POST, "/groups/{group}/serviceAccounts", V2024),
        (M::GET, "/groups/{group}/serviceAccounts/{sa}", V2024),
        (M::PATCH, "/groups/{group}/serviceAccounts/{sa}", V2024),
        (M::DELETE, "/groups/{group}/serviceAccounts/{sa}", V2024),
        (
            M::POST,
            "/groups/{group}/serviceAccounts/{sa}:invite",
            V2024,
        ),
        (
            M::POST,
            "/groups/{group}/serviceAccounts/{sa}/secrets",
            V2024,
        ),
        (
            M::DELETE,
            "/groups/{group}/serviceAccounts/{sa}/secrets/{secret}",
            V2024,
        ),
        (
            M::GET,
            "/groups/{group}/serviceAccounts/{sa}/accessList",
            V2024,
        ),
        (
            M::POST,
            "/groups/{group}/serviceAccounts/{sa}/accessList",
            V2024,
        ),
        (
            M::DELETE,
            "/groups/{group}/serviceAccounts/{sa}/accessList/{ip}",
            V2024,
        ),
        (M::GET, "/clusters", V2023),
        (M::GET, "/groups/{group}/clusters", V2024),
        (M::POST, "/groups/{group}/clusters", V2024),
        (M::GET, "/groups/{group}/clusters/Cluster0", V2024),
        (M::PATCH, "/groups/{group}/clusters/Cluster0", V2024),
        (M::DELETE, "/groups/{group}/clusters/Cluster0", V2024),
        (
            M::POST,
            "/groups/{group}/clusters/Cluster0:grantMongoDBEmployeeAccess",
            V2024,
        ),
        (
            M::POST,
            "/groups/{group}/clusters/Cluster0:revokeMongoDBEmployeeAccess",
            V2024,
        ),
        // Federated authentication (`{fed}`: federation settings; `{u}`: an IdP or mapping).
        (M::GET, "/orgs/{org}/federationSettings", V2023),
        (M::GET, "/federationSettings/{fed}/identityProviders", V2023),
        (
            M::POST,
            "/federationSettings/{fed}/identityProviders",
            V20231115,
        ),
        (
            M::GET,
            "/federationSettings/{fed}/identityProviders/{u}",
            V20231115,
        ),
        (
            M::PATCH,
            "/federationSettings/{fed}/identityProviders/{u}",
            V20231115,
        ),
        (
            M::DELETE,
            "/federationSettings/{fed}/identityProviders/{u}",
            V20231115,
        ),
        (
            M::GET,
            "/federationSettings/{fed}/connectedOrgConfigs",
            V2023,
        ),
        (
            M::GET,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}",
            V2023,
        ),
        (
            M::PATCH,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}",
            V2023,
        ),
        (
            M::DELETE,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}",
            V2023,
        ),
        (
            M::GET,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}/roleMappings",
            V2023,
        ),
        (
            M::POST,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}/roleMappings",
            V2023,
        ),
        (
            M::GET,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}/roleMappings/{u}",
            V2023,
        ),
        (
            M::PUT,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}/roleMappings/{u}",
            V2023,
        ),
        (
            M::DELETE,
            "/federationSettings/{fed}/connectedOrgConfigs/{org}/roleMappings/{u}",
            V2023,
        ),
        // People, teams, invitations, settings, limits (`{u}`: a user, team or invitation id).
        (M::POST, "/users", V2023),
        (M::GET, "/users/{u}", V2023),
        (M::PATCH, "/users/{u}", V2023),
        (M::GET, "/users/byName/a@example.com", V2023),
        (M::GET, "/orgs/{org}/users", V2025),
        (M::POST, "/orgs/{org}/users", V2025),
        (M::GET, "/orgs/{org}/users/{u}", V2025),
        (M::PATCH, "/orgs/{org}/users/{u}", V2025),
        (M::DELETE, "/orgs/{org}/users/{u}", V2025),
        (M::POST, "/orgs/{org}/users/{u}:addRole", V2025),
        (M::POST, "/orgs/{org}/users/{u}:removeRole", V2025),
        (M::PUT, "/orgs/{org}/users/{u}/roles", V2023),
        (M::GET, "/groups/{group}/users", V2025),
        (M::POST, "/groups/{group}/users", V2025),
        (M::GET, "/groups/{group}/users/{u}", V2025),
        (M::DELETE, "/groups/{group}/users/{u}", V2025),
        (M::POST, "/groups/{group}/users/{u}:addRole", V2025),
        (M::PUT, "/groups/{group}/users/{u}/roles", V2023),
        (M::POST, "/groups/{group}/access", V20230201),
        (M::GET, "/orgs/{org}/invites", V2023),
        (M::POST, "/orgs/{org}/invites", V2023),
        (M::PATCH, "/orgs/{org}/invites", V2023),
        (M::GET, "/orgs/{org}/invites/{u}", V2023),
        (M::PATCH, "/orgs/{org}/invites/{u}", V2023),
        (M::DELETE, "/orgs/{org}/invites/{u}", V2023),
        (M::GET, "/groups/{group}/invites", V2023),
        (M::POST, "/groups/{group}/invites", V2023),
        (M::PATCH, "/groups/{group}/invites", V2023),
        (M::GET, "/groups/{group}/invites/{u}", V2023),
        (M::PATCH, "/groups/{group}/invites/{u}", V2023),
        (M::DELETE, "/groups/{group}/invites/{u}", V2023),
        (M::GET, "/orgs/{org}/teams", V2023),
        (M::POST, "/orgs/{org}/teams", V2023),
        (M::GET, "/orgs/{org}/teams/{u}", V2023),
        (M::PATCH, "/orgs/{org}/teams/{u}", V2023),
        (M::DELETE, "/orgs/{org}/teams/{u}", V2023),
        (M::GET, "/orgs/{org}/teams/byName/ops", V2023),
        (M::GET, "/orgs/{org}/teams/{u}/users", V2025),
        (M::POST, "/orgs/{org}/teams/{u}/users", V2023),
        (M::DELETE, "/orgs/{org}/teams/{u}/users/{u}", V2023),
        (M::POST, "/orgs/{org}/teams/{u}:addUser", V2025),
        (M::GET, "/groups/{group}/teams", V2023),
        (M::POST, "/groups/{group}/teams", V2023),
        (M::GET, "/groups/{group}/teams/{u}", V2023),
        (M::PATCH, "/groups/{group}/teams/{u}", V2023),
        (M::DELETE, "/groups/{group}/teams/{u}", V2023),
        (M::GET, "/orgs/{org}/settings", V2023),
        (M::PATCH, "/orgs/{org}/settings", V2023),
        (M::GET, "/groups/{group}/settings", V2023),
        (M::PATCH, "/groups/{group}/settings", V2023),
        (M::GET, "/groups/{group}/limits", V2023),
        (
            M::GET,
            "/groups/{group}/limits/atlas.project.deployment.clusters",
            V2023,
        ),
        (
            M::PATCH,
            "/groups/{group}/limits/atlas.project.deployment.clusters",
            V2023,
        ),
        (
            M::DELETE,
            "/groups/{group}/limits/atlas.project.deployment.clusters",
            V2023,
        ),
        (M::GET, "/groups/{group}/managedSlowMs", V2023),
        (M::GET, "/groups/{group}/containers", V2023),
        (M::GET, "/groups/{group}/databaseUsers/app/certs", V2023),
        (M::POST, "/groups/{group}/databaseUsers/app/certs", V2023),
        (M::GET, "/groups/{group}/userSecurity", V2023),
        (M::PATCH, "/groups/{group}/userSecurity", V2023),
        (
            M::DELETE,
            "/groups/{group}/userSecurity/customerX509",
            V2023,
        ),
        (M::GET, "/groups/{group}/customDBRoles/roles", V2023),
        (M::POST, "/groups/{group}/customDBRoles/roles", V2023),
        (M::GET, "/groups/{group}/customDBRoles/roles/r1", V2023),
        (M::PATCH, "/groups/{group}/customDBRoles/roles/r1", V2023),
        (M::DELETE, "/groups/{group}/customDBRoles/roles/r1", V2023),
        (
            M::GET,
            "/groups/{group}/clusters/Cluster0/processArgs",
            V2024,
        ),
        (
            M::PATCH,
            "/groups/{group}/clusters/Cluster0/processArgs",
            V2024,
        ),
    ]
}

/// A body for the people routes (`body_for`).
fn people_body(path: &str, org: &str) -> Option<serde_json::Value> {
    let b = if path.ends_with(":addRole") || path.ends_with(":removeRole") {
        if path.starts_with("/orgs") {
            json!({"orgRole": "ORG_MEMBER"})
        } else {
            json!({"groupRole": "GROUP_READ_ONLY"})
        }
    } else if path.ends_with(":addUser") {
        json!({"id": U})
    } else if path == "/users" {
        json!({"username": "n@example.com", "password": "long enough password", "firstName": "A", "lastName": "B", "roles": [{"orgId": org, "roleName": "ORG_MEMBER"}]})
    } else if path.ends_with("/users/{u}/roles") && path.starts_with("/orgs") {
        json!({"orgRoles": ["ORG_MEMBER"]})
    } else if path.ends_with("/users/{u}/roles") {
        json!({"groupRoles": ["GROUP_READ_ONLY"]})
    } else if path.ends_with("/orgs/{org}/users") {
        json!({"username": "n@example.com", "roles": {"orgRoles": ["ORG_MEMBER"]}})
    } else if path == "/users/{u}" {
        json!({"firstName": "A"})
    } else if path.ends_with("/users/{u}") {
        json!({"teamIds": []})
    } else if path.ends_with("/groups/{group}/users")
        || path.ends_with("/access")
        || (path.starts_with("/groups") && path.contains("/invites"))
    {
        json!({"username": "n@example.com", "roles": ["GROUP_READ_ONLY"]})
    } else if path.contains("/invites") {
        json!({"username": "n@example.com", "roles": ["ORG_MEMBER"]})
    } else if path.ends_with("/teams/{u}/users") {
        json!([{"id": U}])
    } else if path.ends_with("/orgs/{org}/teams") {
        json!({"name": "ops", "usernames": []})
    } else if path.starts_with("/groups") && path.ends_with("/teams") {
        json!([{"teamId": U, "roleNames": ["GROUP_READ_ONLY"]}])
    } else if path.starts_with("/groups") && path.contains("/teams/") {
        json!({"roleNames": ["GROUP_READ_ONLY"]})
    } else if path.contains("/teams/") {
        json!({"name": "sre"})
    } else if path.ends_with("/certs") || path.ends_with("/userSecurity") {
        json!({})
    } else if path.ends_with("/customDBRoles/roles") {
        json!({"roleName": "r1", "actions": [{"action": "FIND", "resources": [{"db": "a", "collection": ""}]}]})
    } else if path.contains("/customDBRoles/roles/") {
        json!({"inheritedRoles": []})
    } else if path.ends_with("/settings") || path.ends_with("/processArgs") {
        json!({})
    } else if path.ends_with("/identityProviders") {
        json!({"protocol": "OIDC", "displayName": "x", "issuerUri": "https://i.example", "clientId": "c"})
    } else if path.contains("/identityProviders/") {
        json!({"displayName": "y"})
    } else if path.contains("/roleMappings") {
        json!({"externalGroupName": "g", "roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}]})
    } else if path.contains("/connectedOrgConfigs/") {
        json!({})
    } else if path.contains("/limits/") {
        json!({"value": 30})
    } else {
        return None;
    };
    Some(b)
}

/// A body each mutating route would accept, so only the property under test can fail it.
fn body_for(method: &Method, path: &str, org: &str) -> Option<serde_json::Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    if let Some(b) = people_body(path, org) {
        return Some(b);
    }
    let b = if path.ends_with(":grantMongoDBEmployeeAccess") {
        json!({"grantType": "CLUSTER_DATABASE_LOGS", "expirationTime": "2026-01-02T00:00:00Z"})
    } else if path.ends_with(":revokeMongoDBEmployeeAccess") {
        json!({})
    } else if path.contains("/clusters/") {
        json!({"paused": true})
    } else if path.ends_with("/accessList") {
        json!([{"ipAddress": "192.0.2.9"}])
    } else if path.ends_with("/secrets") {
        json!({"secretExpiresAfterHours": 8})
    } else if path.ends_with(":invite") {
        json!({"roles": ["GROUP_READ_ONLY"]})
    } else if path.contains("/serviceAccounts") && *method == Method::POST {
        let roles = if path.starts_with("/groups") {
            "GROUP_READ_ONLY"
        } else {
            "ORG_MEMBER"
        };
        json!({"name": "n", "description": "d", "roles": [roles], "secretExpiresAfterHours": 8})
    } else if path.contains("/serviceAccounts") {
        json!({"name": "renamed"})
    } else if path.ends_with("/apiKeys") {
        let roles = if path.starts_with("/groups") {
            "GROUP_READ_ONLY"
        } else {
            "ORG_MEMBER"
        };
        json!({"desc": "d", "roles": [roles]})
    } else if path.starts_with("/groups/") && path.contains("/apiKeys/") && *method == Method::POST
    {
        json!([{"roles": ["GROUP_READ_ONLY"]}])
    } else if path.contains("/apiKeys/") {
        json!({"desc": "d"})
    } else if path == "/groups" {
        json!({"name": "fresh", "orgId": org})
    } else {
        json!({"name": "Fresh"})
    };
    Some(b)
}

fn fill(t: &str, org: &str, group: &str, key: &str, sa: &str, secret: &str) -> String {
    // Federation settings: none for our org yet (an unknown id), else the org's stand-in.
    let fed = if org.len() == 24 && org.bytes().all(|b| b == b'a') || org == "not-an-id" {
        org
    } else {
        "dddddddddddddddddddddddd"
    };
    t.replace("{fed}", fed)
        .replace("{org}", org)
        .replace("{group}", group)
        .replace("{key}", key)
        .replace("{sa}", sa)
        .replace("{secret}", secret)
        .replace("{ip}", "192.0.2.0%2F24")
        .replace("{u}", U)
}

#[tokio::test]
async fn every_route_refuses_bad_credentials_foreign_and_malformed_ids() {
    let s = TestServer::start().await;
    let o = s.owner();
    // Real ids to aim at.
    let (_, key_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    let (sa, body) = s.new_service_account(&["ORG_MEMBER"]).await;
    let secret_id = body["secrets"][0]["id"].as_str().unwrap().to_owned();
    let (org, group) = (s.org().to_owned(), s.project().to_owned());
    let wrong = Key {
        public: o.public.clone(),
        private: "00000000-0000-4000-8000-000000000000".into(),
    };
    let before = s.snapshot().await;

    for (method, template, version) in routes() {
        for base in ["/api/atlas/v2", "/api/public/v1.0"] {
            let accept = if base.ends_with("v2") {
                version
            } else {
                "application/json"
            };
            let path = fill(template, &org, &group, &key_id, &sa.id, &secret_id);
            let url = format!("{base}{path}");
            let body = body_for(&method, template, &org);
            let bytes = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
            // No credentials.
            let r = s
                .raw(
                    method.clone(),
                    &url,
                    &[("accept", accept), ("content-type", "application/json")],
                    bytes.clone(),
                )
                .await;
            assert_eq!(
                r.status.as_u16(),
                401,
                "{method} {url} without credentials: {}",
                r.text
            );
            assert_eq!(r.error_code(), "UNAUTHORIZED");
            assert_eq!(
                r.headers.get_all("www-authenticate").iter().count(),
                2,
                "{method} {url}"
            );
            // A wrong password.
            let r = s
                .call_with(
                    &wrong,
                    method.clone(),
                    &url,
                    body.clone(),
                    &[("accept", accept)],
                    Default::default(),
                )
                .await;
            assert_eq!(
                r.status.as_u16(),
                401,
                "{method} {url} with a wrong password: {}",
                r.text
            );

            if template.contains("{org}")
                || template.contains("{group}")
                || template.contains("{fed}")
            {
                // An id of the right shape that is not ours: 404, never 403.
                let foreign = fill(
                    template,
                    "aaaaaaaaaaaaaaaaaaaaaaaa",
                    "bbbbbbbbbbbbbbbbbbbbbbbb",
                    &key_id,
                    &sa.id,
                    &secret_id,
                );
                let r = s
                    .call_with(
                        &o,
                        method.clone(),
                        &format!("{base}{foreign}"),
                        body.clone(),
                        &[("accept", accept)],
                        Default::default(),
                    )
                    .await;
                assert_eq!(
                    r.status.as_u16(),
                    404,
                    "{method} {base}{foreign}: {}",
                    r.text
                );
                assert!(
                    [
                        "ORG_NOT_FOUND",
                        "GROUP_NOT_FOUND",
                        "FEDERATION_SETTINGS_NOT_FOUND"
                    ]
                    .contains(&r.error_code()),
                    "{method} {foreign}"
                );
                // A malformed id: 400.
                let bad = fill(
                    template,
                    "not-an-id",
                    "NOT-AN-ID",
                    &key_id,
                    &sa.id,
                    &secret_id,
                );
                let r = s
                    .call_with(
                        &o,
                        method.clone(),
                        &format!("{base}{bad}"),
                        body.clone(),
                        &[("accept", accept)],
                        Default::default(),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), 400, "{method} {base}{bad}: {}", r.text);
                assert_eq!(r.error_code(), "VALIDATION_ERROR");
            }
        }
    }
    assert_eq!(
        before,
        s.snapshot().await,
        "a refused request changed the store"
    );
    s.stop().await;
}
