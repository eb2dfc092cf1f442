//! Organizations.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Key, TestServer};

#[tokio::test]
async fn list_get_patch() {
    let s = TestServer::start().await;
    let o = s.owner();
    let r = s.call(&o, Method::GET, "/api/atlas/v2/orgs", None).await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 1);
    let org = &r.json["results"][0];
    assert_eq!(org["id"], s.org());
    assert_eq!(org["name"], "Tessera");
    assert_eq!(org["isDeleted"], false);
    assert_eq!(
        org["links"][0]["href"],
        format!("{}/api/atlas/v2/orgs/{}", s.base, s.org())
    );
    // name filter: a case-insensitive prefix (Atlas' `listOrganizations`).
    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/orgs?name=tessera", None)
        .await;
    assert_eq!(r.json["totalCount"], 1);
    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/orgs?name=TESS", None)
        .await;
    assert_eq!(r.json["totalCount"], 1);
    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/orgs?name=essera", None)
        .await;
    assert_eq!(r.json["totalCount"], 0);

    let path = format!("/api/atlas/v2/orgs/{}", s.org());
    let r = s
        .call(
            &o,
            Method::PATCH,
            &path,
            Some(json!({"name": "Renamed-Org", "skipDefaultAlertsSettings": true})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Renamed-Org");
    assert_eq!(r.json["skipDefaultAlertsSettings"], true);
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/public/v1.0/orgs/{}", s.org()),
            None,
        )
        .await;
    assert_eq!(r.json["name"], "Renamed-Org");
    assert_eq!(
        r.json["links"][0]["href"],
        format!("{}/api/public/v1.0/orgs/{}", s.base, s.org())
    );
    // Read-only fields may be echoed back.
    let mut echoed = r.json.clone();
    echoed["name"] = json!("Echoed");
    s.call(&o, Method::PATCH, &path, Some(echoed))
        .await
        .expect(200);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let path = format!("/api/atlas/v2/orgs/{}", s.org());
    let before = s.snapshot().await;
    for (body, code) in [
        (json!({"name": "has space"}), "VALIDATION_ERROR"),
        (json!({"name": ""}), "VALIDATION_ERROR"),
        (json!({"name": "x".repeat(65)}), "VALIDATION_ERROR"),
        (json!({}), "VALIDATION_ERROR"),
        (json!({"name": "ok", "color": "red"}), "INVALID_ATTRIBUTE"),
        (
            json!({"name": "ok", "skipDefaultAlertsSettings": "yes"}),
            "VALIDATION_ERROR",
        ),
    ] {
        s.call(&o, Method::PATCH, &path, Some(body))
            .await
            .expect_error(400, code);
    }
    for bad_id in [
        "123",
        "ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "5F0000000000000000000000",
    ] {
        s.call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{bad_id}"),
            None,
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
        s.call(
            &o,
            Method::DELETE,
            &format!("/api/atlas/v2/orgs/{bad_id}"),
            None,
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn other_orgs_are_not_found_and_roles_are_checked() {
    let s = TestServer::start().await;
    let o = s.owner();
    // A second org created by the owner, with its own first key.
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/atlas/v2/orgs",
            Some(json!({"name": "Second", "apiKey": {"desc": "first", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let second = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let key2 = Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    assert_eq!(
        r.json["apiKey"]["roles"][0],
        json!({"orgId": second, "roleName": "ORG_OWNER"})
    );
    // The creating key does not see the new org: 404 (not 403) everywhere.
    let before = s.snapshot().await;
    for (m, p) in [
        (Method::GET, format!("/api/atlas/v2/orgs/{second}")),
        (Method::PATCH, format!("/api/atlas/v2/orgs/{second}")),
        (Method::DELETE, format!("/api/atlas/v2/orgs/{second}")),
        (Method::GET, format!("/api/atlas/v2/orgs/{second}/groups")),
        (Method::GET, format!("/api/atlas/v2/orgs/{second}/apiKeys")),
        (Method::POST, format!("/api/atlas/v2/orgs/{second}/apiKeys")),
        // An id that exists nowhere gets the same answer.
        (
            Method::GET,
            "/api/atlas/v2/orgs/aaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        ),
    ] {
        let body = (m == Method::PATCH)
            .then(|| json!({"name": "x"}))
            .or((m == Method::POST).then(|| json!({"desc": "d", "roles": ["ORG_OWNER"]})));
        s.call(&o, m, &p, body)
            .await
            .expect_error(404, "ORG_NOT_FOUND");
    }
    // Its own key sees only it.
    let r = s.call(&key2, Method::GET, "/api/atlas/v2/orgs", None).await;
    assert_eq!(r.json["totalCount"], 1);
    assert_eq!(r.json["results"][0]["id"], second);
    s.call(
        &key2,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect_error(404, "ORG_NOT_FOUND");
    assert_eq!(before, s.snapshot().await);

    // ORG_MEMBER: may read, may not change, may not create orgs.
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    s.call(
        &member,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect(200);
    s.call(
        &member,
        Method::PATCH,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        Some(json!({"name": "x"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &member,
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &member,
        Method::POST,
        "/api/atlas/v2/orgs",
        Some(json!({"name": "Nope"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn create_validation_and_delete() {
    let s = TestServer::start().await;
    let o = s.owner();
    let before = s.snapshot().await;
    for (body, code) in [
        (json!({"name": "bad name"}), "VALIDATION_ERROR"),
        (
            json!({"name": "Ok", "apiKey": {"desc": "d", "roles": ["GROUP_OWNER"]}}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "Ok", "apiKey": {"desc": "d", "roles": []}}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "Ok", "apiKey": {"desc": "", "roles": ["ORG_OWNER"]}}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "Ok", "orgOwnerId": "nothex"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "Ok", "federationSettingsId": "aaaaaaaaaaaaaaaaaaaaaaaa"}),
            "VALIDATION_ERROR",
        ),
        (json!({"name": "Ok", "unknown": 1}), "INVALID_ATTRIBUTE"),
    ] {
        s.call(&o, Method::POST, "/api/atlas/v2/orgs", Some(body))
            .await
            .expect_error(400, code);
    }
    assert_eq!(before, s.snapshot().await);

    // An org without a first key; then delete it... it is invisible to us, so create one with a key.
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/public/v1.0/orgs",
            Some(json!({"name": "Temp", "apiKey": {"desc": "k", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let id = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let k = Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    s.call(
        &k,
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{id}"),
        None,
    )
    .await
    .expect(204);
    // Deleting the org removed its keys too.
    s.call(&k, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect_error(401, "UNAUTHORIZED");

    // An org with projects cannot be deleted.
    let before = s.snapshot().await;
    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect_error(409, "CANNOT_DELETE_ORG_WITH_PROJECTS");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}
