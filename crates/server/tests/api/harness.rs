//! A real server on 127.0.0.1 port 0 with a real SQLite file in a temp dir, driven over real
//! HTTP. The clock is a `ManualClock`: tests move time, never sleep.

use chrono::TimeZone;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use tessera::bootstrap::BootstrapOutput;
use tessera::config::Config;
use tessera::server::{self, Running};
use tessera_domain::ManualClock;
use tessera_protocols::digest::{self, DigestAlgorithm};
use tokio::sync::oneshot;

pub struct Key {
    pub public: String,
    pub private: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// Asserts the error shape and returns the errorCode.
    #[track_caller]
    pub fn error_code(&self) -> &str {
        let obj = self
            .json
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {}", self.text));
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["detail", "error", "errorCode", "parameters", "reason"],
            "{}",
            self.text
        );
        assert_eq!(self.json["error"], self.status.as_u16(), "{}", self.text);
        assert_eq!(
            self.headers["content-type"], "application/json",
            "errors are application/json"
        );
        self.json["errorCode"].as_str().unwrap()
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        assert_eq!(self.error_code(), code, "{}", self.text);
    }
}

pub struct TestServer {
    pub base: String,
    pub running: Running,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub boot: BootstrapOutput,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

/// The process-wide Prometheus recorder, installed once for all tests in this binary.
pub fn metrics_handle() -> Option<tessera::server::metrics_handle::Handle> {
    static HANDLE: std::sync::OnceLock<Option<tessera::server::metrics_handle::Handle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(tessera_http::telemetry::install_recorder)
        .clone()
}

pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

pub fn config_in(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_store(adjust, |store| store).await
    }

    /// A server whose store is passed through `wrap` first (fault injection).
    pub async fn start_with_store(
        adjust: impl FnOnce(&mut Config),
        wrap: impl FnOnce(Arc<dyn tessera_store::Store>) -> Arc<dyn tessera_store::Store>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(t0()));
        let prepared = server::prepare_with_store(config, clock.clone(), wrap)
            .await
            .unwrap();
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
        let boot = running
            .bootstrap
            .clone()
            .expect("fresh data dir bootstraps");
        TestServer {
            base: format!("http://{}", running.addr),
            running,
            clock,
            dir,
            boot,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
        }
    }

    pub async fn stop(self) {
        self.stop_keep_dir().await;
    }

    /// Stops the server and hands back its temp dir, for a restart on the same data.
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.running.task).await.unwrap().unwrap();
        self.dir
    }

    pub fn owner(&self) -> Key {
        Key {
            public: self.boot.public_key.clone(),
            private: self.boot.private_key.clone(),
        }
    }

    pub fn org(&self) -> &str {
        &self.boot.org_id
    }

    pub fn project(&self) -> &str {
        &self.boot.project_id
    }

    fn default_accept(path: &str) -> &'static str {
        if path.starts_with("/api/atlas/v2") {
            "application/vnd.atlas.2023-01-01+json"
        } else {
            "application/json"
        }
    }

    /// A raw request with explicit headers and body bytes, no authentication.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
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
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// A Digest-authenticated JSON call (challenge, then answer), MD5 by default.
    pub async fn call(&self, key: &Key, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_with(
            key,
            method,
            path,
            body,
            &[("accept", Self::default_accept(path))],
            DigestAlgorithm::Md5,
        )
        .await
    }

    pub async fn call_with(
        &self,
        key: &Key,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        alg: DigestAlgorithm,
    ) -> Resp {
        let mut hs: Vec<(&str, String)> =
            headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let body_bytes = body.map(|b| {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                hs.push(("content-type", "application/json".into()));
            }
            serde_json::to_vec(&b).unwrap()
        });
        let auth = self.digest_header(key, method.as_str(), path, alg).await;
        hs.push(("authorization", auth));
        let borrowed: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.raw(method, path, &borrowed, body_bytes).await
    }

    /// Fetches a fresh nonce and computes a Digest Authorization header for `path`.
    pub async fn digest_header(
        &self,
        key: &Key,
        method: &str,
        path: &str,
        alg: DigestAlgorithm,
    ) -> String {
        let nonce = self.fresh_nonce().await;
        digest_authorization(key, method, path, &nonce, "00000001", alg)
    }

    pub async fn fresh_nonce(&self) -> String {
        let r = self
            .raw(Method::GET, "/api/public/v1.0/orgs", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let h = r
            .headers
            .get_all("www-authenticate")
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        h.split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Every row of every table, for "nothing changed in the store" assertions.
    pub async fn snapshot(&self) -> String {
        use sqlx::Row;
        let path = self.dir.path().join("data").join("tessera.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        let mut out = String::new();
        for t in tables {
            let cols: Vec<String> =
                sqlx::query(&format!("SELECT name FROM pragma_table_info('{t}')"))
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| format!("quote({})", r.get::<String, _>(0)))
                    .collect();
            let sql = format!("SELECT {} FROM {t} ORDER BY rowid", cols.join("||'|'||"));
            for row in sqlx::query(&sql).fetch_all(&pool).await.unwrap() {
                out.push_str(&t);
                out.push(':');
                out.push_str(&row.get::<String, _>(0));
                out.push('\n');
            }
        }
        pool.close().await;
        out
    }

    /// Creates an org API key with `roles` and returns it.
    pub async fn new_org_key(&self, roles: &[&str]) -> (Key, String) {
        let r = self
            .call(
                &self.owner(),
                Method::POST,
                &format!("/api/atlas/v2/orgs/{}/apiKeys", self.org()),
                Some(serde_json::json!({"desc": "test key", "roles": roles})),
            )
            .await;
        r.expect(200);
        (
            Key {
                public: r.json["publicKey"].as_str().unwrap().to_owned(),
                private: r.json["privateKey"].as_str().unwrap().to_owned(),
            },
            r.json["id"].as_str().unwrap().to_owned(),
        )
    }
}

pub fn digest_authorization(
    key: &Key,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    alg: DigestAlgorithm,
) -> String {
    let cnonce = "0a4f113b";
    let ha1 = digest::ha1(alg, &key.public, digest::REALM, &key.private);
    let response = digest::expected_response(alg, &ha1, nonce, nc, cnonce, "auth", method, uri);
    format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\"",
        key.public,
        digest::REALM,
        alg.as_str()
    )
}

