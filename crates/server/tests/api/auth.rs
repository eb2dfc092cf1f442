//! HTTP Digest (CONTRACT §8).

use reqwest::Method;
use tessera_protocols::digest::DigestAlgorithm;

use crate::harness::{digest_authorization, Key, TestServer};

const V2_ACCEPT: (&str, &str) = ("accept", "application/vnd.atlas.2023-01-01+json");

#[tokio::test]
async fn challenge_has_atlas_shape() {
    let s = TestServer::start().await;
    let r = s
        .raw(Method::GET, "/api/atlas/v2/orgs", &[V2_ACCEPT], None)
        .await;
    r.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.json["detail"],
        "You are not authorized for this resource."
    );
    assert_eq!(r.json["reason"], "Unauthorized");
    let challenges: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(challenges.len(), 2);
    for (c, alg) in challenges.iter().zip(["SHA-256", "MD5"]) {
        let nonce = c
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(
            *c,
            format!("Digest realm=\"MMS Public API\", domain=\"\", nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\", stale=false")
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn md5_and_sha256_both_authenticate() {
    let s = TestServer::start().await;
    for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        let r = s
            .call_with(
                &s.owner(),
                Method::GET,
                "/api/atlas/v2/orgs",
                None,
                &[V2_ACCEPT],
                alg,
            )
            .await;
        r.expect(200);
        assert_eq!(r.json["results"][0]["id"], s.org());
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_refused() {
    let s = TestServer::start().await;
    let path = "/api/atlas/v2/orgs";
    let wrong = Key {
        public: s.owner().public,
        private: "00000000-0000-4000-8000-000000000000".into(),
    };
    let unknown = Key {
        public: "zzzzzzzz".into(),
        private: s.owner().private,
    };
    for key in [&wrong, &unknown] {
        let r = s.call(key, Method::GET, path, None).await;
        r.expect_error(401, "UNAUTHORIZED");
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("stale=false"));
    }
    // Garbage and other schemes.
    for auth in [
        "Digest",
        "Digest username=",
        "Basic Zm9vOmJhcg==",
        "Bearer x",
        "Digest nonce=\"abc\"",
    ] {
        let r = s
            .raw(
                Method::GET,
                path,
                &[V2_ACCEPT, ("authorization", auth)],
                None,
            )
            .await;
        r.expect_error(401, "UNAUTHORIZED");
    }
    s.stop().await;
}

#[tokio::test]
async fn replayed_nc_is_refused_and_higher_nc_accepted() {
    let s = TestServer::start().await;
    let path = "/api/atlas/v2/orgs";
    let nonce = s.fresh_nonce().await;
    let h1 = digest_authorization(
        &s.owner(),
        "GET",
        path,
        &nonce,
        "00000001",
        DigestAlgorithm::Md5,
    );
    s.raw(
        Method::GET,
        path,
        &[V2_ACCEPT, ("authorization", &h1)],
        None,
    )
    .await
    .expect(200);
    s.raw(
        Method::GET,
        path,
        &[V2_ACCEPT, ("authorization", &h1)],
        None,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    let h2 = digest_authorization(
        &s.owner(),
        "GET",
        path,
        &nonce,
        "00000002",
        DigestAlgorithm::Md5,
    );
    s.raw(
        Method::GET,
        path,
        &[V2_ACCEPT, ("authorization", &h2)],
        None,
    )
    .await
    .expect(200);
    s.stop().await;
}

#[tokio::test]
async fn expired_nonce_is_stale() {
    let s = TestServer::start().await;
    let path = "/api/atlas/v2/orgs";
    let nonce = s.fresh_nonce().await;
    s.clock.advance(chrono::Duration::seconds(301));
    let h = digest_authorization(
        &s.owner(),
        "GET",
        path,
        &nonce,
        "00000001",
        DigestAlgorithm::Md5,
    );
    let r = s
        .raw(Method::GET, path, &[V2_ACCEPT, ("authorization", &h)], None)
        .await;
    r.expect_error(401, "UNAUTHORIZED");
    let c: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(c.iter().all(|c| c.ends_with("stale=true")), "{c:?}");
    // A fresh nonce works at the new time.
    s.call(&s.owner(), Method::GET, path, None)
        .await
        .expect(200);
    s.stop().await;
}

#[tokio::test]
async fn uri_must_match_the_request() {
    let s = TestServer::start().await;
    let nonce = s.fresh_nonce().await;
    let h = digest_authorization(
        &s.owner(),
        "GET",
        "/api/atlas/v2/orgs?pretty=true",
        &nonce,
        "00000001",
        DigestAlgorithm::Md5,
    );
    s.raw(
        Method::GET,
        "/api/atlas/v2/orgs",
        &[V2_ACCEPT, ("authorization", &h)],
        None,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    // Method is part of the response too.
    let h = digest_authorization(
        &s.owner(),
        "DELETE",
        "/api/atlas/v2/orgs",
        &nonce,
        "00000002",
        DigestAlgorithm::Md5,
    );
    s.raw(
        Method::GET,
        "/api/atlas/v2/orgs",
        &[V2_ACCEPT, ("authorization", &h)],
        None,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn deleted_key_no_longer_authenticates_and_role_changes_apply_at_once() {
    let s = TestServer::start().await;
    let (key, id) = s.new_org_key(&["ORG_OWNER"]).await;
    let org_path = format!("/api/atlas/v2/orgs/{}", s.org());
    s.call(
        &key,
        Method::PATCH,
        &org_path,
        Some(serde_json::json!({"name": "Renamed"})),
    )
    .await
    .expect(200);
    // Demote: the next call sees the new role.
    s.call(
        &s.owner(),
        Method::PATCH,
        &format!("/api/atlas/v2/orgs/{}/apiKeys/{id}", s.org()),
        Some(serde_json::json!({"roles": ["ORG_MEMBER"]})),
    )
    .await
    .expect(200);
    s.call(
        &key,
        Method::PATCH,
        &org_path,
        Some(serde_json::json!({"name": "Again"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &s.owner(),
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{}/apiKeys/{id}", s.org()),
        None,
    )
    .await
    .expect(204);
    s.call(&key, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn digest_material_is_sealed_at_rest() {
    let s = TestServer::start().await;
    let snap = s.snapshot().await;
    let owner = s.owner();
    assert!(
        !snap.contains(&owner.private),
        "private key in the database"
    );
    for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        let ha1 =
            tessera_protocols::digest::ha1(alg, &owner.public, "MMS Public API", &owner.private);
        assert!(
            !snap.to_lowercase().contains(&ha1),
            "plain HA1 in the database"
        );
    }
    s.stop().await;
}
