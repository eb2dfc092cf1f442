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
use tessera_domain::{EventId, EventType};
use tessera_store::events::{Actor, NewEvent};
use tessera_store::Store;

/// The `meta` key under which the sealed server keys are stored (shared mode).
pub const SHARED_META_KEY: &str = "server_keys_sealed";
/// The `meta` key under which a fingerprint of the keys a database is used with is kept (both
/// modes), so a node started with other keys refuses to start instead of failing requests.
pub const FINGERPRINT_META_KEY: &str = "server_keys_fingerprint";
/// Associated data of the sealed keys: a sealed value is only ever opened as this.
const SHARED_AAD: &[u8] = b"tessera server keys v1";
/// A rotated signing key signs only this long after the rotation: every node that is still
/// trusted (the staleness bound is at most 5 s) holds it by then, so no node refuses a token
/// it signs.
pub const SIGNING_KEY_ACTIVATION: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// A key that stopped signing is kept until every token it signed has expired (their
/// lifetime, the verification leeway, and a margin for clocks).
fn key_retention() -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(
        tessera_domain::service_accounts::TOKEN_LIFETIME_SECS
            + tessera_http::tokens::LEEWAY_SECS
            + 60,
    )
}

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
    /// When this key starts signing (epoch ms); absent: from the start (keys made before
    /// rotation had timestamps, and the first key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signs_from_ms: Option<i64>,
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
            signs_from_ms: None,
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
    /// Every signing key as the token service takes it, oldest first.
    pub fn signing_keys(&self) -> anyhow::Result<Vec<tessera_http::tokens::KeyMaterial>> {
        self.signing_keys
            .iter()
            .map(|k| {
                Ok(tessera_http::tokens::KeyMaterial {
                    kid: k.kid.clone(),
                    pkcs8: hex::decode(&k.pkcs8)
                        .map_err(|_| anyhow::anyhow!("signing key {} is not hex", k.kid))?,
                    signs_from: k.signs_from_ms.map(tessera_domain::time::from_millis),
                })
            })
            .collect()
    }

    /// A fingerprint of the keys that make stored data readable (secret hashes, sealed HA1
    /// values, nonces; not the signing keys, which rotate): an HMAC under the secret-hash key,
    /// so it tells nothing about the keys.
    pub fn fingerprint(&self) -> anyhow::Result<String> {
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &decode32("secret_hash_key", &self.secret_hash_key)?,
        );
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(b"tessera server keys fingerprint v1\0");
        ctx.update(self.sealing_key.as_bytes());
        ctx.update(b"\0");
        ctx.update(self.nonce_key.as_bytes());
        Ok(hex::encode(&ctx.sign().as_ref()[..16]))
    }

    /// Adds a signing key that signs from `now` + [`SIGNING_KEY_ACTIVATION`], and drops the
    /// keys that stopped signing longer ago than any token they signed can live.
    fn add_signing_key(&mut self, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
        let now_ms = tessera_domain::time::to_millis(now);
        let mut new = SigningKey::generate()?;
        new.signs_from_ms = Some(tessera_domain::time::to_millis(
            now + SIGNING_KEY_ACTIVATION,
        ));
        let kid = new.kid.clone();
        self.signing_keys.push(new);
        let retention_ms = key_retention().num_milliseconds();
        // Key i stopped signing when key i+1 started (unknown for keys made before
        // timestamps: taken as now, so they stay another full retention).
        let stopped: Vec<i64> = self
            .signing_keys
            .windows(2)
            .map(|w| w[1].signs_from_ms.unwrap_or(now_ms).min(now_ms))
            .collect();
        let mut i = 0;
        self.signing_keys.retain(|_| {
            let keep = stopped.get(i).is_none_or(|s| now_ms - s <= retention_ms);
            i += 1;
            keep
        });
        Ok(kid)
    }

    pub const FILE: &'static str = "server-keys.json";

    /// Adds a new token-signing key (a running server picks it up when restarted; it signs
    /// from [`SIGNING_KEY_ACTIVATION`] after the rotation, older keys keep verifying the
    /// tokens they signed until those have expired) and rewrites the key file atomically, mode
    /// 0600. Returns the new key's kid.
    pub fn rotate_signing_key(
        data_dir: &Path,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let path = data_dir.join(Self::FILE);
        let mut keys = Self::load_or_create(data_dir)?;
        let kid = keys.add_signing_key(now)?;
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
                "cannot open the server keys in the database: the --master-key-file given \
                 (TESSERA_MASTER_KEY_FILE) is not the master key they were sealed with; give \
                 every node the same file"
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
        // A database used before with one node's own keys is not given new ones: its data
        // was written with those.
        if let Some(stored) = store.meta(FINGERPRINT_META_KEY).await? {
            if stored != keys.fingerprint()? {
                // Another node starting at the same moment may have sealed its keys (and
                // recorded their fingerprint) since this node looked: use those.
                if let Some(sealed) = store.meta(SHARED_META_KEY).await? {
                    return Self::open(&sealer, &sealed);
                }
                anyhow::bail!(
                    "this database was used with the server keys of another data directory \
                     (without --master-key-file): start the first node with --master-key-file \
                     and the data directory whose server-keys.json the database was used with \
                     (its keys are then sealed into the database for every node)"
                );
            }
        }
        if store
            .swap_meta(SHARED_META_KEY, None, &keys.seal(&sealer)?, &[])
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

    /// Shared mode: the keys in the database as they are now (after another node rotated).
    pub async fn load_shared(store: &dyn Store, master: &[u8; 32]) -> anyhow::Result<Self> {
        let sealer = Sealer::new(master).ok_or_else(|| anyhow::anyhow!("master key rejected"))?;
        let stored = store
            .meta(SHARED_META_KEY)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the server keys vanished from the database"))?;
        Self::open(&sealer, &stored)
    }

    /// Shared mode: adds a signing key to the keys in the database (compare-and-set, so two
    /// rotations at once both land); every running node re-reads them through the change
    /// feed, and the key signs from [`SIGNING_KEY_ACTIVATION`] on. Returns the new key's kid.
    pub async fn rotate_signing_key_shared(
        store: &dyn Store,
        master: &[u8; 32],
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let sealer = Sealer::new(master).ok_or_else(|| anyhow::anyhow!("master key rejected"))?;
        for _ in 0..8 {
            let stored = store.meta(SHARED_META_KEY).await?.ok_or_else(|| {
                anyhow::anyhow!("the database has no server keys yet: start a node first")
            })?;
            let mut keys = Self::open(&sealer, &stored)?;
            let kid = keys.add_signing_key(now)?;
            let rotated = NewEvent {
                id: EventId::generate(now),
                created: now,
                event_type: EventType::SigningKeyRotated,
                org_id: None,
                group_id: None,
                actor: Actor::System,
                remote_address: None,
                target: vec![("kid", kid.clone())],
            };
            if store
                .swap_meta(
                    SHARED_META_KEY,
                    Some(&stored),
                    &keys.seal(&sealer)?,
                    std::slice::from_ref(&rotated),
                )
                .await?
            {
                return Ok(kid);
            }
        }
        anyhow::bail!("the server keys kept changing under this rotation; try again")
    }

    /// Makes sure the database is used with these keys: records their fingerprint when it has
    /// none, refuses (with the flag to fix) when it has another, and refuses a node without a
    /// master key on a database whose keys are sealed with one.
    pub async fn check_database(&self, store: &dyn Store, shared: bool) -> anyhow::Result<()> {
        if !shared && store.meta(SHARED_META_KEY).await?.is_some() {
            anyhow::bail!(
                "this database holds server keys sealed with a master key (the nodes sharing \
                 it use them): start this node with --master-key-file (TESSERA_MASTER_KEY_FILE) \
                 naming the same file as the other nodes"
            );
        }
        let mine = self.fingerprint()?;
        let recorded = match store.meta(FINGERPRINT_META_KEY).await? {
            Some(f) => f,
            None => {
                if store
                    .swap_meta(FINGERPRINT_META_KEY, None, &mine, &[])
                    .await?
                {
                    return Ok(());
                }
                store.meta(FINGERPRINT_META_KEY).await?.ok_or_else(|| {
                    anyhow::anyhow!("the key fingerprint vanished from the database")
                })?
            }
        };
        if recorded == mine {
            return Ok(());
        }
        if shared {
            anyhow::bail!(
                "the server keys sealed in the database are not the keys the database was used \
                 with (fingerprint {recorded}, these {mine}); was the database restored \
                 without its meta table?"
            )
        }
        anyhow::bail!(
            "this database was used with other server keys than this data directory's \
             server-keys.json (another node's, or another data directory's): nodes sharing a \
             database need the same --master-key-file (TESSERA_MASTER_KEY_FILE); a single node \
             needs the data directory it was used with"
        )
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

#[cfg(test)]
mod rotation_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};

    fn keys() -> ServerKeys {
        ServerKeys::generate().unwrap()
    }

    #[test]
    fn a_rotated_key_signs_after_its_activation_and_old_keys_stay_while_their_tokens_live() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut k = keys();
        let original = k.signing_keys[0].kid.clone();
        // Three rotations within an hour: every key stays (tokens of each may still live).
        for i in 0..3 {
            k.add_signing_key(t0 + chrono::TimeDelta::minutes(10 * i))
                .unwrap();
        }
        assert_eq!(k.signing_keys.len(), 4);
        assert_eq!(k.signing_keys[0].kid, original);
        let last = k.signing_keys.last().unwrap();
        assert_eq!(
            last.signs_from_ms,
            Some(tessera_domain::time::to_millis(
                t0 + chrono::TimeDelta::minutes(20) + SIGNING_KEY_ACTIVATION
            ))
        );
        // The token service verifies every key, and signs with the newest only once it is
        // active: until then, with the one before it.
        let service =
            tessera_http::tokens::TokenService::new("http://t".into(), &k.signing_keys().unwrap())
                .unwrap();
        assert_eq!(service.kids().len(), 4);
        let rotated_at = t0 + chrono::TimeDelta::minutes(20);
        let (before, newest) = (&k.signing_keys[2].kid, &k.signing_keys[3].kid);
        assert_eq!(service.signing_kid(rotated_at).as_ref(), Some(before));
        assert_eq!(
            service
                .signing_kid(
                    rotated_at + SIGNING_KEY_ACTIVATION - chrono::TimeDelta::milliseconds(1)
                )
                .as_ref(),
            Some(before)
        );
        assert_eq!(
            service
                .signing_kid(rotated_at + SIGNING_KEY_ACTIVATION)
                .as_ref(),
            Some(newest)
        );
        // Every node still trusted (within the largest staleness bound it may run with) holds
        // a rotated key before any node signs with it, with as much again for clock skew.
        assert!(
            SIGNING_KEY_ACTIVATION
                >= chrono::TimeDelta::milliseconds(2 * crate::config::MAX_STALENESS_MS as i64)
        );
        // Well past every key's retention, a rotation drops the keys that stopped signing
        // more than a token lifetime ago, and keeps the one that just stopped.
        let later = t0 + chrono::TimeDelta::hours(3);
        k.add_signing_key(later).unwrap();
        let kids: Vec<&str> = k.signing_keys.iter().map(|s| s.kid.as_str()).collect();
        assert_eq!(kids.len(), 2, "{kids:?}");
        assert!(!kids.contains(&original.as_str()));
    }

    #[test]
    fn keys_without_timestamps_are_kept_a_full_retention_after_a_rotation() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut k = keys();
        k.signing_keys.push(SigningKey::generate().unwrap());
        k.signing_keys.push(SigningKey::generate().unwrap());
        k.add_signing_key(t0).unwrap();
        assert_eq!(k.signing_keys.len(), 4);
    }

    #[test]
    fn the_fingerprint_follows_the_data_keys_not_the_signing_keys() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut a = keys();
        let fp = a.fingerprint().unwrap();
        a.add_signing_key(t0).unwrap();
        assert_eq!(a.fingerprint().unwrap(), fp);
        assert_ne!(keys().fingerprint().unwrap(), fp);
    }
}