/// A service account's credentials.
pub struct Client {
    pub id: String,
    pub secret: String,
}

pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

impl TestServer {
    pub fn sa_path(&self, rest: &str) -> String {
        format!("/api/atlas/v2/orgs/{}/serviceAccounts{rest}", self.org())
    }

    pub async fn v2024(&self, key: &Key, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_with(
            key,
            method,
            path,
            body,
            &[("accept", "application/vnd.atlas.2024-08-05+json")],
            Default::default(),
        )
        .await
    }

    /// Creates an org service account with `roles`; returns its credentials and the body.
    pub async fn new_service_account(&self, roles: &[&str]) -> (Client, Value) {
        let r = self
            .v2024(
                &self.owner(),
                Method::POST,
                &self.sa_path(""),
                Some(serde_json::json!({
                    "name": "Test SA", "description": "For tests.", "roles": roles, "secretExpiresAfterHours": 24
                })),
            )
            .await;
        r.expect(201);
        (
            Client {
                id: r.json["clientId"].as_str().unwrap().to_owned(),
                secret: r.json["secrets"][0]["secret"].as_str().unwrap().to_owned(),
            },
            r.json.clone(),
        )
    }

    pub async fn token_request(&self, auth: Option<&str>, form: &str) -> Resp {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        self.raw(
            Method::POST,
            "/api/oauth/token",
            &h,
            Some(form.as_bytes().to_vec()),
        )
        .await
    }

    pub async fn token(&self, c: &Client) -> String {
        let r = self
            .token_request(
                Some(&basic(&c.id, &c.secret)),
                "grant_type=client_credentials",
            )
            .await;
        r.expect(200);
        r.json["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn revoke(&self, c: &Client, token: &str) -> Resp {
        let form = format!("token={token}&token_type_hint=access_token");
        self.raw(
            Method::POST,
            "/api/oauth/revoke",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic(&c.id, &c.secret)),
            ],
            Some(form.into_bytes()),
        )
        .await
    }

    pub async fn bearer(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let accept = if path.contains("/serviceAccounts") {
            "application/vnd.atlas.2024-08-05+json"
        } else {
            Self::default_accept(path)
        };
        let auth = format!("Bearer {token}");
        let mut h = vec![("accept", accept), ("authorization", auth.as_str())];
        let body = body.map(|b| {
            h.push(("content-type", "application/json"));
            serde_json::to_vec(&b).unwrap()
        });
        self.raw(method, path, &h, body).await
    }
}
