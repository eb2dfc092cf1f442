//! Compact JWS access tokens (RFC 7515/7519), ES256 only, on `ring` directly.
//!
//! Why not a JWT crate: the common ones re-parse the PKCS#8 signing key on every signature
//! and accept a family of algorithms chosen by the token's own header. Here the
//! [`EcdsaKeyPair`] and the verification keys are parsed once, the signer's header is
//! precomputed, and the verifier pins `alg` to exactly `ES256`, so `none`, HMAC-with-the-
//! public-key and other algorithm-confusion tricks have nothing to grab.
//!
//! Verification order: size and shape, header (`alg`, `typ`, `crit`, `kid`), signature over
//! the `header.payload` text, then the claims (`iss`, `aud`, `exp`, `iat`). The payload is not
//! decoded before its signature is verified.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Tokens longer than this are rejected before decoding.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The only accepted `alg`.
const ALG: &str = "ES256";
/// Length of a fixed-format (`r || s`) P-256 signature.
const SIGNATURE_LEN: usize = 64;

/// The claims of an access token. All are required.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    pub jti: String,
    pub org_id: String,
    pub secret_id: String,
}

/// Why a token could not be signed or verified. Messages never include token content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token algorithm is not ES256")]
    Algorithm,
    #[error("token key id is missing or unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    Signature,
    #[error("token issuer is not accepted")]
    Issuer,
    #[error("token audience is not accepted")]
    Audience,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}

/// A new P-256 private key, PKCS#8 v1 DER, for [`JwtSigner::from_pkcs8`].
pub fn generate_pkcs8() -> Result<Vec<u8>, JwtError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| JwtError::Crypto("key generation failed"))
}

/// The header the signer writes; field order is the serialization order.
#[derive(Serialize)]
struct SignedHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// Signs tokens with one ES256 key, identified by `kid`.
pub struct JwtSigner {
    kid: String,
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64url of `{"alg":"ES256","typ":"JWT","kid":"<kid>"}`.
    header_b64: String,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// Parses the PKCS#8 P-256 private key once.
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, JwtError> {
        let rng = SystemRandom::new();
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| JwtError::Crypto("key rejected: not a PKCS#8 P-256 private key"))?;
        let header = serde_json::to_vec(&SignedHeader {
            alg: ALG,
            typ: "JWT",
            kid,
        })
        .map_err(|_| JwtError::Crypto("header serialization failed"))?;
        Ok(Self {
            kid: kid.to_owned(),
            key_pair,
            rng,
            header_b64: URL_SAFE_NO_PAD.encode(header),
        })
    }

    /// The key id written in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWS: `header.payload.signature`, each base64url without padding.
    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|_| JwtError::Crypto("claims serialization failed"))?;
        self.sign_payload(&payload)
    }

    fn sign_payload(&self, payload: &[u8]) -> Result<String, JwtError> {
        let mut token = format!("{}.{}", self.header_b64, URL_SAFE_NO_PAD.encode(payload));
        let signature = self
            .key_pair
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| JwtError::Crypto("signing failed"))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }

    /// The public key as a JWK: `{"kty":"EC","crv":"P-256","x":..,"y":..,"alg":"ES256",
    /// "use":"sig","kid":..}`.
    pub fn public_jwk(&self) -> serde_json::Value {
        // ring encodes P-256 public keys uncompressed: 0x04 || x || y, 32 bytes each.
        let point = self.key_pair.public_key().as_ref();
        let coordinates = point.get(1..).unwrap_or_default();
        let (x, y) = coordinates.split_at(coordinates.len() / 2);
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
            "alg": ALG,
            "use": "sig",
            "kid": self.kid,
        })
    }

    /// The uncompressed public key, `0x04 || x || y` (65 bytes), for [`JwtVerifier::add_key`].
    pub fn public_key_bytes(&self) -> Vec<u8> {
        self.key_pair.public_key().as_ref().to_vec()
    }
}

