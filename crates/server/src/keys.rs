//! Server key material, kept in `<data>/server-keys.json` (mode 0600), never in the database:
//! a stolen database alone can neither verify secrets nor open Digest material.

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
    pub const FILE: &'static str = "server-keys.json";

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
            return Ok(keys);
        }
        let keys = ServerKeys {
            secret_hash_key: random_hex32(),
            sealing_key: random_hex32(),
            nonce_key: random_hex32(),
        };
        write_private_file(&path, serde_json::to_string_pretty(&keys)?.as_bytes())?;
        tracing::info!(path = %path.display(), "created server keys");
        Ok(keys)
    }
}
