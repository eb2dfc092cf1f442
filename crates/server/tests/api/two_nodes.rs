//! Two `tessera` processes on one PostgreSQL database, sharing server keys through it (sealed
//! under one `--master-key-file`): a token minted on one node is accepted by the other, a
//! revocation on A is refused by B (how soon is measured and printed), a secret deleted
//! on B stops minting on A, role changes and deletions on one node hold on the other, and a
//! Digest nonce from one node is stale on the other (a captured request is not replayed). Both nodes racing on one account (secret
//! creations, project invites and removals) keep the secret limit, answer no 5xx, and end
//! holding what the database holds.
//!
//! Runs in the PostgreSQL run of this suite (`TESSERA_TEST_STORE=postgres`); in the SQLite
//! run it says on stderr that it did not run.

use crate::harness::{basic, digest_authorization, postgres_admin, t0, Key};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_protocols::digest::DigestAlgorithm;

/// Within this, a change made on one node must hold on the other. A bound against a hang, not
/// a measurement: how long each change took is printed (milliseconds when the machine is
/// quiet), and a busy machine (two nodes, PostgreSQL and the test on two shared cores) must
/// not fail the test by scheduling alone.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(30);

pub(crate) struct Node {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) data: PathBuf,
    pub(crate) http: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) json: Value,
}

impl Node {
    /// Starts `tessera serve` on port 0 and waits for its "tessera listening" log line.
    pub(crate) fn start(name: &'static str, dir: &Path, url: &str, master: &Path) -> Node {
        Self::start_with(name, dir, url, master, &[])
    }

