//! Server lifecycle: open the store, load keys, bootstrap on first start, bind, serve, and
//! on shutdown finish in-flight requests before returning.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_domain::secrets::{Sealer, SecretHasher};
use tessera_domain::Clock;
use tessera_http::oauth::OAuthLimits;
use tessera_http::registry::Registry;
use tessera_http::tokens::{KeyMaterial, TokenService, Tokens};
use tessera_http::{AppState, AppStateInner, Crypto, HttpSettings};
use tessera_protocols::digest::NonceManager;
use tessera_store::{SqliteStore, Store};

use tokio::net::TcpListener;

use crate::bootstrap::{self, BootstrapOutput};
use crate::config::Config;
use crate::fsutil::ensure_private_dir;
use crate::keys::{decode32, ServerKeys};
use crate::listener::{self, ConnLimits};
use crate::tls::{self, TlsState};

pub const DEFAULT_ORG_NAME: &str = "Tessera";
pub const DEFAULT_PROJECT_NAME: &str = "Project0";

/// Everything needed to serve, before binding.
pub struct Prepared {
    pub config: Config,
    pub state_parts: StateParts,
}

pub struct StateParts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub crypto: Arc<Crypto>,
    pub registry: Arc<Registry>,
    signing_keys: Vec<KeyMaterial>,
    /// The master key, when the server keys live in the database (then a rotation another
    /// node makes is re-read from there).
    master: Option<[u8; 32]>,
    /// The fingerprint of the keys this node started with; re-read keys must match it.
    fingerprint: String,
    /// Changes other nodes commit, subscribed before the registry was loaded so none falls
    /// between the two; `None` for a store one process uses alone.
    changes: Option<tokio::sync::broadcast::Receiver<tessera_store::Change>>,
}

impl StateParts {
    /// The application state; `public_url` is also the token issuer.
    pub fn state(
        &self,
        public_url: String,
        config: &Config,
        metrics: Option<metrics_handle::Handle>,
    ) -> anyhow::Result<AppState> {
        let tokens = TokenService::new(public_url.clone(), &self.signing_keys)
            .map_err(|e| anyhow::anyhow!("token signing keys: {e}"))?;
        Ok(AppState::new(AppStateInner {
            store: self.store.clone(),
            clock: self.clock.clone(),
            crypto: self.crypto.clone(),
            settings: Arc::new(HttpSettings {
                public_url,
                max_body_bytes: config.max_body_bytes,
                trusted_proxies: config.trusted_proxy_nets()?,
                max_secret_hours: config.max_secret_hours,
                max_employee_access_hours: config.max_employee_access_hours,
            }),
            metrics,
            registry: self.registry.clone(),
            tokens: Arc::new(Tokens::new(tokens)),
            oauth_limits: Arc::new(OAuthLimits::new(
                config.oauth_rate_limit_per_minute,
                self.clock.clone(),
            )),
            api_keys: Default::default(),
        }))
    }
}

pub mod metrics_handle {
    pub type Handle = metrics_exporter_prometheus::PrometheusHandle;
}

pub fn database_path(config: &Config) -> PathBuf {
    config.data_dir.join("tessera.db")
}

/// Opens the configured store, applying pending migrations: `database_url` when given
/// (`postgres://`/`postgresql://` or `sqlite:`), else SQLite at [`database_path`] (created
/// with the data directory's file mode if missing). The one place the server and
/// `tessera migrate` open a store.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let feed = tessera_store::postgres::feed::FeedSettings::for_bound(staleness_bound(config));
    Ok(match &config.database_url {
        Some(url) => tessera_store::open_url_with(url, feed).await?,
        None => {
            ensure_private_dir(&config.data_dir)?;
            let path = database_path(config);
            if !path.exists() {
                // SQLite gives its -wal and -shm files the database file's mode.
                crate::fsutil::write_private_file(&path, b"")?;
            }
            Arc::new(SqliteStore::open(&path).await?)
        }
    })
}

