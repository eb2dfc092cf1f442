//! HTTPS: the rustls server configuration from PEM files, reloadable without dropping the
//! listener, and the development mode that makes a local CA and a server certificate in the
//! data directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::fsutil::write_private_file;

/// File names of the development mode, inside the data directory.
pub const DEV_CA_FILE: &str = "tls-ca.pem";
pub const DEV_CERT_FILE: &str = "tls-cert.pem";
pub const DEV_KEY_FILE: &str = "tls-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate file {0}: {1}")]
    Cert(PathBuf, String),
    #[error("cannot read TLS private key file {0}: {1}")]
    Key(PathBuf, String),
    #[error("TLS certificate file {0} holds no certificate")]
    NoCert(PathBuf),
    #[error("TLS certificate {0} and key {1} do not make a server configuration: {2}")]
    Config(PathBuf, PathBuf, String),
    #[error("cannot create the development certificates: {0}")]
    Generate(String),
}

/// Reads a PEM certificate chain and private key into a rustls server configuration
/// (ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert(cert.to_owned(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Cert(cert.to_owned(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(cert.to_owned()));
    }
    // The error text of the PEM parser never contains key material.
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.to_owned(), e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private_key))
            .map_err(|e| TlsError::Config(cert.to_owned(), key.to_owned(), e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate and key files and the configuration currently served from them.
pub struct TlsState {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsState {
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<Self, TlsError> {
        let config = load_server_config(&cert, &key)?;
        Ok(Self {
            cert,
            key,
            current: RwLock::new(config),
        })
    }

    /// The configuration new connections are handshaken with.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again. On success new connections get the new certificate (open
    /// ones keep theirs); on failure the old configuration stays and the error is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load_server_config(&self.cert, &self.key)?;
        match self.current.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }
}

/// Paths of the development CA and server certificate.
#[derive(Debug, Clone)]
pub struct DevCertificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Creates, on first use, a local CA and a server certificate signed by it for localhost,
/// 127.0.0.1, ::1 and the listen host, in `data_dir`; later starts reuse them. The CA's
/// private key is never written anywhere: the CA can sign nothing but this one certificate,
/// so trusting it trusts nothing else. The CA certificate is 0644 (it is public), the
/// server certificate and key 0600.
pub fn ensure_dev_certificates(
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<DevCertificates, TlsError> {
    let paths = DevCertificates {
        ca: data_dir.join(DEV_CA_FILE),
        cert: data_dir.join(DEV_CERT_FILE),
        key: data_dir.join(DEV_KEY_FILE),
    };
    if paths.ca.exists() && paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(gen)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tessera local development CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(gen)?;

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = listen.ip();
    if !host.is_unspecified() && !is_default_name(host) {
        names.push(host.to_string());
    }
    let server_key = rcgen::KeyPair::generate().map_err(gen)?;
    let mut params = rcgen::CertificateParams::new(names).map_err(gen)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tessera development server");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&server_key, &ca, &ca_key).map_err(gen)?;

    let io = |e: anyhow::Error| TlsError::Generate(e.to_string());
    // Leftovers of an interrupted first start are replaced as a set.
    for p in [&paths.ca, &paths.cert, &paths.key] {
        if p.exists() {
            std::fs::remove_file(p).map_err(|e| TlsError::Generate(e.to_string()))?;
        }
    }
    write_private_file(&paths.key, server_key.serialize_pem().as_bytes()).map_err(io)?;
    write_private_file(
        &paths.cert,
        format!("{}{}", cert.pem(), ca.pem()).as_bytes(),
    )
    .map_err(io)?;
    write_private_file(&paths.ca, ca.pem().as_bytes()).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&paths.ca, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| TlsError::Generate(e.to_string()))?;
    }
    Ok(paths)
}

fn is_default_name(ip: IpAddr) -> bool {
    ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
}
