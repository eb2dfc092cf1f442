//! Configuration: flags > `TESSERA_*` environment variables > an optional TOML file >
//! defaults. The effective configuration prints with secrets masked.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings as they may appear in the TOML file; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub digest_nonce_ttl_secs: Option<i64>,
    pub log_format: Option<LogFormat>,
    pub oauth_rate_limit_per_minute: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_secret_hours: Option<i64>,
    pub max_employee_access_hours: Option<i64>,
    pub usage_flush_secs: Option<u64>,
    pub max_staleness_ms: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub master_key_file: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub body_deadline_secs: Option<u64>,
    pub keep_alive_timeout_secs: Option<u64>,
    pub max_connections_per_address: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Bounds of `max_staleness_ms`. The upper one stays well below the signing-key activation
/// delay (`keys::SIGNING_KEY_ACTIVATION`, a test checks it), so a rotated key is held by
/// every node that is still trusted before any token is signed with it.
pub const MIN_STALENESS_MS: u64 = 100;
pub const MAX_STALENESS_MS: u64 = 5000;

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://...` (default: `<data_dir>/tessera.db`) or `postgres://...`/`postgresql://...`.
    pub database_url: Option<String>,
    /// Base URL for `links` and the token issuer; default `http://<listen address>`.
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub digest_nonce_ttl_secs: i64,
    pub log_format: LogFormat,
    /// Requests per minute per (client address, clientId) on the token and revocation
    /// endpoints; 0 turns the limit off.
    pub oauth_rate_limit_per_minute: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Ceiling for `secretExpiresAfterHours` (8..=8766).
    pub max_secret_hours: i64,
    /// Longest a MongoDB employee access grant may run, in hours (1..=8766; default 168).
    pub max_employee_access_hours: i64,
    /// How often usage counters (`lastUsedAt`, `requestCount`) are written to the store.
    pub usage_flush_secs: u64,
    /// Nodes sharing a database: how long after the change feed's last heartbeat a node still
    /// trusts what it holds in memory (revocations, accounts, API keys); past it, those
    /// decisions are read from the database or refused with 503.
    pub max_staleness_ms: u64,
    /// PEM certificate chain for HTTPS (with `tls_key`); reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// A file holding 32 bytes (64 hex digits) that seals the server keys kept in the database
    /// (nodes sharing one database share them this way). Without it, the keys live in
    /// `<data_dir>/server-keys.json`.
    pub master_key_file: Option<PathBuf>,
    /// Development HTTPS: a local CA and server certificate made in the data directory.
    pub tls_self_signed: bool,
    /// Seconds a client has to send a request's headers: from connecting (or the TLS
    /// handshake) and from the first byte of each later request.
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may go without the next chunk arriving.
    pub body_read_timeout_secs: u64,
    /// Seconds a whole request body may take to arrive, from the end of its headers.
    pub body_deadline_secs: u64,
    /// Seconds an idle keep-alive connection is kept open between requests.
    pub keep_alive_timeout_secs: u64,
    /// Open connections allowed per client (peer) address; 0 turns the cap off. Unset: derived
    /// from the open-files limit at start (`listener::DescriptorBudget`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_address: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./tessera-data"),
            database_url: None,
            public_url: None,
            max_body_bytes: 64 * 1024,
            digest_nonce_ttl_secs: 300,
            log_format: LogFormat::Text,
            oauth_rate_limit_per_minute: 10,
            trusted_proxies: Vec::new(),
            max_secret_hours: 8766,
            max_employee_access_hours: tessera_domain::clusters::DEFAULT_MAX_GRANT_HOURS,
            usage_flush_secs: 10,
            max_staleness_ms: 2000,
            tls_cert: None,
            tls_key: None,
            master_key_file: None,
            tls_self_signed: false,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            body_deadline_secs: 20,
            keep_alive_timeout_secs: 60,
            max_connections_per_address: None,
        }
    }
}