/// How long a node trusts its memory after the change feed's last heartbeat.
pub fn staleness_bound(config: &Config) -> std::time::Duration {
    std::time::Duration::from_millis(config.max_staleness_ms)
}

/// Opens the store and loads (or creates) the server keys.
pub async fn prepare(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Prepared> {
    prepare_with_store(config, clock, |store| store).await
}

/// [`prepare`], with the opened store passed through `wrap` before anything uses it. Tests use
/// it to inject store failures (a wrapper that delegates and fails on purpose).
pub async fn prepare_with_store(
    config: Config,
    clock: Arc<dyn Clock>,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> anyhow::Result<Prepared> {
    ensure_private_dir(&config.data_dir)?;
    let master = match &config.master_key_file {
        Some(path) => Some(crate::keys::read_master_key(path)?),
        None => None,
    };
    let store = open_store(&config).await?;
    let keys = match &master {
        // Shared by every node on the database, sealed there under the master key; a node
        // with keys of its own seals those when it is the first.
        Some(master) => {
            ServerKeys::load_or_create_shared(store.as_ref(), master, &config.data_dir).await?
        }
        None => ServerKeys::load_or_create(&config.data_dir)?,
    };
    // Refuses to start with keys the database was not used with (a missing or different
    // master key, another node's server-keys.json): its data could not be read.
    keys.check_database(store.as_ref(), master.is_some())
        .await?;
    let fingerprint = keys.fingerprint()?;
    let store = wrap(store);
    let sealer = Sealer::new(&decode32("sealing_key", &keys.sealing_key)?)
        .ok_or_else(|| anyhow::anyhow!("sealing key rejected"))?;
    let crypto = Arc::new(Crypto {
        hasher: SecretHasher::new(&decode32("secret_hash_key", &keys.secret_hash_key)?),
        sealer,
        nonces: NonceManager::new(
            &decode32("nonce_key", &keys.nonce_key)?,
            chrono::Duration::seconds(config.digest_nonce_ttl_secs),
        ),
    });
    let changes = store.changes();
    // With a feed (a shared database), the mirror is trusted only within the staleness bound
    // of the feed's last heartbeat.
    let bound = changes.as_ref().map(|_| staleness_bound(&config));
    let registry = Arc::new(Registry::load(store.as_ref(), clock.now(), bound).await?);
    Ok(Prepared {
        config,
        state_parts: StateParts {
            store,
            clock,
            crypto,
            registry,
            signing_keys: keys.signing_keys()?,
            master,
            fingerprint,
            changes,
        },
    })
}

/// One round of the periodic work: writes usage counters to the store, purges expired
/// revocations, records grant expiries nobody has observed yet (the grant itself is already
/// gone: it is never shown or honoured past its expiry) and prunes idle rate-limit keys.
/// Failures are logged and retried next round.
pub async fn periodic_work(state: &AppState) {
    if let Err(e) = state
        .registry
        .flush(state.store.as_ref(), state.clock.now())
        .await
    {
        tracing::error!(error = %e, "usage flush failed; will retry");
    }
    if let Err(e) = tessera_http::routes::clusters::record_expired_grants(state).await {
        tracing::error!(error = %e, "recording expired grants failed; will retry");
    }
    state.oauth_limits.prune();
}

/// [`periodic_work`] every `every`.
async fn flush_usage_periodically(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        periodic_work(&state).await;
    }
}

/// Applies the changes other nodes commit to this node's registry, in the order the store
/// publishes them; a receiver that fell behind re-reads everything. A change of the server
/// keys (a rotation) replaces the token service.
async fn follow_changes(
    state: AppState,
    mut changes: tokio::sync::broadcast::Receiver<tessera_store::Change>,
    keys: KeyReload,
) {
    use tessera_store::Change;
    use tokio::sync::broadcast::error::RecvError;
    // Read once now: a rotation committed between this node's key load and its subscription
    // reached nobody here. A read that fails is retried on every heartbeat until it succeeds.
    let mut keys_pending = !keys.reload(&state).await;
    loop {
        let change = match changes.recv().await {
            Ok(c) => c,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "fell behind the change feed; re-reading everything");
                Change::Everything
            }
            Err(RecvError::Closed) => return,
        };
        match change {
            Change::ServerKeys => {
                keys_pending = !keys.reload(&state).await;
                continue;
            }
            Change::Everything => keys_pending = !keys.reload(&state).await,
            Change::Synced(_) if keys_pending => keys_pending = !keys.reload(&state).await,
            _ => {}
        }
        if let Err(e) = state
            .registry
            .apply(state.store.as_ref(), &change, state.clock.now())
            .await
        {
            tracing::error!(error = %e, ?change, "applying a change from another node failed; this node refuses what depends on it until it has caught up");
        }
    }
}

