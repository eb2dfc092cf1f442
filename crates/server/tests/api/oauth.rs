//! OAuth 2.0: token, revoke, introspect, discovery, and Bearer on every surface.

use reqwest::Method;
use serde_json::json;

use crate::harness::{basic, Client, TestServer};

#[tokio::test]
async fn token_success_shape() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_READ_ONLY"]).await;
    let r = s
        .token_request(
            Some(&basic(&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    r.expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["content-type"], "application/json");
    let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    assert_eq!(r.json["expires_in"], 3600);
    assert_eq!(r.json["token_type"], "Bearer");
    let token = r.json["access_token"].as_str().unwrap();

    // The token is a JWT with a pinned algorithm and a kid from the published JWKS.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let jwks = s
        .raw(Method::GET, "/.well-known/jwks.json", &[], None)
        .await;
    assert_eq!(jwks.json["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks.json["keys"][0]["kty"], "EC");
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["aud"], "api://admin");
    assert_eq!(claims["sub"], c.id);
    assert_eq!(claims["org_id"], s.org());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["secret_id"].as_str().unwrap().len(), 24);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);

    let meta = s
        .raw(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            &[],
            None,
        )
        .await;
    meta.expect(200);
    assert_eq!(meta.json["issuer"], s.base);
    assert_eq!(
        meta.json["token_endpoint"],
        format!("{}/api/oauth/token", s.base)
    );
    assert_eq!(
        meta.json["revocation_endpoint"],
        format!("{}/api/oauth/revoke", s.base)
    );
    assert_eq!(
        meta.json["grant_types_supported"],
        json!(["client_credentials"])
    );
    s.stop().await;
}

fn oauth_error(r: &crate::harness::Resp, status: u16, error: &str, description: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"error": error, "error_description": description}),
        "{}",
        r.text
    );
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn token_error_bodies() {
    // More requests than the default limit; the limit has its own tests.
    let s = TestServer::start_with(|c| c.oauth_rate_limit_per_minute = 100).await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let good = basic(&c.id, &c.secret);
    let bad_creds = "The provided credentials are not valid.";
    // 400 invalid_request: missing/garbled Basic, missing/garbled form.
    oauth_error(
        &s.token_request(None, "grant_type=client_credentials").await,
        400,
        "invalid_request",
        bad_creds,
    );
    oauth_error(
        &s.token_request(Some("Basic !!!"), "grant_type=client_credentials")
            .await,
        400,
        "invalid_request",
        bad_creds,
    );
    oauth_error(
        &s.token_request(Some("Bearer abc"), "grant_type=client_credentials")
            .await,
        400,
        "invalid_request",
        bad_creds,
    );
    // A malformed form: the description names what is wrong (not the credentials).
    oauth_error(
        &s.token_request(Some(&good), "").await,
        400,
        "invalid_request",
        "The grant_type parameter is missing.",
    );
    oauth_error(
        &s.token_request(Some(&good), "scope=").await,
        400,
        "invalid_request",
        "The grant_type parameter is missing.",
    );
    oauth_error(
        &s.token_request(
            Some(&good),
            "grant_type=client_credentials&grant_type=client_credentials",
        )
        .await,
        400,
        "invalid_request",
        "The grant_type parameter must appear once.",
    );
    oauth_error(
        &s.token_request(Some(&good), "grant_type=client_credentials&scope=a&scope=b")
            .await,
        400,
        "invalid_request",
        "A request parameter appears more than once.",
    );
    let json_body = s
        .raw(
            Method::POST,
            "/api/oauth/token",
            &[
                ("content-type", "application/json"),
                ("authorization", &good),
            ],
            Some(b"{}".to_vec()),
        )
        .await;
    oauth_error(
        &json_body,
        400,
        "invalid_request",
        "The request body must be application/x-www-form-urlencoded.",
    );
    // 400 unsupported_grant_type.
    for g in [
        "password",
        "refresh_token",
        "authorization_code",
        "CLIENT_CREDENTIALS",
    ] {
        oauth_error(
            &s.token_request(Some(&good), &format!("grant_type={g}"))
                .await,
            400,
            "unsupported_grant_type",
            "Invalid grant type.",
        );
    }
    // 400 invalid_grant: a scope we cannot grant.
    oauth_error(
        &s.token_request(Some(&good), "grant_type=client_credentials&scope=admin")
            .await,
        400,
        "invalid_grant",
        "Invalid grant.",
    );
    // 401 invalid_client: unknown client, wrong secret, malformed id; with a Basic challenge.
    for auth in [
        basic("mdb_sa_id_000000000000000000000000", &c.secret),
        basic(&c.id, "mdb_sa_sk_wrongwrongwrongwrongwrongwrongwrongwrong"),
        basic("not-a-client", "x"),
        basic(&c.id, ""),
    ] {
        let r = s
            .token_request(Some(&auth), "grant_type=client_credentials")
            .await;
        oauth_error(&r, 401, "invalid_client", "Invalid credentials provided.");
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="));
    }
    s.stop().await;
}

