//! People (issue 16 item 1): MongoDB Cloud users, organization and project members, teams,
//! invitations, settings and limits. Every change is an edit of the organization's people in
//! one unit of work, with the events of what changed; the last owner stays; bad input and
//! refused roles change nothing.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::clusters::{group_event_types, new_project, project_key};
use crate::harness::{Key, Resp, TestServer};

const V2025: &str = "application/vnd.atlas.2025-02-19+json";

async fn v25(s: &TestServer, k: &Key, m: Method, path: &str, body: Option<Value>) -> Resp {
    s.call_with(k, m, path, body, &[("accept", V2025)], Default::default())
        .await
}

fn org_path(s: &TestServer, rest: &str) -> String {
    format!("/api/atlas/v2/orgs/{}{rest}", s.org())
}

/// Creates an active user with `roles` in the test org; its id.
async fn new_user(s: &TestServer, name: &str, roles: &[&str]) -> String {
    let roles: Vec<Value> = roles
        .iter()
        .map(|r| json!({"orgId": s.org(), "roleName": r}))
        .collect();
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            "/api/atlas/v2/users",
            Some(json!({
                "username": name, "password": "a long enough password",
                "firstName": "Ada", "lastName": "Lovelace", "country": "GB",
                "mobileNumber": "+44 20 7946 0958", "roles": roles,
            })),
        )
        .await;
    r.expect(200);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn org_event_types(s: &TestServer) -> Vec<String> {
    let r = s
        .call(
            &s.owner(),
            Method::GET,
            &org_path(s, "/events?itemsPerPage=500"),
            None,
        )
        .await;
    r.expect(200);
    let mut v: Vec<String> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventTypeName"].as_str().unwrap().to_owned())
        .collect();
    v.reverse();
    v
}

fn count(types: &[String], t: &str) -> usize {
    types.iter().filter(|x| *x == t).count()
}

#[tokio::test]
async fn users_are_created_read_and_never_show_a_password() {
    let s = TestServer::start().await;
    let o = s.owner();
    let id = new_user(&s, "Ada@Example.com", &["ORG_OWNER"]).await;
    let r = s
        .call(&o, Method::GET, &format!("/api/atlas/v2/users/{id}"), None)
        .await;
    r.expect(200);
    assert_eq!(r.json["username"], "ada@example.com");
    assert_eq!(r.json["firstName"], "Ada");
    assert_eq!(
        r.json["roles"],
        json!([{"orgId": s.org(), "roleName": "ORG_OWNER"}])
    );
    assert!(!r.text.contains("password"), "{}", r.text);
    let by_name = s
        .call(
            &o,
            Method::GET,
            "/api/atlas/v2/users/byName/ADA@example.com",
            None,
        )
        .await;
    by_name.expect(200);
    assert_eq!(by_name.json["id"], id.as_str());
    // The password is kept only as an argon2id hash.
    let rows = s
        .text_rows("SELECT password_hash FROM cloud_users WHERE id = ?", &[&id])
        .await;
    let hash = rows[0][0].clone().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("a long enough password"));
    // The same name again: 409; bad input: 400; neither writes anything.
    let before = s.snapshot().await;
    for (body, status) in [
        (
            json!({"username": "ada@example.com", "password": "another password", "firstName": "A", "lastName": "B", "roles": [{"orgId": s.org(), "roleName": "ORG_MEMBER"}]}),
            409,
        ),
        (
            json!({"username": "not-an-email", "password": "a long enough password", "firstName": "A", "lastName": "B", "roles": [{"orgId": s.org(), "roleName": "ORG_MEMBER"}]}),
            400,
        ),
        (
            json!({"username": "b@example.com", "password": "short", "firstName": "A", "lastName": "B", "roles": [{"orgId": s.org(), "roleName": "ORG_MEMBER"}]}),
            400,
        ),
        (
            json!({"username": "b@example.com", "password": "a long enough password", "firstName": "A", "lastName": "B", "roles": []}),
            400,
        ),
        (
            json!({"username": "b@example.com", "password": "a long enough password", "firstName": "A", "lastName": "B", "roles": [{"orgId": s.org(), "roleName": "GROUP_OWNER"}]}),
            400,
        ),
        (
            json!({"username": "b@example.com", "password": "a long enough password", "firstName": "A", "lastName": "B", "roles": [{"orgId": "aaaaaaaaaaaaaaaaaaaaaaaa", "roleName": "ORG_MEMBER"}]}),
            404,
        ),
    ] {
        let r = s
            .call(&o, Method::POST, "/api/atlas/v2/users", Some(body.clone()))
            .await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text);
    }
    assert_eq!(
        before,
        s.snapshot().await,
        "a refused create changed the store"
    );
    // Only an org owner may give roles in its org.
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let r = s
        .call(
            &member,
            Method::POST,
            "/api/atlas/v2/users",
            Some(json!({"username": "c@example.com", "password": "a long enough password", "firstName": "A", "lastName": "B", "roles": [{"orgId": s.org(), "roleName": "ORG_MEMBER"}]})),
        )
        .await;
    r.expect_error(403, "USER_UNAUTHORIZED");
    // A person of another organization is not found.
    let (other, _) = crate::clusters::second_org(&s).await;
    let r = s
        .call(
            &other,
            Method::GET,
            &format!("/api/atlas/v2/users/{id}"),
            None,
        )
        .await;
    r.expect_error(404, "USER_NOT_FOUND");
    // This user's, and the bootstrap's first owner's.
    assert_eq!(count(&org_event_types(&s).await, "JOINED_ORG"), 2);
    s.stop().await;
}

