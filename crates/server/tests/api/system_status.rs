//! `GET /api/atlas/v2` (the Go SDK's `GetSystemStatus`) and its v1.0 twin (issue 7 item 5).

use reqwest::Method;
use serde_json::json;

use crate::harness::TestServer;

const V2: &str = "/api/atlas/v2";

#[tokio::test]
async fn an_api_key_sees_its_own_status() {
    let s = TestServer::start().await;
    let owner = s.owner();
    let (k, kid) = s.new_org_key(&["ORG_MEMBER"]).await;
    s.call(
        &owner,
        Method::POST,
        &format!("{V2}/orgs/{}/apiKeys/{kid}/accessList", s.org()),
        Some(json!([{"ipAddress": "127.0.0.1"}, {"cidrBlock": "192.0.2.0/24"}])),
    )
    .await
    .expect(200);
    s.call(
        &owner,
        Method::POST,
        &format!("{V2}/groups/{}/apiKeys/{kid}", s.project()),
        Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
    )
    .await
    .expect(204);

    let r = s.call(&k, Method::GET, V2, None).await;
    r.expect(200);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    assert_eq!(r.json["appName"], "Tessera");
    assert_eq!(r.json["build"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.json["ipAddress"], "127.0.0.1");
    assert_eq!(r.json["throttling"], false);
    assert_eq!(r.json["links"][0]["href"], format!("{}{V2}", s.base));
    let key = &r.json["apiKey"];
    assert_eq!(key["id"], kid.as_str());
    assert_eq!(key["publicKey"], k.public.as_str());
    assert_eq!(
        key["roles"],
        json!([
            {"orgId": s.org(), "roleName": "ORG_MEMBER"},
            {"groupId": s.project(), "roleName": "GROUP_READ_ONLY"}
        ])
    );
    assert_eq!(
        key["accessList"],
        json!([
            {"cidrBlock": "127.0.0.1/32", "ipAddress": "127.0.0.1"},
            {"cidrBlock": "192.0.2.0/24", "ipAddress": "192.0.2.0"}
        ])
    );
    assert!(!r.text.contains(&k.private), "never the private key");

    // The Cloud Manager surface serves the same document as application/json.
    let r1 = s.call(&k, Method::GET, "/api/public/v1.0", None).await;
    r1.expect(200);
    assert_eq!(r1.headers["content-type"], "application/json");
    assert_eq!(r1.json["apiKey"], r.json["apiKey"]);
    s.stop().await;
}

#[tokio::test]
async fn unauthenticated_and_unversioned_requests_are_refused() {
    let s = TestServer::start().await;
    let r = s
        .raw(
            Method::GET,
            V2,
            &[("accept", "application/vnd.atlas.2023-01-01+json")],
            None,
        )
        .await;
    r.expect_error(401, "UNAUTHORIZED");
    let challenges: Vec<_> = r.headers.get_all("www-authenticate").iter().collect();
    assert_eq!(challenges.len(), 2, "SHA-256 and MD5 challenges");
    assert!(challenges.iter().all(|c| c
        .to_str()
        .unwrap()
        .starts_with("Digest realm=\"MMS Public API\"")));
    // v2 content negotiation: no vnd.atlas type is a 406.
    let r = s
        .call_with(
            &s.owner(),
            Method::GET,
            V2,
            None,
            &[("accept", "application/json")],
            Default::default(),
        )
        .await;
    r.expect(406);
    // Only GET.
    s.call(&s.owner(), Method::POST, V2, Some(json!({})))
        .await
        .expect(405);
    s.stop().await;
}

#[tokio::test]
async fn a_service_account_gets_the_status_without_an_api_key() {
    let s = TestServer::start().await;
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let token = s.token(&client).await;
    let r = s.bearer(&token, Method::GET, V2, None).await;
    r.expect(200);
    assert_eq!(r.json["appName"], "Tessera");
    assert_eq!(r.json["ipAddress"], "127.0.0.1");
    assert!(r.json.get("apiKey").is_none(), "{}", r.text);
    assert!(!r.text.contains(&token));
    s.stop().await;
}

/// The real `curl --digest`, as a person checks credentials (skipped without curl).
#[tokio::test]
async fn curl_digest_checks_credentials() {
    let Ok(curl) = which_curl() else {
        eprintln!("curl not installed; skipped");
        return;
    };
    let s = TestServer::start().await;
    let o = s.owner();
    let url = format!("{}{V2}", s.base);
    let run = |user: String, url: String| {
        let curl = curl.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(curl)
                .args([
                    "--silent",
                    "--noproxy",
                    "*",
                    "--digest",
                    "--user",
                    &user,
                    "--header",
                    "Accept: application/vnd.atlas.2023-01-01+json",
                    "--write-out",
                    "\n%{http_code}",
                    &url,
                ])
                .output()
                .unwrap()
        })
    };
    let out = run(format!("{}:{}", o.public, o.private), url.clone())
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "{text}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["apiKey"]["publicKey"], o.public.as_str());
    // A wrong private key: curl gets the 401 after answering the challenge.
    let out = run(
        format!("{}:00000000-0000-4000-8000-000000000000", o.public),
        url,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with("\n401"), "{text}");
    s.stop().await;
}

fn which_curl() -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("curl"))
                .find(|c| c.is_file())
        })
        .ok_or(())
}