#[tokio::test]
async fn secret_expiry_is_enforced_by_the_clock() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await; // 24-hour secret
    s.clock
        .advance(chrono::Duration::hours(24) - chrono::Duration::seconds(1));
    s.token(&c).await;
    s.clock.advance(chrono::Duration::seconds(1));
    let r = s
        .token_request(
            Some(&basic(&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    oauth_error(&r, 401, "invalid_client", "Invalid credentials provided.");
    s.stop().await;
}

#[tokio::test]
async fn tokens_expire_after_an_hour() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let t = s.token(&c).await;
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    s.bearer(&t, Method::GET, &org, None).await.expect(200);
    s.clock.advance(chrono::Duration::minutes(59));
    s.bearer(&t, Method::GET, &org, None).await.expect(200);
    s.clock.advance(chrono::Duration::minutes(2)); // past exp + 30 s leeway
    s.bearer(&t, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn rate_limit_per_client_and_address() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let (other, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let wrong = basic(&c.id, "mdb_sa_sk_guessguessguessguessguessguessguessguess");
    // Brute force: 10 wrong guesses, then the limit answers, even for the right secret.
    for _ in 0..10 {
        s.token_request(Some(&wrong), "grant_type=client_credentials")
            .await
            .expect(401);
    }
    let r = s
        .token_request(
            Some(&basic(&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    r.expect_error(429, "RATE_LIMITED");
    assert_eq!(
        r.json,
        json!({"detail": "Resource /api/oauth/token is limited to 10 requests every 1 minutes.", "error": 429,
               "errorCode": "RATE_LIMITED", "parameters": ["/api/oauth/token", 10, 1], "reason": "Too Many Requests"})
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another client id from the same address has its own budget.
    s.token(&other).await;
    // The window moves with the clock: after the wait, one more request is allowed.
    s.clock.advance(chrono::Duration::seconds(retry as i64));
    s.token(&c).await;
    s.stop().await;
}

#[tokio::test]
async fn rate_limit_is_configurable_and_can_be_off() {
    let s = TestServer::start_with(|c| c.oauth_rate_limit_per_minute = 0).await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    for _ in 0..25 {
        s.token(&c).await;
    }
    s.stop().await;
    let s = TestServer::start_with(|c| c.oauth_rate_limit_per_minute = 3).await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    for _ in 0..3 {
        s.token(&c).await;
    }
    let r = s
        .token_request(
            Some(&basic(&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    r.expect_error(429, "RATE_LIMITED");
    assert_eq!(
        r.json["detail"],
        "Resource /api/oauth/token is limited to 3 requests every 1 minutes."
    );
    s.stop().await;
}

#[tokio::test]
async fn seed_000_revoke_then_refused_everywhere() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let t = s.token(&c).await;
    let paths = [
        format!("/api/atlas/v2/orgs/{}", s.org()),
        format!("/api/public/v1.0/orgs/{}", s.org()),
        s.sa_path(&format!("/{}", c.id)),
        format!("/api/public/v1.0/orgs/{}/serviceAccounts/{}", s.org(), c.id),
        "/api/atlas/v2/groups".to_owned(),
    ];
    for p in &paths {
        s.bearer(&t, Method::GET, p, None).await.expect(200);
    }
    let r = s.revoke(&c, &t).await;
    r.expect(200);
    assert!(r.text.is_empty());
    for p in &paths {
        s.bearer(&t, Method::GET, p, None)
            .await
            .expect_error(401, "UNAUTHORIZED");
    }
    // Revoking again, an expired token, garbage: still 200 (RFC 7009 §2.2).
    s.revoke(&c, &t).await.expect(200);
    s.revoke(&c, "not-a-token").await.expect(200);
    let t2 = s.token(&c).await;
    let t3 = s.token(&c).await;
    s.revoke(&c, &t3).await.expect(200);
    s.clock.advance(chrono::Duration::hours(2));
    s.revoke(&c, &t2).await.expect(200);
    // Revocations are recorded durably (expired tokens need no record).
    let count: i64 = {
        let snap = s.snapshot().await;
        snap.lines()
            .filter(|l| l.starts_with("revoked_tokens:"))
            .count() as i64
    };
    assert_eq!(count, 2);
    s.stop().await;
}

#[tokio::test]
async fn revoke_errors() {
    let s = TestServer::start().await;
    let (a, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let (b, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let ta = s.token(&a).await;
    // Another client's token is refused and stays valid.
    let r = s.revoke(&b, &ta).await;
    oauth_error(&r, 400, "invalid_grant", "Invalid grant.");
    s.bearer(
        &ta,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect(200);
    // Missing token, bad credentials, wrong content type.
    let form = |auth: &str, body: &str| {
        let auth = auth.to_owned();
        let body = body.to_owned();
        let s = &s;
        async move {
            s.raw(
                Method::POST,
                "/api/oauth/revoke",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &auth),
                ],
                Some(body.into_bytes()),
            )
            .await
        }
    };
    oauth_error(
        &form(&basic(&a.id, &a.secret), "token_type_hint=access_token").await,
        400,
        "invalid_request",
        "The token parameter is missing.",
    );
    oauth_error(
        &form(&basic(&a.id, &a.secret), "token=").await,
        400,
        "invalid_request",
        "The token parameter is missing.",
    );
    oauth_error(
        &form(&basic(&a.id, &a.secret), &format!("token={ta}&token={ta}")).await,
        400,
        "invalid_request",
        "The token parameter must appear once.",
    );
    oauth_error(
        &form(&basic(&a.id, "wrong"), &format!("token={ta}")).await,
        401,
        "invalid_client",
        "Invalid credentials provided.",
    );
    oauth_error(
        &form("Basic", &format!("token={ta}")).await,
        400,
        "invalid_request",
        "The provided credentials are not valid.",
    );
    s.bearer(
        &ta,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect(200);
    s.stop().await;
}

#[tokio::test]
async fn revoke_store_failure_is_unavailable() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let t = s.token(&c).await;
    s.running.state.store.close().await;
    let r = s.revoke(&c, &t).await;
    oauth_error(
        &r,
        503,
        "temporarily_unavailable",
        "The service cannot decide this now (its database is unreachable or this node is out of \
         date with it). Try again.",
    );
    // Fail closed: the token was not marked revoked, and nothing pretended it was.
    assert!(!s.running.state.registry.is_revoked("anything"));
}

#[tokio::test]
async fn introspection() {
    let s = TestServer::start().await;
    let (a, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let (b, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let ta = s.token(&a).await;
    let intro = |who: &Client, token: &str| {
        let auth = basic(&who.id, &who.secret);
        let body = format!("token={token}");
        let s = &s;
        async move {
            s.raw(
                Method::POST,
                "/api/oauth/introspect",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &auth),
                ],
                Some(body.into_bytes()),
            )
            .await
        }
    };
    let r = intro(&b, &ta).await;
    r.expect(200);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["client_id"], a.id);
    assert_eq!(r.json["token_type"], "Bearer");
    s.revoke(&a, &ta).await.expect(200);
    assert_eq!(intro(&b, &ta).await.json, json!({"active": false}));
    assert_eq!(intro(&b, "garbage").await.json, json!({"active": false}));
    let bad = Client {
        id: b.id.clone(),
        secret: "nope".into(),
    };
    intro(&bad, &ta).await.expect(401);
    s.stop().await;
}

#[tokio::test]
async fn roles_are_read_at_request_time() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let t = s.token(&c).await;
    let sa = s.sa_path(&format!("/{}", c.id));
    s.bearer(&t, Method::GET, &sa, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.v2024(
        &s.owner(),
        Method::PATCH,
        &sa,
        Some(json!({"roles": ["ORG_OWNER"]})),
    )
    .await
    .expect(200);
    // Same token, new role: at once.
    let r = s.bearer(&t, Method::GET, &sa, None).await;
    r.expect(200);
    // An owner token manages service accounts and projects.
    let r = s
        .bearer(&t, Method::POST, &s.sa_path(""), Some(json!({"name": "Made by token", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 8})))
        .await;
    r.expect(201);
    let r = s
        .bearer(
            &t,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": "by-token", "orgId": s.org()})),
        )
        .await;
    r.expect(200);
    s.v2024(
        &s.owner(),
        Method::PATCH,
        &sa,
        Some(json!({"roles": ["ORG_READ_ONLY"]})),
    )
    .await
    .expect(200);
    s.bearer(
        &t,
        Method::POST,
        "/api/atlas/v2/groups",
        Some(json!({"name": "by-token-2", "orgId": s.org()})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_secret_or_account_ends_its_tokens() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (c, created) = s.new_service_account(&["ORG_MEMBER"]).await;
    let first = created["secrets"][0]["id"].as_str().unwrap().to_owned();
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    let r = s
        .v2024(
            &o,
            Method::POST,
            &s.sa_path(&format!("/{}/secrets", c.id)),
            Some(json!({"secretExpiresAfterHours": 8})),
        )
        .await;
    let second = Client {
        id: c.id.clone(),
        secret: r.json["secret"].as_str().unwrap().to_owned(),
    };
    let t1 = s.token(&c).await;
    let t2 = s.token(&second).await;
    s.bearer(&t1, Method::GET, &org, None).await.expect(200);
    s.bearer(&t2, Method::GET, &org, None).await.expect(200);
    // Delete the first secret: its tokens end, the other secret's tokens live on.
    s.v2024(
        &o,
        Method::DELETE,
        &s.sa_path(&format!("/{}/secrets/{first}", c.id)),
        None,
    )
    .await
    .expect(204);
    s.bearer(&t1, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.bearer(&t2, Method::GET, &org, None).await.expect(200);
    s.token_request(
        Some(&basic(&c.id, &c.secret)),
        "grant_type=client_credentials",
    )
    .await
    .expect(401);
    // Delete the account: everything ends.
    s.v2024(&o, Method::DELETE, &s.sa_path(&format!("/{}", c.id)), None)
        .await
        .expect(204);
    s.bearer(&t2, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.token_request(
        Some(&basic(&second.id, &second.secret)),
        "grant_type=client_credentials",
    )
    .await
    .expect(401);
    s.stop().await;
}

#[tokio::test]
async fn last_used_at_is_kept_and_flushed() {
    let s = TestServer::start().await;
    let (c, created) = s.new_service_account(&["ORG_MEMBER"]).await;
    assert!(created["secrets"][0].get("lastUsedAt").is_none());
    s.clock.advance(chrono::Duration::minutes(5));
    s.token(&c).await;
    let p = s.sa_path(&format!("/{}", c.id));
    let g = s.v2024(&s.owner(), Method::GET, &p, None).await;
    assert_eq!(g.json["secrets"][0]["lastUsedAt"], "2026-01-01T00:05:00Z");
    // Flushed to the store in a batch; the value survives in the database.
    let st = &s.running.state;
    st.registry
        .flush(st.store.as_ref(), st.clock.now())
        .await
        .unwrap();
    let snap = s.snapshot().await;
    let row = snap.lines().find(|l| l.starts_with("sa_secrets:")).unwrap();
    let millis = crate::harness::t0().timestamp_millis() + 5 * 60 * 1000;
    assert!(row.ends_with(&format!("|{millis}")), "{row}");
    let g = s.v2024(&s.owner(), Method::GET, &p, None).await;
    assert_eq!(g.json["secrets"][0]["lastUsedAt"], "2026-01-01T00:05:00Z");
    s.stop().await;
}

#[tokio::test]
async fn access_list_enforced_for_tokens_and_calls() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let t = s.token(&c).await;
    let al = s.sa_path(&format!("/{}/accessList", c.id));
    // A list that does not include 127.0.0.1.
    s.v2024(
        &o,
        Method::POST,
        &al,
        Some(json!([{"cidrBlock": "203.0.113.0/24"}])),
    )
    .await
    .expect(200);
    let r = s
        .token_request(
            Some(&basic(&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    oauth_error(
        &r,
        403,
        "access_denied",
        "IP access list validation failed for the service account.",
    );
    let r = s.revoke(&c, &t).await;
    oauth_error(
        &r,
        403,
        "access_denied",
        "IP access list validation failed for the service account.",
    );
    let r = s
        .bearer(
            &t,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}", s.org()),
            None,
        )
        .await;
    r.expect_error(403, "IP_ADDRESS_NOT_ON_ACCESS_LIST");
    assert_eq!(
        r.json["detail"],
        "IP address 127.0.0.1 is not allowed to access this resource."
    );
    // Add loopback: allowed again, and usage is counted.
    s.v2024(
        &o,
        Method::POST,
        &al,
        Some(json!([{"ipAddress": "127.0.0.1"}])),
    )
    .await
    .expect(200);
    s.bearer(
        &t,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        None,
    )
    .await
    .expect(200);
    s.token(&c).await;
    let r = s.v2024(&o, Method::GET, &al, None).await;
    let lo = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ipAddress"] == "127.0.0.1")
        .unwrap()
        .clone();
    assert_eq!(lo["requestCount"], 2);
    assert_eq!(lo["lastUsedAddress"], "127.0.0.1");
    // Flushed: the counters now come from the account as the registry holds it (updated in
    // place, as the store was), and later uses add to them.
    let st = &s.running.state;
    st.registry
        .flush(st.store.as_ref(), st.clock.now())
        .await
        .unwrap();
    s.token(&c).await;
    let r = s.v2024(&o, Method::GET, &al, None).await;
    let lo = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ipAddress"] == "127.0.0.1")
        .unwrap()
        .clone();
    assert_eq!(lo["requestCount"], 3, "{lo}");
    st.registry
        .flush(st.store.as_ref(), st.clock.now())
        .await
        .unwrap();
    let r = s.v2024(&o, Method::GET, &al, None).await;
    assert!(r.text.contains("\"requestCount\":3"), "{}", r.text);
    // The account cannot remove the entry its own request comes through.
    let me = format!("{al}/127.0.0.1");
    s.bearer(&t, Method::DELETE, &me, None)
        .await
        .expect_error(400, "CANNOT_REMOVE_CALLER_ACCESS_LIST_ENTRY");
    s.v2024(&o, Method::DELETE, &me, None).await.expect(204);
    s.stop().await;
}

#[tokio::test]
async fn deleting_the_org_ends_its_service_accounts_at_once() {
    let s = TestServer::start().await;
    let o = s.owner();
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/atlas/v2/orgs",
            Some(json!({"name": "Doomed", "apiKey": {"desc": "k", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let org = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let key = crate::harness::Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    let r = s
        .v2024(
            &key,
            Method::POST,
            &format!("/api/atlas/v2/orgs/{org}/serviceAccounts"),
            Some(json!({"name": "n", "description": "d", "roles": ["ORG_OWNER"], "secretExpiresAfterHours": 8})),
        )
        .await;
    r.expect(201);
    let c = Client {
        id: r.json["clientId"].as_str().unwrap().into(),
        secret: r.json["secrets"][0]["secret"].as_str().unwrap().into(),
    };
    let t = s.token(&c).await;
    s.call(
        &key,
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{org}"),
        None,
    )
    .await
    .expect(204);
    s.bearer(
        &t,
        Method::GET,
        &format!("/api/atlas/v2/orgs/{org}/serviceAccounts"),
        None,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    s.token_request(
        Some(&basic(&c.id, &c.secret)),
        "grant_type=client_credentials",
    )
    .await
    .expect(401);
    s.stop().await;
}

/// A second organization with an `ORG_OWNER` service account in it.
async fn account_in_new_org(s: &TestServer) -> Client {
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            "/api/atlas/v2/orgs",
            Some(json!({"name": "Elsewhere", "apiKey": {"desc": "k", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let org = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let key = crate::harness::Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    let r = s
        .v2024(
            &key,
            Method::POST,
            &format!("/api/atlas/v2/orgs/{org}/serviceAccounts"),
            Some(json!({"name": "n", "description": "d", "roles": ["ORG_OWNER"], "secretExpiresAfterHours": 8})),
        )
        .await;
    r.expect(201);
    Client {
        id: r.json["clientId"].as_str().unwrap().into(),
        secret: r.json["secrets"][0]["secret"].as_str().unwrap().into(),
    }
}

async fn introspect(s: &TestServer, who: &Client, form: &str) -> crate::harness::Resp {
    s.raw(
        Method::POST,
        "/api/oauth/introspect",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic(&who.id, &who.secret)),
        ],
        Some(form.as_bytes().to_vec()),
    )
    .await
}

#[tokio::test]
async fn introspection_of_another_orgs_token_is_inactive() {
    let s = TestServer::start().await;
    let (mine, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let theirs = account_in_new_org(&s).await;
    let their_token = s.token(&theirs).await;
    let my_token = s.token(&mine).await;
    // The token is live (its own org sees it active) ...
    let r = introspect(&s, &theirs, &format!("token={their_token}")).await;
    r.expect(200);
    assert_eq!(r.json["active"], true, "{}", r.text);
    // ... but another org's client learns nothing about it, in either direction.
    let r = introspect(&s, &mine, &format!("token={their_token}")).await;
    r.expect(200);
    assert_eq!(r.json, json!({"active": false}));
    let r = introspect(&s, &theirs, &format!("token={my_token}")).await;
    assert_eq!(r.json, json!({"active": false}));
    // Malformed forms name their problem here too.
    oauth_error(
        &introspect(&s, &mine, "").await,
        400,
        "invalid_request",
        "The token parameter is missing.",
    );
    oauth_error(
        &introspect(&s, &mine, &format!("token={my_token}&token={my_token}")).await,
        400,
        "invalid_request",
        "The token parameter must appear once.",
    );
    s.stop().await;
}

#[tokio::test]
async fn revoke_is_rate_limited() {
    let s = TestServer::start_with(|c| c.oauth_rate_limit_per_minute = 4).await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let (other, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let t = s.token(&c).await;
    let wrong = basic(&c.id, "mdb_sa_sk_guessguessguessguessguessguessguessguess");
    let revoke_as = |auth: String| {
        let s = &s;
        let form = format!("token={t}");
        async move {
            s.raw(
                Method::POST,
                "/api/oauth/revoke",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &auth),
                ],
                Some(form.into_bytes()),
            )
            .await
        }
    };
    // Guessing secrets through revocation is limited like the token endpoint.
    for _ in 0..4 {
        revoke_as(wrong.clone()).await.expect(401);
    }
    let r = s.revoke(&c, &t).await;
    r.expect_error(429, "RATE_LIMITED");
    assert_eq!(
        r.json,
        json!({"detail": "Resource /api/oauth/revoke is limited to 4 requests every 1 minutes.", "error": 429,
               "errorCode": "RATE_LIMITED", "parameters": ["/api/oauth/revoke", 4, 1], "reason": "Too Many Requests"})
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The refused revocation did nothing: the token still works.
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    s.bearer(&t, Method::GET, &org, None).await.expect(200);
    // The revoke budget is its own: the token endpoint still answers this client.
    s.token(&c).await;
    // Another client from the same address has its own budget.
    let to = s.token(&other).await;
    s.revoke(&other, &to).await.expect(200);
    // After the wait, the revocation goes through.
    s.clock.advance(chrono::Duration::seconds(retry as i64));
    s.revoke(&c, &t).await.expect(200);
    s.bearer(&t, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn a_token_ends_when_its_secret_expires() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await; // 24-hour secret
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    // Minted ten minutes before the secret expires: the token's own hour reaches past it.
    s.clock
        .advance(chrono::Duration::hours(24) - chrono::Duration::minutes(10));
    let t = s.token(&c).await;
    s.bearer(&t, Method::GET, &org, None).await.expect(200);
    assert_eq!(
        introspect(&s, &c, &format!("token={t}")).await.json["active"],
        true
    );
    s.clock
        .advance(chrono::Duration::minutes(10) - chrono::Duration::seconds(1));
    s.bearer(&t, Method::GET, &org, None).await.expect(200);
    // From the instant the secret expires, the token is refused and reported inactive.
    s.clock.advance(chrono::Duration::seconds(1));
    s.bearer(&t, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    let (other, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    assert_eq!(
        introspect(&s, &other, &format!("token={t}")).await.json,
        json!({"active": false})
    );
    // Fifty minutes later (the token's own exp is still ahead): still refused.
    s.clock.advance(chrono::Duration::minutes(49));
    s.bearer(&t, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}
