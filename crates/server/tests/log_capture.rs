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
