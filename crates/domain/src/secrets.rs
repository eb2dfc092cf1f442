//! Secret values: generation, masking, keyed hashing and sealing.
//!
//! Machine secrets here carry >= 200 bits of entropy, so a keyed SHA-256 (HMAC) is the right
//! at-rest form: a slow password hash would add latency and no security. The HMAC key lives in
//! the server's key file, never in the database, so a stolen database alone verifies nothing.

use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use ring::{aead, hmac};
use std::fmt;

/// A secret in clear text. Its `Debug` and `Display` never print the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The clear text. Call only where the value must leave the process: the one response
    /// that creates it, or a hash computation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_base62(len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

pub const SA_SECRET_PREFIX: &str = "mdb_sa_sk_";
const SA_SECRET_RANDOM_LEN: usize = 40; // 40 * log2(62) ~= 238 bits

/// A new service-account secret: `mdb_sa_sk_` + 40 base62 characters.
pub fn generate_service_account_secret() -> SecretValue {
    SecretValue(format!(
        "{SA_SECRET_PREFIX}{}",
        random_base62(SA_SECRET_RANDOM_LEN)
    ))
}

/// `mdb_sa_sk_` + asterisks + the last 4 characters (CONTRACT §6).
pub fn mask_service_account_secret(secret: &SecretValue) -> String {
    let s = secret.expose();
    let tail: String = s
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{SA_SECRET_PREFIX}{}{tail}",
        "*".repeat(SA_SECRET_RANDOM_LEN - 4)
    )
}

/// An API key's public key: 8 lowercase letters (Atlas).
pub fn generate_public_key() -> String {
    let mut rng = OsRng;
    (0..8).map(|_| rng.gen_range(b'a'..=b'z') as char).collect()
}

/// An API key's private key: a random UUID-shaped string (Atlas style, 122 random bits).
pub fn generate_private_key() -> SecretValue {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    SecretValue(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// The private key as shown after creation: every character masked but the last 4 (ours).
pub fn mask_private_key(secret: &SecretValue) -> String {
    let s = secret.expose();
    let keep = s.len().saturating_sub(4);
    s.char_indices()
        .map(|(i, c)| if i >= keep || c == '-' { c } else { '*' })
        .collect()
}

pub const OPERATOR_SECRET_PREFIX: &str = "tss_op_sk_";

/// A support operator's secret (ours): `tss_op_sk_` + 40 base62 characters, prefixed so a
/// leaked one is recognisable. Shown once by `tessera operators create`, stored keyed-hashed.
pub fn generate_operator_secret() -> SecretValue {
    SecretValue(format!(
        "{OPERATOR_SECRET_PREFIX}{}",
        random_base62(SA_SECRET_RANDOM_LEN)
    ))
}

/// `tss_op_sk_` + asterisks + the last 4 characters.
pub fn mask_operator_secret(secret: &SecretValue) -> String {
    let s = secret.expose();
    let tail = s.get(s.len().saturating_sub(4)..).unwrap_or("");
    format!(
        "{OPERATOR_SECRET_PREFIX}{}{tail}",
        "*".repeat(SA_SECRET_RANDOM_LEN - 4)
    )
}

/// Keyed hash for secrets at rest (HMAC-SHA-256 under a server key).
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher(<key redacted>)")
    }
}

impl SecretHasher {
    pub fn new(key_bytes: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
        }
    }

    pub fn hash(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.key, secret.as_bytes()).as_ref().to_vec()
    }

    /// Constant-time comparison of an already computed keyed hash with a stored one (to test
    /// one presented secret against several stored hashes with a single HMAC).
    pub fn hashes_match(computed: &[u8], stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        computed.len() == stored.len() && bool::from(computed.ct_eq(stored))
    }

    /// Constant-time comparison of `secret`'s keyed hash with a stored one.
    pub fn verify(&self, secret: &str, stored: &[u8]) -> bool {
        hmac::verify(&self.key, secret.as_bytes(), stored).is_ok()
    }
}

/// Authenticated encryption of key material that must be recoverable (Digest HA1 values):
/// AES-256-GCM under a server key, the nonce stored with the ciphertext, bound to `aad`.
pub struct Sealer {
    key: aead::LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sealed value could not be opened")]
pub struct OpenError;

impl Sealer {
    pub fn new(key_bytes: &[u8; 32]) -> Option<Self> {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, key_bytes).ok()?;
        Some(Self {
            key: aead::LessSafeKey::new(unbound),
        })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce_bytes = [0u8; aead::NONCE_LEN];
        OsRng.fill_bytes(&mut nonce_bytes);
        let nonce = aead::Nonce::assume_unique_for_key(nonce_bytes);
        let mut buf = plaintext.to_vec();
        // Sealing in place only fails for inputs larger than GCM's limit (64 GiB).
        if self
            .key
            .seal_in_place_append_tag(nonce, aead::Aad::from(aad), &mut buf)
            .is_err()
        {
            return Vec::new();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < aead::NONCE_LEN {
            return Err(OpenError);
        }
        let (n, ct) = sealed.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(n).map_err(|_| OpenError)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_secret_shape_and_mask() {
        let s = generate_service_account_secret();
        assert!(s.expose().starts_with("mdb_sa_sk_"));
        assert_eq!(s.expose().len(), 50);
        assert!(s.expose()[10..].bytes().all(|b| b.is_ascii_alphanumeric()));
        let m = mask_service_account_secret(&s);
        assert_eq!(m.len(), 50);
        assert!(m.starts_with("mdb_sa_sk_************************************"));
        assert_eq!(&m[46..], &s.expose()[46..]);
        assert_ne!(generate_service_account_secret(), s);
        assert_eq!(format!("{s:?} {s}"), "SecretValue(<redacted>) <redacted>");
    }

    #[test]
    fn api_key_shapes() {
        let p = generate_public_key();
        assert_eq!(p.len(), 8);
        assert!(p.bytes().all(|b| b.is_ascii_lowercase()));
        let k = generate_private_key();
        assert_eq!(k.expose().len(), 36);
        let m = mask_private_key(&k);
        assert_eq!(m.len(), 36);
        assert!(m.starts_with("********-****-****-****-********"));
        assert_eq!(&m[32..], &k.expose()[32..]);
    }

    #[test]
    fn hasher_verifies_only_the_right_secret_and_key() {
        let h = SecretHasher::new(b"server key one");
        let other = SecretHasher::new(b"server key two");
        let stored = h.hash("mdb_sa_sk_abc");
        assert!(h.verify("mdb_sa_sk_abc", &stored));
        assert!(!h.verify("mdb_sa_sk_abd", &stored));
        assert!(!other.verify("mdb_sa_sk_abc", &stored));
        assert!(!h.verify("mdb_sa_sk_abc", &stored[..31]));
    }

    #[test]
    fn sealer_round_trip_and_binding() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = s.seal(b"ha1", b"abcdefgh");
        assert_eq!(s.open(&sealed, b"abcdefgh").unwrap(), b"ha1");
        assert!(s.open(&sealed, b"otherkey").is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(s.open(&tampered, b"abcdefgh").is_err());
        assert!(Sealer::new(&[8u8; 32])
            .unwrap()
            .open(&sealed, b"abcdefgh")
            .is_err());
    }
}
