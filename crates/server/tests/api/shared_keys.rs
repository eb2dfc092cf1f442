//! Nodes that share one database and one master key (`--master-key-file`) share the server
//! keys through the database: a token minted on one node is accepted by the other, and an API
//! key's Digest credentials work on both; a Digest nonce is accepted only by the node that
//! issued it (the other answers `stale=true`), so a captured request cannot be replayed on
//! another node. Here both nodes are in-process servers on one SQLite file; the same holds for
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

fn www_authenticate(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn nonce_of(challenge: &str) -> String {
    challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// A nonce issued by the node at `base` (the challenge to an unauthenticated request).
async fn fresh_nonce_at(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .get(format!("{base}/api/public/v1.0/orgs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    nonce_of(&www_authenticate(&r)[0])
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

/// The database the nodes of a test share: a SQLite file in `dir`, or, on a PostgreSQL run,
/// a fresh database (dropped by the first node's `stop`).
fn shared_url(dir: &Path) -> String {
    match config_in(dir).database_url {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("shared.db").display()),
    }
}

#[tokio::test]
async fn two_nodes_on_one_database_share_the_server_keys() {
    let shared = tempfile::tempdir().unwrap();
    let url = shared_url(shared.path());
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
    let sealed = store
        .meta(tessera::keys::SHARED_META_KEY)
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

    // Same sealing key: B's Digest check opens the key's HA1 sealed by A, with B's nonce.
    let nonce = fresh_nonce_at(&http, &base_b).await;
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
    let r = get(&base_b, header.clone()).await.unwrap();
    assert_eq!(r.status(), 401, "B refuses its own nonce count again");

    // A request captured on A, replayed on B (and on A again): never a 200. B answers with
    // a fresh challenge of its own and `stale=true`, so a real client retries at once.
    let nonce = a.fresh_nonce().await;
    let header = digest_authorization(
        &a.owner(),
        "GET",
        &org_path,
        &nonce,
        "00000001",
        DigestAlgorithm::Md5,
    );
    let r = get(&a.base, header.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for (node, base) in [("B", &base_b), ("B again", &base_b), ("A", &a.base)] {
        let r = get(base, header.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "the replay on {node}");
        let challenges = www_authenticate(&r);
        assert_eq!(challenges.len(), 2, "{challenges:?}");
        let stale = if node == "A" {
            "stale=false"
        } else {
            "stale=true"
        };
        assert!(
            challenges.iter().all(|c| c.ends_with(stale)),
            "the replay on {node}: {challenges:?}"
        );
        assert!(
            challenges.iter().all(|c| !c.contains(&nonce)),
            "a fresh nonce on {node}"
        );
    }
    // The client's retry with B's fresh nonce from that challenge succeeds.
    let r = get(&base_b, header.clone()).await.unwrap();
    let fresh = nonce_of(&www_authenticate(&r)[0]);
    let retry = digest_authorization(
        &a.owner(),
        "GET",
        &org_path,
        &fresh,
        "00000001",
        DigestAlgorithm::Md5,
    );
    let r = get(&base_b, retry).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Rotation writes the new signing key into the database for every node's next start.
    let raw_master = tessera::keys::read_master_key(&master).unwrap();
    let kid =
        tessera::keys::ServerKeys::rotate_signing_key_shared(store.as_ref(), &raw_master, t0())
            .await
            .unwrap();
    // The rotation is an event (no organization: `tessera events export` shows it).
    let rotations: Vec<_> = store
        .export_events(
            None,
            tessera_store::events::ExportCursor {
                created: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                id: None,
            },
            10_000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "SIGNING_KEY_ROTATED")
        .map(|e| e.target)
        .collect();
    assert_eq!(rotations, [vec![("kid".to_owned(), kid.clone())]]);
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
    let url = shared_url(shared.path());
    let master = master_file(shared.path(), "master.key", &"3c".repeat(32), 0o600);
    let a = TestServer::start_with(|c| {
        c.database_url = Some(url.clone());
        c.master_key_file = Some(master.clone());
    })
    .await;
    let cases = [
        (
            master_file(shared.path(), "other.key", &"4d".repeat(32), 0o600),
            "not the master key they were sealed with",
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

/// A single node that moves to shared keys (restarted with `--master-key-file`) seals the keys
/// it already has, so what it issued before stays valid: a token, a client secret, an API
/// key's Digest credentials. An outstanding nonce is stale after the restart (its `nc` record
/// was the old process's): the client gets `stale=true` and a fresh nonce that works.
#[tokio::test]
async fn a_node_moving_to_shared_keys_keeps_its_own() {
    // The issuer of the tokens: the same before and after (and on the node that joins).
    let public = "https://tessera.example".to_owned();
    let s = TestServer::start_with(|c| c.public_url = Some(public.clone())).await;
    let url = s.database_url.clone();
    let owner = s.owner();
    let org_path = format!("/api/atlas/v2/orgs/{}", s.org());
    let (client, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let token = s.token(&client).await;
    let nonce = s.fresh_nonce().await;
    let dir = s.stop_keep_dir().await;
    let before = std::fs::read(dir.path().join("data/server-keys.json")).unwrap();

    let master = master_file(dir.path(), "master.key", &"5e".repeat(32), 0o600);
    let mut config = config_in(dir.path());
    config.master_key_file = Some(master.clone());
    config.public_url = Some(public.clone());
    let (node, stop, base) = second_node(config).await;
    // The key file is left as it was; the database now holds the same keys, sealed.
    assert_eq!(
        std::fs::read(dir.path().join("data/server-keys.json")).unwrap(),
        before
    );
    let sealed = node
        .state
        .store
        .meta(tessera::keys::SHARED_META_KEY)
        .await
        .unwrap()
        .expect("the keys are in the database");
    assert!(!sealed.is_empty());

    let http = reqwest::Client::new();
    let get = |auth: String| {
        http.get(format!("{base}{org_path}"))
            .header("accept", "application/vnd.atlas.2023-01-01+json")
            .header("authorization", auth)
            .send()
    };
    let r = get(format!("Bearer {token}")).await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the token signed before: {}",
        r.text().await.unwrap()
    );
    let header = digest_authorization(
        &owner,
        "GET",
        &org_path,
        &nonce,
        "00000001",
        DigestAlgorithm::Sha256,
    );
    let r = get(header).await.unwrap();
    assert_eq!(r.status(), 401, "the earlier nonce after a restart");
    let challenges = www_authenticate(&r);
    assert!(
        challenges.iter().all(|c| c.ends_with("stale=true")),
        "{challenges:?}"
    );
    let header = digest_authorization(
        &owner,
        "GET",
        &org_path,
        &nonce_of(&challenges[0]),
        "00000001",
        DigestAlgorithm::Sha256,
    );
    let r = get(header).await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "Digest with the key made before, and a fresh nonce: {}",
        r.text().await.unwrap()
    );
    let r = http
        .post(format!("{base}/api/oauth/token"))
        .header(
            "authorization",
            crate::harness::basic(&client.id, &client.secret),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the client secret hashed before");

    // A node that joins later (no key file of its own) gets the same keys from the database.
    let other = tempfile::tempdir().unwrap();
    let mut co = config_in(other.path());
    co.database_url = url.clone().or_else(|| {
        Some(format!(
            "sqlite://{}",
            dir.path().join("data/tessera.db").display()
        ))
    });
    co.master_key_file = Some(master);
    co.public_url = Some(public);
    let (joined, stop_joined, base_joined) = second_node(co).await;
    let r = http
        .get(format!("{base_joined}{org_path}"))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let _ = stop_joined.send(());
    joined.task.await.unwrap().unwrap();
    let _ = stop.send(());
    node.task.await.unwrap().unwrap();
    if let (Some(url), Some(admin)) = (url, crate::harness::postgres_admin()) {
        let name = url.rsplit('/').next().unwrap().to_owned();
        tessera_store::postgres::test_support::drop_database(&admin, &name)
            .await
            .unwrap();
    }
}

/// Nodes agree on keys or refuse to start (issue 14): a node without the master key on a
/// database whose keys are sealed, and a node with server keys of its own on a database used
/// with other keys, exit at start with a message naming the flag; nothing is written.
#[tokio::test]
async fn a_node_with_other_keys_refuses_to_start_and_names_the_flag() {
    let shared = tempfile::tempdir().unwrap();
    let url = shared_url(shared.path());
    // One node with keys of its own (no master key) uses the database first.
    let first = tempfile::tempdir().unwrap();
    let mut config = config_in(first.path());
    config.database_url = Some(url.clone());
    let prepared = server::prepare(config, Arc::new(ManualClock::new(t0())))
        .await
        .unwrap();
    prepared.state_parts.store.close().await;
    drop(prepared);

    // Another node with keys of its own: refused, the flag named.
    let other = tempfile::tempdir().unwrap();
    let mut config = config_in(other.path());
    config.database_url = Some(url.clone());
    let err = match server::prepare(config, Arc::new(ManualClock::new(t0()))).await {
        Ok(_) => panic!("a node with other server keys started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("--master-key-file"), "{err}");
    assert!(err.contains("other server keys"), "{err}");

    // A node with a master key but no key file of its own: refused too (its new keys would
    // not read what the first node wrote).
    let master = master_file(shared.path(), "m.key", &"5e".repeat(32), 0o600);
    let third = tempfile::tempdir().unwrap();
    let mut config = config_in(third.path());
    config.database_url = Some(url.clone());
    config.master_key_file = Some(master.clone());
    let err = match server::prepare(config, Arc::new(ManualClock::new(t0()))).await {
        Ok(_) => panic!("a node with new keys sealed over a used database started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("--master-key-file"), "{err}");

    // The first node moves to shared keys (its own are sealed); now a node without the
    // master key is refused, and says which flag is missing.
    let mut config = config_in(first.path());
    config.database_url = Some(url.clone());
    config.master_key_file = Some(master.clone());
    let prepared = server::prepare(config, Arc::new(ManualClock::new(t0())))
        .await
        .unwrap();
    prepared.state_parts.store.close().await;
    drop(prepared);
    let mut config = config_in(first.path());
    config.database_url = Some(url.clone());
    let err = match server::prepare(config, Arc::new(ManualClock::new(t0()))).await {
        Ok(_) => panic!("a node without the master key started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("start this node with --master-key-file"),
        "{err}"
    );
    // And with the master key, a new data directory joins.
    let fourth = tempfile::tempdir().unwrap();
    let mut config = config_in(fourth.path());
    config.database_url = Some(url);
    config.master_key_file = Some(master);
    let prepared = server::prepare(config, Arc::new(ManualClock::new(t0())))
        .await
        .unwrap();
    prepared.state_parts.store.close().await;
}
