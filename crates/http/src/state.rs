//! Shared state handed to every handler.

use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tessera_domain::secrets::{Sealer, SecretHasher};
use tessera_domain::Clock;
use tessera_protocols::digest::NonceManager;
use tessera_store::Store;

use crate::oauth::OAuthLimits;
use crate::registry::Registry;
use crate::tokens::TokenService;

/// Server-held key material, loaded once at start (never per request).
pub struct Crypto {
    /// Keyed hash of secrets at rest.
    pub hasher: SecretHasher,
    /// Encryption of recoverable key material (Digest HA1 values).
    pub sealer: Sealer,
    /// Digest nonces: issue, validate, replay tracking.
    pub nonces: NonceManager,
}

/// Settings the HTTP layer needs (the binary owns the full configuration).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Absolute base URL used in `links` (e.g. `http://127.0.0.1:8080`), no trailing slash.
    pub public_url: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` is believed (RFC 9700 §4.13); empty by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Organization-wide ceiling for `secretExpiresAfterHours` (at most 8766).
    pub max_secret_hours: i64,
}

/// Cheap to clone (one reference count): axum clones the state for every request.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub crypto: Arc<Crypto>,
    pub settings: Arc<HttpSettings>,
    pub metrics: Option<PrometheusHandle>,
    /// Service accounts, revocations and usage, in memory (see `registry`).
    pub registry: Arc<Registry>,
    pub tokens: Arc<TokenService>,
    pub oauth_limits: Arc<OAuthLimits>,
}

impl AppStateInner {
    pub fn public_url(&self) -> String {
        self.settings.public_url.clone()
    }
}