#[tokio::test]
async fn members_are_invited_listed_changed_and_removed() {
    let s = TestServer::start().await;
    let o = s.owner();
    let owner = new_user(&s, "owner@example.com", &["ORG_OWNER"]).await;
    let p = s.project().to_owned();
    let r = v25(
        &s,
        &o,
        Method::POST,
        &org_path(&s, "/users"),
        Some(json!({
            "username": "grace@example.com",
            "roles": {"orgRoles": ["ORG_MEMBER"], "groupRoleAssignments": [{"groupId": p, "groupRoles": ["GROUP_READ_ONLY"]}]},
        })),
    )
    .await;
    r.expect(201);
    assert_eq!(r.json["orgMembershipStatus"], "PENDING");
    assert_eq!(r.json["inviterUsername"], o.public.as_str());
    assert_eq!(r.json["invitationExpiresAt"], "2026-01-31T00:00:00Z");
    let grace = r.json["id"].as_str().unwrap().to_owned();
    // Listed, filtered by status.
    let all = v25(&s, &o, Method::GET, &org_path(&s, "/users"), None).await;
    all.expect(200);
    // With the bootstrap's first owner.
    assert_eq!(all.json["totalCount"], 3, "{}", all.text);
    let pending = v25(
        &s,
        &o,
        Method::GET,
        &org_path(&s, "/users?orgMembershipStatus=PENDING"),
        None,
    )
    .await;
    assert_eq!(pending.json["results"][0]["id"], grace.as_str());
    let active = v25(
        &s,
        &o,
        Method::GET,
        &org_path(&s, "/users?orgMembershipStatus=ACTIVE"),
        None,
    )
    .await;
    let ada = active.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == owner.as_str())
        .expect("the active owner is listed");
    assert_eq!(ada["firstName"], "Ada");
    // The invitation is the same pending membership.
    let inv = s
        .call(&o, Method::GET, &org_path(&s, "/invites"), None)
        .await;
    inv.expect(200);
    assert_eq!(inv.json[0]["username"], "grace@example.com");
    assert_eq!(
        inv.json[0]["groupRoleAssignments"],
        json!([{"groupId": p, "groupRole": "GROUP_READ_ONLY"}])
    );
    // A second invitation of the same person: 409.
    let again = v25(
        &s,
        &o,
        Method::POST,
        &org_path(&s, "/users"),
        Some(json!({"username": "GRACE@example.com", "roles": {"orgRoles": ["ORG_MEMBER"]}})),
    )
    .await;
    again.expect_error(409, "USER_ALREADY_IN_ORG");
    // Roles: add, remove, replace; a PATCH that changes nothing writes no event.
    let u = org_path(&s, &format!("/users/{grace}"));
    let r = v25(
        &s,
        &o,
        Method::POST,
        &format!("{u}:addRole"),
        Some(json!({"orgRole": "ORG_GROUP_CREATOR"})),
    )
    .await;
    r.expect(200);
    assert_eq!(
        r.json["roles"]["orgRoles"],
        json!(["ORG_MEMBER", "ORG_GROUP_CREATOR"])
    );
    let before = count(&org_event_types(&s).await, "USER_ROLES_CHANGED_AUDIT");
    v25(
        &s,
        &o,
        Method::POST,
        &format!("{u}:addRole"),
        Some(json!({"orgRole": "ORG_GROUP_CREATOR"})),
    )
    .await
    .expect(200);
    assert_eq!(
        count(&org_event_types(&s).await, "USER_ROLES_CHANGED_AUDIT"),
        before,
        "adding a role held writes nothing"
    );
    let r = v25(
        &s,
        &o,
        Method::POST,
        &format!("{u}:removeRole"),
        Some(json!({"orgRole": "ORG_MEMBER"})),
    )
    .await;
    assert_eq!(r.json["roles"]["orgRoles"], json!(["ORG_GROUP_CREATOR"]));
    let r = v25(
        &s,
        &o,
        Method::POST,
        &format!("{u}:removeRole"),
        Some(json!({"orgRole": "ORG_GROUP_CREATOR"})),
    )
    .await;
    r.expect_error(400, "VALIDATION_ERROR");
    let r = s
        .call(
            &o,
            Method::PUT,
            &format!("{u}/roles"),
            Some(json!({"orgRoles": ["ORG_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["orgRoles"], json!(["ORG_READ_ONLY"]));
    let r = v25(&s, &o, Method::POST, &format!("{u}:dance"), Some(json!({}))).await;
    r.expect_error(404, "RESOURCE_NOT_FOUND");
    // A member key may read but not change.
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    v25(&s, &member, Method::GET, &u, None).await.expect(200);
    let r = v25(&s, &member, Method::DELETE, &u, None).await;
    r.expect_error(403, "USER_UNAUTHORIZED");
    let r = v25(
        &s,
        &member,
        Method::POST,
        &org_path(&s, "/users"),
        Some(json!({"username": "x@example.com", "roles": {"orgRoles": ["ORG_MEMBER"]}})),
    )
    .await;
    r.expect_error(403, "USER_UNAUTHORIZED");
    // Removing the pending member deletes the invitation.
    v25(&s, &o, Method::DELETE, &u, None).await.expect(204);
    v25(&s, &o, Method::GET, &u, None)
        .await
        .expect_error(404, "USER_NOT_FOUND");
    let types = org_event_types(&s).await;
    for t in ["INVITED_TO_ORG", "ORG_INVITATION_DELETED"] {
        assert_eq!(count(&types, t), 1, "{t}: {types:?}");
    }
    assert!(group_event_types(&s, &p)
        .await
        .contains(&"JOINED_GROUP".to_owned()));
    s.stop().await;
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed_or_demoted() {
    let s = TestServer::start().await;
    let o = s.owner();
    let a = new_user(&s, "a@example.com", &["ORG_OWNER", "ORG_BILLING_ADMIN"]).await;
    // The bootstrap's first owner leaves: `a` is the last owner.
    let first = s
        .call(
            &o,
            Method::GET,
            "/api/atlas/v2/users/byName/owner@tessera.local",
            None,
        )
        .await;
    first.expect(200);
    let first = org_path(
        &s,
        &format!("/users/{}", first.json["id"].as_str().unwrap()),
    );
    v25(&s, &o, Method::DELETE, &first, None).await.expect(204);
    let u = org_path(&s, &format!("/users/{a}"));
    let before = s.snapshot().await;
    let refusals = [
        v25(&s, &o, Method::DELETE, &u, None).await,
        v25(
            &s,
            &o,
            Method::POST,
            &format!("{u}:removeRole"),
            Some(json!({"orgRole": "ORG_OWNER"})),
        )
        .await,
        s.call(
            &o,
            Method::PUT,
            &format!("{u}/roles"),
            Some(json!({"orgRoles": ["ORG_MEMBER"]})),
        )
        .await,
        v25(
            &s,
            &o,
            Method::PATCH,
            &u,
            Some(json!({"roles": {"orgRoles": ["ORG_READ_ONLY"]}})),
        )
        .await,
    ];
    for r in refusals {
        r.expect_error(409, "LAST_ORG_OWNER");
    }
    assert_eq!(before, s.snapshot().await, "a refused change was written");
    // With a second owner, the first may go.
    new_user(&s, "b@example.com", &["ORG_OWNER"]).await;
    let r = s
        .call(
            &o,
            Method::PUT,
            &format!("{u}/roles"),
            Some(json!({"orgRoles": ["ORG_MEMBER"]})),
        )
        .await;
    r.expect(200);
    v25(&s, &o, Method::DELETE, &u, None).await.expect(204);
    let types = org_event_types(&s).await;
    assert_eq!(count(&types, "USER_ROLES_CHANGED_AUDIT"), 1, "{types:?}");
    // The bootstrap's first owner's leaving, and this one.
    assert_eq!(count(&types, "REMOVED_FROM_ORG"), 2, "{types:?}");
    s.stop().await;
}

#[tokio::test]
async fn project_users_and_teams() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "people").await;
    let ada = new_user(&s, "ada@example.com", &["ORG_OWNER"]).await;
    let gp = |rest: &str| format!("/api/atlas/v2/groups/{p}{rest}");
    // An org member gets project roles at once.
    let r = v25(
        &s,
        &o,
        Method::POST,
        &gp("/users"),
        Some(json!({"username": "ada@example.com", "roles": ["GROUP_READ_ONLY"]})),
    )
    .await;
    r.expect(201);
    assert_eq!(r.json["orgMembershipStatus"], "ACTIVE");
    assert_eq!(r.json["roles"], json!(["GROUP_READ_ONLY"]));
    // A stranger is invited to the org through the project.
    let r = v25(
        &s,
        &o,
        Method::POST,
        &gp("/users"),
        Some(json!({"username": "new@example.com", "roles": ["GROUP_OWNER"]})),
    )
    .await;
    r.expect(201);
    assert_eq!(r.json["orgMembershipStatus"], "PENDING");
    let listed = v25(&s, &o, Method::GET, &gp("/users"), None).await;
    assert_eq!(listed.json["totalCount"], 2);
    // Roles in the project.
    let u = gp(&format!("/users/{ada}"));
    let r = v25(
        &s,
        &o,
        Method::POST,
        &format!("{u}:addRole"),
        Some(json!({"groupRole": "GROUP_CLUSTER_MANAGER"})),
    )
    .await;
    assert_eq!(
        r.json["roles"],
        json!(["GROUP_READ_ONLY", "GROUP_CLUSTER_MANAGER"])
    );
    let r = s
        .call(
            &o,
            Method::PUT,
            &format!("{u}/roles"),
            Some(json!({"groupRoles": ["GROUP_DATA_ACCESS_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["groupRoles"], json!(["GROUP_DATA_ACCESS_READ_ONLY"]));
    // A read-only key of the project may read, not change.
    let ro = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    v25(&s, &ro, Method::GET, &u, None).await.expect(200);
    v25(&s, &ro, Method::DELETE, &u, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    // Teams: create, rename, members, project roles.
    let r = s
        .call(
            &o,
            Method::POST,
            &org_path(&s, "/teams"),
            Some(json!({"name": "ops", "usernames": ["ada@example.com"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["usernames"], json!(["ada@example.com"]));
    let team = r.json["id"].as_str().unwrap().to_owned();
    let dup = s
        .call(
            &o,
            Method::POST,
            &org_path(&s, "/teams"),
            Some(json!({"name": "OPS", "usernames": []})),
        )
        .await;
    dup.expect_error(409, "DUPLICATE_TEAM_NAME");
    let stranger = s
        .call(
            &o,
            Method::POST,
            &org_path(&s, "/teams"),
            Some(json!({"name": "x", "usernames": ["nobody@example.com"]})),
        )
        .await;
    stranger.expect_error(404, "USER_NOT_FOUND");
    s.call(
        &o,
        Method::PATCH,
        &org_path(&s, &format!("/teams/{team}")),
        Some(json!({"name": "sre"})),
    )
    .await
    .expect(200);
    let r = s
        .call(&o, Method::GET, &org_path(&s, "/teams/byName/SRE"), None)
        .await;
    assert_eq!(r.json["id"], team.as_str());
    let r = s
        .call(
            &o,
            Method::POST,
            &gp("/teams"),
            Some(json!([{"teamId": team, "roleNames": ["GROUP_CLUSTER_MANAGER"]}])),
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.json["results"][0]["roleNames"],
        json!(["GROUP_CLUSTER_MANAGER"])
    );
    // A user's roles are its own plus its teams'.
    let flat = v25(&s, &o, Method::GET, &gp("/users?flattenTeams=true"), None).await;
    let mine = flat.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ada.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        mine["roles"],
        json!(["GROUP_DATA_ACCESS_READ_ONLY", "GROUP_CLUSTER_MANAGER"])
    );
    let team_users = v25(
        &s,
        &o,
        Method::GET,
        &org_path(&s, &format!("/teams/{team}/users")),
        None,
    )
    .await;
    assert_eq!(team_users.json["results"][0]["id"], ada.as_str());
    let r = v25(
        &s,
        &o,
        Method::POST,
        &org_path(&s, &format!("/teams/{team}:removeUser")),
        Some(json!({"id": ada})),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["teamIds"], json!([]));
    s.call(
        &o,
        Method::PATCH,
        &gp(&format!("/teams/{team}")),
        Some(json!({"roleNames": ["GROUP_READ_ONLY"]})),
    )
    .await
    .expect(200);
    s.call(&o, Method::DELETE, &gp(&format!("/teams/{team}")), None)
        .await
        .expect(204);
    s.call(
        &o,
        Method::DELETE,
        &org_path(&s, &format!("/teams/{team}")),
        None,
    )
    .await
    .expect(204);
    v25(&s, &o, Method::DELETE, &u, None).await.expect(204);
    let org_types = org_event_types(&s).await;
    for t in [
        "TEAM_CREATED",
        "TEAM_NAME_CHANGED",
        "JOINED_TEAM",
        "REMOVED_FROM_TEAM",
        "TEAM_DELETED",
    ] {
        assert_eq!(count(&org_types, t), 1, "{t}: {org_types:?}");
    }
    let group_types = group_event_types(&s, &p).await;
    for t in [
        "JOINED_GROUP",
        "TEAM_ADDED_TO_GROUP",
        "TEAM_ROLES_MODIFIED",
        "TEAM_REMOVED_FROM_GROUP",
        "REMOVED_FROM_GROUP",
    ] {
        assert!(group_types.contains(&t.to_owned()), "{t}: {group_types:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn invitations_end_by_the_clock() {
    let s = TestServer::start().await;
    let o = s.owner();
    let r = s
        .call(
            &o,
            Method::POST,
            &org_path(&s, "/invites"),
            Some(json!({"username": "later@example.com", "roles": ["ORG_MEMBER"]})),
        )
        .await;
    r.expect(200);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = s
        .call(
            &o,
            Method::PATCH,
            &org_path(&s, &format!("/invites/{id}")),
            Some(json!({"roles": ["ORG_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["roles"], json!(["ORG_READ_ONLY"]));
    s.clock
        .advance(Duration::days(30) - Duration::milliseconds(1));
    s.call(
        &o,
        Method::GET,
        &org_path(&s, &format!("/invites/{id}")),
        None,
    )
    .await
    .expect(200);
    s.clock.advance(Duration::milliseconds(1));
    s.call(
        &o,
        Method::GET,
        &org_path(&s, &format!("/invites/{id}")),
        None,
    )
    .await
    .expect_error(404, "INVITATION_NOT_FOUND");
    // The name may be invited again.
    s.call(
        &o,
        Method::POST,
        &org_path(&s, "/invites"),
        Some(json!({"username": "later@example.com", "roles": ["ORG_MEMBER"]})),
    )
    .await
    .expect(200);
    s.stop().await;
}

#[tokio::test]
async fn org_owner_id_names_a_person() {
    let s = TestServer::start().await;
    let o = s.owner();
    let create = |owner: &str| json!({"name": "Owned", "orgOwnerId": owner, "apiKey": {"desc": "k", "roles": ["ORG_OWNER"]}});
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/atlas/v2/orgs",
            Some(create("aaaaaaaaaaaaaaaaaaaaaaaa")),
        )
        .await;
    r.expect_error(400, "VALIDATION_ERROR");
    let ada = new_user(&s, "ada@example.com", &["ORG_MEMBER"]).await;
    let r = s
        .call(&o, Method::POST, "/api/atlas/v2/orgs", Some(create(&ada)))
        .await;
    r.expect(201);
    assert_eq!(r.json["orgOwnerId"], ada.as_str());
    let org2 = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let key2 = Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    let users = v25(
        &s,
        &key2,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{org2}/users"),
        None,
    )
    .await;
    users.expect(200);
    assert_eq!(users.json["results"][0]["id"], ada.as_str());
    assert_eq!(users.json["results"][0]["orgMembershipStatus"], "ACTIVE");
    assert_eq!(
        users.json["results"][0]["roles"]["orgRoles"],
        json!(["ORG_OWNER"])
    );
    // The new org's only owner stays.
    let r = v25(
        &s,
        &key2,
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{org2}/users/{ada}"),
        None,
    )
    .await;
    r.expect_error(409, "LAST_ORG_OWNER");
    s.stop().await;
}

#[tokio::test]
async fn settings_and_limits() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let os = org_path(&s, "/settings");
    let r = s.call(&o, Method::GET, &os, None).await;
    r.expect(200);
    assert_eq!(r.json["genAIFeaturesEnabled"], true);
    assert_eq!(r.json["apiAccessListRequired"], false);
    for _ in 0..2 {
        let r = s
            .call(
                &o,
                Method::PATCH,
                &os,
                Some(json!({"restrictEmployeeAccess": true, "securityContact": "sec@example.com"})),
            )
            .await;
        r.expect(200);
        assert_eq!(r.json["restrictEmployeeAccess"], true);
    }
    assert_eq!(
        count(&org_event_types(&s).await, "ORG_SETTINGS_CHANGED"),
        1,
        "the same PATCH twice is one change"
    );
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    for bad in [
        json!({"restrictEmployeeAccess": "yes"}),
        json!({"maxServiceAccountSecretValidityInHours": 7}),
        json!({"noSuchSetting": true}),
    ] {
        s.call(&o, Method::PATCH, &os, Some(bad))
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    s.call(&member, Method::GET, &os, None).await.expect(200);
    s.call(
        &member,
        Method::PATCH,
        &os,
        Some(json!({"genAIFeaturesEnabled": false})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    // Project settings.
    let gs = format!("/api/atlas/v2/groups/{p}/settings");
    let r = s
        .call(
            &o,
            Method::PATCH,
            &gs,
            Some(json!({"isDataExplorerEnabled": false})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["isDataExplorerEnabled"], false);
    assert_eq!(r.json["isSchemaAdvisorEnabled"], true);
    // Limits.
    let l = format!("/api/atlas/v2/groups/{p}/limits");
    let r = s.call(&o, Method::GET, &l, None).await;
    r.expect(200);
    assert!(r.json.as_array().unwrap().len() >= 6);
    let one = format!("{l}/atlas.project.security.databaseAccess.users");
    let r = s
        .call(&o, Method::PATCH, &one, Some(json!({"value": 150})))
        .await;
    r.expect(200);
    assert_eq!(r.json["value"], 150);
    assert_eq!(r.json["currentUsage"], 0);
    s.call(&o, Method::PATCH, &one, Some(json!({"value": 100000})))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    s.call(&o, Method::GET, &format!("{l}/nope"), None)
        .await
        .expect_error(404, "INVALID_LIMIT_NAME");
    s.call(&o, Method::DELETE, &one, None).await.expect(204);
    assert_eq!(s.call(&o, Method::GET, &one, None).await.json["value"], 100);
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/groups/{p}/managedSlowMs"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json, json!(true));
    let types = group_event_types(&s, &p).await;
    assert_eq!(count(&types, "GROUP_LIMIT_CHANGED"), 2, "{types:?}");
    assert_eq!(count(&types, "GROUP_SETTINGS_CHANGED"), 1, "{types:?}");
    s.stop().await;
}

#[tokio::test]
async fn project_invitations() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let inv = |rest: &str| format!("/api/atlas/v2/groups/{p}/invites{rest}");
    let r = s
        .call(
            &o,
            Method::POST,
            &inv(""),
            Some(json!({"username": "lin@example.com", "roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["groupId"], p.as_str());
    assert_eq!(r.json["roles"], json!(["GROUP_READ_ONLY"]));
    let id = r.json["id"].as_str().unwrap().to_owned();
    // The same person again: 409; the invitation is a pending member of the org.
    s.call(
        &o,
        Method::POST,
        &inv(""),
        Some(json!({"username": "LIN@example.com", "roles": ["GROUP_OWNER"]})),
    )
    .await
    .expect_error(409, "USER_ALREADY_IN_ORG");
    let pending = v25(
        &s,
        &o,
        Method::GET,
        &org_path(&s, "/users?orgMembershipStatus=PENDING"),
        None,
    )
    .await;
    assert_eq!(
        pending.json["results"][0]["roles"]["orgRoles"],
        json!(["ORG_MEMBER"])
    );
    let r = s
        .call(
            &o,
            Method::PATCH,
            &inv(&format!("/{id}")),
            Some(json!({"roles": ["GROUP_CLUSTER_MANAGER"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["roles"], json!(["GROUP_CLUSTER_MANAGER"]));
    let r = s
        .call(
            &o,
            Method::PATCH,
            &inv(""),
            Some(json!({"username": "lin@example.com", "roles": ["GROUP_OWNER"]})),
        )
        .await;
    assert_eq!(r.json["roles"], json!(["GROUP_OWNER"]));
    let list = s.call(&o, Method::GET, &inv(""), None).await;
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    // A project read-only key may not see or change them.
    let ro = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    s.call(&ro, Method::GET, &inv(""), None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    // Deleting it ends the invitation made through the project.
    s.call(&o, Method::DELETE, &inv(&format!("/{id}")), None)
        .await
        .expect(204);
    s.call(&o, Method::GET, &inv(&format!("/{id}")), None)
        .await
        .expect_error(404, "INVITATION_NOT_FOUND");
    let all = v25(&s, &o, Method::GET, &org_path(&s, "/users"), None).await;
    assert_eq!(
        all.json["totalCount"], 1,
        "only the bootstrap's first owner: {}",
        all.text
    );
    let types = org_event_types(&s).await;
    assert_eq!(count(&types, "INVITED_TO_ORG"), 1);
    assert_eq!(count(&types, "ORG_INVITATION_DELETED"), 1);
    s.stop().await;
}

/// A person's roles (its own plus its teams') decide through the same authorization table as
/// every credential; a pending member acts as nobody. An event a person causes names it
/// (`userId`, `username`), stored and read back.
#[tokio::test]
async fn a_persons_roles_decide_through_the_route_table() {
    use tessera_domain::authorization::On;
    use tessera_domain::{Decision, GroupId, OrgId, UserId};
    use tessera_http::authz::{Verb, TABLE};

    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let ada = new_user(&s, "ada@example.com", &["ORG_MEMBER"]).await;
    let team = s
        .call(
            &o,
            Method::POST,
            &org_path(&s, "/teams"),
            Some(json!({"name": "ops", "usernames": ["ada@example.com"]})),
        )
        .await;
    let team = team.json["id"].as_str().unwrap().to_owned();
    s.call(
        &o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{p}/teams"),
        Some(json!([{"teamId": team, "roleNames": ["GROUP_CLUSTER_MANAGER"]}])),
    )
    .await
    .expect(200);
    let rule = |verb: Verb, path: &str| {
        TABLE
            .iter()
            .find(|e| e.verb == verb && e.path == path)
            .unwrap()
            .rule
    };
    let org = OrgId::parse(s.org()).unwrap();
    let group = GroupId::parse(&p).unwrap();
    let on = On::Group { org, group };
    let store = &s.running.state.store;
    let person = |people: &tessera_domain::people::OrgPeople| {
        people
            .principal(UserId::parse(&ada).unwrap(), None)
            .unwrap()
    };
    let people = store.org_people(org).await.unwrap();
    let me = person(&people);
    assert_eq!(
        me.authorize(rule(Verb::Post, "/groups/{groupId}/clusters"), on),
        Decision::Allow,
        "GROUP_CLUSTER_MANAGER through the team"
    );
    assert_eq!(
        me.authorize(rule(Verb::Get, "/groups/{groupId}/databaseUsers"), on),
        Decision::Allow
    );
    assert_eq!(
        me.authorize(
            rule(Verb::Delete, "/groups/{groupId}/clusters/{clusterName}"),
            on
        ),
        Decision::Forbidden,
        "deleting needs the Project Owner"
    );
    assert_eq!(
        me.authorize(rule(Verb::Post, "/orgs/{orgId}/users"), On::Org(org)),
        Decision::Forbidden
    );
    // Out of the team: the project role goes with it.
    v25(
        &s,
        &o,
        Method::POST,
        &org_path(&s, &format!("/teams/{team}:removeUser")),
        Some(json!({"id": ada})),
    )
    .await
    .expect(200);
    let me = person(&store.org_people(org).await.unwrap());
    assert_eq!(
        me.authorize(rule(Verb::Post, "/groups/{groupId}/clusters"), on),
        Decision::Forbidden
    );
    // A pending member is nobody yet.
    let r = v25(
        &s,
        &o,
        Method::POST,
        &org_path(&s, "/users"),
        Some(json!({"username": "grace@example.com", "roles": {"orgRoles": ["ORG_OWNER"]}})),
    )
    .await;
    let grace = UserId::parse(r.json["id"].as_str().unwrap()).unwrap();
    assert!(store
        .org_people(org)
        .await
        .unwrap()
        .principal(grace, None)
        .is_none());
    // What a person does is written with it as the actor.
    let ev = tessera_http::audit::event(
        &s.running.state,
        &me,
        tessera_domain::EventType::OrgSettingsChanged,
        org,
        None,
        vec![],
    );
    store
        .put_settings(
            tessera_store::SettingsScope::Org(org),
            "{\"genAIFeaturesEnabled\":false}",
            &[ev],
        )
        .await
        .unwrap();
    let r = s
        .call(
            &o,
            Method::GET,
            &org_path(&s, "/events?eventType=ORG_SETTINGS_CHANGED&includeRaw=true"),
            None,
        )
        .await;
    let e = &r.json["results"][0];
    assert_eq!(e["userId"], ada.as_str());
    assert_eq!(e["username"], "ada@example.com");
    assert_eq!(e["raw"]["actorKind"], "USER");
    assert!(e.get("apiKeyId").is_none());
    s.stop().await;
}

/// Project limits are enforced in the change's unit of work (a change past one is 409 and
/// writes nothing; a limit is not set below what is used), and the organization's
/// `maxServiceAccountSecretValidityInHours` bounds new secrets.
#[tokio::test]
async fn limits_and_secret_validity_are_enforced() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let l = |name: &str| format!("/api/atlas/v2/groups/{p}/limits/{name}");
    s.call(
        &o,
        Method::PATCH,
        &l("atlas.project.deployment.clusters"),
        Some(json!({"value": 1})),
    )
    .await
    .expect(200);
    let clusters = format!("/api/atlas/v2/groups/{p}/clusters");
    s.v2024(&o, Method::POST, &clusters, Some(json!({"name": "c1"})))
        .await
        .expect(201);
    let before = s.snapshot().await;
    let r = s
        .v2024(&o, Method::POST, &clusters, Some(json!({"name": "c2"})))
        .await;
    r.expect_error(409, "PROJECT_LIMIT_EXCEEDED");
    assert_eq!(
        r.json["parameters"],
        json!(["atlas.project.deployment.clusters", 1])
    );
    s.call(
        &o,
        Method::PATCH,
        &l("atlas.project.security.networkAccess.entries"),
        Some(json!({"value": 1})),
    )
    .await
    .expect(200);
    let before_entries = s.snapshot().await;
    assert_ne!(before, before_entries);
    s.call(
        &o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{p}/accessList"),
        Some(json!([{"ipAddress": "192.0.2.1"}, {"ipAddress": "192.0.2.2"}])),
    )
    .await
    .expect_error(409, "PROJECT_LIMIT_EXCEEDED");
    assert_eq!(
        before_entries,
        s.snapshot().await,
        "nothing of the refused body was written"
    );
    // Not below what is used.
    s.call(
        &o,
        Method::PATCH,
        &l("atlas.project.deployment.clusters"),
        Some(json!({"value": 1})),
    )
    .await
    .expect(200);
    s.v2024(&o, Method::DELETE, &format!("{clusters}/c1"), None)
        .await;
    s.v2024(&o, Method::POST, &clusters, Some(json!({"name": "c3"})))
        .await
        .expect(201);
    s.call(
        &o,
        Method::PATCH,
        &l("atlas.project.security.databaseAccess.users"),
        Some(json!({"value": 1})),
    )
    .await
    .expect(200);
    for (i, status) in [(1, 201), (2, 409)] {
        let r = s
            .call(
                &o,
                Method::POST,
                &format!("/api/atlas/v2/groups/{p}/databaseUsers"),
                Some(json!({"databaseName": "admin", "username": format!("u{i}"),
                            "password": "correct horse battery",
                            "roles": [{"roleName": "read", "databaseName": "x"}]})),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{}", r.text);
    }
    let r = s
        .call(
            &o,
            Method::PATCH,
            &l("atlas.project.deployment.clusters"),
            Some(json!({"value": 1})),
        )
        .await;
    r.expect(200);
    // The organization bounds new service-account secrets.
    s.call(
        &o,
        Method::PATCH,
        &org_path(&s, "/settings"),
        Some(json!({"maxServiceAccountSecretValidityInHours": 24})),
    )
    .await
    .expect(200);
    let sa = |hours: i64| json!({"name": "n", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": hours});
    s.v2024(&o, Method::POST, &s.sa_path(""), Some(sa(48)))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let made = s
        .v2024(&o, Method::POST, &s.sa_path(""), Some(sa(24)))
        .await;
    made.expect(201);
    let client = made.json["clientId"].as_str().unwrap().to_owned();
    s.v2024(
        &o,
        Method::POST,
        &s.sa_path(&format!("/{client}/secrets")),
        Some(json!({"secretExpiresAfterHours": 25})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    s.stop().await;
}

/// Cloud Manager's `PATCH /users/{userId}`: the profile only, by the Organization Owner of
/// every organization the person belongs to; an event only for a change.
#[tokio::test]
async fn a_persons_profile_is_changed_by_the_owners_of_all_its_organizations() {
    let s = TestServer::start().await;
    let o = s.owner();
    let ada = new_user(&s, "ada@example.com", &["ORG_MEMBER"]).await;
    let u = format!("/api/atlas/v2/users/{ada}");
    for _ in 0..2 {
        let r = s
            .call(
                &o,
                Method::PATCH,
                &u,
                Some(json!({"firstName": "Augusta", "country": "FR"})),
            )
            .await;
        r.expect(200);
        assert_eq!(r.json["firstName"], "Augusta");
        assert_eq!(r.json["country"], "FR");
    }
    assert_eq!(count(&org_event_types(&s).await, "USER_PROFILE_CHANGED"), 1);
    let before = s.snapshot().await;
    for body in [
        json!({"password": "another long password"}),
        json!({"roles": []}),
        json!({"username": "eve@example.com"}),
        json!({"country": "France"}),
    ] {
        s.call(&o, Method::PATCH, &u, Some(body))
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let after_key = s.snapshot().await;
    assert_ne!(before, after_key);
    s.call(
        &member,
        Method::PATCH,
        &u,
        Some(json!({"firstName": "Eve"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    // A person also in an organization the caller does not own: refused.
    let (other, _) = crate::clusters::second_org(&s).await;
    let r = s
        .call(&other, Method::GET, "/api/atlas/v2/orgs", None)
        .await;
    let org2 = r.json["results"][0]["id"].as_str().unwrap().to_owned();
    v25(
        &s,
        &other,
        Method::POST,
        &format!("/api/atlas/v2/orgs/{org2}/users"),
        Some(json!({"username": "ada@example.com", "roles": {"orgRoles": ["ORG_MEMBER"]}})),
    )
    .await
    .expect(201);
    let before = s.snapshot().await;
    s.call(&o, Method::PATCH, &u, Some(json!({"firstName": "Eve"})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&other, Method::PATCH, &u, Some(json!({"firstName": "Eve"})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    s.call(
        &o,
        Method::PATCH,
        "/api/atlas/v2/users/cccccccccccccccccccccccc",
        Some(json!({"firstName": "Eve"})),
    )
    .await
    .expect_error(404, "USER_NOT_FOUND");
    s.stop().await;
}
