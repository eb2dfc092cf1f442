//! No secret, private key or token value may reach the logs.
//!
//! Its own test binary, with this one test: `tracing` caches per-callsite interest
//! process-wide, so a thread-local subscriber in a binary where other tests log concurrently
//! can miss events (tokio-rs/tracing#3611). Alone, the capture is complete.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "api/harness.rs"]
mod harness;

use harness::{basic, TestServer};
use reqwest::Method;
use serde_json::json;

#[test]
fn secrets_never_reach_the_logs() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A current-thread runtime: the server's tasks run on this thread, under this subscriber.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sensitive: Vec<String> = Vec::new();
    let mut failed_request_id = String::new();
    rt.block_on(async {
        let s = TestServer::start().await;
        sensitive.push(s.owner().private.clone());
        let (c, _) = s.new_service_account(&["ORG_OWNER"]).await;
        sensitive.push(c.secret.clone());
        let (_, key_id) = s.new_org_key(&["ORG_MEMBER"]).await;
        let _ = key_id;
        let t = s.token(&c).await;
        sensitive.push(t.clone());
        s.bearer(&t, Method::GET, &s.sa_path(&format!("/{}", c.id)), None)
            .await
            .expect(200);
        // Failures log too: wrong secret, bad token, revocation, another client's token.
        s.token_request(
            Some(&basic(
                &c.id,
                "mdb_sa_sk_wrongwrongwrongwrongwrongwrongwrongwrong",
            )),
            "grant_type=client_credentials",
        )
        .await
        .expect(401);
        s.bearer(&format!("{t}x"), Method::GET, "/api/atlas/v2/groups", None)
            .await
            .expect(401);
        let r = s
            .v2024(
                &s.owner(),
                Method::POST,
                &s.sa_path(&format!("/{}/secrets", c.id)),
                Some(json!({"secretExpiresAfterHours": 8})),
            )
            .await;
        sensitive.push(r.json["secret"].as_str().unwrap().to_owned());
        s.revoke(&c, &t).await.expect(200);
        // Swapped credentials, a common mistake: the secret sits where the id belongs.
        s.token_request(
            Some(&basic(&c.secret, &c.id)),
            "grant_type=client_credentials",
        )
        .await
        .expect(401);
        let swapped = harness::Key {
            public: s.owner().private,
            private: s.owner().public,
        };
        s.call(&swapped, Method::GET, "/api/atlas/v2/orgs", None)
            .await
            .expect(401);
        // A support operator: created, used, refused with a wrong secret and swapped.
        let st = &s.running.state;
        let op = tessera::operators::create(
            st.store.as_ref(),
            &st.crypto.hasher,
            "console",
            st.clock.now(),
        )
        .await
        .unwrap();
        let (op_id, op_secret) = (
            op["id"].as_str().unwrap().to_owned(),
            op["secret"].as_str().unwrap().to_owned(),
        );
        sensitive.push(op_secret.clone());
        for auth in [
            basic(&op_id, &op_secret),
            basic(&op_id, "tss_op_sk_wrong"),
            basic(&op_secret, &op_id),
        ] {
            let body = json!({"staffMember": "alice", "groupId": s.project(),
                "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"});
            s.raw(
                Method::POST,
                "/api/tessera/v1/support/decisions",
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        }
        // The console: a password typed into the name field, a wrong password, then the
        // owner's sign-in with TOTP enrolment and a service account made there.
        for v in console_flow(&s).await {
            sensitive.push(v);
        }
        // A 503 for an unreachable store carries no detail, but its request id leads to the
        // detail in the log.
        s.running.state.store.close().await;
        let r = s
            .call(&s.owner(), Method::GET, "/api/atlas/v2/groups", None)
            .await;
        r.expect_error(503, "SERVICE_UNAVAILABLE");
        assert!(!r.text.contains("closed"), "{}", r.text);
        failed_request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        s.stop().await;
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();

    assert!(logs.contains("token issued"), "the capture works: {logs}");
    assert!(logs.contains("token revoked"));
    assert!(
        logs.contains("oauth: malformed client id"),
        "the swapped request was logged: {}",
        logs.lines()
            .skip_while(|l| !l.contains("token revoked"))
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(logs.contains("digest: malformed public key"));
    assert!(logs.contains("support decision: operator authentication failed"));
    let error_line = logs
        .lines()
        .find(|l| l.contains("store unavailable"))
        .expect("the 503 was logged");
    assert!(error_line.contains(&failed_request_id), "{error_line}");
    assert!(error_line.contains("pool"), "{error_line}");
    for secret in &sensitive {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        // Not even the signature part of a token.
        if let Some(sig) = secret.rsplit('.').next().filter(|_| secret.contains('.')) {
            assert!(!logs.contains(sig));
        }
    }
}

/// Signs in to the console as the first owner (enrolling TOTP), after two failures, and makes
/// a service account there; the values that must never be logged.
async fn console_flow(s: &TestServer) -> Vec<String> {
    use std::collections::BTreeMap;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let csrf = |body: &str| {
        let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
        re.captures(body)
            .map(|c| c[1].to_owned())
            .unwrap_or_default()
    };
    async fn send(
        http: &reqwest::Client,
        base: &str,
        jar: &mut BTreeMap<String, String>,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> (u16, String, String) {
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form {
            Some(f) => http.post(format!("{base}{path}")).form(f),
            None => http.get(format!("{base}{path}")),
        };
        let res = req.header("cookie", cookie).send().await.unwrap();
        for v in res.headers().get_all("set-cookie") {
            let kv = v.to_str().unwrap().split(';').next().unwrap().to_owned();
            let (k, val) = kv.split_once('=').unwrap();
            jar.insert(k.to_owned(), val.to_owned());
        }
        let loc = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (res.status().as_u16(), loc, res.text().await.unwrap())
    }
    let base = s.base.clone();
    let (owner, pass) = (s.boot.owner_username.clone(), s.boot.owner_password.clone());
    let typed = "correct horse battery staple typed as a name";
    let (_, _, login) = send(&http, &base, &mut jar, "/login", None).await;
    let token = csrf(&login);
    for (name, password) in [(typed, "x"), (owner.as_str(), "a wrong password 12345")] {
        let (status, _, _) = send(
            &http,
            &base,
            &mut jar,
            "/login",
            Some(&[("csrf", &token), ("username", name), ("password", password)]),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = send(
        &http,
        &base,
        &mut jar,
        "/login",
        Some(&[("csrf", &token), ("username", &owner), ("password", &pass)]),
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, page) = send(&http, &base, &mut jar, "/login/totp", None).await;
    let re = regex::Regex::new(r#"id="totp-secret">([A-Z2-7]+)<"#).unwrap();
    let secret_b32 = re.captures(&page).unwrap()[1].to_owned();
    let bytes = totp_rs::Secret::Encoded(secret_b32.clone())
        .to_bytes()
        .unwrap();
    let now = tessera_domain::Clock::now(s.clock.as_ref()).timestamp() as u64;
    let code = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes)
        .unwrap()
        .generate(now);
    let (status, _, _) = send(
        &http,
        &base,
        &mut jar,
        "/login/totp",
        Some(&[("csrf", &csrf(&page)), ("code", &code)]),
    )
    .await;
    assert_eq!(status, 303);
    let session = jar["__Host-tessera-session"].clone();
    let accounts = format!("/orgs/{}/serviceAccounts", s.org());
    let (_, _, page) = send(&http, &base, &mut jar, &accounts, None).await;
    let (status, to, _) = send(
        &http,
        &base,
        &mut jar,
        &accounts,
        Some(&[
            ("csrf", &csrf(&page)),
            ("name", "logged"),
            ("description", "d"),
            ("role", "ORG_MEMBER"),
            ("hours", "24"),
        ]),
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, shown) = send(&http, &base, &mut jar, &to, None).await;
    let re = regex::Regex::new(r#"id="new-secret">(mdb_sa_sk_[^<]+)<"#).unwrap();
    let sa_secret = re.captures(&shown).unwrap()[1].to_owned();
    // (The six-digit code is not listed: six digits may stand in a log by chance.)
    let _ = code;
    vec![
        pass,
        typed.to_owned(),
        "a wrong password 12345".to_owned(),
        secret_b32,
        session,
        sa_secret,
    ]
}
