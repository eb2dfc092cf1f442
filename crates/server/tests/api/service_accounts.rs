//! Organization service accounts (CONTRACT §6).

use reqwest::Method;
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn seed_003_create_shape_then_masked() {
    let s = TestServer::start().await;
    // The seed's own request, on the v1.0 surface with Accept: application/json.
    let r = s
        .call_with(
            &s.owner(),
            Method::POST,
            &format!(
                "/api/public/v1.0/orgs/{}/serviceAccounts?pretty=true",
                s.org()
            ),
            Some(json!({
                "name": "Billing",
                "description": "Service account for users in finance.",
                "secretExpiresAfterHours": 3600,
                "roles": ["ORG_MEMBER", "ORG_BILLING_ADMIN"]
            })),
            &[("accept", "application/json")],
            Default::default(),
        )
        .await;
    r.expect(201);
    assert_eq!(r.headers["content-type"], "application/json");
    let b = &r.json;
    let client_id = b["clientId"].as_str().unwrap();
    assert!(client_id.starts_with("mdb_sa_id_") && client_id.len() == 34);
    assert!(client_id[10..]
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(b["name"], "Billing");
    assert_eq!(b["description"], "Service account for users in finance.");
    assert_eq!(b["roles"], json!(["ORG_MEMBER", "ORG_BILLING_ADMIN"]));
    assert_eq!(b["createdAt"], "2026-01-01T00:00:00Z");
    let secret = &b["secrets"][0];
    assert_eq!(secret["createdAt"], "2026-01-01T00:00:00Z");
    assert_eq!(secret["expiresAt"], "2026-05-31T00:00:00Z"); // + 3600 hours
    assert_eq!(secret["id"].as_str().unwrap().len(), 24);
    let value = secret["secret"].as_str().unwrap().to_owned();
    assert!(value.starts_with("mdb_sa_sk_") && value.len() == 50);
    assert!(secret.get("maskedSecretValue").is_none());
    assert!(r.text.contains("\n  \"clientId\""), "pretty=true honoured");

    // Afterwards only the masked value, on both surfaces.
    for path in [
        format!("/api/atlas/v2/orgs/{}/serviceAccounts/{client_id}", s.org()),
        format!(
            "/api/public/v1.0/orgs/{}/serviceAccounts/{client_id}",
            s.org()
        ),
    ] {
        let accept = if path.contains("/v2/") {
            "application/vnd.atlas.2024-08-05+json"
        } else {
            "application/json"
        };
        let g = s
            .call_with(
                &s.owner(),
                Method::GET,
                &path,
                None,
                &[("accept", accept)],
                Default::default(),
            )
            .await;
        g.expect(200);
        if accept != "application/json" {
            assert_eq!(
                g.headers["content-type"],
                "application/vnd.atlas.2024-08-05+json;charset=utf-8"
            );
        }
        let masked = g.json["secrets"][0]["maskedSecretValue"].as_str().unwrap();
        assert_eq!(
            masked,
            format!("mdb_sa_sk_{}{}", "*".repeat(36), &value[46..])
        );
        assert!(g.json["secrets"][0].get("secret").is_none());
        assert!(!g.text.contains(&value));
    }
    // Stored only as a keyed hash.
    assert!(!s.snapshot().await.contains(&value));
    // The 2023 version does not exist for service accounts.
    let r = s.call(&s.owner(), Method::GET, &s.sa_path(""), None).await;
    r.expect_error(406, "INVALID_VERSION_DATE");
    s.stop().await;
}

#[tokio::test]
async fn list_patch_delete() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (a, _) = s.new_service_account(&["ORG_READ_ONLY"]).await;
    let (b, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let r = s
        .v2024(
            &o,
            Method::GET,
            &s.sa_path("?itemsPerPage=1&includeSystemManaged=false"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 2);
    assert_eq!(r.json["results"][0]["clientId"], a.id);
    assert_eq!(r.json["links"][1]["rel"], "next");

    let p = s.sa_path(&format!("/{}", a.id));
    let r = s
        .v2024(
            &o,
            Method::PATCH,
            &p,
            Some(json!({"name": "Renamed", "description": "New text.", "roles": ["ORG_OWNER"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Renamed");
    assert_eq!(r.json["description"], "New text.");
    assert_eq!(r.json["roles"], json!(["ORG_OWNER"]));
    let r = s
        .v2024(&o, Method::PATCH, &p, Some(json!({"name": "Only name"})))
        .await;
    assert_eq!(r.json["roles"], json!(["ORG_OWNER"]));
    assert_eq!(r.json["description"], "New text.");

    s.v2024(&o, Method::DELETE, &p, None).await.expect(204);
    s.v2024(&o, Method::GET, &p, None)
        .await
        .expect_error(404, "SERVICE_ACCOUNT_NOT_FOUND");
    s.v2024(&o, Method::DELETE, &p, None)
        .await
        .expect_error(404, "SERVICE_ACCOUNT_NOT_FOUND");
    let r = s.v2024(&o, Method::GET, &s.sa_path(""), None).await;
    assert_eq!(r.json["totalCount"], 1);
    assert_eq!(r.json["results"][0]["clientId"], b.id);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (a, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    let good = json!({"name": "n", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 8});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (body, code) in [
        (with("name", json!("")), "VALIDATION_ERROR"),
        (with("name", json!("x".repeat(65))), "VALIDATION_ERROR"),
        (with("name", json!("semi;colon")), "VALIDATION_ERROR"),
        (with("description", json!("")), "VALIDATION_ERROR"),
        (
            with("description", json!("d".repeat(251))),
            "VALIDATION_ERROR",
        ),
        (with("description", json!("<script>")), "VALIDATION_ERROR"),
        (with("roles", json!([])), "VALIDATION_ERROR"),
        (with("roles", json!(["GROUP_OWNER"])), "VALIDATION_ERROR"),
        (
            with("roles", json!(["ORG_MEMBER", "ORG_MEMBER"])),
            "VALIDATION_ERROR",
        ),
        (
            with("secretExpiresAfterHours", json!(7)),
            "VALIDATION_ERROR",
        ),
        (
            with("secretExpiresAfterHours", json!(8767)),
            "VALIDATION_ERROR",
        ),
        (
            with("secretExpiresAfterHours", json!(-1)),
            "VALIDATION_ERROR",
        ),
        (
            with("secretExpiresAfterHours", json!("24")),
            "VALIDATION_ERROR",
        ),
        (without("description"), "VALIDATION_ERROR"),
        (without("secretExpiresAfterHours"), "VALIDATION_ERROR"),
        (
            with("clientId", json!("mdb_sa_id_000000000000000000000000")),
            "INVALID_ATTRIBUTE",
        ),
    ] {
        let r = s
            .v2024(&o, Method::POST, &s.sa_path(""), Some(body.clone()))
            .await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text);
        assert_eq!(r.error_code(), code, "{body}");
    }
    let p = s.sa_path(&format!("/{}", a.id));
    for body in [
        json!({"roles": []}),
        json!({"roles": ["GROUP_READ_ONLY"]}),
        json!({"name": ""}),
        json!({"secrets": []}),
    ] {
        let r = s.v2024(&o, Method::PATCH, &p, Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text);
    }
    for bad in [
        "mdb_sa_id_XYZ",
        "66ad205d181fc82b21b336e3",
        "mdb_sa_id_66ad205d181fc82b21b336eG",
    ] {
        s.v2024(&o, Method::GET, &s.sa_path(&format!("/{bad}")), None)
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
    s.v2024(
        &o,
        Method::GET,
        &s.sa_path("/mdb_sa_id_000000000000000000000000"),
        None,
    )
    .await
    .expect_error(404, "SERVICE_ACCOUNT_NOT_FOUND");
    s.v2024(
        &o,
        Method::GET,
        &s.sa_path("?includeSystemManaged=perhaps"),
        None,
    )
    .await
    .expect_error(400, "INVALID_QUERY_PARAMETER");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn roles_and_other_orgs() {
    let s = TestServer::start().await;
    let (a, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let (reader, _) = s.new_org_key(&["ORG_READ_ONLY"]).await;
    let p = s.sa_path(&format!("/{}", a.id));
    let before = s.snapshot().await;
    // Organization Read Only reads; Organization Member does not.
    s.v2024(&reader, Method::GET, &p, None).await.expect(200);
    s.v2024(&reader, Method::GET, &s.sa_path(""), None)
        .await
        .expect(200);
    s.v2024(&member, Method::GET, &p, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.v2024(&reader, Method::PATCH, &p, Some(json!({"name": "x"})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.v2024(&reader, Method::DELETE, &p, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.v2024(
        &reader,
        Method::POST,
        &format!("{p}/secrets"),
        Some(json!({"secretExpiresAfterHours": 8})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    // Another org's path: 404, whether or not the account exists there.
    let other = "/api/atlas/v2/orgs/eeeeeeeeeeeeeeeeeeeeeeee/serviceAccounts";
    s.v2024(&s.owner(), Method::GET, other, None)
        .await
        .expect_error(404, "ORG_NOT_FOUND");
    s.v2024(&s.owner(), Method::GET, &format!("{other}/{}", a.id), None)
        .await
        .expect_error(404, "ORG_NOT_FOUND");
    // Missing auth.
    s.raw(
        Method::GET,
        &p,
        &[("accept", "application/vnd.atlas.2024-08-05+json")],
        None,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn secrets_at_most_two_unexpired_and_deletable() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (a, created) = s.new_service_account(&["ORG_MEMBER"]).await;
    let first_id = created["secrets"][0]["id"].as_str().unwrap().to_owned();
    let secrets = s.sa_path(&format!("/{}/secrets", a.id));
    let r = s
        .v2024(
            &o,
            Method::POST,
            &secrets,
            Some(json!({"secretExpiresAfterHours": 8})),
        )
        .await;
    r.expect(201);
    let second_id = r.json["id"].as_str().unwrap().to_owned();
    assert!(r.json["secret"].as_str().unwrap().starts_with("mdb_sa_sk_"));
    assert_eq!(r.json["expiresAt"], "2026-01-01T08:00:00Z");
    assert!(r.json.get("maskedSecretValue").is_none());

    let before = s.snapshot().await;
    s.v2024(
        &o,
        Method::POST,
        &secrets,
        Some(json!({"secretExpiresAfterHours": 8})),
    )
    .await
    .expect_error(409, "SERVICE_ACCOUNT_SECRET_LIMIT_EXCEEDED");
    for body in [
        json!({"secretExpiresAfterHours": 0}),
        json!({}),
        json!({"secretExpiresAfterHours": 9000}),
        json!({"x": 1}),
    ] {
        let r = s.v2024(&o, Method::POST, &secrets, Some(body)).await;
        assert_eq!(r.status.as_u16(), 400);
    }
    assert_eq!(before, s.snapshot().await);

    // Once the 8-hour secret has expired, a new one may be made.
    s.clock.advance(chrono::Duration::hours(8));
    s.v2024(
        &o,
        Method::POST,
        &secrets,
        Some(json!({"secretExpiresAfterHours": 8})),
    )
    .await
    .expect(201);
    let g = s
        .v2024(&o, Method::GET, &s.sa_path(&format!("/{}", a.id)), None)
        .await;
    assert_eq!(g.json["secrets"].as_array().unwrap().len(), 3);

    s.v2024(&o, Method::DELETE, &format!("{secrets}/{second_id}"), None)
        .await
        .expect(204);
    s.v2024(&o, Method::DELETE, &format!("{secrets}/{second_id}"), None)
        .await
        .expect_error(404, "SERVICE_ACCOUNT_SECRET_NOT_FOUND");
    s.v2024(&o, Method::DELETE, &format!("{secrets}/nothex"), None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let g = s
        .v2024(&o, Method::GET, &s.sa_path(&format!("/{}", a.id)), None)
        .await;
    let ids: Vec<&str> = g.json["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first_id.as_str()));
    s.stop().await;
}

#[tokio::test]
async fn access_list_entries() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (a, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let al = s.sa_path(&format!("/{}/accessList", a.id));
    let r = s
        .v2024(&o, Method::POST, &al, Some(json!([{"cidrBlock": "192.0.2.0/24"}, {"ipAddress": "198.51.100.7"}, {"ipAddress": "198.51.100.7"}])))
        .await;
    r.expect(200);
    assert_eq!(
        r.json["totalCount"], 2,
        "duplicates are ignored: {}",
        r.text
    );
    let entries = r.json["results"].as_array().unwrap();
    assert_eq!(
        entries[0],
        json!({"cidrBlock": "192.0.2.0/24", "createdAt": "2026-01-01T00:00:00Z", "requestCount": 0})
    );
    assert_eq!(entries[1]["ipAddress"], "198.51.100.7");
    assert!(entries[1].get("cidrBlock").is_none());

    let before = s.snapshot().await;
    for body in [
        json!([{"cidrBlock": "192.0.2.1/24"}]),
        json!([{"ipAddress": "300.0.0.1"}]),
        json!([{"ipAddress": "192.0.2.1", "cidrBlock": "192.0.2.0/24"}]),
        json!([{}]),
        json!([]),
        json!({"ipAddress": "192.0.2.1"}),
        serde_json::Value::Array(
            (0..201)
                .map(|i| json!({"ipAddress": format!("10.0.0.{}", i % 250)}))
                .collect(),
        ),
    ] {
        let r = s.v2024(&o, Method::POST, &al, Some(body)).await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    }
    s.v2024(&o, Method::DELETE, &format!("{al}/203.0.113.0%2F24"), None)
        .await
        .expect_error(404, "ACCESS_LIST_ENTRY_NOT_FOUND");
    s.v2024(&o, Method::DELETE, &format!("{al}/not-an-ip"), None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(before, s.snapshot().await);

    s.v2024(&o, Method::DELETE, &format!("{al}/192.0.2.0%2F24"), None)
        .await
        .expect(204);
    s.v2024(&o, Method::DELETE, &format!("{al}/198.51.100.7"), None)
        .await
        .expect(204);
    let r = s.v2024(&o, Method::GET, &al, None).await;
    assert_eq!(r.json["totalCount"], 0);
    s.stop().await;
}
