//! HTTP Digest access authentication (RFC 7616), as MongoDB Atlas uses it.
//!
//! Atlas answers an unauthenticated request with two challenges (SHA-256 first, then MD5),
//! `qop="auth"`, realm `MMS Public API`. Clients (curl, the Atlas CLI, Terraform) answer with
//! an `Authorization: Digest ...` header; [`parse_authorization`] reads it and [`verify`]
//! checks it against the stored `HA1` of the API key.
//!
//! Nonces are stateless: [`NonceManager::issue`] packs the issue time, the issuing node's tag
//! and some randomness, authenticated by an HMAC, so any server holding the key can tell that
//! a nonce is authentic. The only state is the highest `nc` seen per nonce, kept to reject
//! replays, and pruned once nonces expire. That state is per process, so a nonce is accepted
//! only by the process that issued it: the node tag is random per [`NonceManager`] (one per
//! process), and an authentic nonce carrying another tag (another node sharing the key, or
//! this node before a restart) is answered as stale (`stale=true`, RFC 7616 §3.3), so the
//! client retries with a nonce of the node it reached and a captured request cannot be
//! replayed on a node that never saw its `nc`.
//!
//! Validation is split in two steps ([`NonceManager::validate`], then
//! [`NonceManager::record_nc`] once the response is proven correct) so that a request with a
//! wrong password cannot burn a nonce count of the legitimate client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use md5::{Digest as _, Md5};
use rand::rngs::OsRng;
use rand::RngCore as _;
use ring::hmac;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use subtle::ConstantTimeEq as _;

/// The realm Atlas announces and expects back.
pub const REALM: &str = "MMS Public API";

/// Authorization header values longer than this are rejected before parsing.
pub const MAX_HEADER_LEN: usize = 4096;

/// Nonces issued up to this many seconds in the future are tolerated (clock skew between
/// servers sharing the key); beyond that they are invalid.
const MAX_FUTURE_SKEW_SECS: i64 = 5;

/// Bytes in a decoded nonce: 8 (issued at) + 8 (node tag) + 8 (random) + 16 (truncated HMAC).
const NONCE_NODE_LEN: usize = 8;
const NONCE_MSG_LEN: usize = 8 + NONCE_NODE_LEN + 8;
const NONCE_TAG_LEN: usize = 16;
const NONCE_RAW_LEN: usize = NONCE_MSG_LEN + NONCE_TAG_LEN;
/// Length of the base64url (no padding) text of a nonce.
const NONCE_TEXT_LEN: usize = 54;

/// The replay map is pruned of expired nonces when it reaches this size (or twice the size it
/// had after the previous pruning, whichever is larger).
const PRUNE_THRESHOLD: usize = 1024;

mod header;
#[cfg(test)]
use header::ParamIter;
pub use header::{parse_authorization, DigestCredentials, DigestParseError};

/// The hash function of a Digest exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5`, the RFC 2617 default, assumed when the client sends no `algorithm`.
    #[default]
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl DigestAlgorithm {
    /// The wire name: `MD5` or `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = DigestParseError;

    /// Parses a wire name, case-insensitively. The `-sess` variants are not supported.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Self::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Ok(Self::Sha256)
        } else {
            Err(DigestParseError::UnsupportedAlgorithm)
        }
    }
}

/// `H(parts[0]:parts[1]:...)` into `out`; returns the digest's length (16 or 32).
fn hash_into(alg: DigestAlgorithm, parts: &[&str], out: &mut [u8; 32]) -> usize {
    match alg {
        DigestAlgorithm::Md5 => {
            let mut h = Md5::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(part.as_bytes());
            }
            let d = h.finalize();
            out[..16].copy_from_slice(&d);
            16
        }
        DigestAlgorithm::Sha256 => {
            let mut h = ring::digest::Context::new(&ring::digest::SHA256);
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(part.as_bytes());
            }
            out.copy_from_slice(h.finish().as_ref());
            32
        }
    }
}

/// Whether `given` (hex, either case) is the `qop=auth` response for these fields, compared
/// in constant time; the same formula as [`expected_response`], without allocating.
#[allow(clippy::too_many_arguments)] // mirrors the RFC formula, one argument per field
fn response_matches(
    alg: DigestAlgorithm,
    given: &str,
    ha1_hex: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> bool {
    let mut digest = [0u8; 32];
    let n = hash_into(alg, &[method, uri], &mut digest);
    let mut ha2_hex = [0u8; 64];
    let Some(ha2_hex) = ha2_hex.get_mut(..2 * n) else {
        return false;
    };
    if hex::encode_to_slice(&digest[..n], ha2_hex).is_err() {
        return false;
    }
    let Ok(ha2) = std::str::from_utf8(ha2_hex) else {
        return false;
    };
    let n = hash_into(alg, &[ha1_hex, nonce, nc, cnonce, qop, ha2], &mut digest);
    let mut presented = [0u8; 32];
    if given.len() != 2 * n || hex::decode_to_slice(given, &mut presented[..n]).is_err() {
        return false;
    }
    bool::from(digest[..n].ct_eq(&presented[..n]))
}

/// Lowercase hex of `H(parts[0]:parts[1]:...)`.
fn hash_hex(alg: DigestAlgorithm, parts: &[&str]) -> String {
    let mut digest = [0u8; 32];
    let n = hash_into(alg, parts, &mut digest);
    hex::encode(&digest[..n])
}

/// `HA1`: lowercase hex of `H(username:realm:password)`.
pub fn ha1(alg: DigestAlgorithm, username: &str, realm: &str, password: &str) -> String {
    hash_hex(alg, &[username, realm, password])
}

/// The expected `response` for `qop=auth`: lowercase hex of
/// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))`.
#[allow(clippy::too_many_arguments)] // mirrors the RFC formula, one argument per field
pub fn expected_response(
    alg: DigestAlgorithm,
    ha1_hex: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = hash_hex(alg, &[method, uri]);
    hash_hex(alg, &[ha1_hex, nonce, nc, cnonce, qop, &ha2])
}

/// The outcome of [`NonceManager::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by a holder of the key and not expired.
    Valid,
    /// Authentic but older than the TTL, or issued by another node (another process sharing
    /// the key, or this node before a restart): challenge again with `stale=true`.
    Stale,
    /// Not ours: bad encoding, bad HMAC, or issued too far in the future.
    Invalid,
    /// The nonce count was already used. Never returned by `validate`; kept so callers can
    /// report the outcome of [`NonceManager::record_nc`] with one type.
    Replay,
}