/// The header fields the verifier reads. Unknown fields are ignored (in particular `jku`,
/// `jwk` and `x5u` are never used to find a key); duplicate fields are rejected by serde.
#[derive(Deserialize)]
struct ReceivedHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// The optional registered claims the verifier enforces beyond [`Claims`]. Tessera never
/// writes `nbf`, but a token that carries one is not accepted before it (RFC 7519 §4.1.5).
#[derive(Deserialize)]
struct OptionalClaims {
    nbf: Option<i64>,
}

/// Verifies ES256 tokens against a set of known keys, an issuer and an audience.
pub struct JwtVerifier {
    keys: HashMap<String, UnparsedPublicKey<Vec<u8>>>,
    issuer: String,
    audience: String,
    leeway_secs: i64,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("JwtVerifier")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// Decodes a JSON object (not an array, which serde would also map onto a struct).
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

impl JwtVerifier {
    /// A verifier with no keys yet. `leeway_secs` tolerates clock skew on `exp`, `iat` and
    /// `nbf`.
    pub fn new(issuer: String, audience: String, leeway_secs: i64) -> Self {
        Self {
            keys: HashMap::new(),
            issuer,
            audience,
            leeway_secs,
        }
    }

    /// Trusts `public_key_uncompressed` (`0x04 || x || y`) for tokens with this `kid`,
    /// replacing any key already registered under it. A malformed key makes every signature
    /// under its `kid` fail.
    pub fn add_key(&mut self, kid: &str, public_key_uncompressed: Vec<u8>) {
        self.keys.insert(
            kid.to_owned(),
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key_uncompressed),
        );
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected three segments"));
        };

