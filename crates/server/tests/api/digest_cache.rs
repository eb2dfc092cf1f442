//! Digest keys are cached with their unsealed HA1 values; every change to a key, its project
//! memberships, a project or an organization applies to the very next request.

use reqwest::Method;
use serde_json::json;
use tessera_protocols::digest::DigestAlgorithm;

use crate::harness::{digest_authorization, Key, TestServer};

#[tokio::test]
async fn project_assignment_changes_apply_at_once() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (k, kid) = s.new_org_key(&["ORG_MEMBER"]).await;
    let project = format!("/api/atlas/v2/groups/{}", s.project());
    let membership = format!("{project}/apiKeys/{kid}");
    // Not in the project: the key cannot see it (and is now cached).
    let outside = s.call(&k, Method::GET, &project, None).await.status;
    assert_ne!(outside.as_u16(), 200);
    s.call(
        &o,
        Method::POST,
        &membership,
        Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
    )
    .await
    .expect(204);
    s.call(&k, Method::GET, &project, None).await.expect(200);
    s.call(
        &k,
        Method::PATCH,
        &project,
        Some(json!({"name": "renamed"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &o,
        Method::PATCH,
        &membership,
        Some(json!({"roles": ["GROUP_OWNER"]})),
    )
    .await
    .expect(200);
    s.call(
        &k,
        Method::PATCH,
        &project,
        Some(json!({"name": "renamed"})),
    )
    .await
    .expect(200);
    s.call(&o, Method::DELETE, &membership, None)
        .await
        .expect(204);
    assert_eq!(
        s.call(&k, Method::GET, &project, None).await.status,
        outside
    );
    s.stop().await;
}

#[tokio::test]
async fn description_change_and_deletion_apply_at_once() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (k, kid) = s.new_org_key(&["ORG_READ_ONLY"]).await;
    let path = format!("/api/atlas/v2/orgs/{}/apiKeys/{kid}", s.org());
    s.call(&k, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect(200);
    s.call(&o, Method::PATCH, &path, Some(json!({"desc": "changed"})))
        .await
        .expect(200);
    // The key reads itself: the description it sees is the new one.
    let r = s.call(&k, Method::GET, &path, None).await;
    r.expect(200);
    assert_eq!(r.json["desc"], "changed");
    s.call(&o, Method::DELETE, &path, None).await.expect(204);
    s.call(&k, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn only_existing_keys_are_cached() {
    let s = TestServer::start().await;
    let o = s.owner();
    s.call(&o, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect(200);
    let cached = s.running.state.api_keys.len();
    assert_eq!(cached, 1);
    for i in 0..50 {
        let unknown = Key {
            public: format!("unknown{i}"),
            private: "00000000-0000-0000-0000-000000000000".into(),
        };
        let nonce = s.fresh_nonce().await;
        let auth = digest_authorization(
            &unknown,
            "GET",
            "/api/atlas/v2/orgs",
            &nonce,
            "00000001",
            DigestAlgorithm::Md5,
        );
        s.raw(
            Method::GET,
            "/api/atlas/v2/orgs",
            &[
                ("accept", "application/vnd.atlas.2023-01-01+json"),
                ("authorization", &auth),
            ],
            None,
        )
        .await
        .expect_error(401, "UNAUTHORIZED");
    }
    assert_eq!(s.running.state.api_keys.len(), cached);
    // A wrong password for a known key is refused from the cache, too.
    let wrong = Key {
        public: o.public.clone(),
        private: "00000000-0000-0000-0000-000000000000".into(),
    };
    s.call(&wrong, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.call(&o, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect(200);
    s.stop().await;
}
