//! Nodes that share one database and one master key (`--master-key-file`) share the server
//! keys through the database: a token minted on one node is accepted by the other, and so is a
//! Digest nonce. Here both nodes are in-process servers on one SQLite file; the same holds for
//! any store (the keys are a sealed `meta` value).

use reqwest::Method;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera::config::Config;
use tessera::server::{self, Running};
use tessera_domain::ManualClock;
use tessera_protocols::digest::DigestAlgorithm;
use tokio::sync::oneshot;

use crate::harness::{config_in, digest_authorization, metrics_handle, t0, TestServer};

fn master_file(dir: &Path, name: &str, hex: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A second node: its own data directory, the first node's database and master key.
async fn second_node(config: Config) -> (Running, oneshot::Sender<()>, String) {
    let clock = Arc::new(ManualClock::new(t0()));
    let prepared = server::prepare(config, clock).await.unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let running = server::start(
        prepared,
        metrics_handle(),
        async {
            let _ = rx.await;
        },
        |_| {},
    )
    .await
    .unwrap();
    assert!(
        running.bootstrap.is_none(),
        "the shared database is bootstrapped once"
    );
    let base = format!("http://{}", running.addr);
    (running, tx, base)
}

#[tokio::test]
async fn two_nodes_on_one_database_share_the_server_keys() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", shared.path().join("shared.db").display());
    let master = master_file(shared.path(), "master.key", &"3c".repeat(32), 0o600);
    // Behind one load balancer every node has the same public URL: it is the tokens' issuer.
    let public = "https://tessera.example".to_owned();
    let a = TestServer::start_with(|c| {
        c.database_url = Some(url.clone());
        c.master_key_file = Some(master.clone());
        c.public_url = Some(public.clone());
    })
    .await;
    // The keys are in the database, sealed: no key file, and no key in clear.
    assert!(!a.dir.path().join("data/server-keys.json").exists());
    let store = tessera::export::open_store(&Config {
        database_url: Some(url.clone()),
        ..config_in(shared.path())
    })
    .await
    .unwrap();
    let sealed = tessera_store::Store::meta(&store, tessera::keys::SHARED_META_KEY)
        .await
        .unwrap()
        .expect("the keys are in the database");
    assert!(
        !String::from_utf8_lossy(&hex::decode(&sealed).unwrap()).contains("secret_hash_key"),
        "the keys are sealed"
    );

    let (client, _) = a.new_service_account(&["ORG_OWNER"]).await;
    let token_a = a.token(&client).await;

    let node_b = tempfile::tempdir().unwrap();
    let mut cb = config_in(node_b.path());
    cb.database_url = Some(url.clone());
    cb.master_key_file = Some(master.clone());
    cb.public_url = Some(public.clone());
    let (b, stop_b, base_b) = second_node(cb).await;
    assert!(!node_b.path().join("data/server-keys.json").exists());
    let http = reqwest::Client::new();
    let org_path = format!("/api/atlas/v2/orgs/{}", a.org());
    let get = |base: &str, auth: String| {
        http.get(format!("{base}{org_path}"))
            .header("accept", "application/vnd.atlas.2023-01-01+json")
            .header("authorization", auth)
            .send()
    };

    // Same signing keys: one JWKS, and a token from either node works on the other.
    let jwks = |base: String| {
        let http = http.clone();
        async move {
            http.get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(jwks(a.base.clone()).await, jwks(base_b.clone()).await);
    let r = get(&base_b, format!("Bearer {token_a}")).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{base_b}/api/oauth/token"))
        .header(
            "authorization",
            crate::harness::basic(&client.id, &client.secret),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token_b = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    a.bearer(&token_b, Method::GET, &org_path, None)
        .await
        .expect(200);

    // Same nonce key and sealing key: a nonce issued by A authenticates on B, whose Digest
    // check opens the key's HA1 sealed by A.
    let nonce = a.fresh_nonce().await;
    let header = digest_authorization(
        &a.owner(),
        "GET",
        &org_path,
        &nonce,
        "00000001",
        DigestAlgorithm::Sha256,
    );
    let r = get(&base_b, header.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The nonce-count record is per node: B refuses the replay; A, which never saw this
    // header, would accept it once within the nonce's lifetime (README: a load balancer
    // keeps a Digest client on one node).
    let r = get(&base_b, header.clone()).await.unwrap();
    assert_eq!(r.status(), 401);

    // Rotation writes the new signing key into the database for every node's next start.
    let raw_master = tessera::keys::read_master_key(&master).unwrap();
    let kid = tessera::keys::ServerKeys::rotate_signing_key_shared(&store, &raw_master)
        .await
        .unwrap();
    let node_c = tempfile::tempdir().unwrap();
    let mut cc = config_in(node_c.path());
    cc.database_url = Some(url.clone());
    cc.master_key_file = Some(master.clone());
    cc.public_url = Some(public.clone());
    let (c, stop_c, base_c) = second_node(cc).await;
    let keys = jwks(base_c.clone()).await;
    assert!(keys.contains(&kid), "{keys}");
    // Tokens signed with the older key still verify on the node that signs with the new one.
    let r = get(&base_c, format!("Bearer {token_a}")).await.unwrap();
    assert_eq!(r.status(), 200);

    let _ = stop_b.send(());
    let _ = stop_c.send(());
    b.task.await.unwrap().unwrap();
    c.task.await.unwrap().unwrap();
    a.stop().await;
}

#[tokio::test]
async fn a_wrong_or_exposed_master_key_is_refused() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", shared.path().join("shared.db").display());
    let master = master_file(shared.path(), "master.key", &"3c".repeat(32), 0o600);
    let a = TestServer::start_with(|c| {
        c.database_url = Some(url.clone());
        c.master_key_file = Some(master.clone());
    })
    .await;
    let cases = [
        (
            master_file(shared.path(), "other.key", &"4d".repeat(32), 0o600),
            "not the one they were sealed with",
        ),
        (
            master_file(shared.path(), "open.key", &"3c".repeat(32), 0o644),
            "accessible by other users",
        ),
        (
            master_file(shared.path(), "short.key", "3c3c", 0o600),
            "64 hex digits",
        ),
    ];
    for (file, why) in cases {
        let node = tempfile::tempdir().unwrap();
        let mut config = config_in(node.path());
        config.database_url = Some(url.clone());
        config.master_key_file = Some(file.clone());
        let err = match server::prepare(config, Arc::new(ManualClock::new(t0()))).await {
            Ok(_) => panic!("{} was accepted", file.display()),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(why), "{}: {err}", file.display());
        assert!(
            !err.contains(&"3c".repeat(32)),
            "the key is not echoed: {err}"
        );
    }
    a.stop().await;
}
