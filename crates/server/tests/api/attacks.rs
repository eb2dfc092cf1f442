//! Attacks on Bearer authentication and the token endpoint. Each must fail to get in.

use base64::Engine;
use reqwest::Method;
use serde_json::json;
use tessera_protocols::jwt::{Claims, JwtSigner};

use crate::harness::{basic, TestServer};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// The server's own signing key, read from its key file, to forge tokens with bad claims.
fn server_signer(s: &TestServer) -> JwtSigner {
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.dir.path().join("data/server-keys.json")).unwrap())
            .unwrap();
    let k = &keys["signing_keys"][0];
    JwtSigner::from_pkcs8(
        k["kid"].as_str().unwrap(),
        &hex::decode(k["pkcs8"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_and_tampered_tokens_are_refused() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let good = s.token(&c).await;
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    s.bearer(&good, Method::GET, &org, None).await.expect(200);
    let parts: Vec<&str> = good.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
    let claims: Claims = serde_json::from_slice(&decode(parts[1])).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let jwks = s
        .raw(Method::GET, "/.well-known/jwks.json", &[], None)
        .await;
    let jwk = &jwks.json["keys"][0];
    let mut public = vec![4u8];
    public.extend(decode(jwk["x"].as_str().unwrap()));
    public.extend(decode(jwk["y"].as_str().unwrap()));

    let mut forged: Vec<(&str, String)> = Vec::new();
    // alg: none.
    let none_header = b64(json!({"alg": "none", "typ": "JWT", "kid": kid})
        .to_string()
        .as_bytes());
    forged.push(("alg none", format!("{none_header}.{}.", parts[1])));
    // HS256 signed with the public key as the HMAC secret.
    let hs_header = b64(json!({"alg": "HS256", "typ": "JWT", "kid": kid})
        .to_string()
        .as_bytes());
    let signing_input = format!("{hs_header}.{}", parts[1]);
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
        signing_input.as_bytes(),
    );
    forged.push((
        "HS256 with public key",
        format!("{signing_input}.{}", b64(mac.as_ref())),
    ));
    // Tampered payload (escalate to another account) with the original signature.
    let mut other = claims.clone();
    other.sub = "mdb_sa_id_000000000000000000000000".into();
    forged.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&other).unwrap()),
            parts[2]
        ),
    ));
    // Tampered signature.
    let mut sig = decode(parts[2]);
    sig[10] ^= 0x01;
    forged.push((
        "tampered signature",
        format!("{}.{}.{}", parts[0], parts[1], b64(&sig)),
    ));
    // Signed by a key the server does not know, under the server's kid.
    let foreign =
        JwtSigner::from_pkcs8(kid, &tessera_protocols::jwt::generate_pkcs8().unwrap()).unwrap();
    forged.push(("foreign key", foreign.sign(&claims).unwrap()));
    // Signed with the server's real key but wrong issuer / audience.
    let real = server_signer(&s);
    let mut wrong_iss = claims.clone();
    wrong_iss.iss = "https://evil.example".into();
    forged.push(("wrong iss", real.sign(&wrong_iss).unwrap()));
    let mut wrong_aud = claims.clone();
    wrong_aud.aud = "api://other".into();
    forged.push(("wrong aud", real.sign(&wrong_aud).unwrap()));
    // Expired (with the real key).
    let mut expired = claims.clone();
    expired.iat -= 7200;
    expired.exp -= 7200;
    forged.push(("expired", real.sign(&expired).unwrap()));
    // Valid signature, but naming a secret that never existed.
    let mut ghost_secret = claims.clone();
    ghost_secret.secret_id = "aaaaaaaaaaaaaaaaaaaaaaaa".into();
    forged.push(("unknown secret", real.sign(&ghost_secret).unwrap()));
    forged.push(("garbage", "abc.def.ghi".into()));
    forged.push(("empty", String::new()));

    for (what, token) in &forged {
        let r = s.bearer(token, Method::GET, &org, None).await;
        assert_eq!(r.status.as_u16(), 401, "{what} got in: {}", r.text);
        assert_eq!(r.error_code(), "UNAUTHORIZED", "{what}");
    }
    // The genuine token still works after all that.
    s.bearer(&good, Method::GET, &org, None).await.expect(200);
    s.stop().await;
}

#[tokio::test]
async fn revoked_deleted_and_cross_account_credentials_are_refused() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (a, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let (b, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    // Another account's secret does not authenticate this account.
    let r = s
        .token_request(
            Some(&basic(&a.id, &b.secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status.as_u16(), 401);
    // Revoked.
    let t = s.token(&a).await;
    s.revoke(&a, &t).await.expect(200);
    s.bearer(&t, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    // Deleted account.
    let tb = s.token(&b).await;
    s.v2024(&o, Method::DELETE, &s.sa_path(&format!("/{}", b.id)), None)
        .await
        .expect(204);
    s.bearer(&tb, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

/// A token the server's own key signed, with claims as given (no `Claims` type limits).
fn sign_with_server_key(s: &TestServer, claims: &serde_json::Value) -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.dir.path().join("data/server-keys.json")).unwrap())
            .unwrap();
    let k = &keys["signing_keys"][0];
    let rng = ring::rand::SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &hex::decode(k["pkcs8"].as_str().unwrap()).unwrap(),
        &rng,
    )
    .unwrap();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": k["kid"]});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = pair.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig.as_ref()))
}

#[tokio::test]
async fn a_token_not_valid_before_a_future_time_is_refused() {
    let s = TestServer::start().await;
    let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let good = s.token(&c).await;
    let org = format!("/api/atlas/v2/orgs/{}", s.org());
    let claims: serde_json::Value =
        serde_json::from_slice(&decode(good.split('.').nth(1).unwrap())).unwrap();
    let now = claims["iat"].as_i64().unwrap();
    let with_nbf = |nbf: i64| {
        let mut c = claims.clone();
        c["jti"] = json!(format!("nbf-{nbf}"));
        c["nbf"] = json!(nbf);
        sign_with_server_key(&s, &c)
    };
    // Control: the same claims re-signed, with nbf now, get in (so the refusals below are
    // about nbf alone).
    s.bearer(&with_nbf(now), Method::GET, &org, None)
        .await
        .expect(200);
    // nbf an hour ahead (what the probe sent) and just past the 30 s leeway: refused.
    for nbf in [now + 3600, now + 31] {
        let r = s.bearer(&with_nbf(nbf), Method::GET, &org, None).await;
        assert_eq!(r.status.as_u16(), 401, "nbf {nbf} got in: {}", r.text);
        assert_eq!(r.error_code(), "UNAUTHORIZED");
    }
    // Once the clock reaches it, the same token is accepted.
    let later = with_nbf(now + 3000);
    s.bearer(&later, Method::GET, &org, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.clock.advance(chrono::Duration::seconds(3000));
    s.bearer(&later, Method::GET, &org, None).await.expect(200);
    s.stop().await;
}