        let header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| JwtError::Malformed("header is not base64url"))?;
        let header: ReceivedHeader =
            json_object(&header).ok_or(JwtError::Malformed("header is not a JSON object"))?;
        if header.alg.as_deref() != Some(ALG) {
            return Err(JwtError::Algorithm);
        }
        if header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
            return Err(JwtError::Malformed("unexpected typ"));
        }
        if header.crit.is_some() {
            return Err(JwtError::Malformed("critical header extensions"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(JwtError::UnknownKey)?;

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
        if signature.len() != SIGNATURE_LEN {
            return Err(JwtError::Signature);
        }
        // The signing input is the text of the first two segments, dot included.
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(JwtError::Malformed("expected three segments"))?;
        key.verify(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::Signature)?;

        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| JwtError::Malformed("payload is not base64url"))?;
        let claims: Claims =
            json_object(&payload).ok_or(JwtError::Malformed("claims are not valid"))?;
        let optional: OptionalClaims =
            json_object(&payload).ok_or(JwtError::Malformed("claims are not valid"))?;

        if claims.iss != self.issuer {
            return Err(JwtError::Issuer);
        }
        if claims.aud != self.audience {
            return Err(JwtError::Audience);
        }
        let now = now.timestamp();
        if claims.exp <= now.saturating_sub(self.leeway_secs) {
            return Err(JwtError::Expired);
        }
        if claims.iat > now.saturating_add(self.leeway_secs) {
            return Err(JwtError::NotYetValid);
        }
        if optional
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway_secs))
        {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use ring::hmac;
    use std::sync::OnceLock;

    const ISS: &str = "https://tessera.example/";
    const AUD: &str = "https://cloud.mongodb.com/api/atlas";
    const LEEWAY: i64 = 30;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn claims() -> Claims {
        let iat = now().timestamp();
        Claims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "mdb_sa_id_0123456789abcdef01234567".into(),
            iat,
            exp: iat + 3600,
            jti: "9f2d1c3e-jti".into(),
            org_id: "5f0000000000000000000001".into(),
            secret_id: "5f0000000000000000000002".into(),
        }
    }

    fn signer(kid: &str) -> JwtSigner {
        JwtSigner::from_pkcs8(kid, &generate_pkcs8().unwrap()).unwrap()
    }

    /// One shared key for the property tests (key generation per case would be slow).
    fn shared() -> &'static (JwtSigner, JwtVerifier) {
        static SHARED: OnceLock<(JwtSigner, JwtVerifier)> = OnceLock::new();
        SHARED.get_or_init(|| {
            let s = signer("k1");
            let v = verifier_for(&s);
            (s, v)
        })
    }

    fn verifier_for(s: &JwtSigner) -> JwtVerifier {
        let mut v = JwtVerifier::new(ISS.into(), AUD.into(), LEEWAY);
        v.add_key(s.kid(), s.public_key_bytes());
        v
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Signs an arbitrary header and payload with the signer's real key.
    fn sign_raw(s: &JwtSigner, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = s.key_pair.sign(&s.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig))
    }

    fn claims_json() -> String {
        serde_json::to_string(&claims()).unwrap()
    }

    fn segments(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn round_trip() {
        let s = signer("k1");
        let v = verifier_for(&s);
        let token = s.sign(&claims()).unwrap();
        assert_eq!(v.verify(&token, now()), Ok(claims()));
        assert_eq!(token.split('.').count(), 3);
        assert!(!token.contains('='));
    }

    #[test]
    fn header_is_pinned() {
        let s = signer("key-2025-06");
        let token = s.sign(&claims()).unwrap();
        let header = URL_SAFE_NO_PAD.decode(&segments(&token)[0]).unwrap();
        assert_eq!(
            String::from_utf8(header).unwrap(),
            r#"{"alg":"ES256","typ":"JWT","kid":"key-2025-06"}"#
        );
        assert_eq!(s.kid(), "key-2025-06");
    }

    #[test]
    fn kid_is_json_escaped() {
        let s = signer("we\"ird\\kid");
        let v = verifier_for(&s);
        let token = s.sign(&claims()).unwrap();
        assert_eq!(v.verify(&token, now()), Ok(claims()));
    }

    #[test]
    fn signatures_are_fixed_format_and_randomized() {
        let s = signer("k1");
        let a = s.sign(&claims()).unwrap();
        let b = s.sign(&claims()).unwrap();
        let sig = URL_SAFE_NO_PAD.decode(&segments(&a)[2]).unwrap();
        assert_eq!(sig.len(), SIGNATURE_LEN);
        assert_ne!(a, b, "ECDSA nonces are random");
    }

    #[test]
    fn alg_none_is_rejected() {
        let (s, v) = shared();
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"none","typ":"JWT","kid":"k1"}"#,
        ] {
            let token = format!("{}.{}.", b64(header), b64(claims_json()));
            assert_eq!(v.verify(&token, now()), Err(JwtError::Algorithm));
            // Even with a genuine signature over it.
            let token = sign_raw(s, header, &claims_json());
            assert_eq!(v.verify(&token, now()), Err(JwtError::Algorithm));
        }
    }

    #[test]
    fn hs256_with_public_key_as_secret_is_rejected() {
        let (s, v) = shared();
        let header = r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#;
        let input = format!("{}.{}", b64(header), b64(claims_json()));
        for secret in [
            s.public_key_bytes(),
            serde_json::to_vec(&s.public_jwk()).unwrap(),
        ] {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
            let tag = hmac::sign(&key, input.as_bytes());
            let token = format!("{input}.{}", b64(tag));
            assert_eq!(v.verify(&token, now()), Err(JwtError::Algorithm));
        }
    }

    #[test]
    fn other_algorithms_are_rejected() {
        let (s, v) = shared();
        for header in [
            r#"{"alg":"ES384","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"es256","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"ES256 ","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":null,"typ":"JWT","kid":"k1"}"#,
            r#"{"typ":"JWT","kid":"k1"}"#,
            r#"{}"#,
        ] {
            let token = sign_raw(s, header, &claims_json());
            assert_eq!(
                v.verify(&token, now()),
                Err(JwtError::Algorithm),
                "{header}"
            );
        }
        // A non-string alg does not even parse.
        let token = sign_raw(s, r#"{"alg":["ES256"],"kid":"k1"}"#, &claims_json());
        assert!(matches!(
            v.verify(&token, now()),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn header_rules() {
        let (s, v) = shared();
        // typ is optional, but if present must be JWT.
        let token = sign_raw(s, r#"{"alg":"ES256","kid":"k1"}"#, &claims_json());
        assert_eq!(v.verify(&token, now()), Ok(claims()));
        for header in [
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#,
            r#"{"alg":"ES256","typ":"jwt","kid":"k1"}"#,
            r#"{"alg":"ES256","typ":"JWT","kid":"k1","crit":["exp"]}"#,
            r#"{"alg":"ES256","alg":"ES256","typ":"JWT","kid":"k1"}"#,
            r#"["ES256","JWT","k1",null]"#,
            r#"not json"#,
            r#""#,
        ] {
            let token = sign_raw(s, header, &claims_json());
            assert!(
                matches!(v.verify(&token, now()), Err(JwtError::Malformed(_))),
                "{header}"
            );
        }
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let (s, v) = shared();
        let token = s.sign(&claims()).unwrap();
        let seg = segments(&token);
        let forged = Claims {
            sub: "someone-else".into(),
            ..claims()
        };
        let forged_payload = b64(serde_json::to_vec(&forged).unwrap());
        let token = format!("{}.{}.{}", seg[0], forged_payload, seg[2]);
        assert_eq!(v.verify(&token, now()), Err(JwtError::Signature));
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let (s, v) = shared();
        let token = s.sign(&claims()).unwrap();
        let seg = segments(&token);
        let mut sig = URL_SAFE_NO_PAD.decode(&seg[2]).unwrap();
        for i in [0, 31, 32, 63] {
            sig[i] ^= 0x80;
            let t = format!("{}.{}.{}", seg[0], seg[1], b64(&sig));
            assert_eq!(v.verify(&t, now()), Err(JwtError::Signature));
            sig[i] ^= 0x80;
        }
        // Wrong lengths, including an all-zero signature and a truncated one.
        for bad in [
            vec![0u8; 64],
            sig[..63].to_vec(),
            [sig.clone(), vec![0]].concat(),
            vec![],
        ] {
            let t = format!("{}.{}.{}", seg[0], seg[1], b64(&bad));
            assert_eq!(v.verify(&t, now()), Err(JwtError::Signature));
        }
    }

    #[test]
    fn tampered_header_is_rejected() {
        let (s, v) = shared();
        let token = s.sign(&claims()).unwrap();
        let seg = segments(&token);
        // Same meaning, different bytes: the signature covers the text, not the JSON.
        let header = b64(r#"{"alg":"ES256", "typ":"JWT","kid":"k1"}"#);
        let t = format!("{header}.{}.{}", seg[1], seg[2]);
        assert_eq!(v.verify(&t, now()), Err(JwtError::Signature));
    }

    #[test]
    fn wrong_issuer_and_audience() {
        let (s, v) = shared();
        let t = s
            .sign(&Claims {
                iss: "https://evil.example/".into(),
                ..claims()
            })
            .unwrap();
        assert_eq!(v.verify(&t, now()), Err(JwtError::Issuer));
        let t = s
            .sign(&Claims {
                aud: "https://other.example".into(),
                ..claims()
            })
            .unwrap();
        assert_eq!(v.verify(&t, now()), Err(JwtError::Audience));
    }

    #[test]
    fn audience_array_is_rejected() {
        let (s, v) = shared();
        let mut json = serde_json::to_value(claims()).unwrap();
        json["aud"] = serde_json::json!([AUD]);
        let t = sign_raw(
            s,
            r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#,
            &json.to_string(),
        );
        assert!(matches!(v.verify(&t, now()), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn claims_must_be_complete_and_well_typed() {
        let (s, v) = shared();
        let header = r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#;
        let full = serde_json::to_value(claims()).unwrap();
        for field in [
            "iss",
            "aud",
            "sub",
            "iat",
            "exp",
            "jti",
            "org_id",
            "secret_id",
        ] {
            let mut json = full.clone();
            json.as_object_mut().unwrap().remove(field);
            let t = sign_raw(s, header, &json.to_string());
            assert!(
                matches!(v.verify(&t, now()), Err(JwtError::Malformed(_))),
                "{field}"
            );
        }
        let mut json = full.clone();
        json["exp"] = serde_json::json!(1.5e12);
        let t = sign_raw(s, header, &json.to_string());
        assert!(matches!(v.verify(&t, now()), Err(JwtError::Malformed(_))));
        let mut json = full.clone();
        json["exp"] = serde_json::json!("9999999999");
        let t = sign_raw(s, header, &json.to_string());
        assert!(matches!(v.verify(&t, now()), Err(JwtError::Malformed(_))));
        let array =
            serde_json::to_string(&[ISS, AUD, "sub", "0", "0", "jti", "org", "secret"]).unwrap();
        let t = sign_raw(s, header, &array);
        assert!(matches!(v.verify(&t, now()), Err(JwtError::Malformed(_))));
        // Unknown extra claims are fine.
        let mut json = full;
        json["scope"] = serde_json::json!("openid");
        let t = sign_raw(s, header, &json.to_string());
        assert_eq!(v.verify(&t, now()), Ok(claims()));
    }

    #[test]
    fn expiry_and_leeway() {
        let (s, v) = shared();
        let c = claims();
        let t = s.sign(&c).unwrap();
        let at = |secs: i64| Utc.timestamp_opt(secs, 0).unwrap();
        assert_eq!(v.verify(&t, at(c.exp + LEEWAY + 1)), Err(JwtError::Expired));
        assert_eq!(v.verify(&t, at(c.exp + LEEWAY)), Err(JwtError::Expired));
        assert_eq!(v.verify(&t, at(c.exp + LEEWAY - 1)), Ok(c.clone()));
        assert_eq!(v.verify(&t, at(c.exp)), Ok(c.clone()));
        // iat in the future beyond the leeway.
        assert_eq!(v.verify(&t, at(c.iat - LEEWAY)), Ok(c.clone()));
        assert_eq!(
            v.verify(&t, at(c.iat - LEEWAY - 1)),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn not_before_is_enforced_with_the_same_leeway() {
        let (s, v) = shared();
        let header = r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#;
        let with_nbf = |nbf: serde_json::Value| {
            let mut json = serde_json::to_value(claims()).unwrap();
            json["nbf"] = nbf;
            sign_raw(s, header, &json.to_string())
        };
        let n = now().timestamp();
        // An hour ahead (the probe's token) and just past the leeway: refused.
        assert_eq!(
            v.verify(&with_nbf(serde_json::json!(n + 3600)), now()),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(
            v.verify(&with_nbf(serde_json::json!(n + LEEWAY + 1)), now()),
            Err(JwtError::NotYetValid)
        );
        // Within the leeway, now, or in the past: accepted.
        for ok in [n + LEEWAY, n, n - 3600] {
            assert_eq!(
                v.verify(&with_nbf(serde_json::json!(ok)), now()),
                Ok(claims()),
                "{ok}"
            );
        }
        // Not a number: malformed, not ignored.
        assert!(matches!(
            v.verify(&with_nbf(serde_json::json!("0")), now()),
            Err(JwtError::Malformed(_))
        ));
        assert!(v
            .verify(&with_nbf(serde_json::json!(i64::MAX)), now())
            .is_err());
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let (s, _) = shared();
        let mut v = JwtVerifier::new(ISS.into(), AUD.into(), i64::MAX);
        v.add_key("k1", s.public_key_bytes());
        let t = s
            .sign(&Claims {
                iat: i64::MAX,
                exp: i64::MIN,
                ..claims()
            })
            .unwrap();
        assert!(v.verify(&t, now()).is_err());
        let t = s
            .sign(&Claims {
                iat: i64::MIN,
                exp: i64::MAX,
                ..claims()
            })
            .unwrap();
        assert!(v.verify(&t, now()).is_ok());
    }

    #[test]
    fn unknown_or_missing_kid() {
        let (s, v) = shared();
        let other = signer("k2");
        let t = other.sign(&claims()).unwrap();
        assert_eq!(v.verify(&t, now()), Err(JwtError::UnknownKey));
        let t = sign_raw(s, r#"{"alg":"ES256","typ":"JWT"}"#, &claims_json());
        assert_eq!(v.verify(&t, now()), Err(JwtError::UnknownKey));
        let t = sign_raw(
            s,
            r#"{"alg":"ES256","typ":"JWT","kid":"K1"}"#,
            &claims_json(),
        );
        assert_eq!(v.verify(&t, now()), Err(JwtError::UnknownKey));
    }

    #[test]
    fn other_key_with_same_kid_is_rejected() {
        let (_, v) = shared();
        let impostor = signer("k1");
        let t = impostor.sign(&claims()).unwrap();
        assert_eq!(v.verify(&t, now()), Err(JwtError::Signature));
    }

    #[test]
    fn several_keys_and_rotation() {
        let old = signer("old");
        let new = signer("new");
        let mut v = verifier_for(&old);
        v.add_key(new.kid(), new.public_key_bytes());
        assert!(v.verify(&old.sign(&claims()).unwrap(), now()).is_ok());
        assert!(v.verify(&new.sign(&claims()).unwrap(), now()).is_ok());
        // Replacing the key under a kid invalidates the old key's tokens.
        v.add_key("old", new.public_key_bytes());
        assert_eq!(
            v.verify(&old.sign(&claims()).unwrap(), now()),
            Err(JwtError::Signature)
        );
        // A malformed public key verifies nothing.
        v.add_key("new", vec![1, 2, 3]);
        assert_eq!(
            v.verify(&new.sign(&claims()).unwrap(), now()),
            Err(JwtError::Signature)
        );
    }

    #[test]
    fn structural_garbage_is_malformed() {
        let (s, v) = shared();
        let token = s.sign(&claims()).unwrap();
        let seg = segments(&token);
        let cases = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            format!("{}.{}", seg[0], seg[1]),
            format!("{token}."),
            format!("{token}.{}", seg[2]),
            format!("{}=.{}.{}", seg[0], seg[1], seg[2]),
            format!("{}.{}.{}=", seg[0], seg[1], seg[2]),
            format!("{}.{}.{}", seg[0].replace('e', "+"), seg[1], seg[2]),
            format!(" {token}"),
            format!("{token}\n"),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ];
        for t in &cases {
            assert!(
                matches!(v.verify(t, now()), Err(JwtError::Malformed(_))),
                "{t:?} -> {:?}",
                v.verify(t, now())
            );
        }
        // Payload that is not base64url but validly signed: signature first, then Malformed.
        let input = format!("{}.!!", seg[0]);
        let sig = s.key_pair.sign(&s.rng, input.as_bytes()).unwrap();
        let t = format!("{input}.{}", b64(sig));
        assert!(matches!(v.verify(&t, now()), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn bad_pkcs8_is_a_crypto_error() {
        assert!(matches!(
            JwtSigner::from_pkcs8("k", b"not a key"),
            Err(JwtError::Crypto(_))
        ));
        let mut pkcs8 = generate_pkcs8().unwrap();
        let last = pkcs8.len() - 1;
        pkcs8[last] ^= 0xff;
        assert!(matches!(
            JwtSigner::from_pkcs8("k", &pkcs8),
            Err(JwtError::Crypto(_))
        ));
    }

    /// Length of an uncompressed P-256 point: `0x04 || x || y`.
    const PUBLIC_KEY_LEN: usize = 65;

    #[test]
    fn jwk_shape() {
        let (s, _) = shared();
        let jwk = s.public_jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk.as_object().unwrap().len(), 7);
        let x = jwk["x"].as_str().unwrap();
        let y = jwk["y"].as_str().unwrap();
        for c in [x, y] {
            assert_eq!(c.len(), 43);
            assert!(c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
        let pk = s.public_key_bytes();
        assert_eq!(pk.len(), PUBLIC_KEY_LEN);
        assert_eq!(pk[0], 0x04);
        // A verifier fed from the JWK alone (as a relying party would) accepts our tokens.
        let rebuilt = [
            vec![0x04],
            URL_SAFE_NO_PAD.decode(x).unwrap(),
            URL_SAFE_NO_PAD.decode(y).unwrap(),
        ]
        .concat();
        assert_eq!(rebuilt, pk);
        let mut v = JwtVerifier::new(ISS.into(), AUD.into(), LEEWAY);
        v.add_key(jwk["kid"].as_str().unwrap(), rebuilt);
        assert!(v.verify(&s.sign(&claims()).unwrap(), now()).is_ok());
    }

    #[test]
    fn debug_output_is_safe() {
        let (s, v) = shared();
        let sd = format!("{s:?}");
        assert!(sd.contains("k1"));
        assert!(!sd.contains("key_pair"));
        let vd = format!("{v:?}");
        assert!(vd.contains("k1") && vd.contains(ISS));
        assert_eq!(JwtError::Expired.to_string(), "token has expired");
    }

    fn any_claims() -> impl Strategy<Value = Claims> {
        (
            "\\PC{0,30}",
            "\\PC{0,30}",
            "\\PC{0,30}",
            any::<i64>(),
            any::<i64>(),
            "\\PC{0,30}",
        )
            .prop_map(|(sub, jti, org_id, iat, exp, secret_id)| Claims {
                iss: ISS.into(),
                aud: AUD.into(),
                sub,
                iat,
                exp,
                jti,
                org_id,
                secret_id,
            })
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_strings(t in any::<String>()) {
            let (_, v) = shared();
            prop_assert!(v.verify(&t, now()).is_err());
        }

        #[test]
        fn verify_never_panics_on_segments(
            a in "[A-Za-z0-9_=+/-]{0,120}",
            b in "[A-Za-z0-9_=+/-]{0,120}",
            c in "[A-Za-z0-9_=+/-]{0,120}",
        ) {
            let (_, v) = shared();
            let token = format!("{a}.{b}.{c}");
            prop_assert!(v.verify(&token, now()).is_err());
        }

        #[test]
        fn verify_never_panics_on_json_headers(
            header in proptest::collection::vec(any::<u8>(), 0..80),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            sig in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let (_, v) = shared();
            let t = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&sig));
            prop_assert!(v.verify(&t, now()).is_err());
            let h = br#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#;
            let t = format!("{}.{}.{}", b64(h), b64(&payload), b64(&sig));
            prop_assert!(v.verify(&t, now()).is_err());
        }

        #[test]
        fn sign_verify_round_trips(c in any_claims()) {
            let (s, v) = shared();
            let token = s.sign(&c).unwrap();
            let result = v.verify(&token, now());
            let now = now().timestamp();
            if c.exp <= now.saturating_sub(LEEWAY) {
                prop_assert_eq!(result, Err(JwtError::Expired));
            } else if c.iat > now.saturating_add(LEEWAY) {
                prop_assert_eq!(result, Err(JwtError::NotYetValid));
            } else {
                prop_assert_eq!(result, Ok(c));
            }
        }

        #[test]
        fn valid_claims_round_trip(c in any_claims(), lifetime in 1i64..86_400, age in 0i64..86_400) {
            let (s, v) = shared();
            let iat = now().timestamp() - age.min(lifetime - 1);
            let c = Claims { iat, exp: iat + lifetime, ..c };
            let token = s.sign(&c).unwrap();
            prop_assert_eq!(v.verify(&token, now()), Ok(c));
        }

        #[test]
        fn any_bit_flip_in_a_token_is_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..7) {
            let (s, v) = shared();
            let token = s.sign(&claims()).unwrap();
            let mut bytes = token.into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(t) = String::from_utf8(bytes) {
                prop_assert!(v.verify(&t, now()).is_err());
            }
        }
    }
}
