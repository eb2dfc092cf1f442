//! HTTP Basic credentials of OAuth 2.0 clients (RFC 6749 §2.3.1).
//!
//! The client id and secret are each `application/x-www-form-urlencoded` encoded, joined by
//! `:`, then base64 encoded (RFC 7617). Errors never carry any part of the credentials: not
//! even a decoder's error, which could name an offending byte and its position.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use tessera_domain::secrets::SecretValue;

/// Authorization header values longer than this are rejected before decoding.
pub const MAX_HEADER_LEN: usize = 4096;

/// Why an `Authorization` header is not usable Basic client credentials. The messages never
/// contain the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    #[error("authorization header is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("authorization scheme is not Basic")]
    NotBasic,
    #[error("basic credentials are not valid base64")]
    Base64,
    #[error("basic credentials are not valid UTF-8")]
    Utf8,
    #[error("basic credentials have no `:` separator")]
    MissingColon,
    #[error("basic credentials are not valid form-urlencoded text")]
    FormEncoding,
    #[error("client id is empty")]
    EmptyClientId,
}

/// Parses an `Authorization: Basic ...` header value into the client id and secret.
///
/// The scheme is case-insensitive and followed by one or more spaces; the credentials are
/// standard base64 (padding optional) of UTF-8 `id:secret`, split at the first `:`, each part
/// form-urlencoded (`+` is a space, `%XX` a byte). The client id must not be empty.
pub fn parse_basic(header_value: &str) -> Result<(String, SecretValue), BasicError> {
    if header_value.len() > MAX_HEADER_LEN {
        return Err(BasicError::TooLong);
    }
    let (scheme, rest) = header_value.split_once(' ').ok_or(BasicError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(BasicError::NotBasic);
    }
    let encoded = rest.trim_start_matches(' ');
    // Padding is optional, but when present it must be complete.
    let engine = if encoded.ends_with('=') {
        &STANDARD
    } else {
        &STANDARD_NO_PAD
    };
    let decoded = engine.decode(encoded).map_err(|_| BasicError::Base64)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicError::Utf8)?;
    let (id, secret) = decoded.split_once(':').ok_or(BasicError::MissingColon)?;
    let id = form_urldecode(id)?;
    if id.is_empty() {
        return Err(BasicError::EmptyClientId);
    }
    let secret = form_urldecode(secret)?;
    Ok((id, SecretValue::new(secret)))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte (two hex
/// digits, required); the decoded bytes must be UTF-8.
fn form_urldecode(s: &str) -> Result<String, BasicError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(BasicError::FormEncoding),
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| BasicError::FormEncoding)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    fn ok(h: &str) -> (String, String) {
        let (id, secret) = parse_basic(h).unwrap();
        (id, secret.expose().to_owned())
    }

    /// Form-urlencodes like a strict client: everything but unreserved characters escaped,
    /// spaces as `+`.
    fn form_urlencode(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    #[test]
    fn parses_plain_credentials() {
        assert_eq!(
            ok(&header("mdb_sa_id_0123:mdb_sa_sk_abcdef")),
            ("mdb_sa_id_0123".into(), "mdb_sa_sk_abcdef".into())
        );
    }

    #[test]
    fn rfc6749_style_example() {
        // RFC 6749 §2.3.1: `Authorization: Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3`.
        assert_eq!(
            ok("Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"),
            ("s6BhdRkqt3".into(), "7Fjfp0ZBr1KtDRbnfVdmIw".into())
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_spaces_tolerated() {
        let enc = STANDARD.encode("id:secret");
        for h in [
            format!("basic {enc}"),
            format!("BASIC {enc}"),
            format!("bAsIc    {enc}"),
        ] {
            assert_eq!(ok(&h), ("id".into(), "secret".into()));
        }
    }

    #[test]
    fn padding_is_optional() {
        // "id:s" is 4 bytes: 2 padding characters.
        assert_eq!(STANDARD.encode("id:s"), "aWQ6cw==");
        assert_eq!(ok("Basic aWQ6cw=="), ("id".into(), "s".into()));
        assert_eq!(ok("Basic aWQ6cw"), ("id".into(), "s".into()));
        assert_eq!(parse_basic("Basic aWQ6cw="), Err(BasicError::Base64));
    }

    #[test]
    fn splits_at_first_colon() {
        assert_eq!(ok(&header("id:a:b:c")), ("id".into(), "a:b:c".into()));
        assert_eq!(ok(&header("id:")), ("id".into(), String::new()));
    }

    #[test]
    fn form_decodes_both_parts() {
        assert_eq!(
            ok(&header("my+client%3Aid:p%40ss+word%2B%25")),
            ("my client:id".into(), "p@ss word+%".into())
        );
        assert_eq!(
            ok(&header("%C3%A9t%C3%A9:%e2%82%ac")),
            ("été".into(), "€".into())
        );
        // Raw UTF-8 is passed through.
        assert_eq!(ok(&header("zoë:naïve")), ("zoë".into(), "naïve".into()));
    }

    #[test]
    fn invalid_percent_escapes() {
        for raw in [
            "id%:s", "id%4:s", "id%G0:s", "id:s%", "id:s%0", "id:s%zz", "id:%FF", "%C3:s",
        ] {
            assert_eq!(
                parse_basic(&header(raw)),
                Err(BasicError::FormEncoding),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        let cases = [
            ("Bearer abc", BasicError::NotBasic),
            ("Basic", BasicError::NotBasic),
            ("", BasicError::NotBasic),
            ("Basicx aWQ6cw==", BasicError::NotBasic),
            ("Basic\taWQ6cw==", BasicError::NotBasic),
            ("Digest username=\"u\"", BasicError::NotBasic),
            ("Basic ", BasicError::MissingColon),
            ("Basic !!!!", BasicError::Base64),
            ("Basic aWQ6c w==", BasicError::Base64),
            ("Basic aWQ6cw== ", BasicError::Base64),
            ("Basic aWQ6cw-_", BasicError::Base64),
            ("Basic aWQ6c", BasicError::Base64),
        ];
        for (h, err) in cases {
            assert_eq!(parse_basic(h), Err(err), "{h:?}");
        }
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode([0xff, b':', b'x']))),
            Err(BasicError::Utf8)
        );
        assert_eq!(
            parse_basic(&header("nocolon")),
            Err(BasicError::MissingColon)
        );
        assert_eq!(
            parse_basic(&header(":secret")),
            Err(BasicError::EmptyClientId)
        );
        assert_eq!(
            parse_basic(&header("+:secret")),
            Ok((" ".to_owned(), SecretValue::new("secret")))
        );
    }

    #[test]
    fn length_cap() {
        let prefix = "Basic ";
        // Base64 of n*3 bytes is n*4 characters.
        let fits = (MAX_HEADER_LEN - prefix.len()) / 4 * 3;
        let raw = format!("id:{}", "x".repeat(fits - 3));
        let h = header(&raw);
        assert!(h.len() <= MAX_HEADER_LEN);
        assert!(parse_basic(&h).is_ok());
        let h = format!("{prefix}{}", "A".repeat(MAX_HEADER_LEN));
        assert_eq!(parse_basic(&h), Err(BasicError::TooLong));
    }

    #[test]
    fn errors_never_show_the_secret() {
        let secret = "Sup3rS3cretValue";
        let cases = [
            header(&format!("id:{secret}%")),
            header(&format!(":{secret}")),
            format!("Basic {}!", STANDARD_NO_PAD.encode(format!("id:{secret}"))),
            format!("Bearer {secret}"),
            format!(
                "Basic {}",
                STANDARD.encode(
                    format!("id:{secret}")
                        .as_bytes()
                        .iter()
                        .chain(&[0xff])
                        .copied()
                        .collect::<Vec<u8>>()
                )
            ),
        ];
        for h in cases {
            let err = parse_basic(&h).unwrap_err();
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains(secret), "{shown}");
                assert!(!shown.contains("Sup3r"), "{shown}");
            }
        }
        let (_, secret_value) = parse_basic(&header(&format!("id:{secret}"))).unwrap();
        assert!(!format!("{secret_value:?}").contains(secret));
    }

    proptest! {
        #[test]
        fn never_panics_on_strings(s in any::<String>()) {
            let _ = parse_basic(&s);
            let _ = parse_basic(&format!("Basic {s}"));
        }

        #[test]
        fn never_panics_on_decoded_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_basic(&format!("Basic {}", STANDARD.encode(&bytes)));
            let _ = parse_basic(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn never_panics_on_percent_soup(s in "[%0-9a-fA-FxG+:]{0,60}") {
            let _ = parse_basic(&header(&s));
        }

        #[test]
        fn round_trips(id in "\\PC{1,40}", secret in "\\PC{0,60}", pad in any::<bool>()) {
            let raw = format!("{}:{}", form_urlencode(&id), form_urlencode(&secret));
            let enc = if pad { STANDARD.encode(&raw) } else { STANDARD_NO_PAD.encode(&raw) };
            let (got_id, got_secret) = parse_basic(&format!("Basic {enc}")).unwrap();
            prop_assert_eq!(got_id, id);
            prop_assert_eq!(got_secret.expose(), secret.as_str());
        }

        #[test]
        fn unencoded_safe_text_round_trips(id in "[A-Za-z0-9_.-]{1,30}", secret in "[A-Za-z0-9_.:-]{0,30}") {
            let (got_id, got_secret) = parse_basic(&header(&format!("{id}:{secret}"))).unwrap();
            prop_assert_eq!(got_id, id);
            prop_assert_eq!(got_secret.expose(), secret.as_str());
        }
    }
}
