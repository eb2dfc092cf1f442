//! Server key material. By default it is kept in `<data>/server-keys.json` (mode 0600), never
//! in the database: a stolen database alone can neither verify secrets nor open Digest
//! material. Nodes that share one database are given one master key instead
//! (`--master-key-file`): the keys then live in the database's `meta` table, sealed with it
//! (AES-256-GCM), so every node hashes, seals, authenticates nonces and signs with the same
//! keys, and a stolen database alone is still useless without the master key.

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::fsutil::write_private_file;
use tessera_domain::secrets::Sealer;
use tessera_store::Store;

/// The `meta` key under which the sealed server keys are stored (shared mode).
pub const SHARED_META_KEY: &str = "server_keys_sealed";
/// Associated data of the sealed keys: a sealed value is only ever opened as this.
const SHARED_AAD: &[u8] = b"tessera server keys v1";
/// Signing keys kept: tokens live an hour, so three keys cover any live token.
const KEEP_SIGNING_KEYS: usize = 3;

/// Reads the master key: 64 hex digits (whitespace around them ignored) in a file that other
/// users cannot read.
pub fn read_master_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    crate::fsutil::check_private(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("master key file {}: {e}", path.display()))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|_| {
        anyhow::anyhow!(
            "master key file {} must hold 64 hex digits (e.g. `openssl rand -hex 32`)",
            path.display()
        )
    })?;
    Ok(out)
}

#[derive(Serialize, Deserialize)]
pub struct ServerKeys {
    /// HMAC-SHA-256 key for secrets at rest.
    pub secret_hash_key: String,
    /// AES-256-GCM key sealing Digest HA1 values.
    pub sealing_key: String,
    /// HMAC key authenticating Digest nonces.
    pub nonce_key: String,
    /// ES256 token-signing keys, oldest first: the last signs, all verify.
    #[serde(default)]
    pub signing_keys: Vec<SigningKey>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 document, hex.
    pub pkcs8: String,
}

impl SigningKey {
    pub fn generate() -> anyhow::Result<Self> {
        let pkcs8 = tessera_protocols::jwt::generate_pkcs8().map_err(|e| anyhow::anyhow!("{e}"))?;
        let signer = tessera_protocols::jwt::JwtSigner::from_pkcs8("probe", &pkcs8)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &signer.public_key_bytes());
        Ok(Self {
            kid: hex::encode(&digest.as_ref()[..8]),
            pkcs8: hex::encode(pkcs8),
        })
    }
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(<redacted>)")
    }
}

fn random_hex32() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub fn decode32(field: &str, hex_str: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out)
        .map_err(|_| anyhow::anyhow!("server key {field} is not 32 bytes of hex"))?;
    Ok(out)
}

impl ServerKeys {
    /// (kid, PKCS#8 bytes) for every signing key, oldest first.
    pub fn signing_keys(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        self.signing_keys
            .iter()
            .map(|k| {
                Ok((
                    k.kid.clone(),
                    hex::decode(&k.pkcs8)
                        .map_err(|_| anyhow::anyhow!("signing key {} is not hex", k.kid))?,
                ))
            })
            .collect()
    }

    pub const FILE: &'static str = "server-keys.json";