/// Highest `nc` seen per nonce, with the nonce's issue time for pruning.
struct SeenNonces {
    /// Keyed by the nonce's text (fixed length: no allocation per entry beyond the map's).
    entries: HashMap<[u8; NONCE_TEXT_LEN], (u32, i64)>,
    prune_at: usize,
}

/// Issues and validates stateless, HMAC-authenticated nonces, and tracks the highest nonce
/// count used with each to reject replays.
///
/// A nonce is the base64url (no padding) text of
/// `issued_at (u64 BE seconds) || node tag (8 bytes) || 8 random bytes ||
/// HMAC-SHA256(key, those 24 bytes)[..16]`.
///
/// The node tag is drawn at random when the manager is made (once per process): only nonces
/// carrying this manager's tag are valid here, because only this manager holds their `nc`
/// record.
pub struct NonceManager {
    key: hmac::Key,
    node: [u8; NONCE_NODE_LEN],
    ttl: Duration,
    seen: Mutex<SeenNonces>,
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// `key` authenticates nonces (use at least 32 random bytes); nonces older than `ttl`
    /// are stale. The node tag is new and random: make one manager per process.
    pub fn new(key: &[u8], ttl: Duration) -> Self {
        let mut node = [0u8; NONCE_NODE_LEN];
        OsRng.fill_bytes(&mut node);
        Self::with_node(key, ttl, node)
    }

