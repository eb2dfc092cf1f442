//! Shared state handed to every handler.

use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_domain::secrets::{Sealer, SecretHasher};
use tessera_domain::Clock;
use tessera_protocols::digest::{DigestAlgorithm, NonceManager};
use tessera_store::{ApiKeyRecord, Store};

use crate::oauth::OAuthLimits;
use crate::registry::Registry;
use crate::tokens::Tokens;

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
    /// Longest a MongoDB employee access grant may run, in hours from the grant (default 168).
    pub max_employee_access_hours: i64,
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
    /// The token service, replaced whole when the server keys change.
    pub tokens: Arc<Tokens>,
    pub oauth_limits: Arc<OAuthLimits>,
    /// API keys with their unsealed Digest HA1 values, by public key (see [`ApiKeyCache`]).
    pub api_keys: ApiKeyCache,
}

impl AppStateInner {
    pub fn public_url(&self) -> String {
        self.settings.public_url.clone()
    }
}

/// An API key as Digest authentication needs it: the record and its unsealed HA1 values.
pub struct DigestKey {
    pub record: ApiKeyRecord,
    ha1_md5: String,
    ha1_sha256: String,
}

impl DigestKey {
    pub fn new(record: ApiKeyRecord, ha1_md5: String, ha1_sha256: String) -> Self {
        Self {
            record,
            ha1_md5,
            ha1_sha256,
        }
    }

    pub fn ha1(&self, algorithm: DigestAlgorithm) -> &str {
        match algorithm {
            DigestAlgorithm::Md5 => &self.ha1_md5,
            DigestAlgorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestKey")
            .field("public_key", &self.record.public_key)
            .finish_non_exhaustive()
    }
}

/// Most keys held at once; when full the cache starts over (keys are few, writes rare).
const MAX_CACHED_KEYS: usize = 10_000;

/// API keys found by Digest authentication, kept so a request does no store read and no
/// AES-GCM open. Only keys that exist are kept (an unknown public key costs a store read every
/// time and takes no memory). The whole cache is dropped whenever the store's
/// [`Store::api_keys_version`] moves, which every write to a key, its project memberships, its
/// access list, a project or an organization does after its commit: so a role change or deletion applies to
/// the very next request. A backend without a version is never cached.
#[derive(Default)]
pub struct ApiKeyCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    version: Option<u64>,
    keys: HashMap<String, Arc<DigestKey>>,
}

impl ApiKeyCache {
    /// The cached key for `public_key`, valid at store version `version`.
    pub fn get(&self, version: Option<u64>, public_key: &str) -> Option<Arc<DigestKey>> {
        let version = version?;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.version != Some(version) {
            inner.keys.clear();
            inner.version = Some(version);
        }
        inner.keys.get(public_key).cloned()
    }

    /// Keeps `key`, read from the store after `get` saw `version`; dropped if the version
    /// has moved since (the read may predate a write).
    pub fn insert(&self, version: Option<u64>, key: Arc<DigestKey>) {
        let Some(version) = version else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.version != Some(version) {
            return;
        }
        if inner.keys.len() >= MAX_CACHED_KEYS {
            inner.keys.clear();
        }
        inner.keys.insert(key.record.public_key.clone(), key);
    }

    /// How many keys are held (for tests).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
