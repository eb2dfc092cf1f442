//! Programmatic API keys and their project assignments.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Key, TestServer};

fn is_uuid_shaped(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn org_key_lifecycle() {
    let s = TestServer::start().await;
    let o = s.owner();
    let base = format!("/api/atlas/v2/orgs/{}/apiKeys", s.org());
    let r = s
        .call(
            &o,
            Method::POST,
            &base,
            Some(json!({"desc": "CI key", "roles": ["ORG_READ_ONLY", "ORG_BILLING_ADMIN"]})),
        )
        .await;
    r.expect(200);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let public = r.json["publicKey"].as_str().unwrap().to_owned();
    let private = r.json["privateKey"].as_str().unwrap().to_owned();
    assert_eq!(public.len(), 8);
    assert!(public.bytes().all(|b| b.is_ascii_lowercase()));
    assert!(is_uuid_shaped(&private), "{private}");
    assert_eq!(r.json["desc"], "CI key");
    assert_eq!(
        r.json["roles"],
        json!([{"orgId": s.org(), "roleName": "ORG_READ_ONLY"}, {"orgId": s.org(), "roleName": "ORG_BILLING_ADMIN"}])
    );

    // Shown once: afterwards masked everywhere.
    let got = s.call(&o, Method::GET, &format!("{base}/{id}"), None).await;
    got.expect(200);
    let masked = got.json["privateKey"].as_str().unwrap();
    assert_eq!(
        masked,
        format!("********-****-****-****-********{}", &private[32..])
    );
    let list = s.call(&o, Method::GET, &base, None).await;
    assert_eq!(list.json["totalCount"], 2);
    assert!(!list.text.contains(&private));

    // The new key works.
    let k = Key { public, private };
    s.call(
        &k,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect(200);

    let r = s
        .call(
            &o,
            Method::PATCH,
            &format!("{base}/{id}"),
            Some(json!({"desc": "renamed"})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["desc"], "renamed");
    assert_eq!(r.json["roles"].as_array().unwrap().len(), 2);
    let r = s
        .call(
            &o,
            Method::PATCH,
            &format!("{base}/{id}"),
            Some(json!({"roles": ["ORG_MEMBER"]})),
        )
        .await;
    assert_eq!(
        r.json["roles"],
        json!([{"orgId": s.org(), "roleName": "ORG_MEMBER"}])
    );
    assert_eq!(r.json["desc"], "renamed");

    s.call(&o, Method::DELETE, &format!("{base}/{id}"), None)
        .await
        .expect(204);
    s.call(&o, Method::GET, &format!("{base}/{id}"), None)
        .await
        .expect_error(404, "API_KEY_NOT_FOUND");
    s.call(&o, Method::DELETE, &format!("{base}/{id}"), None)
        .await
        .expect_error(404, "API_KEY_NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_and_roles_change_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let base = format!("/api/atlas/v2/orgs/{}/apiKeys", s.org());
    let (member, member_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    for (body, code) in [
        (json!({"desc": "d", "roles": []}), "VALIDATION_ERROR"),
        (
            json!({"desc": "d", "roles": ["ORG_MEMBER", "ORG_MEMBER"]}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"desc": "d", "roles": ["GROUP_OWNER"]}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"desc": "d", "roles": ["org_owner"]}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"desc": "", "roles": ["ORG_MEMBER"]}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"desc": "d".repeat(251), "roles": ["ORG_MEMBER"]}),
            "VALIDATION_ERROR",
        ),
        (json!({"roles": ["ORG_MEMBER"]}), "VALIDATION_ERROR"),
        (
            json!({"desc": "d", "roles": "ORG_MEMBER"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"desc": "d", "roles": ["ORG_MEMBER"], "privateKey": "mine"}),
            "INVALID_ATTRIBUTE",
        ),
    ] {
        s.call(&o, Method::POST, &base, Some(body))
            .await
            .expect_error(400, code);
    }
    s.call(
        &o,
        Method::PATCH,
        &format!("{base}/{member_id}"),
        Some(json!({"roles": []})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    s.call(
        &o,
        Method::PATCH,
        &format!("{base}/{member_id}"),
        Some(json!({"roles": ["NOPE"]})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    s.call(&o, Method::GET, &format!("{base}/nothex"), None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    s.call(
        &o,
        Method::GET,
        &format!("{base}/cccccccccccccccccccccccc"),
        None,
    )
    .await
    .expect_error(404, "API_KEY_NOT_FOUND");
    // ORG_MEMBER reads keys but cannot create, change or delete them.
    s.call(&member, Method::GET, &base, None).await.expect(200);
    s.call(
        &member,
        Method::POST,
        &base,
        Some(json!({"desc": "d", "roles": ["ORG_OWNER"]})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &member,
        Method::PATCH,
        &format!("{base}/{member_id}"),
        Some(json!({"roles": ["ORG_OWNER"]})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &member,
        Method::DELETE,
        &format!("{base}/{member_id}"),
        None,
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    // Missing auth.
    s.raw(
        Method::GET,
        &base,
        &[("accept", "application/vnd.atlas.2023-01-01+json")],
        None,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn project_keys_assign_update_unassign() {
    let s = TestServer::start().await;
    let o = s.owner();
    let gp = format!("/api/atlas/v2/groups/{}/apiKeys", s.project());
    // Created for the project: an org key with ORG_MEMBER plus the project roles.
    let r = s
        .call(
            &o,
            Method::POST,
            &gp,
            Some(json!({"desc": "proj", "roles": ["GROUP_CLUSTER_MANAGER"]})),
        )
        .await;
    r.expect(200);
    let pid = r.json["id"].as_str().unwrap().to_owned();
    assert!(is_uuid_shaped(r.json["privateKey"].as_str().unwrap()));
    assert_eq!(
        r.json["roles"],
        json!([{"orgId": s.org(), "roleName": "ORG_MEMBER"}, {"groupId": s.project(), "roleName": "GROUP_CLUSTER_MANAGER"}])
    );
    let list = s.call(&o, Method::GET, &gp, None).await;
    let ids: Vec<&str> = list.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [pid.as_str()]);

    // Assign an existing org key.
    let (k, kid) = s.new_org_key(&["ORG_MEMBER"]).await;
    s.call(
        &k,
        Method::GET,
        &format!("/api/atlas/v2/groups/{}", s.project()),
        None,
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &o,
        Method::POST,
        &format!("{gp}/{kid}"),
        Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
    )
    .await
    .expect(204);
    s.call(
        &k,
        Method::GET,
        &format!("/api/atlas/v2/groups/{}", s.project()),
        None,
    )
    .await
    .expect(200);
    let list = s.call(&o, Method::GET, &gp, None).await;
    assert_eq!(list.json["totalCount"], 2);

    let r = s
        .call(
            &o,
            Method::PATCH,
            &format!("{gp}/{kid}"),
            Some(json!({"desc": "now owner", "roles": ["GROUP_OWNER"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["desc"], "now owner");
    assert!(r.json["roles"]
        .as_array()
        .unwrap()
        .contains(&json!({"groupId": s.project(), "roleName": "GROUP_OWNER"})));
    s.call(
        &k,
        Method::PATCH,
        &format!("/api/atlas/v2/groups/{}", s.project()),
        Some(json!({"name": "ByProjectOwner"})),
    )
    .await
    .expect(200);

    // Bad bodies change nothing.
    let before_bad = s.snapshot().await;
    for body in [
        json!([{"roles": []}]),
        json!([{"roles": ["ORG_OWNER"]}]),
        json!({"roles": ["GROUP_OWNER"]}),
        json!([]),
    ] {
        let r = s
            .call(&o, Method::POST, &format!("{gp}/{kid}"), Some(body))
            .await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    }
    s.call(
        &o,
        Method::PATCH,
        &format!("{gp}/{kid}"),
        Some(json!({"roles": ["ORG_MEMBER"]})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    s.call(
        &o,
        Method::POST,
        &gp,
        Some(json!({"desc": "x", "roles": ["ORG_OWNER"]})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    // An unknown key, or a key not in the project, is not found.
    s.call(
        &o,
        Method::POST,
        &format!("{gp}/dddddddddddddddddddddddd"),
        Some(json!([{"roles": ["GROUP_OWNER"]}])),
    )
    .await
    .expect_error(404, "API_KEY_NOT_FOUND");
    assert_eq!(before_bad, s.snapshot().await);
    let (outsider, outsider_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    s.call(
        &o,
        Method::PATCH,
        &format!("{gp}/{outsider_id}"),
        Some(json!({"roles": ["GROUP_OWNER"]})),
    )
    .await
    .expect_error(404, "API_KEY_NOT_FOUND");
    s.call(&o, Method::DELETE, &format!("{gp}/{outsider_id}"), None)
        .await
        .expect_error(404, "API_KEY_NOT_FOUND");
    // Keys without project rights may not manage project keys.
    s.call(&outsider, Method::GET, &gp, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &outsider,
        Method::POST,
        &gp,
        Some(json!({"desc": "x", "roles": ["GROUP_OWNER"]})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &outsider,
        Method::POST,
        &format!("{gp}/{outsider_id}"),
        Some(json!([{"roles": ["GROUP_OWNER"]}])),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);

    // Unassign: the key stays in the org but loses the project.
    s.call(&o, Method::DELETE, &format!("{gp}/{kid}"), None)
        .await
        .expect(204);
    s.call(
        &k,
        Method::GET,
        &format!("/api/atlas/v2/groups/{}", s.project()),
        None,
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &k,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect(200);
    s.call(&o, Method::DELETE, &format!("{gp}/{kid}"), None)
        .await
        .expect_error(404, "API_KEY_NOT_FOUND");
    // Deleting the project removes its assignments.
    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v2/groups/{}", s.project()),
        None,
    )
    .await
    .expect(204);
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}/apiKeys/{pid}", s.org()),
            None,
        )
        .await;
    assert_eq!(
        r.json["roles"],
        json!([{"orgId": s.org(), "roleName": "ORG_MEMBER"}])
    );
    s.stop().await;
}