    fn with_node(key: &[u8], ttl: Duration, node: [u8; NONCE_NODE_LEN]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            node,
            ttl,
            seen: Mutex::new(SeenNonces {
                entries: HashMap::new(),
                prune_at: PRUNE_THRESHOLD,
            }),
        }
    }

    /// A fresh nonce, issued at `now`.
    pub fn issue(&self, now: DateTime<Utc>) -> String {
        let issued_at = u64::try_from(now.timestamp()).unwrap_or(0);
        let mut raw = [0u8; NONCE_RAW_LEN];
        let (msg, tag) = raw.split_at_mut(NONCE_MSG_LEN);
        let (time, rest) = msg.split_at_mut(8);
        let (node, random) = rest.split_at_mut(NONCE_NODE_LEN);
        time.copy_from_slice(&issued_at.to_be_bytes());
        node.copy_from_slice(&self.node);
        OsRng.fill_bytes(random);
        let mac = hmac::sign(&self.key, msg);
        tag.copy_from_slice(&mac.as_ref()[..NONCE_TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The issue time (Unix seconds) of an authentic nonce and whether this manager issued
    /// it (its node tag is ours); `None` if the nonce is badly encoded or its HMAC does not
    /// match (compared in constant time).
    fn authentic(&self, nonce: &str) -> Option<(i64, bool)> {
        if nonce.len() != NONCE_TEXT_LEN {
            return None;
        }
        let raw: [u8; NONCE_RAW_LEN] = URL_SAFE_NO_PAD.decode(nonce).ok()?.try_into().ok()?;
        let (msg, tag) = raw.split_at(NONCE_MSG_LEN);
        let mac = hmac::sign(&self.key, msg);
        let expected = mac.as_ref().get(..NONCE_TAG_LEN)?;
        if !bool::from(expected.ct_eq(tag)) {
            return None;
        }
        let secs = u64::from_be_bytes(msg.get(..8)?.try_into().ok()?);
        let ours = msg.get(8..8 + NONCE_NODE_LEN)? == self.node.as_slice();
        Some((i64::try_from(secs).ok()?, ours))
    }

    fn classify(&self, (issued_at, ours): (i64, bool), now: DateTime<Utc>) -> NonceCheck {
        let now = now.timestamp();
        if issued_at > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
            NonceCheck::Invalid
        } else if now.saturating_sub(issued_at) > self.ttl.num_seconds() || !ours {
            // Another node's nonce is authentic but its `nc` record is not here: a fresh
            // nonce of ours, and the client retries without asking the user again.
            NonceCheck::Stale
        } else {
            NonceCheck::Valid
        }
    }

    /// Checks a nonce without changing any state: [`NonceCheck::Valid`], [`NonceCheck::Stale`]
    /// (authentic, but older than the TTL or issued by another node) or
    /// [`NonceCheck::Invalid`] (bad encoding, bad HMAC, or issued more than 5 s in the future).
    pub fn validate(&self, nonce: &str, now: DateTime<Utc>) -> NonceCheck {
        match self.authentic(nonce) {
            Some(found) => self.classify(found, now),
            None => NonceCheck::Invalid,
        }
    }

    /// Records `nc` as used with `nonce`. Call only once the response has been verified.
    ///
    /// Returns `true` when recorded: the nonce is valid at `now` and `nc` is at least 1 and
    /// strictly greater than any count recorded before for it. Returns `false` otherwise (a
    /// replay, when the nonce was validated just before).
    pub fn record_nc(&self, nonce: &str, nc: u32, now: DateTime<Utc>) -> bool {
        if nc == 0 {
            return false;
        }
        let Some((issued_at, ours)) = self.authentic(nonce) else {
            return false;
        };
        if self.classify((issued_at, ours), now) != NonceCheck::Valid {
            return false;
        }
        self.record_valid_nc(nonce, nc, issued_at, now)
    }

    /// [`NonceManager::record_nc`] for a nonce already found authentic, ours and valid at
    /// `now` (issued at `issued_at`): one HMAC per request instead of two.
    fn record_valid_nc(&self, nonce: &str, nc: u32, issued_at: i64, now: DateTime<Utc>) -> bool {
        if nc == 0 {
            return false;
        }
        let Ok(key) = <[u8; NONCE_TEXT_LEN]>::try_from(nonce.as_bytes()) else {
            return false;
        };
        let mut seen = self.lock();
        if let Some((highest, _)) = seen.entries.get_mut(&key) {
            if nc <= *highest {
                return false;
            }
            *highest = nc;
            return true;
        }
        if seen.entries.len() >= seen.prune_at {
            // Expired nonces are rejected as stale before their counts matter: forget them.
            let (now, ttl) = (now.timestamp(), self.ttl.num_seconds());
            seen.entries
                .retain(|_, (_, issued)| now.saturating_sub(*issued) <= ttl);
            seen.prune_at = PRUNE_THRESHOLD.max(seen.entries.len().saturating_mul(2));
        }
        seen.entries.insert(key, (nc, issued_at));
        true
    }

    /// The replay map. A panic while holding the lock cannot leave it inconsistent (each
    /// critical section is a single map operation), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, SeenNonces> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The two `WWW-Authenticate` header values Atlas sends, SHA-256 first, then MD5.
pub fn challenges(nonce: &str, stale: bool) -> [String; 2] {
    [DigestAlgorithm::Sha256, DigestAlgorithm::Md5].map(|alg| {
        format!(
            "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm={alg}, \
             qop=\"auth\", stale={stale}"
        )
    })
}

/// Why [`verify`] rejected a Digest response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestFailure {
    #[error("malformed digest parameters")]
    Malformed,
    #[error("wrong realm")]
    WrongRealm,
    #[error("unsupported qop (only `auth` is accepted)")]
    UnsupportedQop,
    #[error("digest uri does not match the request target")]
    UriMismatch,
    #[error("stale nonce")]
    Stale,
    #[error("invalid nonce")]
    BadNonce,
    #[error("nonce count replayed")]
    Replay,
    #[error("wrong digest response")]
    BadResponse,
}

/// Parses an `nc` value: exactly 8 hex digits, at least 1.
fn parse_nc(nc: &str) -> Option<u32> {
    if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(nc, 16).ok().filter(|&n| n >= 1)
}

/// Verifies a Digest response for a request with `method` and `request_target` (the path and
/// `?query` exactly as on the request line), given the stored `HA1` for the credentials'
/// algorithm.
///
/// Checks, in order: realm, `qop=auth` with `nc` and `cnonce`, uri, nonce validity, the
/// response (constant-time comparison of the hex, the client's hex case-folded first; `qop`
/// and `nc` are hashed as sent), and finally records `nc` against replays — only
/// after the response is proven correct, so a wrong password cannot burn a nonce count.
pub fn verify(
    creds: &DigestCredentials,
    method: &str,
    request_target: &str,
    ha1_hex: &str,
    nonces: &NonceManager,
    now: DateTime<Utc>,
) -> Result<(), DigestFailure> {
    if creds.realm != REALM {
        return Err(DigestFailure::WrongRealm);
    }
    let qop = match creds.qop.as_deref() {
        Some(qop) if qop.eq_ignore_ascii_case("auth") => qop,
        _ => return Err(DigestFailure::UnsupportedQop),
    };
    let nc_text = creds.nc.as_deref().ok_or(DigestFailure::Malformed)?;
    let nc = parse_nc(nc_text).ok_or(DigestFailure::Malformed)?;
    let cnonce = creds
        .cnonce
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(DigestFailure::Malformed)?;
    if creds.uri != request_target {
        return Err(DigestFailure::UriMismatch);
    }
    // Authenticated once; the same finding is used to record the count below.
    let found = nonces
        .authentic(&creds.nonce)
        .ok_or(DigestFailure::BadNonce)?;
    match nonces.classify(found, now) {
        NonceCheck::Valid => {}
        NonceCheck::Stale => return Err(DigestFailure::Stale),
        NonceCheck::Invalid | NonceCheck::Replay => return Err(DigestFailure::BadNonce),
    }
    if !response_matches(
        creds.algorithm,
        &creds.response,
        ha1_hex,
        &creds.nonce,
        nc_text,
        cnonce,
        qop,
        method,
        &creds.uri,
    ) {
        return Err(DigestFailure::BadResponse);
    }
    if !nonces.record_valid_nc(&creds.nonce, nc, found.0, now) {
        return Err(DigestFailure::Replay);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const URI: &str = "/api/atlas/v2/orgs?pretty=true";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn manager() -> NonceManager {
        NonceManager::new(KEY, Duration::seconds(300))
    }

    /// Builds an Authorization header the way curl does (lib/vauth/digest.c).
    #[allow(clippy::too_many_arguments)]
    fn curl_header(
        alg: DigestAlgorithm,
        user: &str,
        password: &str,
        nonce: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let ha1 = hash_hex(alg, &[user, REALM, password]);
        let ha2 = hash_hex(alg, &[method, uri]);
        let nc = format!("{nc:08x}");
        let response = hash_hex(alg, &[&ha1, nonce, &nc, cnonce, "auth", &ha2]);
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             cnonce=\"{cnonce}\", nc={nc}, qop=auth, response=\"{response}\", algorithm={}",
            alg.as_str()
        )
    }

    fn check(
        header: &str,
        password_ha1: &str,
        nonces: &NonceManager,
        now: DateTime<Utc>,
    ) -> Result<(), DigestFailure> {
        let creds = parse_authorization(header).map_err(|_| DigestFailure::Malformed)?;
        verify(&creds, "GET", URI, password_ha1, nonces, now)
    }

    // ---- RFC 7616 §3.9.1 ----

    const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc_response(alg: DigestAlgorithm) -> String {
        let ha1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
        expected_response(
            alg,
            &ha1,
            RFC_NONCE,
            "00000001",
            RFC_CNONCE,
            "auth",
            "GET",
            "/dir/index.html",
        )
    }

    #[test]
    fn rfc7616_md5_vector() {
        assert_eq!(
            rfc_response(DigestAlgorithm::Md5),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_sha256_vector() {
        assert_eq!(
            rfc_response(DigestAlgorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc7616_example_header_parses() {
        let header = r#"Digest username="Mufasa",
            realm="http-auth@example.org",
            uri="/dir/index.html",
            algorithm=SHA-256,
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc=00000001,
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            qop=auth,
            response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
            .replace(['\n'], "");
        let c = parse_authorization(&header).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(c.nonce, RFC_NONCE);
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.cnonce.as_deref(), Some(RFC_CNONCE));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.response, rfc_response(DigestAlgorithm::Sha256));
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }

    // ---- parsing ----

    #[test]
    fn parses_atlas_style_header() {
        let h = r#"Digest username="abcdefgh", realm="MMS Public API", nonce="n1", uri="/api/atlas/v2/orgs?pretty=true", cnonce="c1", nc=00000001, qop=auth, response="r1", algorithm=MD5"#;
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.username, "abcdefgh");
        assert_eq!(c.realm, REALM);
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.uri, "/api/atlas/v2/orgs?pretty=true");
        assert_eq!(c.cnonce.as_deref(), Some("c1"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.response, "r1");
        assert_eq!(c.algorithm, DigestAlgorithm::Md5);
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn scheme_and_names_are_case_insensitive() {
        let h = r#"dIgEsT USERNAME="u", Realm="r", NONCE="n", Uri="/", Response="x", ALGORITHM=sha-256"#;
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.username, "u");
        assert_eq!(c.algorithm, DigestAlgorithm::Sha256);
    }

    #[test]
    fn algorithm_defaults_to_md5() {
        let c =
            parse_authorization(r#"Digest username="u",realm="r",nonce="n",uri="/",response="x""#)
                .unwrap();
        assert_eq!(c.algorithm, DigestAlgorithm::Md5);
        assert_eq!(c.qop, None);
        assert_eq!(c.nc, None);
        assert_eq!(c.cnonce, None);
    }

    #[test]
    fn tolerates_whitespace_and_empty_elements() {
        let h = "Digest \t , username = \"u\" ,realm=\t\"r\",, nonce=n ,uri=\"/\",\tresponse=x , ";
        let c = parse_authorization(h).unwrap();
        assert_eq!(
            (c.username.as_str(), c.realm.as_str(), c.nonce.as_str()),
            ("u", "r", "n")
        );
        assert_eq!(c.response, "x");
    }

    #[test]
    fn unescapes_quoted_strings() {
        let h = r#"Digest username="a\"b\\c\d", realm="r, with comma", nonce="n", uri="/x?a=1,b=2", response="x""#;
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.username, "a\"b\\cd");
        assert_eq!(c.realm, "r, with comma");
        assert_eq!(c.uri, "/x?a=1,b=2");
    }

    #[test]
    fn accepts_non_ascii_in_quoted_strings() {
        let h = r#"Digest username="zoë", realm="r", nonce="n", uri="/é", response="x""#;
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.username, "zoë");
        assert_eq!(c.uri, "/é");
    }

    #[test]
    fn ignores_unknown_params() {
        let h = r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", userhash=false, foo="bar""#;
        assert!(parse_authorization(h).is_ok());
    }

    #[test]
    fn rejects_wrong_scheme() {
        for h in [
            "Basic dXNlcjpwYXNz",
            "",
            "   ",
            "Digestusername=\"u\"",
            "Bearer x",
        ] {
            assert_eq!(
                parse_authorization(h).unwrap_err(),
                DigestParseError::NotDigest,
                "{h}"
            );
        }
    }

    #[test]
    fn rejects_duplicates() {
        let h = r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", Username="v""#;
        assert_eq!(
            parse_authorization(h).unwrap_err(),
            DigestParseError::Duplicate("username".into())
        );
        let h = r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", foo=1, FOO=2"#;
        assert_eq!(
            parse_authorization(h).unwrap_err(),
            DigestParseError::Duplicate("foo".into())
        );
    }

    #[test]
    fn rejects_missing_required() {
        let full = [
            ("username", "username=\"u\""),
            ("realm", "realm=\"r\""),
            ("nonce", "nonce=\"n\""),
            ("uri", "uri=\"/\""),
            ("response", "response=\"x\""),
        ];
        for (missing, _) in full {
            let params: Vec<&str> = full
                .iter()
                .filter(|(n, _)| *n != missing)
                .map(|(_, p)| *p)
                .collect();
            let h = format!("Digest {}", params.join(", "));
            assert_eq!(
                parse_authorization(&h).unwrap_err(),
                DigestParseError::Missing(missing)
            );
        }
        assert_eq!(
            parse_authorization("Digest").unwrap_err(),
            DigestParseError::Missing("username")
        );
    }

    #[test]
    fn rejects_syntax_errors() {
        for h in [
            r#"Digest username="u"#,
            r#"Digest username="u\"#,
            r#"Digest username"#,
            r#"Digest username="#,
            r#"Digest username=, realm="r""#,
            r#"Digest =u"#,
            r#"Digest username="u" realm="r""#,
            r#"Digest username=u v"#,
            r#"Digest username=="u""#,
            "Digest username=\"a\u{0}b\"",
            "Digest username=\"a\nb\"",
            "Digest username=\"a\u{85}b\"",
            "Digest username=\"a\\\u{85}b\"",
            "Digest username=\"a\\\u{7f}b\"",
            r#"Digest usérname="u""#,
        ] {
            assert!(
                matches!(parse_authorization(h), Err(DigestParseError::Syntax(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn rejects_unsupported_algorithm() {
        for alg in ["MD5-sess", "SHA-256-sess", "SHA-512-256", "\"\""] {
            let h = format!(
                r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", algorithm={alg}"#
            );
            assert_eq!(
                parse_authorization(&h).unwrap_err(),
                DigestParseError::UnsupportedAlgorithm
            );
        }
        let h = r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", algorithm="SHA-256""#;
        assert_eq!(
            parse_authorization(h).unwrap().algorithm,
            DigestAlgorithm::Sha256
        );
    }

    #[test]
    fn rejects_too_long() {
        let base = r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", pad=""#;
        let pad = MAX_HEADER_LEN - base.len() - 1;
        let ok = format!("{base}{}\"", "a".repeat(pad));
        assert_eq!(ok.len(), MAX_HEADER_LEN);
        assert!(parse_authorization(&ok).is_ok());
        let long = format!("{base}{}\"", "a".repeat(pad + 1));
        assert_eq!(
            parse_authorization(&long).unwrap_err(),
            DigestParseError::TooLong
        );
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(DigestAlgorithm::Md5.to_string(), "MD5");
        assert_eq!(DigestAlgorithm::Sha256.to_string(), "SHA-256");
        assert_eq!("md5".parse::<DigestAlgorithm>(), Ok(DigestAlgorithm::Md5));
        assert_eq!(
            "Sha-256".parse::<DigestAlgorithm>(),
            Ok(DigestAlgorithm::Sha256)
        );
        assert!("SHA256".parse::<DigestAlgorithm>().is_err());
    }

    // ---- hashing ----

    #[test]
    fn ha1_is_lowercase_hex() {
        let md5 = ha1(DigestAlgorithm::Md5, "u", REALM, "p");
        let sha = ha1(DigestAlgorithm::Sha256, "u", REALM, "p");
        assert_eq!(md5.len(), 32);
        assert_eq!(sha.len(), 64);
        for h in [&md5, &sha] {
            assert!(h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        // The RFC 2617 example's HA1 (as given on Wikipedia's "Digest access authentication").
        assert_eq!(
            ha1(
                DigestAlgorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    // ---- nonces ----

    #[test]
    fn issued_nonce_shape() {
        let m = manager();
        let n = m.issue(t0());
        assert_eq!(n.len(), NONCE_TEXT_LEN);
        assert!(n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        assert_eq!(raw.len(), NONCE_RAW_LEN);
        let secs = u64::from_be_bytes(raw[..8].try_into().unwrap());
        assert_eq!(secs as i64, t0().timestamp());
        assert_ne!(m.issue(t0()), n, "nonces carry randomness");
    }

    #[test]
    fn nonce_validity_window() {
        let m = manager();
        let n = m.issue(t0());
        assert_eq!(m.validate(&n, t0()), NonceCheck::Valid);
        assert_eq!(
            m.validate(&n, t0() + Duration::seconds(300)),
            NonceCheck::Valid
        );
        assert_eq!(
            m.validate(&n, t0() + Duration::seconds(301)),
            NonceCheck::Stale
        );
        // Issued in the future: tolerated up to 5 s of skew.
        assert_eq!(
            m.validate(&n, t0() - Duration::seconds(5)),
            NonceCheck::Valid
        );
        assert_eq!(
            m.validate(&n, t0() - Duration::seconds(6)),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn nonce_from_another_key_is_invalid() {
        let other = NonceManager::new(b"another key, another server.....", Duration::seconds(300));
        let n = other.issue(t0());
        assert_eq!(manager().validate(&n, t0()), NonceCheck::Invalid);
    }

    #[test]
    fn nonce_of_another_node_is_stale() {
        // Two nodes (processes) sharing one nonce key: each accepts only its own nonces, and
        // answers the other's (authentic) with a stale challenge, never with acceptance.
        let a = NonceManager::with_node(KEY, Duration::seconds(300), *b"node-aaa");
        let b = NonceManager::with_node(KEY, Duration::seconds(300), *b"node-bbb");
        let n = a.issue(t0());
        assert_eq!(a.validate(&n, t0()), NonceCheck::Valid);
        assert_eq!(b.validate(&n, t0()), NonceCheck::Stale);
        assert!(!b.record_nc(&n, 1, t0()), "b keeps no count for a's nonce");
        assert!(a.record_nc(&n, 1, t0()));
        assert!(!b.record_nc(&n, 2, t0()));
        // Expired or not, another node's nonce is stale; from the future it is still invalid.
        assert_eq!(
            b.validate(&n, t0() + Duration::seconds(301)),
            NonceCheck::Stale
        );
        assert_eq!(
            b.validate(&n, t0() - Duration::seconds(6)),
            NonceCheck::Invalid
        );
        // A restart is a new node: the nonces issued before are stale.
        let restarted = manager();
        let before = manager().issue(t0());
        assert_eq!(restarted.validate(&before, t0()), NonceCheck::Stale);
        assert_ne!(manager().node, manager().node, "the node tag is random");
    }

    #[test]
    fn node_tag_is_authenticated() {
        // Rewriting another node's nonce to carry this node's tag breaks its HMAC.
        let a = NonceManager::with_node(KEY, Duration::seconds(300), *b"node-aaa");
        let b = NonceManager::with_node(KEY, Duration::seconds(300), *b"node-bbb");
        let mut raw = URL_SAFE_NO_PAD.decode(a.issue(t0())).unwrap();
        assert_eq!(&raw[8..16], b"node-aaa", "the tag follows the issue time");
        raw[8..16].copy_from_slice(b"node-bbb");
        let forged = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(b.validate(&forged, t0()), NonceCheck::Invalid);
        assert_eq!(a.validate(&forged, t0()), NonceCheck::Invalid);
        assert!(!b.record_nc(&forged, 1, t0()));
    }

    #[test]
    fn replay_on_another_node_is_stale() {
        // A request captured on node a, replayed on node b: stale there (a new challenge),
        // never accepted; on a it is a replay.
        let a = NonceManager::with_node(KEY, Duration::seconds(300), *b"node-aaa");
        let b = NonceManager::with_node(KEY, Duration::seconds(300), *b"node-bbb");
        let stored = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = a.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            &nonce,
            "GET",
            URI,
            1,
            "c",
        );
        assert_eq!(check(&h, &stored, &a, t0()), Ok(()));
        assert_eq!(check(&h, &stored, &b, t0()), Err(DigestFailure::Stale));
        assert_eq!(check(&h, &stored, &b, t0()), Err(DigestFailure::Stale));
        assert_eq!(check(&h, &stored, &a, t0()), Err(DigestFailure::Replay));
    }

    #[test]
    fn tampered_nonce_is_invalid() {
        let m = manager();
        let n = m.issue(t0());
        let mut raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            let tampered = URL_SAFE_NO_PAD.encode(&raw);
            assert_eq!(m.validate(&tampered, t0()), NonceCheck::Invalid, "byte {i}");
            assert!(!m.record_nc(&tampered, 1, t0()));
            raw[i] ^= 0x01;
        }
        for bad in [
            "",
            "x",
            &n[..42],
            &format!("{n}A"),
            &format!("{n}="),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(m.validate(bad, t0()), NonceCheck::Invalid, "{bad}");
        }
    }

    #[test]
    fn forged_issue_time_is_invalid() {
        // Moving the timestamp forward to extend a nonce's life breaks the HMAC.
        let m = manager();
        let n = m.issue(t0());
        let mut raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        let later = (t0().timestamp() as u64 + 1000).to_be_bytes();
        raw[..8].copy_from_slice(&later);
        let forged = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            m.validate(&forged, t0() + Duration::seconds(1000)),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn record_nc_rejects_replays() {
        let m = manager();
        let n = m.issue(t0());
        assert!(!m.record_nc(&n, 0, t0()), "nc starts at 1");
        assert!(m.record_nc(&n, 1, t0()));
        assert!(!m.record_nc(&n, 1, t0()));
        assert!(m.record_nc(&n, 5, t0()));
        assert!(!m.record_nc(&n, 3, t0()));
        assert!(!m.record_nc(&n, 5, t0()));
        assert!(m.record_nc(&n, 6, t0()));
        assert!(m.record_nc(&n, u32::MAX, t0()));
        assert!(!m.record_nc(&n, u32::MAX, t0()));
        // Another nonce has its own counter; first use may start anywhere >= 1.
        let n2 = m.issue(t0());
        assert!(m.record_nc(&n2, 7, t0()));
        // validate never changes state.
        assert_eq!(m.validate(&n2, t0()), NonceCheck::Valid);
        assert!(m.record_nc(&n2, 8, t0()));
    }

    #[test]
    fn record_nc_rejects_stale_nonce() {
        let m = manager();
        let n = m.issue(t0());
        assert!(m.record_nc(&n, 1, t0()));
        assert!(!m.record_nc(&n, 2, t0() + Duration::seconds(301)));
    }

    #[test]
    fn replay_map_is_pruned() {
        let m = manager();
        for _ in 0..PRUNE_THRESHOLD {
            assert!(m.record_nc(&m.issue(t0()), 1, t0()));
        }
        assert_eq!(m.lock().entries.len(), PRUNE_THRESHOLD);
        // All earlier nonces have expired by now: the next insert prunes them.
        let later = t0() + Duration::seconds(301);
        let fresh = m.issue(later);
        assert!(m.record_nc(&fresh, 1, later));
        assert_eq!(m.lock().entries.len(), 1);
        assert!(!m.record_nc(&fresh, 1, later), "kept entries still count");
    }

    #[test]
    fn replay_map_growth_is_amortized() {
        // With only live entries, pruning keeps them and the next prune happens at 2x size.
        let m = manager();
        for _ in 0..=PRUNE_THRESHOLD {
            assert!(m.record_nc(&m.issue(t0()), 1, t0()));
        }
        let seen = m.lock();
        assert_eq!(seen.entries.len(), PRUNE_THRESHOLD + 1);
        assert_eq!(seen.prune_at, PRUNE_THRESHOLD * 2);
    }

    #[test]
    fn debug_does_not_leak_key() {
        let s = format!("{:?}", manager());
        assert!(s.contains("NonceManager"));
        assert!(!s.contains("0123456789abcdef"));
    }

    // ---- challenges ----

    #[test]
    fn challenge_shape() {
        let [sha, md5] = challenges("abc", false);
        assert_eq!(
            sha,
            r#"Digest realm="MMS Public API", domain="", nonce="abc", algorithm=SHA-256, qop="auth", stale=false"#
        );
        assert_eq!(
            md5,
            r#"Digest realm="MMS Public API", domain="", nonce="abc", algorithm=MD5, qop="auth", stale=false"#
        );
        let [sha, md5] = challenges("abc", true);
        assert!(sha.ends_with("algorithm=SHA-256, qop=\"auth\", stale=true"));
        assert!(md5.ends_with("algorithm=MD5, qop=\"auth\", stale=true"));
    }

    #[test]
    fn challenge_is_parseable_by_a_client() {
        // What a client does with the challenge: read the params back.
        let m = manager();
        let nonce = m.issue(t0());
        for ch in challenges(&nonce, false) {
            let rest = ch.strip_prefix("Digest ").unwrap();
            let params: HashMap<String, String> = ParamIter::new(rest)
                .map(|p| p.map(|(n, v)| (n.to_owned(), v)))
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(params["nonce"], nonce);
            assert_eq!(params["realm"], REALM);
            assert_eq!(params["qop"], "auth");
        }
    }

    // ---- end to end ----

    #[test]
    fn end_to_end_md5_and_sha256() {
        for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
            let m = manager();
            let stored = ha1(alg, "abcdefgh", REALM, "s3cret-uuid");
            let nonce = m.issue(t0());
            let h = curl_header(
                alg,
                "abcdefgh",
                "s3cret-uuid",
                &nonce,
                "GET",
                URI,
                1,
                "MTIzNDU2",
            );
            assert_eq!(check(&h, &stored, &m, t0()), Ok(()), "{alg}");
            // Same nc again: replay.
            assert_eq!(
                check(&h, &stored, &m, t0()),
                Err(DigestFailure::Replay),
                "{alg}"
            );
            // Next nc: fine.
            let h2 = curl_header(
                alg,
                "abcdefgh",
                "s3cret-uuid",
                &nonce,
                "GET",
                URI,
                2,
                "MTIzNDU2",
            );
            assert_eq!(
                check(&h2, &stored, &m, t0() + Duration::seconds(10)),
                Ok(())
            );
        }
    }

    #[test]
    fn wrong_password_does_not_burn_the_nonce_count() {
        let alg = DigestAlgorithm::Sha256;
        let m = manager();
        let stored = ha1(alg, "user", REALM, "right");
        let nonce = m.issue(t0());
        let bad = curl_header(alg, "user", "wrong", &nonce, "GET", URI, 1, "c");
        assert_eq!(
            check(&bad, &stored, &m, t0()),
            Err(DigestFailure::BadResponse)
        );
        let good = curl_header(alg, "user", "right", &nonce, "GET", URI, 1, "c");
        assert_eq!(check(&good, &stored, &m, t0()), Ok(()));
    }

    #[test]
    fn ha1_of_other_algorithm_fails() {
        let m = manager();
        let stored_md5 = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Sha256,
            "user",
            "pw",
            &nonce,
            "GET",
            URI,
            1,
            "c",
        );
        assert_eq!(
            check(&h, &stored_md5, &m, t0()),
            Err(DigestFailure::BadResponse)
        );
    }

    #[test]
    fn method_is_covered_by_the_response() {
        let m = manager();
        let stored = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            &nonce,
            "POST",
            URI,
            1,
            "c",
        );
        assert_eq!(
            check(&h, &stored, &m, t0()),
            Err(DigestFailure::BadResponse)
        );
    }

    #[test]
    fn uppercase_response_hex_is_accepted() {
        let m = manager();
        let stored = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            &nonce,
            "GET",
            URI,
            1,
            "c",
        );
        let mut creds = parse_authorization(&h).unwrap();
        creds.response = creds.response.to_ascii_uppercase();
        assert_eq!(verify(&creds, "GET", URI, &stored, &m, t0()), Ok(()));
    }

    #[test]
    fn uri_mismatch() {
        let m = manager();
        let stored = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            &nonce,
            "GET",
            URI,
            1,
            "c",
        );
        let creds = parse_authorization(&h).unwrap();
        for target in [
            "/api/atlas/v2/orgs",
            "/api/atlas/v2/orgs?pretty=false",
            "/api/atlas/v2/groups?pretty=true",
            "",
        ] {
            assert_eq!(
                verify(&creds, "GET", target, &stored, &m, t0()),
                Err(DigestFailure::UriMismatch)
            );
        }
    }

    #[test]
    fn stale_after_ttl() {
        let m = manager();
        let stored = ha1(DigestAlgorithm::Sha256, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Sha256,
            "user",
            "pw",
            &nonce,
            "GET",
            URI,
            1,
            "c",
        );
        assert_eq!(
            check(&h, &stored, &m, t0() + Duration::seconds(301)),
            Err(DigestFailure::Stale)
        );
        assert_eq!(
            check(&h, &stored, &m, t0() + Duration::seconds(300)),
            Ok(())
        );
    }

    #[test]
    fn tampered_nonce_is_bad_nonce() {
        let m = manager();
        let stored = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let mut chars: Vec<char> = nonce.chars().collect();
        chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        // The client computes a perfectly valid response over the tampered nonce.
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            &tampered,
            "GET",
            URI,
            1,
            "c",
        );
        assert_eq!(check(&h, &stored, &m, t0()), Err(DigestFailure::BadNonce));
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            "made-up",
            "GET",
            URI,
            1,
            "c",
        );
        assert_eq!(check(&h, &stored, &m, t0()), Err(DigestFailure::BadNonce));
    }

    fn valid_creds(m: &NonceManager) -> (DigestCredentials, String) {
        let stored = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let nonce = m.issue(t0());
        let h = curl_header(
            DigestAlgorithm::Md5,
            "user",
            "pw",
            &nonce,
            "GET",
            URI,
            1,
            "c",
        );
        (parse_authorization(&h).unwrap(), stored)
    }

    #[test]
    fn wrong_realm() {
        let m = manager();
        let (mut creds, stored) = valid_creds(&m);
        creds.realm = "mms public api".into();
        assert_eq!(
            verify(&creds, "GET", URI, &stored, &m, t0()),
            Err(DigestFailure::WrongRealm)
        );
    }

    #[test]
    fn qop_rules() {
        let m = manager();
        let (creds, stored) = valid_creds(&m);
        for qop in [None, Some("auth-int"), Some(""), Some("auth,auth-int")] {
            let mut c = creds.clone();
            c.qop = qop.map(str::to_owned);
            assert_eq!(
                verify(&c, "GET", URI, &stored, &m, t0()),
                Err(DigestFailure::UnsupportedQop),
                "{qop:?}"
            );
        }
        for nc in [
            None,
            Some("1"),
            Some("00000000"),
            Some("0000000g"),
            Some("+0000001"),
            Some("000000001"),
            Some(""),
        ] {
            let mut c = creds.clone();
            c.nc = nc.map(str::to_owned);
            assert_eq!(
                verify(&c, "GET", URI, &stored, &m, t0()),
                Err(DigestFailure::Malformed),
                "{nc:?}"
            );
        }
        for cnonce in [None, Some("")] {
            let mut c = creds.clone();
            c.cnonce = cnonce.map(str::to_owned);
            assert_eq!(
                verify(&c, "GET", URI, &stored, &m, t0()),
                Err(DigestFailure::Malformed)
            );
        }
        // qop is case-insensitive, and hashed as sent.
        let nonce = m.issue(t0());
        let ha1_hex = ha1(DigestAlgorithm::Md5, "user", REALM, "pw");
        let response = expected_response(
            DigestAlgorithm::Md5,
            &ha1_hex,
            &nonce,
            "0000000A",
            "c",
            "AUTH",
            "GET",
            URI,
        );
        let c = DigestCredentials {
            nonce,
            qop: Some("AUTH".into()),
            nc: Some("0000000A".into()),
            response,
            ..creds
        };
        assert_eq!(verify(&c, "GET", URI, &stored, &m, t0()), Ok(()));
    }

    #[test]
    fn parse_nc_values() {
        assert_eq!(parse_nc("00000001"), Some(1));
        assert_eq!(parse_nc("0000000a"), Some(10));
        assert_eq!(parse_nc("FFFFFFFF"), Some(u32::MAX));
        assert_eq!(parse_nc("00000000"), None);
        assert_eq!(parse_nc("0000001"), None);
        assert_eq!(parse_nc("-0000001"), None);
    }

    #[test]
    fn failure_messages() {
        assert_eq!(DigestFailure::Replay.to_string(), "nonce count replayed");
        assert_eq!(
            DigestParseError::Duplicate("nc".into()).to_string(),
            "duplicate digest parameter `nc`"
        );
    }

    // ---- properties ----

    /// Quotes a value as a client would.
    fn quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    /// Printable text, including quotes, backslashes, commas, `=` and non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        "[ -~\u{a0}-\u{2fff}\t]{0,40}"
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_strings(s in any::<String>()) {
            let _ = parse_authorization(&s);
            let _ = parse_authorization(&format!("Digest {s}"));
        }

        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_authorization(&s);
            let _ = parse_authorization(&format!("Digest {s}"));
        }

        #[test]
        fn parse_never_panics_on_param_soup(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("username".to_owned()), Just("realm".to_owned()), Just("nonce".to_owned()),
                    Just("uri".to_owned()), Just("response".to_owned()), Just("nc".to_owned()),
                    Just("=".to_owned()), Just(",".to_owned()), Just("\"".to_owned()),
                    Just("\\".to_owned()), Just(" ".to_owned()), Just("\t".to_owned()),
                    Just("é".to_owned()), "[a-zA-Z0-9]{0,4}",
                ],
                0..40,
            )
        ) {
            let _ = parse_authorization(&format!("Digest {}", parts.concat()));
        }

        #[test]
        fn parse_round_trips(
            username in text(), realm in text(), nonce in text(), uri in text(),
            response in text(), cnonce in text(), opaque in text(),
            nc in any::<u32>(), sha in any::<bool>(), quote_tokens in any::<bool>(),
        ) {
            let alg = if sha { DigestAlgorithm::Sha256 } else { DigestAlgorithm::Md5 };
            let nc_text = format!("{nc:08x}");
            let token = |t: &str| if quote_tokens { quote(t) } else { t.to_owned() };
            let header = format!(
                "Digest username={}, realm={}, nonce={}, uri={}, cnonce={}, nc={}, qop={}, \
                 response={}, opaque={}, algorithm={}",
                quote(&username), quote(&realm), quote(&nonce), quote(&uri), quote(&cnonce),
                token(&nc_text), token("auth"), quote(&response), quote(&opaque),
                token(alg.as_str()),
            );
            prop_assume!(header.len() <= MAX_HEADER_LEN);
            let c = parse_authorization(&header).unwrap();
            prop_assert_eq!(c.username, username);
            prop_assert_eq!(c.realm, realm);
            prop_assert_eq!(c.nonce, nonce);
            prop_assert_eq!(c.uri, uri);
            prop_assert_eq!(c.response, response);
            prop_assert_eq!(c.cnonce, Some(cnonce));
            prop_assert_eq!(c.opaque, Some(opaque));
            prop_assert_eq!(c.nc, Some(nc_text));
            prop_assert_eq!(c.qop.as_deref(), Some("auth"));
            prop_assert_eq!(c.algorithm, alg);
        }

        #[test]
        fn verify_never_panics(
            username in text(), realm in text(), nonce in text(), uri in text(),
            response in text(), qop in proptest::option::of(text()),
            nc in proptest::option::of(text()), cnonce in proptest::option::of(text()),
        ) {
            let m = manager();
            let creds = DigestCredentials {
                username, realm, nonce, uri, algorithm: DigestAlgorithm::Md5, qop, nc, cnonce,
                response, opaque: None,
            };
            prop_assert!(verify(&creds, "GET", "/", "00", &m, t0()).is_err());
        }

        #[test]
        fn issued_nonces_validate(offset in -1_000_000_000i64..1_000_000_000, age in 0i64..=300) {
            let m = manager();
            let issued = t0() + Duration::seconds(offset);
            let n = m.issue(issued);
            prop_assert_eq!(m.validate(&n, issued + Duration::seconds(age)), NonceCheck::Valid);
            prop_assert_eq!(m.validate(&n, issued + Duration::seconds(301 + age)), NonceCheck::Stale);
        }

        #[test]
        fn validate_never_panics_and_rejects_garbage(s in any::<String>()) {
            let m = manager();
            prop_assert_eq!(m.validate(&s, t0()), NonceCheck::Invalid);
            prop_assert!(!m.record_nc(&s, 1, t0()));
        }

        #[test]
        fn any_single_bit_flip_is_invalid(byte in 0usize..NONCE_RAW_LEN, bit in 0u8..8) {
            let m = manager();
            let mut raw = URL_SAFE_NO_PAD.decode(m.issue(t0())).unwrap();
            raw[byte] ^= 1 << bit;
            prop_assert_eq!(m.validate(&URL_SAFE_NO_PAD.encode(&raw), t0()), NonceCheck::Invalid);
        }
    }
}
