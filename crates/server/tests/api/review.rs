//! Regression tests for defects found in review: each demonstrated a hole before its fix.

use reqwest::Method;
use serde_json::json;

use crate::harness::{basic, Key, TestServer};

/// A Project Access Manager may not mint, promote to or strip a Project Owner.
#[tokio::test]
async fn access_manager_cannot_escalate_to_owner() {
    let s = TestServer::start().await;
    let o = s.owner();
    let gp = format!("/api/atlas/v2/groups/{}/apiKeys", s.project());
    let r = s
        .call(
            &o,
            Method::POST,
            &gp,
            Some(json!({"desc": "am", "roles": ["GROUP_ACCESS_MANAGER", "GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    let am = Key {
        public: r.json["publicKey"].as_str().unwrap().into(),
        private: r.json["privateKey"].as_str().unwrap().into(),
    };
    let am_id = r.json["id"].as_str().unwrap().to_owned();
    let r = s
        .call(
            &o,
            Method::POST,
            &gp,
            Some(json!({"desc": "owner", "roles": ["GROUP_OWNER"]})),
        )
        .await;
    let owner_key_id = r.json["id"].as_str().unwrap().to_owned();
    let gpath = format!("/api/atlas/v2/groups/{}", s.project());
    let before = s.snapshot().await;
    s.call(
        &am,
        Method::POST,
        &gp,
        Some(json!({"desc": "evil", "roles": ["GROUP_OWNER"]})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &am,
        Method::POST,
        &gp,
        Some(json!({"desc": "evil", "roles": ["GROUP_CLUSTER_MANAGER"]})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &am,
        Method::PATCH,
        &format!("{gp}/{am_id}"),
        Some(json!({"roles": ["GROUP_OWNER"]})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&am, Method::DELETE, &format!("{gp}/{owner_key_id}"), None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &am,
        Method::PATCH,
        &format!("{gp}/{owner_key_id}"),
        Some(json!({"desc": "mine now"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&am, Method::PATCH, &gpath, Some(json!({"name": "renamed"})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    // Within its own reach it still works.
    let r = s
        .call(
            &am,
            Method::POST,
            &gp,
            Some(json!({"desc": "reader", "roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    let reader = r.json["id"].as_str().unwrap().to_owned();
    s.call(&am, Method::DELETE, &format!("{gp}/{reader}"), None)
        .await
        .expect(204);
    s.stop().await;
}

/// A revoked token stays refused through its whole acceptance window (exp + leeway), even
/// after the revocation list is purged of expired entries.
#[tokio::test]
async fn revoked_token_stays_revoked_through_the_leeway() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let t = s.token(&c).await;
    let p = s.sa_path("");
    s.revoke(&c, &t).await.expect(200);
    s.clock.advance(chrono::Duration::seconds(3610)); // past exp, within the 30 s leeway
    let st = &s.running.state;
    st.registry
        .flush(st.store.as_ref(), st.clock.now())
        .await
        .unwrap();
    s.bearer(&t, Method::GET, &p, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

/// Introspection authenticates clients too, so guessing meets the rate limit there as well.
#[tokio::test]
async fn introspection_is_rate_limited() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let guess = basic(&c.id, "mdb_sa_sk_wrongwrongwrongwrongwrongwrongwrongwron");
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let r = s
            .raw(
                Method::POST,
                "/api/oauth/introspect",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &guess),
                ],
                Some(b"token=x".to_vec()),
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10], 429);
    s.stop().await;
}
