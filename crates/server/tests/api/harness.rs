//! A real server on 127.0.0.1 port 0 with a real SQLite file in a temp dir, driven over real
//! HTTP. The clock is a `ManualClock`: tests move time, never sleep.
//!
//! With `TESSERA_TEST_STORE=postgres` (and `TESSERA_TEST_POSTGRES_URL`, which
//! `scripts/with-postgres.sh` sets), every server runs on a PostgreSQL database of its own
//! instead: `config_in` makes it (and remembers its URL in the temp dir, so a restart on the
//! same dir finds the same database), and `snapshot` dumps it.

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

#[derive(Clone)]
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
    /// The PostgreSQL database of this server, when the run targets PostgreSQL.
    pub database_url: Option<String>,
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

/// The admin URL of the PostgreSQL server when this run targets PostgreSQL
/// (`TESSERA_TEST_STORE=postgres`); `None` for the default run on SQLite.
pub fn postgres_admin() -> Option<String> {
    use tessera_store::postgres::test_support::URL_VAR;
    match std::env::var("TESSERA_TEST_STORE").as_deref() {
        Ok("postgres") => Some(std::env::var(URL_VAR).unwrap_or_else(|_| {
            panic!("TESSERA_TEST_STORE=postgres needs {URL_VAR} (run scripts/with-postgres.sh)")
        })),
        _ => None,
    }
}

/// Whether this run targets PostgreSQL.
pub fn on_postgres() -> bool {
    postgres_admin().is_some()
}

/// For a test (or part of one) that only means something on SQLite: on PostgreSQL, says so
/// on stderr (past the output capture) and returns `true`.
pub fn skipped_on_postgres(test: &str, why: &str) -> bool {
    if !on_postgres() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED on PostgreSQL ({test}): {why}");
    true
}

/// Where `config_in` remembers the PostgreSQL database made for a temp dir.
const POSTGRES_URL_FILE: &str = "postgres-database-url";

/// Makes a fresh PostgreSQL database (on a thread of its own, so sync callers can use it).
fn create_postgres_database(admin: &str) -> String {
    let admin = admin.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let unique = tessera_domain::ObjectId::generate(t0()).to_hex();
            tessera_store::postgres::test_support::ScratchDatabase::create(&admin, &unique)
                .await
                .unwrap()
                .url
        })
    })
    .join()
    .unwrap()
}

pub fn config_in(dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    if let Some(admin) = postgres_admin() {
        let file = dir.join(POSTGRES_URL_FILE);
        let url = match std::fs::read_to_string(&file) {
            Ok(url) => url,
            Err(_) => {
                let url = create_postgres_database(&admin);
                std::fs::write(&file, &url).unwrap();
                url
            }
        };
        config.database_url = Some(url);
    }
    config
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
        let database_url = config.database_url.clone();
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
            database_url,
            boot,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
        }
    }

    /// Stops the server and removes its data (on PostgreSQL, its database too).
    pub async fn stop(self) {
        let url = self.database_url.clone();
        let dir = self.stop_keep_dir().await;
        if let (Some(url), Some(admin)) = (url, postgres_admin()) {
            let name = url.rsplit('/').next().unwrap().to_owned();
            tessera_store::postgres::test_support::drop_database(&admin, &name)
                .await
                .unwrap();
        }
        drop(dir);
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

    /// A configuration that opens this server's store (its data dir and database URL).
    pub fn store_config(&self) -> Config {
        Config {
            data_dir: self.dir.path().join("data"),
            database_url: self.database_url.clone(),
            ..Config::default()
        }
    }

    /// A pool on this server's PostgreSQL database (PostgreSQL runs only).
    async fn pg_pool(&self) -> Option<sqlx::PgPool> {
        let url = self.database_url.as_deref()?;
        Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap(),
        )
    }

    /// A read-only pool on this server's SQLite file.
    async fn sqlite_pool(&self, read_only: bool) -> sqlx::SqlitePool {
        let path = self.dir.path().join("data").join("tessera.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(read_only);
        sqlx::SqlitePool::connect_with(opts).await.unwrap()
    }

    /// Rows of a query whose columns are all text (or NULL), on either store. `?` placeholders
    /// (bound to `binds` in order) become `$1, $2, …` on PostgreSQL.
    pub async fn text_rows(&self, sql: &str, binds: &[&str]) -> Vec<Vec<Option<String>>> {
        use sqlx::Row;
        if let Some(pool) = self.pg_pool().await {
            let mut n = 0;
            let pg_sql: String = sql
                .chars()
                .flat_map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}").chars().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect();
            let mut q = sqlx::query(&pg_sql);
            for b in binds {
                q = q.bind(*b);
            }
            let rows = q.fetch_all(&pool).await.unwrap();
            pool.close().await;
            return rows
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<Option<String>, _>(i))
                        .collect()
                })
                .collect();
        }
        let pool = self.sqlite_pool(true).await;
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect()
    }

    /// The first column (bytes) of every row of a query, on either store.
    pub async fn blob_rows(&self, sql: &str) -> Vec<Vec<u8>> {
        use sqlx::Row;
        if let Some(pool) = self.pg_pool().await {
            let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            return rows.iter().map(|r| r.get::<Vec<u8>, _>(0)).collect();
        }
        let pool = self.sqlite_pool(true).await;
        let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.iter().map(|r| r.get::<Vec<u8>, _>(0)).collect()
    }

    /// Runs a statement on the server's database from a second connection (as an operator
    /// would): `sqlite` on SQLite, `postgres` (may be several statements) on PostgreSQL.
    pub async fn exec_sql(&self, sqlite: &str, postgres: &str) {
        if let Some(pool) = self.pg_pool().await {
            sqlx::raw_sql(postgres).execute(&pool).await.unwrap();
            pool.close().await;
            return;
        }
        let pool = self.sqlite_pool(false).await;
        sqlx::query(sqlite).execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// Every row of every table of a PostgreSQL database, values as text, rows in order. The
    /// change log is left out: it says which records nodes should re-read (a request that
    /// changed nothing may still ask them to), not what the data is.
    async fn pg_snapshot(&self, pool: sqlx::PgPool) -> String {
        use sqlx::Row;
        let tables: Vec<String> = sqlx::query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
             AND table_name NOT IN ('_sqlx_migrations', 'change_log') ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        let mut out = String::new();
        for t in tables {
            let cols: Vec<String> = sqlx::query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(&t)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let (name, ty) = (r.get::<String, _>(0), r.get::<String, _>(1));
                // As SQLite's quote(): numbers bare, text quoted, NULL as NULL.
                if matches!(ty.as_str(), "bigint" | "integer" | "smallint") {
                    format!("COALESCE(\"{name}\"::text, 'NULL')")
                } else {
                    format!("quote_nullable(\"{name}\"::text)")
                }
            })
            .collect();
            let sql = format!(
                "SELECT ({})::text COLLATE \"C\" AS row_text FROM \"{t}\" ORDER BY row_text",
                cols.join(" || '|' || ")
            );
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

    /// Every row of every table, for "nothing changed in the store" assertions.
    pub async fn snapshot(&self) -> String {
        use sqlx::Row;
        if let Some(pool) = self.pg_pool().await {
            return self.pg_snapshot(pool).await;
        }
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