    /// Adds a new token-signing key (it signs from the next start; older keys keep verifying
    /// the tokens they signed) and rewrites the key file atomically, mode 0600. Returns the
    /// new key's kid.
    pub fn rotate_signing_key(data_dir: &Path) -> anyhow::Result<String> {
        let path = data_dir.join(Self::FILE);
        let mut keys = Self::load_or_create(data_dir)?;
        let new = SigningKey::generate()?;
        let kid = new.kid.clone();
        keys.signing_keys.push(new);
        let excess = keys.signing_keys.len().saturating_sub(KEEP_SIGNING_KEYS);
        keys.signing_keys.drain(..excess);
        let tmp = data_dir.join(format!("{}.tmp", Self::FILE));
        let _ = std::fs::remove_file(&tmp);
        write_private_file(&tmp, serde_json::to_string_pretty(&keys)?.as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        Ok(kid)
    }

    fn generate() -> anyhow::Result<Self> {
        Ok(ServerKeys {
            secret_hash_key: random_hex32(),
            sealing_key: random_hex32(),
            nonce_key: random_hex32(),
            signing_keys: vec![SigningKey::generate()?],
        })
    }

    fn validate(&self, origin: &str) -> anyhow::Result<()> {
        decode32("secret_hash_key", &self.secret_hash_key)?;
        decode32("sealing_key", &self.sealing_key)?;
        decode32("nonce_key", &self.nonce_key)?;
        if self.signing_keys.is_empty() {
            anyhow::bail!("{origin} has no signing_keys");
        }
        Ok(())
    }

    fn seal(&self, sealer: &Sealer) -> anyhow::Result<String> {
        Ok(hex::encode(
            sealer.seal(serde_json::to_string(self)?.as_bytes(), SHARED_AAD),
        ))
    }

    fn open(sealer: &Sealer, stored: &str) -> anyhow::Result<Self> {
        let sealed = hex::decode(stored)
            .map_err(|_| anyhow::anyhow!("the server keys in the database are not hex"))?;
        let plain = sealer.open(&sealed, SHARED_AAD).map_err(|_| {
            anyhow::anyhow!(
                "cannot open the server keys in the database: this master key is not the one \
                 they were sealed with"
            )
        })?;
        let keys: ServerKeys = serde_json::from_slice(&plain)
            .map_err(|e| anyhow::anyhow!("the server keys in the database are malformed: {e}"))?;
        keys.validate("the database's server keys")?;
        Ok(keys)
    }

    /// Shared mode: loads the keys sealed in the database, or creates them. Of several nodes
    /// starting at once, the first to write wins and the others use its keys. When the database
    /// has no keys yet and this node has a `server-keys.json` in `data_dir`, those keys are the
    /// ones sealed into the database: a single node moving to shared keys keeps its tokens,
    /// client secrets, Digest material and API keys valid. The file is left in place.
    pub async fn load_or_create_shared(
        store: &dyn Store,
        master: &[u8; 32],
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let sealer = Sealer::new(master).ok_or_else(|| anyhow::anyhow!("master key rejected"))?;
        if let Some(stored) = store.meta(SHARED_META_KEY).await? {
            return Self::open(&sealer, &stored);
        }
        let keys = if data_dir.join(Self::FILE).exists() {
            Self::load_or_create(data_dir)?
        } else {
            Self::generate()?
        };
        if store
            .swap_meta(SHARED_META_KEY, None, &keys.seal(&sealer)?)
            .await?
        {
            tracing::info!("created server keys in the database, sealed with the master key");
            return Ok(keys);
        }
        let stored = store
            .meta(SHARED_META_KEY)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the server keys vanished from the database"))?;
        Self::open(&sealer, &stored)
    }

    /// Shared mode: adds a signing key to the keys in the database (compare-and-set, so two
    /// rotations at once both land). Returns the new key's kid.
    pub async fn rotate_signing_key_shared(
        store: &dyn Store,
        master: &[u8; 32],
    ) -> anyhow::Result<String> {
        let sealer = Sealer::new(master).ok_or_else(|| anyhow::anyhow!("master key rejected"))?;
        for _ in 0..8 {
            let stored = store.meta(SHARED_META_KEY).await?.ok_or_else(|| {
                anyhow::anyhow!("the database has no server keys yet: start a node first")
            })?;
            let mut keys = Self::open(&sealer, &stored)?;
            let new = SigningKey::generate()?;
            let kid = new.kid.clone();
            keys.signing_keys.push(new);
            let excess = keys.signing_keys.len().saturating_sub(KEEP_SIGNING_KEYS);
            keys.signing_keys.drain(..excess);
            if store
                .swap_meta(SHARED_META_KEY, Some(&stored), &keys.seal(&sealer)?)
                .await?
            {
                return Ok(kid);
            }
        }
        anyhow::bail!("the server keys kept changing under this rotation; try again")
    }

    /// Loads the keys, creating them (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(Self::FILE);
        if path.exists() {
            crate::fsutil::check_private(&path)?;
            let text = std::fs::read_to_string(&path)?;
            let keys: ServerKeys = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is malformed: {e}", path.display()))?;
            keys.validate(&path.display().to_string())?;
            return Ok(keys);
        }
        let keys = Self::generate()?;
        write_private_file(&path, serde_json::to_string_pretty(&keys)?.as_bytes())?;
        tracing::info!(path = %path.display(), "created server keys");
        Ok(keys)
    }
}
