//! A person's password (a MongoDB Cloud user's), kept only as an argon2id hash in PHC string
//! form (RFC 9106 parameters of the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane), with a
//! random salt per hash. Verification is the crate's, constant-time in the hash compared.
//! Both are slow on purpose: call them off the request threads.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted (Atlas asks for at least 8 characters).
pub const MIN_LEN: usize = 8;
/// Longest password accepted (argon2 takes any length; this bounds the work a request asks).
pub const MAX_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be {MIN_LEN} to {MAX_LEN} characters")]
    Length,
    #[error("could not be hashed")]
    Hash,
}

/// The argon2id hash of `password` (PHC string), after checking its length.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let n = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(PasswordError::Length);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` matches the stored `phc` hash (a malformed hash matches nothing).
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse").unwrap_or_default();
        let b = hash("correct horse").unwrap_or_default();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a random salt per hash");
        assert!(verify(&a, "correct horse"));
        assert!(!verify(&a, "correct horsf"));
        assert!(!verify("not a hash", "correct horse"));
        assert!(!a.contains("correct"));
    }

    #[test]
    fn length_is_bounded() {
        assert_eq!(hash("short"), Err(PasswordError::Length));
        assert_eq!(hash(&"x".repeat(MAX_LEN + 1)), Err(PasswordError::Length));
    }
}
