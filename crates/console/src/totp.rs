//! TOTP (RFC 6238) second factors: SHA-1, 6 digits, 30-second steps, one step of skew either
//! way, as every authenticator app does (totp-rs computes the codes). A code is accepted once:
//! the store keeps the last step used and refuses any step not later than it.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

pub const STEP_SECS: i64 = 30;

/// A new secret: 20 random bytes (160 bits, RFC 4226's recommendation).
pub fn new_secret() -> Result<Vec<u8>, ring::error::Unspecified> {
    let mut bytes = vec![0u8; 20];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)?;
    Ok(bytes)
}

/// The secret as authenticator apps take it by hand (base32, no padding).
pub fn base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The `otpauth://` URI a QR code carries.
pub fn otpauth_uri(secret: &[u8], username: &str) -> String {
    format!(
        "otpauth://totp/Tessera:{}?secret={}&issuer=Tessera&algorithm=SHA1&digits=6&period=30",
        urlencoding::encode(username),
        base32(secret)
    )
}

/// The QR code of `uri`, as an SVG document (drawn with attributes only: no styles).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
    )
}

/// The time step `code` is valid for at `unix_secs` (the current one or a neighbour), if any.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = TOTP::new(Algorithm::SHA1, 6, 0, STEP_SECS as u64, secret.to_vec()).ok()?;
    let now = unix_secs.div_euclid(STEP_SECS);
    let mut found = None;
    // Every candidate is computed and compared, so the time taken says nothing of which matched.
    for step in [now - 1, now, now + 1] {
        let Ok(t) = u64::try_from(step * STEP_SECS) else {
            continue;
        };
        let expected = totp.generate(t);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The code for `unix_secs` (tests, and nothing else).
#[cfg(test)]
pub fn code_at(secret: &[u8], unix_secs: i64) -> String {
    TOTP::new(Algorithm::SHA1, 6, 0, STEP_SECS as u64, secret.to_vec())
        .map(|t| t.generate(unix_secs as u64))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 s: 94287082 (8
        // digits); its last six digits are the 6-digit code.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
    }

    #[test]
    fn one_step_of_skew_and_no_more() {
        let secret = new_secret().unwrap();
        let t = 1_800_000_000;
        let code = code_at(&secret, t);
        assert_eq!(matching_step(&secret, &code, t + 30), Some(t / 30));
        assert_eq!(matching_step(&secret, &code, t - 30), Some(t / 30));
        assert_eq!(matching_step(&secret, &code, t + 90), None);
        assert_eq!(matching_step(&secret, "12345", t), None);
        assert_eq!(matching_step(&secret, "abcdef", t), None);
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let uri = otpauth_uri(b"12345678901234567890", "a+b@example.com");
        assert!(uri.starts_with("otpauth://totp/Tessera:a%2Bb%40example.com?secret=GEZ"));
        assert!(
            qr_svg(&uri).unwrap().starts_with("<?xml") || qr_svg(&uri).unwrap().contains("<svg")
        );
    }
}