/// Overrides from flags and environment (clap fills both).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Optional TOML configuration file.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory (SQLite database, server keys, bootstrap credentials).
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL; default is SQLite in the data directory.
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Public base URL used in links and as the token issuer.
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "TESSERA_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Lifetime of an HTTP Digest nonce in seconds.
    #[arg(long, env = "TESSERA_DIGEST_NONCE_TTL_SECS")]
    pub digest_nonce_ttl_secs: Option<i64>,
    /// Log format.
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Token/revoke requests per minute per (client address, clientId); 0 = off.
    #[arg(long, env = "TESSERA_OAUTH_RATE_LIMIT_PER_MINUTE")]
    pub oauth_rate_limit_per_minute: Option<u32>,
    /// Comma-separated proxy CIDRs whose X-Forwarded-For is trusted.
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Ceiling for secretExpiresAfterHours (8..=8766).
    #[arg(long, env = "TESSERA_MAX_SECRET_HOURS")]
    pub max_secret_hours: Option<i64>,
    /// Longest MongoDB employee access grant, in hours (1..=8766; default 168 = 7 days).
    #[arg(long, env = "TESSERA_MAX_EMPLOYEE_ACCESS_HOURS")]
    pub max_employee_access_hours: Option<i64>,
    /// Seconds between writes of usage counters to the store.
    #[arg(long, env = "TESSERA_USAGE_FLUSH_SECS")]
    pub usage_flush_secs: Option<u64>,
    /// Nodes sharing a database: milliseconds after the change feed's last heartbeat that a
    /// node still trusts its memory (then: read from the database, or 503).
    #[arg(long, env = "TESSERA_MAX_STALENESS_MS")]
    pub max_staleness_ms: Option<u64>,
    /// PEM certificate (chain) file: serve HTTPS. Needs --tls-key; reloaded on SIGHUP.
    #[arg(long, env = "TESSERA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key file for --tls-cert.
    #[arg(long, env = "TESSERA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// File with the master key (64 hex digits, mode 0600) that seals the server keys stored
    /// in the database, so every node given it shares them; e.g. `openssl rand -hex 32`.
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Development HTTPS: create a local CA and a server certificate in the data directory.
    #[arg(long, env = "TESSERA_TLS_SELF_SIGNED", num_args = 0..=1, default_missing_value = "true")]
    pub tls_self_signed: Option<bool>,
    /// Seconds allowed to send a request's headers (also for the TLS handshake).
    #[arg(long, env = "TESSERA_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a request body may stall between chunks.
    #[arg(long, env = "TESSERA_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,
    /// Seconds a whole request body may take to arrive (408 and close after that).
    #[arg(long, env = "TESSERA_BODY_DEADLINE_SECS")]
    pub body_deadline_secs: Option<u64>,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "TESSERA_KEEP_ALIVE_TIMEOUT_SECS")]
    pub keep_alive_timeout_secs: Option<u64>,
    /// Open connections per client address; 0 = no cap. Default: derived from the
    /// open-files limit.
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid configuration file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(o: &Overrides) -> Result<Self, ConfigError> {
        let file = match &o.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let c = Config {
            listen: o.listen.or(file.listen).unwrap_or(d.listen),
            data_dir: o.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir),
            database_url: o.database_url.clone().or(file.database_url),
            public_url: o.public_url.clone().or(file.public_url),
            max_body_bytes: o
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(d.max_body_bytes),
            digest_nonce_ttl_secs: o
                .digest_nonce_ttl_secs
                .or(file.digest_nonce_ttl_secs)
                .unwrap_or(d.digest_nonce_ttl_secs),
            log_format: o.log_format.or(file.log_format).unwrap_or_default(),
            oauth_rate_limit_per_minute: o
                .oauth_rate_limit_per_minute
                .or(file.oauth_rate_limit_per_minute)
                .unwrap_or(d.oauth_rate_limit_per_minute),
            trusted_proxies: o
                .trusted_proxies
                .clone()
                .or(file.trusted_proxies)
                .unwrap_or_default(),
            max_secret_hours: o
                .max_secret_hours
                .or(file.max_secret_hours)
                .unwrap_or(d.max_secret_hours),
            max_employee_access_hours: o
                .max_employee_access_hours
                .or(file.max_employee_access_hours)
                .unwrap_or(d.max_employee_access_hours),
            usage_flush_secs: o
                .usage_flush_secs
                .or(file.usage_flush_secs)
                .unwrap_or(d.usage_flush_secs),
            max_staleness_ms: o
                .max_staleness_ms
                .or(file.max_staleness_ms)
                .unwrap_or(d.max_staleness_ms),
            tls_cert: o.tls_cert.clone().or(file.tls_cert),
            tls_key: o.tls_key.clone().or(file.tls_key),
            master_key_file: o.master_key_file.clone().or(file.master_key_file),
            tls_self_signed: o
                .tls_self_signed
                .or(file.tls_self_signed)
                .unwrap_or(d.tls_self_signed),
            header_read_timeout_secs: o
                .header_read_timeout_secs
                .or(file.header_read_timeout_secs)
                .unwrap_or(d.header_read_timeout_secs),
            body_read_timeout_secs: o
                .body_read_timeout_secs
                .or(file.body_read_timeout_secs)
                .unwrap_or(d.body_read_timeout_secs),
            body_deadline_secs: o
                .body_deadline_secs
                .or(file.body_deadline_secs)
                .unwrap_or(d.body_deadline_secs),
            keep_alive_timeout_secs: o
                .keep_alive_timeout_secs
                .or(file.keep_alive_timeout_secs)
                .unwrap_or(d.keep_alive_timeout_secs),
            max_connections_per_address: o
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .or(d.max_connections_per_address),
        };
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        if !(10..=86_400).contains(&self.digest_nonce_ttl_secs) {
            return Err(ConfigError::Invalid(
                "digest_nonce_ttl_secs must be between 10 and 86400".into(),
            ));
        }
        self.trusted_proxy_nets()?;
        if !(8..=8766).contains(&self.max_secret_hours) {
            return Err(ConfigError::Invalid(
                "max_secret_hours must be between 8 and 8766".into(),
            ));
        }
        if !(1..=8766).contains(&self.max_employee_access_hours) {
            return Err(ConfigError::Invalid(
                "max_employee_access_hours must be between 1 and 8766".into(),
            ));
        }
        if !(1..=3600).contains(&self.usage_flush_secs) {
            return Err(ConfigError::Invalid(
                "usage_flush_secs must be between 1 and 3600".into(),
            ));
        }
        if !(MIN_STALENESS_MS..=MAX_STALENESS_MS).contains(&self.max_staleness_ms) {
            return Err(ConfigError::Invalid(format!(
                "max_staleness_ms must be between {MIN_STALENESS_MS} and {MAX_STALENESS_MS}"
            )));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key go together: give both or neither".into(),
                ))
            }
            (Some(_), Some(_)) if self.tls_self_signed => {
                return Err(ConfigError::Invalid(
                    "tls_self_signed and tls_cert/tls_key are exclusive: choose one".into(),
                ))
            }
            _ => {}
        }
        for (name, v) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("body_deadline_secs", self.body_deadline_secs),
            ("keep_alive_timeout_secs", self.keep_alive_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 and 3600"
                )));
            }
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::Invalid(
                    "public_url must start with http:// or https://".into(),
                ));
            }
        }
        if let Some(u) = &self.database_url {
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return Err(ConfigError::Invalid(
                    "database_url must start with sqlite:, postgres:// or postgresql://".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "trusted_proxies: {p:?} is not an address or CIDR"
                        ))
                    })
            })
            .collect()
    }

    /// The configuration as TOML, with any password in `database_url` masked.
    pub fn to_masked_toml(&self) -> String {
        let mut masked = self.clone();
        masked.database_url = self.database_url.as_deref().map(mask_url_password);
        toml::to_string_pretty(&masked).unwrap_or_default()
    }
}

fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_owned(), e))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse(p.to_owned(), e))
}

/// `postgres://user:secret@host/db` -> `postgres://user:****@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flags_over_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 2048\n").unwrap();
        let o = Overrides {
            config: Some(f),
            max_body_bytes: Some(4096),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_body_bytes, 4096);
        assert_eq!(c.digest_nonce_ttl_secs, 300);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let o = Overrides {
            config: Some(f),
            ..Default::default()
        };
        assert!(matches!(Config::load(&o), Err(ConfigError::Parse(..))));
        let o = Overrides {
            max_body_bytes: Some(1),
            ..Default::default()
        };
        assert!(Config::load(&o).is_err());
    }

    #[test]
    fn tls_cert_and_key_go_together() {
        let o = Overrides {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let e = Config::load(&o).unwrap_err().to_string();
        assert!(e.contains("tls_cert and tls_key go together"), "{e}");
        let o = Overrides {
            tls_key: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(Config::load(&o).is_err());
        let o = Overrides {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls_self_signed: Some(true),
            ..Default::default()
        };
        assert!(Config::load(&o).is_err());
        let o = Overrides {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(Config::load(&o).is_ok());
        let o = Overrides {
            header_read_timeout_secs: Some(0),
            ..Default::default()
        };
        assert!(Config::load(&o).is_err());
    }

    #[test]
    fn body_deadline_and_connection_cap() {
        let d = Config::load(&Overrides::default()).unwrap();
        assert_eq!(d.body_deadline_secs, 20);
        assert_eq!(d.max_connections_per_address, None);
        assert!(!d.to_masked_toml().contains("max_connections_per_address"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(
            &f,
            "body_deadline_secs = 5\nmax_connections_per_address = 0\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(f),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(c.body_deadline_secs, 5);
        assert_eq!(c.max_connections_per_address, Some(0));
        let o = Overrides {
            body_deadline_secs: Some(0),
            ..Default::default()
        };
        let e = Config::load(&o).unwrap_err().to_string();
        assert!(e.contains("body_deadline_secs"), "{e}");
    }

    #[test]
    fn employee_access_ceiling() {
        assert_eq!(
            Config::load(&Overrides::default())
                .unwrap()
                .max_employee_access_hours,
            168
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, "max_employee_access_hours = 24\n").unwrap();
        let from_file = Overrides {
            config: Some(f.clone()),
            ..Default::default()
        };
        assert_eq!(
            Config::load(&from_file).unwrap().max_employee_access_hours,
            24
        );
        let flag = Overrides {
            config: Some(f),
            max_employee_access_hours: Some(48),
            ..Default::default()
        };
        assert_eq!(Config::load(&flag).unwrap().max_employee_access_hours, 48);
        for bad in [0, -1, 8767] {
            let o = Overrides {
                max_employee_access_hours: Some(bad),
                ..Default::default()
            };
            let e = Config::load(&o).unwrap_err().to_string();
            assert!(e.contains("max_employee_access_hours"), "{bad}: {e}");
        }
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url_password("postgres://u:pw@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(mask_url_password("sqlite:///x.db"), "sqlite:///x.db");
        let c = Config {
            database_url: Some("sqlite://u:hunter2@x".into()),
            ..Default::default()
        };
        assert!(!c.to_masked_toml().contains("hunter2"));
        let c = Config {
            database_url: Some("postgres://tessera:hunter2@db:5432/tessera".into()),
            ..Default::default()
        };
        let printed = c.to_masked_toml();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://tessera:****@db:5432/tessera"),
            "{printed}"
        );
    }

    #[test]
    fn database_url_selects_sqlite_or_postgres() {
        for ok in [
            "sqlite:///tmp/x.db",
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db?sslmode=disable",
        ] {
            let o = Overrides {
                database_url: Some(ok.into()),
                ..Default::default()
            };
            assert!(Config::load(&o).is_ok(), "{ok}");
        }
        let o = Overrides {
            database_url: Some("mysql://u@h/db".into()),
            ..Default::default()
        };
        assert!(Config::load(&o).is_err());
    }
}
