//! The ids of revoked tokens, each kept until its token would have expired anyway.
//!
//! Why not a `HashMap`: a hash map grows by rehashing every entry at once, and it did so under
//! the lock that every Bearer request and every revocation takes. With 900,000 revoked tokens
//! one such growth stopped the server for 157 ms (docs/performance.md). A B-tree grows one node
//! at a time. The ids are also kept in expiry order, so the periodic purge takes only what has
//! expired instead of walking every entry under the write lock.
//!
//! Tessera's token ids are 32 lower-case hex digits (a UUID), kept as a `u128`: 16 bytes, no
//! allocation per entry. Any other id (none is minted today) is kept as a string beside them,
//! so a token with one can still be revoked.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct RevokedTokens {
    /// Expiry (epoch milliseconds) by id.
    by_id: BTreeMap<u128, i64>,
    /// The same entries in expiry order.
    by_expiry: BTreeSet<(i64, u128)>,
    /// Ids that are not 32 lower-case hex digits.
    other: HashMap<String, i64>,
}

/// The id as a number, if it is 32 lower-case hex digits (so that no two strings share one).
fn numeric(jti: &str) -> Option<u128> {
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if jti.len() == 32 && jti.as_bytes().iter().all(lower_hex) {
        u128::from_str_radix(jti, 16).ok()
    } else {
        None
    }
}

impl RevokedTokens {
    pub fn contains(&self, jti: &str) -> bool {
        match numeric(jti) {
            Some(n) => self.by_id.contains_key(&n),
            None => self.other.contains_key(jti),
        }
    }

    pub fn insert(&mut self, jti: &str, expires_at: DateTime<Utc>) {
        let exp = expires_at.timestamp_millis();
        match numeric(jti) {
            Some(n) => {
                if let Some(old) = self.by_id.insert(n, exp) {
                    self.by_expiry.remove(&(old, n));
                }
                self.by_expiry.insert((exp, n));
            }
            None => {
                self.other.insert(jti.to_owned(), exp);
            }
        }
    }

    /// Forgets every id whose token expired at or before `now`.
    pub fn purge_expired(&mut self, now: DateTime<Utc>) {
        let now = now.timestamp_millis();
        while let Some(&(exp, n)) = self.by_expiry.first() {
            if exp > now {
                break;
            }
            self.by_expiry.pop_first();
            self.by_id.remove(&n);
        }
        self.other.retain(|_, exp| *exp > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len() + self.other.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: AsRef<str>> Extend<(S, DateTime<Utc>)> for RevokedTokens {
    fn extend<I: IntoIterator<Item = (S, DateTime<Utc>)>>(&mut self, iter: I) {
        for (jti, exp) in iter {
            self.insert(jti.as_ref(), exp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
    }

    const A: &str = "0190b2c4d5e67f8a9b0c1d2e3f405162";
    const B: &str = "0190b2c4d5e67f8a9b0c1d2e3f405163";

    #[test]
    fn holds_an_id_until_its_expiry_passes() {
        let mut r = RevokedTokens::default();
        r.insert(A, at(100));
        r.insert(B, at(200));
        assert!(r.contains(A) && r.contains(B));
        r.purge_expired(at(99));
        assert_eq!(r.len(), 2);
        // Expired at `now` counts as expired, as before (`retain(exp > now)`).
        r.purge_expired(at(100));
        assert!(!r.contains(A));
        assert!(r.contains(B));
        r.purge_expired(at(1000));
        assert!(r.is_empty());
    }

    #[test]
    fn ids_that_are_not_lower_case_hex_are_kept_apart_and_exactly() {
        let mut r = RevokedTokens::default();
        let upper = A.to_ascii_uppercase();
        r.insert(&upper, at(100));
        r.insert("not-a-uuid", at(100));
        r.insert("+190b2c4d5e67f8a9b0c1d2e3f405162", at(100));
        assert!(r.contains(&upper));
        assert!(r.contains("not-a-uuid"));
        assert!(r.contains("+190b2c4d5e67f8a9b0c1d2e3f405162"));
        // The upper-case spelling is a different id, and so is the signed one.
        assert!(!r.contains(A));
        assert!(!r.contains("0190b2c4d5e67f8a9b0c1d2e3f405162".trim_start_matches('0')));
        r.purge_expired(at(100));
        assert!(r.is_empty());
    }

    #[test]
    fn a_second_insert_moves_the_expiry() {
        let mut r = RevokedTokens::default();
        r.insert(A, at(100));
        r.insert(A, at(300));
        assert_eq!(r.len(), 1);
        r.purge_expired(at(200));
        assert!(r.contains(A), "the later expiry holds");
        r.purge_expired(at(300));
        assert!(r.is_empty());
        assert!(
            r.by_expiry.is_empty(),
            "no stale expiry entry is left behind"
        );
    }
}
