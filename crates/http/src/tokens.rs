//! Access tokens: minting and the full verification every Bearer request gets.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use tessera_domain::service_accounts::{secret_is_active, TOKEN_LIFETIME_SECS};
use tessera_domain::{ClientId, SecretId};
use tessera_protocols::jwt::{Claims, JwtError, JwtSigner, JwtVerifier};
use tessera_store::ServiceAccount;

use crate::registry::{Registry, VerifiedToken};

/// The audience of every access token (Atlas).
pub const AUDIENCE: &str = "api://admin";
/// Clock skew tolerated when checking `exp` and `iat`.
pub const LEEWAY_SECS: i64 = 30;

pub struct TokenService {
    /// Every key with the instant from which it signs (`None`: from the start), oldest first.
    signers: Vec<(JwtSigner, Option<DateTime<Utc>>)>,
    verifier: JwtVerifier,
    issuer: String,
    /// Every verification key, as published in the JWKS (rotation keeps old ones).
    jwks: serde_json::Value,
}

/// Why a token was refused. Logged, never shown to clients beyond "unauthorized".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Invalid(JwtError),
    Expired,
    Revoked,
    /// The mirror does not hold the token's account.
    AccountGone(ClientId),
    /// The account as held has no secret of the token's id.
    SecretGone(ClientId),
    /// The minting secret has expired: its tokens end with it, not up to an hour later.
    SecretExpired,
}

/// A token id that sorts by minting time (a UUIDv7, RFC 9562, of the clock's time, in 32 hex
/// digits): revocations mostly name recent tokens, so their rows land at the end of the store's
/// `jti` index instead of on a random page of it, one page written per revocation (measured in
/// docs/performance.md). 74 random bits keep ids minted in the same millisecond apart.
fn jti(now: DateTime<Utc>) -> String {
    let secs = u64::try_from(now.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, now.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(ts).simple().to_string()
}

/// The token service in use, replaced whole when the server keys change (a rotation another
/// node made): requests take the current one with [`Tokens::current`].
pub struct Tokens(std::sync::RwLock<Arc<TokenService>>);

impl Tokens {
    pub fn new(service: TokenService) -> Self {
        Self(std::sync::RwLock::new(Arc::new(service)))
    }

    pub fn current(&self) -> Arc<TokenService> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, service: TokenService) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(service);
    }
}

pub struct Minted {
    pub token: String,
    pub claims: Claims,
}

/// One token-signing key as the server keys hold it.
pub struct KeyMaterial {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    /// The key signs from this instant on (a rotated key is published to every node before
    /// it signs); `None`: at once.
    pub signs_from: Option<DateTime<Utc>>,
}

impl TokenService {
    /// `keys`, oldest first: every one verifies; the newest whose `signs_from` has come signs.
    pub fn new(issuer: String, keys: &[KeyMaterial]) -> Result<Self, JwtError> {
        let mut verifier = JwtVerifier::new(issuer.clone(), AUDIENCE.to_owned(), LEEWAY_SECS);
        let mut signers = Vec::with_capacity(keys.len());
        let mut jwks = Vec::with_capacity(keys.len());
        for k in keys {
            let s = JwtSigner::from_pkcs8(&k.kid, &k.pkcs8)?;
            verifier.add_key(&k.kid, s.public_key_bytes());
            jwks.push(s.public_jwk());
            signers.push((s, k.signs_from));
        }
        if signers.is_empty() {
            return Err(JwtError::Crypto("no signing key"));
        }
        Ok(Self {
            signers,
            verifier,
            issuer,
            jwks: serde_json::json!({ "keys": jwks }),
        })
    }

    /// The key that signs at `now`: the newest one whose time has come (the oldest if none
    /// has, which only a clock set back can cause).
    fn signer(&self, now: DateTime<Utc>) -> Result<&JwtSigner, JwtError> {
        self.signers
            .iter()
            .rev()
            .find(|(_, from)| from.is_none_or(|f| f <= now))
            .or(self.signers.first())
            .map(|(s, _)| s)
            .ok_or(JwtError::Crypto("no signing key"))
    }

    /// The kid of the key that signs at `now`.
    pub fn signing_kid(&self, now: DateTime<Utc>) -> Option<String> {
        self.signer(now).ok().map(|s| s.kid().to_owned())
    }

    /// Every kid this service verifies, oldest first.
    pub fn kids(&self) -> Vec<String> {
        self.signers
            .iter()
            .map(|(s, _)| s.kid().to_owned())
            .collect()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn mint(
        &self,
        account: &ServiceAccount,
        secret: SecretId,
        now: DateTime<Utc>,
    ) -> Result<Minted, JwtError> {
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: account.client_id.to_string(),
            iat,
            exp: iat + TOKEN_LIFETIME_SECS,
            jti: jti(now),
            org_id: account.org_id.to_string(),
            secret_id: secret.to_string(),
        };
        let token = self.signer(now)?.sign(&claims)?;
        Ok(Minted { token, claims })
    }

    /// Signature, issuer, audience and time checks, without consulting the registry. Used by
    /// revocation, which must accept a token whatever the state of its account.
    pub fn verify_signature(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, JwtError> {
        self.verifier.verify(token, now)
    }

    /// Full verification for a Bearer request (and introspection). The signature is checked
    /// once per token and remembered; expiry, revocation, the account and the minting secret
    /// (still there and not expired) are checked on every request.
    pub fn authenticate(
        &self,
        registry: &Registry,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(Arc<VerifiedToken>, Arc<ServiceAccount>), TokenRejection> {
        let verified = match registry.verified(token) {
            Some(v) => v,
            None => {
                let claims = self.verifier.verify(token, now).map_err(|e| match e {
                    JwtError::Expired => TokenRejection::Expired,
                    other => TokenRejection::Invalid(other),
                })?;
                let client_id = ClientId::parse(&claims.sub)
                    .map_err(|_| TokenRejection::Invalid(JwtError::Malformed("sub")))?;
                let secret_id = SecretId::parse(&claims.secret_id)
                    .map_err(|_| TokenRejection::Invalid(JwtError::Malformed("secret_id")))?;
                let v = Arc::new(VerifiedToken {
                    claims,
                    client_id,
                    secret_id,
                });
                registry.remember_verified(token, v.clone(), now);
                v
            }
        };
        if now - Duration::seconds(LEEWAY_SECS)
            >= DateTime::<Utc>::from_timestamp(verified.claims.exp, 0).unwrap_or_default()
        {
            return Err(TokenRejection::Expired);
        }
        if registry.is_revoked(&verified.claims.jti) {
            return Err(TokenRejection::Revoked);
        }
        let account = registry
            .get(verified.client_id)
            .ok_or(TokenRejection::AccountGone(verified.client_id))?;
        let secret = account
            .secrets
            .iter()
            .find(|s| s.id == verified.secret_id)
            .ok_or(TokenRejection::SecretGone(verified.client_id))?;
        if !secret_is_active(secret.expires_at, now) {
            return Err(TokenRejection::SecretExpired);
        }
        Ok((verified, account))
    }
}

#[cfg(test)]
mod tests {
    use super::jti;
    use chrono::{TimeZone, Utc};

    #[test]
    fn token_ids_sort_by_minting_time() {
        let at = |ms| Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        let ids: Vec<String> = [1_800_000_000_000, 1_800_000_000_001, 1_800_003_600_000]
            .into_iter()
            .map(|ms| jti(at(ms)))
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // Ids minted in the same millisecond differ.
        assert_ne!(jti(at(1_800_000_000_000)), jti(at(1_800_000_000_000)));
    }
}
