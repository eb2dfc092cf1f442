//! Projects (groups).

use reqwest::Method;
use serde_json::json;

use crate::harness::{Key, TestServer};

#[tokio::test]
async fn create_get_by_name_patch_delete() {
    let s = TestServer::start().await;
    let o = s.owner();
    let r = s
        .call(&o, Method::POST, "/api/atlas/v2/groups", Some(json!({"name": "Analytics", "orgId": s.org(), "tags": [{"key": "env", "value": "dev"}]})))
        .await;
    r.expect(200);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 24);
    assert_eq!(r.json["orgId"], s.org());
    assert_eq!(r.json["clusterCount"], 0);
    assert_eq!(r.json["created"], "2026-01-01T00:00:00Z");
    assert_eq!(r.json["withDefaultAlertsSettings"], true);
    assert_eq!(r.json["tags"], json!([{"key": "env", "value": "dev"}]));

    let got = s
        .call(&o, Method::GET, &format!("/api/atlas/v2/groups/{id}"), None)
        .await;
    got.expect(200);
    assert_eq!(got.json, r.json);
    let by_name = s
        .call(
            &o,
            Method::GET,
            "/api/atlas/v2/groups/byName/Analytics",
            None,
        )
        .await;
    assert_eq!(by_name.json["id"], id);
    s.call(&o, Method::GET, "/api/atlas/v2/groups/byName/Nope", None)
        .await
        .expect_error(404, "GROUP_NAME_NOT_FOUND");

    // Listed at /groups and /orgs/{orgId}/groups (prefix filter, case-insensitive).
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}/groups?name=ana", s.org()),
            None,
        )
        .await;
    assert_eq!(r.json["totalCount"], 1);
    assert_eq!(r.json["results"][0]["id"], id);
    let r = s.call(&o, Method::GET, "/api/atlas/v2/groups", None).await;
    assert_eq!(r.json["totalCount"], 2);

    let r = s
        .call(
            &o,
            Method::PATCH,
            &format!("/api/atlas/v2/groups/{id}"),
            Some(json!({"name": "Analytics-2", "withDefaultAlertsSettings": false})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Analytics-2");
    assert_eq!(r.json["withDefaultAlertsSettings"], false);
    assert_eq!(r.json["tags"], json!([{"key": "env", "value": "dev"}]));

    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v2/groups/{id}"),
        None,
    )
    .await
    .expect(204);
    s.call(&o, Method::GET, &format!("/api/atlas/v2/groups/{id}"), None)
        .await
        .expect_error(404, "GROUP_NOT_FOUND");
    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v2/groups/{id}"),
        None,
    )
    .await
    .expect_error(404, "GROUP_NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let before = s.snapshot().await;
    for (body, status, code) in [
        (
            json!({"name": "Project0", "orgId": s.org()}),
            409,
            "GROUP_ALREADY_EXISTS",
        ),
        (
            json!({"name": "bad name", "orgId": s.org()}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({"name": "ok"}), 400, "VALIDATION_ERROR"),
        (
            json!({"name": "ok", "orgId": "abc"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "ok", "orgId": "bbbbbbbbbbbbbbbbbbbbbbbb"}),
            404,
            "ORG_NOT_FOUND",
        ),
        (
            json!({"name": "ok", "orgId": s.org(), "regionUsageRestrictions": "MOON"}),
            400,
            "INVALID_ENUM_VALUE",
        ),
        (
            json!({"name": "ok", "orgId": s.org(), "tags": [{"key": "", "value": "v"}]}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"name": "ok", "orgId": s.org(), "tags": [{"key": "k"}]}),
            400,
            "VALIDATION_ERROR",
        ),
    ] {
        s.call(&o, Method::POST, "/api/atlas/v2/groups", Some(body))
            .await
            .expect_error(status, code);
    }
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/atlas/v2/groups?projectOwnerId=xyz",
            Some(json!({"name": "ok", "orgId": s.org()})),
        )
        .await;
    r.expect_error(400, "VALIDATION_ERROR");
    let p = format!("/api/atlas/v2/groups/{}", s.project());
    s.call(&o, Method::PATCH, &p, Some(json!({"name": "a b"})))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    s.call(&o, Method::PATCH, &p, Some(json!({"orgId": s.org()})))
        .await
        .expect_error(400, "INVALID_ATTRIBUTE");
    s.call(&o, Method::GET, "/api/atlas/v2/groups/xyz", None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    s.call(&o, Method::DELETE, "/api/atlas/v2/groups/XYZ", None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    s.call(
        &o,
        Method::GET,
        &format!("/api/atlas/v2/groups/byName/{}", "x".repeat(65)),
        None,
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(before, s.snapshot().await);

    // Renaming onto an existing name conflicts.
    s.call(
        &o,
        Method::POST,
        "/api/atlas/v2/groups",
        Some(json!({"name": "other", "orgId": s.org()})),
    )
    .await
    .expect(200);
    let before = s.snapshot().await;
    s.call(&o, Method::PATCH, &p, Some(json!({"name": "other"})))
        .await
        .expect_error(409, "GROUP_ALREADY_EXISTS");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn roles_decide_visibility_and_changes() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = format!("/api/atlas/v2/groups/{}", s.project());
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let (reader, _) = s.new_org_key(&["ORG_READ_ONLY"]).await;
    let (creator, _) = s.new_org_key(&["ORG_GROUP_CREATOR"]).await;
    // A project-only key: ORG_MEMBER + GROUP_READ_ONLY in the bootstrap project.
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{p}/apiKeys"),
            Some(json!({"desc": "proj", "roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    let proj = Key {
        public: r.json["publicKey"].as_str().unwrap().into(),
        private: r.json["privateKey"].as_str().unwrap().into(),
    };

    let before = s.snapshot().await;
    // ORG_MEMBER without a project role: sees no projects, 403 on one.
    let r = s
        .call(&member, Method::GET, "/api/atlas/v2/groups", None)
        .await;
    assert_eq!(r.json["totalCount"], 0);
    s.call(&member, Method::GET, &p, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &member,
        Method::POST,
        "/api/atlas/v2/groups",
        Some(json!({"name": "m", "orgId": s.org()})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    // ORG_READ_ONLY: reads every project, changes none.
    let r = s
        .call(&reader, Method::GET, "/api/atlas/v2/groups", None)
        .await;
    assert_eq!(r.json["totalCount"], 1);
    s.call(&reader, Method::GET, &p, None).await.expect(200);
    s.call(&reader, Method::PATCH, &p, Some(json!({"name": "x"})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&reader, Method::DELETE, &p, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    // GROUP_READ_ONLY: reads its project, by id and by name.
    s.call(&proj, Method::GET, &p, None).await.expect(200);
    s.call(
        &proj,
        Method::GET,
        "/api/atlas/v2/groups/byName/Project0",
        None,
    )
    .await
    .expect(200);
    s.call(&proj, Method::PATCH, &p, Some(json!({"name": "x"})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    let r = s
        .call(
            &proj,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}/groups", s.org()),
            None,
        )
        .await;
    assert_eq!(r.json["totalCount"], 1);
    assert_eq!(before, s.snapshot().await);

    // ORG_GROUP_CREATOR creates a project and owns it.
    let r = s
        .call(
            &creator,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": "mine", "orgId": s.org()})),
        )
        .await;
    r.expect(200);
    let mine = r.json["id"].as_str().unwrap().to_owned();
    s.call(
        &creator,
        Method::PATCH,
        &format!("/api/atlas/v2/groups/{mine}"),
        Some(json!({"name": "mine2"})),
    )
    .await
    .expect(200);
    s.call(&creator, Method::GET, &p, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &creator,
        Method::DELETE,
        &format!("/api/atlas/v2/groups/{mine}"),
        None,
    )
    .await
    .expect(204);
    s.stop().await;
}
