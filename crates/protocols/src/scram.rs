//! SCRAM credentials as MongoDB keeps them for a database user (RFC 5802 SCRAM-SHA-1, RFC 7677
//! SCRAM-SHA-256): a salt, an iteration count, and the stored and server keys — never the
//! password, from which they cannot be turned back. A `mongod` given these can authenticate
//! the user; so can anyone who can compute a proof from the password.
//!
//! MongoDB's two mechanisms differ in what they hash: SCRAM-SHA-1 runs PBKDF2 over the legacy
//! digest `hex(MD5(username ":mongo:" password))`, SCRAM-SHA-256 over the SASLprep'd password
//! (RFC 4013). Iteration counts and salt lengths are mongod's defaults (10,000 and 16 bytes;
//! 15,000 and 28 bytes).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// One mechanism's credentials.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScramCredential {
    pub iteration_count: u32,
    /// Base64, as mongod's `credentials` document holds them.
    pub salt: String,
    pub stored_key: String,
    pub server_key: String,
}

/// Both mechanisms' credentials for one user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredentials {
    #[serde(rename = "SCRAM-SHA-1")]
    pub sha1: ScramCredential,
    #[serde(rename = "SCRAM-SHA-256")]
    pub sha256: ScramCredential,
}

pub const SHA1_ITERATIONS: u32 = 10_000;
pub const SHA256_ITERATIONS: u32 = 15_000;

/// Why a password cannot be used for SCRAM-SHA-256.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the password is not valid under SASLprep (RFC 4013)")]
pub struct NotSaslPrep;

#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Hash::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Hash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => hmac::HMAC_SHA256,
        }
    }
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
        }
    }
    fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
        }
    }
}

/// The salted password (RFC 5802 `SaltedPassword`).
fn salted(hash: Hash, input: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; hash.len()];
    let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(hash.pbkdf2(), n, salt, input, &mut out);
    out
}

fn hmac_of(hash: Hash, key: &[u8], msg: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hash.hmac(), key), msg)
        .as_ref()
        .to_vec()
}

/// (`StoredKey`, `ServerKey`) of a salted password.
fn keys(hash: Hash, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let client_key = hmac_of(hash, salted, b"Client Key");
    let stored = digest::digest(hash.digest(), &client_key).as_ref().to_vec();
    (stored, hmac_of(hash, salted, b"Server Key"))
}

fn credential(hash: Hash, input: &[u8], salt: &[u8], iterations: u32) -> ScramCredential {
    let (stored, server) = keys(hash, &salted(hash, input, salt, iterations));
    ScramCredential {
        iteration_count: iterations,
        salt: B64.encode(salt),
        stored_key: B64.encode(stored),
        server_key: B64.encode(server),
    }
}

/// MongoDB's SCRAM-SHA-1 password input: `hex(MD5(username ":mongo:" password))`.
pub fn mongo_sha1_input(username: &str, password: &str) -> String {
    hex::encode(Md5::digest(
        format!("{username}:mongo:{password}").as_bytes(),
    ))
}

/// The credentials of `username` with `password`, with fresh random salts.
pub fn credentials(username: &str, password: &str) -> Result<ScramCredentials, NotSaslPrep> {
    use rand::RngCore;
    let mut salt1 = [0u8; 16];
    let mut salt256 = [0u8; 28];
    rand::rngs::OsRng.fill_bytes(&mut salt1);
    rand::rngs::OsRng.fill_bytes(&mut salt256);
    credentials_with(username, password, &salt1, &salt256)
}

/// [`credentials`] with given salts (tests, and nothing else).
pub fn credentials_with(
    username: &str,
    password: &str,
    salt1: &[u8],
    salt256: &[u8],
) -> Result<ScramCredentials, NotSaslPrep> {
    let prepped = stringprep::saslprep(password).map_err(|_| NotSaslPrep)?;
    Ok(ScramCredentials {
        sha1: credential(
            Hash::Sha1,
            mongo_sha1_input(username, password).as_bytes(),
            salt1,
            SHA1_ITERATIONS,
        ),
        sha256: credential(Hash::Sha256, prepped.as_bytes(), salt256, SHA256_ITERATIONS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's proof and the server's signature of an exchange (RFC 5802 §3), from the
    /// password the client knows and from the stored keys the server knows.
    fn exchange(hash: Hash, input: &[u8], salt_b64: &str, i: u32, auth: &str) -> (String, String) {
        let salt = B64.decode(salt_b64).unwrap();
        let c = credential(hash, input, &salt, i);
        let salted = salted(hash, input, &salt, i);
        let client_key = hmac_of(hash, &salted, b"Client Key");
        let stored = B64.decode(&c.stored_key).unwrap();
        let signature = hmac_of(hash, &stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server = B64.decode(&c.server_key).unwrap();
        (
            B64.encode(proof),
            B64.encode(hmac_of(hash, &server, auth.as_bytes())),
        )
    }

    #[test]
    fn rfc5802_sha1_example() {
        let auth = "n=user,r=fyko+d2lbbFgONRv9qkxdawL,\
                    r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,\
                    c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
        let (p, v) = exchange(Hash::Sha1, b"pencil", "QSXCR+Q6sek8bf92", 4096, auth);
        assert_eq!(p, "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        assert_eq!(v, "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn rfc7677_sha256_example() {
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let (p, v) = exchange(
            Hash::Sha256,
            b"pencil",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            4096,
            auth,
        );
        assert_eq!(p, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert_eq!(v, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn mongodb_inputs() {
        // The legacy digest every MongoDB driver computes for SCRAM-SHA-1.
        assert_eq!(
            mongo_sha1_input("user", "pencil"),
            hex::encode(Md5::digest(b"user:mongo:pencil"))
        );
        let c = credentials_with("app", "correct horse", &[1; 16], &[2; 28]).unwrap();
        assert_eq!(c.sha1.iteration_count, 10_000);
        assert_eq!(c.sha256.iteration_count, 15_000);
        assert_eq!(B64.decode(&c.sha1.salt).unwrap().len(), 16);
        assert_eq!(B64.decode(&c.sha256.salt).unwrap().len(), 28);
        // SASLprep maps a non-ASCII space to a space; a control character is refused.
        let a = credentials_with("app", "a\u{00A0}b", &[1; 16], &[2; 28]).unwrap();
        let b = credentials_with("app", "a b", &[1; 16], &[2; 28]).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_ne!(a.sha1, b.sha1);
        assert!(credentials("app", "bell\u{0007}").is_err());
        // Fresh salts: two users with one password share no key.
        let x = credentials("app", "same").unwrap();
        let y = credentials("app", "same").unwrap();
        assert_ne!(x.sha256.stored_key, y.sha256.stored_key);
        // Nothing of the password is in the credentials.
        let json = serde_json::to_string(&x).unwrap();
        assert!(!json.contains("same"));
    }
}