    /// [`Node::start`] with more flags.
    pub(crate) fn start_with(
        name: &'static str,
        dir: &Path,
        url: &str,
        master: &Path,
        extra: &[&str],
    ) -> Node {
        let data = dir.join(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env_clear()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            // One issuer for the cluster: the nodes stand behind one public URL.
            .args(["--public-url", "http://tessera.test"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--database-url", url])
            .arg("--master-key-file")
            .arg(master)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if std::env::var_os("TESSERA_TEST_NODE_LOGS").is_some() {
                    eprintln!("[{name}] {line}");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "tessera listening" {
                        let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_owned());
                    }
                } else {
                    eprintln!("[{name}] {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("node {name} did not start"));
        Node {
            name,
            child,
            base: format!("http://{addr}"),
            data,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Resp {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub(crate) async fn nonce(&self) -> String {
        let r = self
            .raw(Method::GET, "/api/public/v1.0/orgs", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let h = r.headers["www-authenticate"].to_str().unwrap().to_owned();
        h.split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }

    /// A Digest call answering a challenge from `nonce_from` (this node or the other).
    pub(crate) async fn digest(
        &self,
        nonce_from: &Node,
        key: &Key,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let nonce = nonce_from.nonce().await;
        let auth = digest_authorization(
            key,
            method.as_str(),
            path,
            &nonce,
            "00000001",
            DigestAlgorithm::Md5,
        );
        let accept = if path.contains("/serviceAccounts") {
            "application/vnd.atlas.2024-08-05+json"
        } else {
            "application/vnd.atlas.2023-01-01+json"
        };
        let mut h = vec![("accept", accept), ("authorization", auth.as_str())];
        let body = body.map(|b| {
            h.push(("content-type", "application/json"));
            serde_json::to_vec(&b).unwrap()
        });
        self.raw(method, path, &h, body).await
    }

    pub(crate) async fn call(
        &self,
        key: &Key,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        self.digest(self, key, method, path, body).await
    }

    pub(crate) async fn token(&self, id: &str, secret: &str) -> Resp {
        self.raw(
            Method::POST,
            "/api/oauth/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic(id, secret)),
            ],
            Some(b"grant_type=client_credentials".to_vec()),
        )
        .await
    }

    pub(crate) async fn bearer(&self, token: &str, path: &str) -> StatusCode {
        let auth = format!("Bearer {token}");
        self.raw(
            Method::GET,
            path,
            &[
                ("accept", "application/vnd.atlas.2023-01-01+json"),
                ("authorization", &auth),
            ],
            None,
        )
        .await
        .status
    }
}

/// Polls `check` on `node` until it holds; returns how long that took after `since`, failing
/// past the limit.
async fn within_limit<F, Fut>(what: &str, node: &Node, since: Instant, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            let took = since.elapsed();
            // Past the harness's output capture: the measurement is part of the result.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "two nodes: {what} held on node {} {} ms after the change",
                node.name,
                took.as_millis()
            );
            return took;
        }
        assert!(
            since.elapsed() < PROPAGATION_LIMIT,
            "{what}: not seen on node {} within {PROPAGATION_LIMIT:?}",
            node.name
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes a random master key (mode 0600) to `path`.
pub(crate) fn write_master_key(path: &Path) {
    use rand::RngCore;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, hex::encode(bytes).as_bytes()))
        .unwrap();
}

/// Two nodes started at the same moment on an empty database: one bootstraps, the other
/// finds it bootstrapped, and both serve with the same keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_started_together_bootstrap_once() {
    let Some(admin) = postgres_admin() else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests DID NOT RUN (two_nodes_started_together_bootstrap_once): \
             needs TESSERA_TEST_STORE=postgres and TESSERA_TEST_POSTGRES_URL"
        );
        return;
    };
    let db = tessera_store::postgres::test_support::ScratchDatabase::create(
        &admin,
        &tessera_domain::ObjectId::generate(t0()).to_hex(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    write_master_key(&master);
    let (d, u, m) = (dir.path().to_owned(), db.url.clone(), master.clone());
    let starting_a = std::thread::spawn(move || Node::start("A", &d, &u, &m));
    let b = Node::start("B", dir.path(), &db.url, &master);
    let a = starting_a.join().unwrap();
    let boots: Vec<&Node> = [&a, &b]
        .into_iter()
        .filter(|n| n.data.join("bootstrap.json").exists())
        .collect();
    assert_eq!(boots.len(), 1, "exactly one node bootstraps");
    let boot: Value =
        serde_json::from_slice(&std::fs::read(boots[0].data.join("bootstrap.json")).unwrap())
            .unwrap();
    let owner = Key {
        public: boot["publicKey"].as_str().unwrap().to_owned(),
        private: boot["privateKey"].as_str().unwrap().to_owned(),
    };
    let org_path = format!("/api/atlas/v2/orgs/{}", boot["orgId"].as_str().unwrap());
    for n in [&a, &b] {
        assert_eq!(
            n.call(&owner, Method::GET, &org_path, None).await.status,
            StatusCode::OK,
            "node {}",
            n.name
        );
    }
    drop(a);
    drop(b);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_database() {
    let Some(admin) = postgres_admin() else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests DID NOT RUN (two_nodes_on_one_postgres_database): \
             needs TESSERA_TEST_STORE=postgres and TESSERA_TEST_POSTGRES_URL \
             (TESSERA_TEST_STORE=postgres scripts/with-postgres.sh cargo test -p tessera --test api)"
        );
        return;
    };
    let db = tessera_store::postgres::test_support::ScratchDatabase::create(
        &admin,
        &tessera_domain::ObjectId::generate(t0()).to_hex(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    write_master_key(&master);
    let a = Node::start("A", dir.path(), &db.url, &master);
    let boot: Value =
        serde_json::from_slice(&std::fs::read(a.data.join("bootstrap.json")).unwrap()).unwrap();
    let b = Node::start("B", dir.path(), &db.url, &master);
    assert!(
        !b.data.join("bootstrap.json").exists(),
        "the second node finds the database bootstrapped"
    );
    // Neither node keeps keys of its own: they come from the database.
    assert!(!a.data.join("server-keys.json").exists());
    assert!(!b.data.join("server-keys.json").exists());
    let owner = Key {
        public: boot["publicKey"].as_str().unwrap().to_owned(),
        private: boot["privateKey"].as_str().unwrap().to_owned(),
    };
    let org = boot["orgId"].as_str().unwrap().to_owned();
    let org_path = format!("/api/atlas/v2/orgs/{org}");
    let sa_path = format!("/api/atlas/v2/orgs/{org}/serviceAccounts");

    // Digest: the API key created on A works on B with a nonce B issued; a nonce A issued
    // is stale on B (B holds no `nc` record for it): 401 with `stale=true`, never a 200.
    assert_eq!(
        b.call(&owner, Method::GET, &org_path, None).await.status,
        StatusCode::OK
    );
    let r = b.digest(&a, &owner, Method::GET, &org_path, None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a nonce from node A is refused by node B"
    );
    let challenges: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.len() == 2 && challenges.iter().all(|c| c.ends_with("stale=true")),
        "{challenges:?}"
    );

    // A service account made on A; its token minted on A is accepted by B.
    let created = a
        .call(
            &owner,
            Method::POST,
            &sa_path,
            Some(json!({"name": "two-nodes", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let client = created.json["clientId"].as_str().unwrap().to_owned();
    let secret = created.json["secrets"][0]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = created.json["secrets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let minted = a.token(&client, &secret).await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.json);
    let token = minted.json["access_token"].as_str().unwrap().to_owned();
    let changed = Instant::now();
    within_limit("an account created on A", &b, changed, || async {
        b.bearer(&token, &org_path).await == StatusCode::OK
    })
    .await;

    // Revoked on A: B refuses the token within a second.
    let revoke = a
        .raw(
            Method::POST,
            "/api/oauth/revoke",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic(&client, &secret)),
            ],
            Some(format!("token={token}&token_type_hint=access_token").into_bytes()),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK);
    let revoked = Instant::now();
    assert_eq!(a.bearer(&token, &org_path).await, StatusCode::UNAUTHORIZED);
    within_limit("a revocation on A", &b, revoked, || async {
        b.bearer(&token, &org_path).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // The secret deleted on B: A stops minting with it.
    let fresh = a.token(&client, &secret).await;
    assert_eq!(fresh.status, StatusCode::OK);
    let fresh = fresh.json["access_token"].as_str().unwrap().to_owned();
    let deleted = b
        .call(
            &owner,
            Method::DELETE,
            &format!("{sa_path}/{client}/secrets/{secret_id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.json);
    let at = Instant::now();
    within_limit("a secret deleted on B (minting)", &a, at, || async {
        a.token(&client, &secret).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    // A token minted with it ends with it, on A too.
    within_limit("a secret deleted on B (its tokens)", &a, at, || async {
        a.bearer(&fresh, &org_path).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // A role change on A holds on B: an org owner key demoted to read-only can no longer
    // create projects there.
    let made = a
        .call(
            &owner,
            Method::POST,
            &format!("{org_path}/apiKeys"),
            Some(json!({"desc": "demoted", "roles": ["ORG_OWNER"]})),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    let key = Key {
        public: made.json["publicKey"].as_str().unwrap().to_owned(),
        private: made.json["privateKey"].as_str().unwrap().to_owned(),
    };
    let key_id = made.json["id"].as_str().unwrap().to_owned();
    let project = |name: &str| Some(json!({"name": name, "orgId": org}));
    assert_eq!(
        b.call(&key, Method::POST, "/api/atlas/v2/groups", project("p1"))
            .await
            .status,
        StatusCode::OK
    );
    let demoted = a
        .call(
            &owner,
            Method::PATCH,
            &format!("{org_path}/apiKeys/{key_id}"),
            Some(json!({"roles": ["ORG_READ_ONLY"]})),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.json);
    let at = Instant::now();
    let mut n = 0;
    within_limit("a role change on A", &b, at, || {
        n += 1;
        let name = format!("p-after-{n}");
        let (b, key) = (&b, &key);
        async move {
            b.call(key, Method::POST, "/api/atlas/v2/groups", project(&name))
                .await
                .status
                == StatusCode::FORBIDDEN
        }
    })
    .await;

    // The account deleted on A: a token B accepted stops working on B.
    let other = a
        .call(
            &owner,
            Method::POST,
            &sa_path,
            Some(json!({"name": "two-nodes-2", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})),
        )
        .await;
    let other_id = other.json["clientId"].as_str().unwrap().to_owned();
    let other_secret = other.json["secrets"][0]["secret"].as_str().unwrap();
    let other_token = a.token(&other_id, other_secret).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = Instant::now();
    within_limit("an account created on A (2)", &b, at, || async {
        b.bearer(&other_token, &org_path).await == StatusCode::OK
    })
    .await;
    let gone = a
        .call(
            &owner,
            Method::DELETE,
            &format!("{sa_path}/{other_id}"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.json);
    let at = Instant::now();
    within_limit("an account deleted on A", &b, at, || async {
        b.bearer(&other_token, &org_path).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // A node given another master key cannot open the shared keys, and says why.
    let wrong = dir.path().join("wrong.key");
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&wrong)
            .and_then(|mut f| std::io::Write::write_all(&mut f, "ab".repeat(32).as_bytes()))
            .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env_clear()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("C"))
        .args(["--database-url", &db.url])
        .arg("--master-key-file")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not the master key they were sealed with"),
        "{err}"
    );

    drop(a);
    drop(b);
    db.drop_database().await.unwrap();
}

/// Issue 9, item 4, over HTTP: both nodes create secrets for one account at once (never more
/// than two unexpired afterwards, no 5xx), and assign and unassign it to a project at once
/// (no 5xx; afterwards both nodes hold what the database holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_race_on_one_account() {
    let Some(admin) = postgres_admin() else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests DID NOT RUN (two_nodes_race_on_one_account): \
             needs TESSERA_TEST_STORE=postgres and TESSERA_TEST_POSTGRES_URL"
        );
        return;
    };
    let db = tessera_store::postgres::test_support::ScratchDatabase::create(
        &admin,
        &tessera_domain::ObjectId::generate(t0()).to_hex(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    write_master_key(&master);
    let a = Node::start("A", dir.path(), &db.url, &master);
    let boot: Value =
        serde_json::from_slice(&std::fs::read(a.data.join("bootstrap.json")).unwrap()).unwrap();
    let b = Node::start("B", dir.path(), &db.url, &master);
    let owner = Key {
        public: boot["publicKey"].as_str().unwrap().to_owned(),
        private: boot["privateKey"].as_str().unwrap().to_owned(),
    };
    let org = boot["orgId"].as_str().unwrap().to_owned();
    let project = boot["projectId"].as_str().unwrap().to_owned();
    let sa_path = format!("/api/atlas/v2/orgs/{org}/serviceAccounts");
    let created = a
        .call(
            &owner,
            Method::POST,
            &sa_path,
            Some(json!({"name": "raced", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let client = created.json["clientId"].as_str().unwrap().to_owned();
    let account = format!("{sa_path}/{client}");
    let nodes = [&a, &b];

    // Secrets: the account has one; eight creations at once, half on each node.
    let secrets = format!("{account}/secrets");
    let answers = futures_util::future::join_all((0..8).map(|i| {
        nodes[i % 2].call(
            &owner,
            Method::POST,
            &secrets,
            Some(json!({"secretExpiresAfterHours": 24})),
        )
    }))
    .await;
    let mut added = 0;
    for r in &answers {
        assert!(
            r.status == StatusCode::CREATED || r.status.is_client_error(),
            "a secret creation answered {}: {}",
            r.status,
            r.json
        );
        if r.status == StatusCode::CREATED {
            added += 1;
        }
    }
    assert_eq!(
        added, 1,
        "exactly one more secret fits under the limit of two"
    );
    let since = Instant::now();
    for n in nodes {
        within_limit("two secrets after the race", n, since, || async {
            let r = n.call(&owner, Method::GET, &account, None).await;
            r.status == StatusCode::OK && r.json["secrets"].as_array().map(Vec::len) == Some(2)
        })
        .await;
    }

    // Project membership: invites and removals at once from both nodes.
    let member = format!("/api/atlas/v2/groups/{project}/serviceAccounts/{client}");
    let invite = format!("{member}:invite");
    let (owner_ref, invite_ref, member_ref) = (&owner, &invite, &member);
    let answers = futures_util::future::join_all((0..12).map(|i| {
        let n = nodes[(i / 2) % 2];
        let (owner, invite, member) = (owner_ref, invite_ref, member_ref);
        async move {
            if i % 2 == 0 {
                n.call(
                    owner,
                    Method::POST,
                    invite,
                    Some(json!({"roles": ["GROUP_READ_ONLY"]})),
                )
                .await
            } else {
                n.call(owner, Method::DELETE, member, None).await
            }
        }
    }))
    .await;
    for r in &answers {
        assert!(
            !r.status.is_server_error(),
            "an assignment answered {}: {}",
            r.status,
            r.json
        );
    }
    // What the database holds (the project's page comes from the store) ...
    let listed = a
        .call(
            &owner,
            Method::GET,
            &format!("/api/atlas/v2/groups/{project}/serviceAccounts"),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.json);
    let assigned = listed.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["clientId"] == client.as_str());
    // ... is what each node's registry holds (the account's projects come from it).
    let since = Instant::now();
    for n in nodes {
        within_limit("the same membership after the race", n, since, || async {
            let r = n
                .call(&owner, Method::GET, &format!("{account}/groups"), None)
                .await;
            let held = r.json["results"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["groupId"] == project.as_str()));
            r.status == StatusCode::OK && held == assigned
        })
        .await;
    }
    // And both keep following: a last invite on A, seen on B.
    let r = a
        .call(
            &owner,
            Method::POST,
            &invite,
            Some(json!({"roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.json);
    within_limit(
        "an invite on A after the race",
        &b,
        Instant::now(),
        || async {
            let r = b
                .call(&owner, Method::GET, &format!("{account}/groups"), None)
                .await;
            r.json["results"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["groupId"] == project.as_str()))
        },
    )
    .await;

    drop(a);
    drop(b);
    db.drop_database().await.unwrap();
}
