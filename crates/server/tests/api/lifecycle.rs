//! Bootstrap, key files, restarts and shutdown.

use reqwest::Method;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tessera::bootstrap::{self, BootstrapError};
use tessera::server;
use tessera_domain::ManualClock;

use crate::harness::{config_in, t0, TestServer};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn bootstrap_files_are_private_and_once_only() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("bootstrap.json")), 0o600);
    assert_eq!(mode(&data.join("server-keys.json")), 0o600);
    if !crate::harness::skipped_on_postgres(
        "bootstrap_files_are_private_and_once_only: the tessera.db mode check",
        "there is no SQLite file; the rest of the test runs",
    ) {
        assert_eq!(mode(&data.join("tessera.db")), 0o600);
    }
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("bootstrap.json")).unwrap()).unwrap();
    assert_eq!(written["orgId"], s.org());
    assert_eq!(written["privateKey"], s.boot.private_key);
    // The debug form of the bootstrap output never shows the private key.
    assert!(!format!("{:?}", s.boot).contains(&s.boot.private_key));

    let before = s.snapshot().await;
    let again = bootstrap::run(&s.running.state, &data, "Other", "Other").await;
    assert!(
        matches!(again, Err(BootstrapError::AlreadyDone)),
        "{again:?}"
    );
    // Even without the file, the store's marker refuses a second bootstrap.
    std::fs::rename(data.join("bootstrap.json"), data.join("moved.json")).unwrap();
    let again = bootstrap::run(&s.running.state, &data, "Other", "Other").await;
    assert!(
        matches!(again, Err(BootstrapError::AlreadyDone)),
        "{again:?}"
    );
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn restart_keeps_data_and_does_not_bootstrap_again() {
    let s = TestServer::start().await;
    s.call(
        &s.owner(),
        Method::POST,
        "/api/atlas/v2/groups",
        Some(serde_json::json!({"name": "kept", "orgId": s.org()})),
    )
    .await
    .expect(200);
    let owner = s.owner();
    let org = s.org().to_owned();
    let dir = s.stop_keep_dir().await;
    let config = config_in(dir.path());
    let prepared = server::prepare(config, Arc::new(ManualClock::new(t0())))
        .await
        .unwrap();
    let running = server::start(prepared, None, std::future::pending(), |_| {})
        .await
        .unwrap();
    assert!(running.bootstrap.is_none());
    let group = running
        .state
        .store
        .get_group_by_name(tessera_domain::OrgId::parse(&org).unwrap(), "kept")
        .await
        .unwrap();
    assert!(group.is_some());
    // The old key still authenticates (server keys were reused).
    let key = running
        .state
        .store
        .get_api_key_by_public_key(&owner.public)
        .await
        .unwrap();
    assert!(key.is_some());
    running.task.abort();
}

#[tokio::test]
async fn world_readable_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    std::fs::create_dir(&config.data_dir).unwrap();
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = server::prepare(config.clone(), Arc::new(ManualClock::new(t0())))
        .await
        .err()
        .expect("must refuse");
    assert!(
        err.to_string().contains("accessible by other users"),
        "{err}"
    );
    assert!(!config.data_dir.join("server-keys.json").exists());
}

#[tokio::test]
async fn graceful_shutdown_completes() {
    let s = TestServer::start().await;
    s.raw(Method::GET, "/healthz", &[], None).await.expect(200);
    // stop() sends the signal and waits for the serve task to finish cleanly.
    s.stop().await;
}

#[tokio::test]
async fn signing_key_rotation_keeps_old_tokens_valid() {
    use crate::harness::basic;
    // The issuer must stay the same across restarts (on port 0 the default would not).
    let issuer = "http://tessera.test";
    let s = TestServer::start_with(|c| c.public_url = Some(issuer.into())).await;
    let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let old_token = s.token(&c).await;
    let old_kid = s
        .raw(Method::GET, "/.well-known/jwks.json", &[], None)
        .await
        .json["keys"][0]["kid"]
        .clone();
    let dir = s.stop_keep_dir().await;
    let new_kid =
        tessera::keys::ServerKeys::rotate_signing_key(&dir.path().join("data"), t0()).unwrap();
    assert_eq!(mode(&dir.path().join("data/server-keys.json")), 0o600);

    let mut config = config_in(dir.path());
    config.public_url = Some(issuer.into());
    let clock = Arc::new(ManualClock::new(t0()));
    let prepared = server::prepare(config, clock.clone()).await.unwrap();
    let running = server::start(prepared, None, std::future::pending(), |_| {})
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    // The new key signs only once every node holds it (the activation delay).
    clock.advance(tessera::keys::SIGNING_KEY_ACTIVATION);
    let http = reqwest::Client::new();
    let jwks: serde_json::Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&serde_json::Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(kids, [&old_kid, &serde_json::json!(new_kid)]);
    // New tokens carry the new kid...
    let t: serde_json::Value = http
        .post(format!("{base}/api/oauth/token"))
        .header("authorization", basic(&c.id, &c.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_token = t["access_token"].as_str().unwrap();
    use base64::Engine;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(new_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], serde_json::json!(new_kid));
    // ...and tokens signed with the old key are still accepted.
    for token in [old_token.as_str(), new_token] {
        let r = http
            .get(format!("{base}/api/public/v1.0/orgs"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    running.task.abort();
}