/// Re-reads the server keys from the database (shared mode) and swaps the token service.
struct KeyReload {
    master: Option<[u8; 32]>,
    fingerprint: String,
    issuer: String,
}

impl KeyReload {
    /// `false`: the keys could not be read (logged); the caller retries.
    async fn reload(&self, state: &AppState) -> bool {
        let Some(master) = &self.master else {
            return true;
        };
        let result = async {
            let keys = ServerKeys::load_shared(state.store.as_ref(), master).await?;
            if keys.fingerprint()? != self.fingerprint {
                anyhow::bail!("the server keys in the database are not the ones this node started with; restart it");
            }
            let service = TokenService::new(self.issuer.clone(), &keys.signing_keys()?)
                .map_err(|e| anyhow::anyhow!("token signing keys: {e}"))?;
            let kids = service.kids();
            let changed = kids != state.tokens.current().kids();
            state.tokens.replace(service);
            Ok((kids, changed))
        }
        .await;
        match result {
            Ok((kids, changed)) => {
                if changed {
                    tracing::info!(?kids, "server keys re-read: signing keys in use");
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "re-reading the server keys failed; retried on the next heartbeat");
                false
            }
        }
    }
}

/// The Prometheus recorder keeps histogram samples until upkeep folds them into buckets;
/// without it, memory and render time grow with every request.
async fn metrics_upkeep(handle: metrics_handle::Handle) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// Set when this start bootstrapped an empty data directory.
    pub bootstrap: Option<BootstrapOutput>,
    /// Set when serving HTTPS: the certificate in use, reloadable.
    pub tls: Option<Arc<TlsState>>,
    /// The development CA certificate, in `--tls-self-signed` mode.
    pub tls_ca: Option<PathBuf>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The TLS configuration the settings ask for: files, the development certificates, or none.
fn tls_setup(config: &Config) -> anyhow::Result<(Option<Arc<TlsState>>, Option<PathBuf>)> {
    let (cert, key, ca) = match (&config.tls_cert, &config.tls_key, config.tls_self_signed) {
        (Some(c), Some(k), _) => (c.clone(), k.clone(), None),
        (_, _, true) => {
            let dev = tls::ensure_dev_certificates(&config.data_dir, config.listen)?;
            (dev.cert, dev.key, Some(dev.ca))
        }
        _ => return Ok((None, None)),
    };
    Ok((Some(Arc::new(TlsState::load(cert, key)?)), ca))
}

/// Reloads the certificate and key on every SIGHUP; a bad file keeps the old ones.
fn reload_on_sighup(tls: Arc<TlsState>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS reload failed; still serving the previous certificate")
                }
            }
        }
    }))
}

/// Binds the configured listen address. The error names the address ("cannot listen on
/// 127.0.0.1:8080: Address already in use"). `tessera serve` binds before [`prepare`], so a
/// server that cannot listen exits before it creates keys or a database in a fresh data
/// directory.
pub async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))
}

/// Binds ([`bind`]), bootstraps if the store is empty, and serves until `shutdown` resolves;
/// in-flight requests finish before the returned task completes.
pub async fn start(
    prepared: Prepared,
    metrics: Option<metrics_handle::Handle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    announce: impl FnOnce(Option<&BootstrapOutput>),
) -> anyhow::Result<Running> {
    let listener = bind(&prepared.config).await?;
    start_on(listener, prepared, metrics, shutdown, announce).await
}

