//! Server key material, kept in `<data>/server-keys.json` (mode 0600), never in the database
//! in the clear: a stolen database alone can neither verify secrets nor open Digest material.
//!
//! Several nodes on one database (`--master-key-file`) share one set of keys instead: it is
//! kept in the database's `meta` table sealed (AES-256-GCM) under the master key every node
//! is given, so every node verifies every token, secret and Digest response, and the
//! database alone still opens nothing.

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::fsutil::write_private_file;

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

/// The `meta` key of the sealed shared keys.
pub const SHARED_META_KEY: &str = "server_keys_sealed";
/// Binds the sealed keys to their purpose.
const SHARED_AAD: &[u8] = b"tessera server keys v1";

/// Reads a master key file: 32 bytes as 64 hex digits (surrounding whitespace ignored), in a
/// file only its owner can read.
pub fn load_master_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    crate::fsutil::check_private(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read master key file {}: {e}", path.display()))?;
    decode32("master key", text.trim())
        .map_err(|_| anyhow::anyhow!("{} must hold 32 bytes as 64 hex digits", path.display()))
}

impl ServerKeys {
    /// The keys every node on `store` shares, sealed there under `master`. The first node to
    /// start creates them (from its existing key file when it has one, so a single node moving
    /// to shared keys keeps its tokens, secrets and API keys valid); a node that loses that
    /// race uses the winner's.
    pub async fn load_or_create_shared(
        store: &dyn tessera_store::Store,
        master: &[u8; 32],
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let sealer = tessera_domain::secrets::Sealer::new(master)
            .ok_or_else(|| anyhow::anyhow!("master key rejected"))?;
        if store.meta(SHARED_META_KEY).await?.is_none() {
            let mine = if data_dir.join(Self::FILE).exists() {
                Self::load_or_create(data_dir)?
            } else {
                ServerKeys {
                    secret_hash_key: random_hex32(),
                    sealing_key: random_hex32(),
                    nonce_key: random_hex32(),
                    signing_keys: vec![SigningKey::generate()?],
                }
            };
            let sealed = sealer.seal(serde_json::to_string(&mine)?.as_bytes(), SHARED_AAD);
            if store
                .insert_meta_if_absent(SHARED_META_KEY, &hex::encode(sealed))
                .await?
            {
                tracing::info!("created the shared server keys in the database");
            }
        }
        let stored = store
            .meta(SHARED_META_KEY)
            .await?
            .ok_or_else(|| anyhow::anyhow!("shared server keys vanished from the database"))?;
        let sealed = hex::decode(stored.trim())
            .map_err(|_| anyhow::anyhow!("shared server keys in the database are not hex"))?;
        let plain = sealer.open(&sealed, SHARED_AAD).map_err(|_| {
            anyhow::anyhow!(
                "the shared server keys in the database do not open with this master key \
                 (every node must be given the same --master-key-file)"
            )
        })?;
        let keys: ServerKeys = serde_json::from_slice(&plain)
            .map_err(|e| anyhow::anyhow!("shared server keys are malformed: {e}"))?;
        decode32("secret_hash_key", &keys.secret_hash_key)?;
        decode32("sealing_key", &keys.sealing_key)?;
        decode32("nonce_key", &keys.nonce_key)?;
        if keys.signing_keys.is_empty() {
            anyhow::bail!("shared server keys have no signing_keys");
        }
        Ok(keys)
    }

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
        // Tokens live an hour: keep the newest three keys, enough for any live token.
        let excess = keys.signing_keys.len().saturating_sub(3);
        keys.signing_keys.drain(..excess);
        let tmp = data_dir.join(format!("{}.tmp", Self::FILE));
        let _ = std::fs::remove_file(&tmp);
        write_private_file(&tmp, serde_json::to_string_pretty(&keys)?.as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        Ok(kid)
    }

    /// Loads the keys, creating them (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(Self::FILE);
        if path.exists() {
            crate::fsutil::check_private(&path)?;
            let text = std::fs::read_to_string(&path)?;
            let keys: ServerKeys = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is malformed: {e}", path.display()))?;
            decode32("secret_hash_key", &keys.secret_hash_key)?;
            decode32("sealing_key", &keys.sealing_key)?;
            decode32("nonce_key", &keys.nonce_key)?;
            if keys.signing_keys.is_empty() {
                anyhow::bail!("{} has no signing_keys", path.display());
            }
            return Ok(keys);
        }
        let keys = ServerKeys {
            secret_hash_key: random_hex32(),
            sealing_key: random_hex32(),
            nonce_key: random_hex32(),
            signing_keys: vec![SigningKey::generate()?],
        };
        write_private_file(&path, serde_json::to_string_pretty(&keys)?.as_bytes())?;
        tracing::info!(path = %path.display(), "created server keys");
        Ok(keys)
    }
}
