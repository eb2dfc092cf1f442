//! HTTPS in the server: the development CA mode, certificate files, reload, and the API over
//! TLS with a client that trusts only the generated CA.

use reqwest::Method;
use std::path::Path;
use tessera::tls;

use crate::harness::TestServer;

fn client_trusting(ca_pem: &Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_pem).unwrap()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn self_signed_mode_serves_the_api_over_https_to_a_client_trusting_its_ca() {
    let mut s = TestServer::start_with(|c| c.tls_self_signed = true).await;
    let ca = s.running.tls_ca.clone().expect("the CA path is reported");
    assert_eq!(ca, s.dir.path().join("data").join(tls::DEV_CA_FILE));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(s.dir.path().join("data").join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(tls::DEV_CA_FILE), 0o644);
        assert_eq!(mode(tls::DEV_CERT_FILE), 0o600);
        assert_eq!(mode(tls::DEV_KEY_FILE), 0o600);
    }
    // Plain HTTP to the TLS port gets no API answer.
    let plain = format!("http://{}/healthz", s.running.addr);
    assert!(
        !s.http
            .get(&plain)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        "plain HTTP answered on the TLS port"
    );
    s.base = format!("https://{}", s.running.addr);
    s.http = client_trusting(&ca);
    // Both names in the certificate.
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/healthz", s.running.addr.port());
        let r = s.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The issuer (and every link) defaults to https.
    let meta = s
        .raw(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            &[],
            None,
        )
        .await;
    meta.expect(200);
    assert_eq!(meta.json["issuer"], s.base.as_str());
    // Digest, service-account creation, a token and a Bearer call, all over TLS.
    let (client, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let token = s.token(&client).await;
    let r = s
        .raw(
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}", s.org()),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("accept", "application/vnd.atlas.2023-01-01+json"),
            ],
            None,
        )
        .await;
    r.expect(200);
    let dir = s.stop_keep_dir().await;
    // A second start reuses the same CA.
    let before = std::fs::read(&ca).unwrap();
    let mut config = crate::harness::config_in(dir.path());
    config.tls_self_signed = true;
    let again = tls::ensure_dev_certificates(&config.data_dir, config.listen).unwrap();
    assert_eq!(std::fs::read(again.ca).unwrap(), before);
}

/// Makes a CA and a server certificate in a fresh directory; returns (dir, certs).
fn make_certs() -> (tempfile::TempDir, tls::DevCertificates) {
    let d = tempfile::tempdir().unwrap();
    let c = tls::ensure_dev_certificates(d.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
    (d, c)
}

async fn healthz_ok(client: &reqwest::Client, addr: std::net::SocketAddr) -> bool {
    client
        .get(format!("https://127.0.0.1:{}/healthz", addr.port()))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn certificate_files_are_served_and_reloaded_and_a_bad_file_keeps_the_old_one() {
    let (_a_dir, a) = make_certs();
    let (_b_dir, b) = make_certs();
    let files = tempfile::tempdir().unwrap();
    let cert = files.path().join("cert.pem");
    let key = files.path().join("key.pem");
    std::fs::copy(&a.cert, &cert).unwrap();
    std::fs::copy(&a.key, &key).unwrap();
    let (c2, k2) = (cert.clone(), key.clone());
    let s = TestServer::start_with(move |c| {
        c.tls_cert = Some(c2);
        c.tls_key = Some(k2);
    })
    .await;
    let tls_state = s.running.tls.clone().expect("serving TLS");
    let trusts_a = client_trusting(&a.ca);
    let trusts_b = client_trusting(&b.ca);
    assert!(healthz_ok(&trusts_a, s.running.addr).await);
    assert!(!healthz_ok(&trusts_b, s.running.addr).await);

    // New files, reload: new connections get the new certificate.
    std::fs::copy(&b.cert, &cert).unwrap();
    std::fs::copy(&b.key, &key).unwrap();
    tls_state.reload().unwrap();
    let fresh_a = client_trusting(&a.ca);
    assert!(healthz_ok(&trusts_b, s.running.addr).await);
    assert!(!healthz_ok(&fresh_a, s.running.addr).await);

    // A broken key: the reload fails and the previous certificate stays in service.
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = tls_state.reload().unwrap_err().to_string();
    assert!(e.contains("key.pem"), "{e}");
    let fresh_b = client_trusting(&b.ca);
    assert!(healthz_ok(&fresh_b, s.running.addr).await);
    // A key that does not match the certificate is refused as well.
    std::fs::copy(&a.key, &key).unwrap();
    assert!(tls_state.reload().is_err());
    assert!(healthz_ok(&client_trusting(&b.ca), s.running.addr).await);
    s.stop().await;
}