/// [`start`] on a listener already bound (by [`bind`], before [`prepare`]).
pub async fn start_on(
    listener: TcpListener,
    prepared: Prepared,
    metrics: Option<metrics_handle::Handle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    announce: impl FnOnce(Option<&BootstrapOutput>),
) -> anyhow::Result<Running> {
    let Prepared {
        config,
        mut state_parts,
    } = prepared;
    let (tls, tls_ca) = tls_setup(&config)?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let state = state_parts.state(public_url, &config, metrics)?;
    let bootstrap = if state.store.meta("bootstrapped_at").await?.is_none() {
        match bootstrap::run(
            &state,
            &config.data_dir,
            DEFAULT_ORG_NAME,
            DEFAULT_PROJECT_NAME,
        )
        .await
        {
            Ok(out) => Some(out),
            // Another node on the same database bootstrapped between our check and our
            // write (the store's marker, now set, decides): nothing to do here.
            Err(bootstrap::BootstrapError::AlreadyDone)
                if state.store.meta("bootstrapped_at").await?.is_some() =>
            {
                None
            }
            Err(e) => return Err(anyhow::anyhow!("bootstrap failed: {e}")),
        }
    } else {
        None
    };
    // Before the first request is served: whoever waits for readiness finds them printed.
    announce(bootstrap.as_ref());
    if let Some(ca) = &tls_ca {
        println!(
            "tessera: TLS CA certificate: {} (trust it with curl --cacert, requests verify=, NODE_EXTRA_CA_CERTS)",
            ca.display()
        );
    }
    let reloader = match &tls {
        Some(t) => Some(reload_on_sighup(t.clone())?),
        None => None,
    };
    let limits = ConnLimits {
        header_read_timeout: std::time::Duration::from_secs(config.header_read_timeout_secs),
        body_read_timeout: std::time::Duration::from_secs(config.body_read_timeout_secs),
        body_deadline: std::time::Duration::from_secs(config.body_deadline_secs),
        max_body_bytes: config.max_body_bytes,
        keep_alive_timeout: std::time::Duration::from_secs(config.keep_alive_timeout_secs),
        max_per_address: 0,
        max_open: 0,
    }
    .sized_for(
        listener::open_files_limit(),
        config.max_connections_per_address,
    );
    let api = tessera_http::app(state.clone());
    // The browser console at `/`, a client of the API in process (crates/console).
    let app = api
        .clone()
        .merge(tessera_console::router(state.clone(), api));
    let flusher = tokio::spawn(flush_usage_periodically(
        state.clone(),
        std::time::Duration::from_secs(config.usage_flush_secs),
    ));
    let follower = state_parts.changes.take().map(|rx| {
        let keys = KeyReload {
            master: state_parts.master,
            fingerprint: state_parts.fingerprint.clone(),
            issuer: state.tokens.current().issuer().to_owned(),
        };
        tokio::spawn(follow_changes(state.clone(), rx, keys))
    });
    let upkeep = state
        .metrics
        .clone()
        .map(|h| tokio::spawn(metrics_upkeep(h)));
    let final_state = state.clone();
    let serve_tls = tls.clone();
    let task = tokio::spawn(async move {
        let served = listener::serve(listener, app, serve_tls, limits, shutdown).await;
        flusher.abort();
        if let Some(f) = follower {
            f.abort();
        }
        if let Some(r) = reloader {
            r.abort();
        }
        if let Some(u) = upkeep {
            u.abort();
        }
        // Nothing counted in memory is lost on a clean stop.
        if let Err(e) = final_state
            .registry
            .flush(final_state.store.as_ref(), final_state.clock.now())
            .await
        {
            tracing::error!(error = %e, "final usage flush failed");
        }
        final_state.store.close().await;
        served
    });
    Ok(Running {
        addr,
        state,
        bootstrap,
        tls,
        tls_ca,
        task,
    })
}
