//! Reading an `Authorization: Digest ...` header (RFC 7616 §3.4, RFC 9110 §11.4): bytes in,
//! the parameters as sent out; nothing here knows a key or a nonce.

use super::{DigestAlgorithm, MAX_HEADER_LEN};
use std::collections::HashSet;

/// The parameters of an `Authorization: Digest ...` header, unescaped but otherwise as sent.
#[derive(Clone, Debug)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// [`DigestAlgorithm::Md5`] when the client sent no `algorithm`.
    pub algorithm: DigestAlgorithm,
    pub qop: Option<String>,
    /// The nonce count as sent (8 hex digits when well formed); checked by [`verify`].
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub response: String,
    pub opaque: Option<String>,
}

/// Why an `Authorization` header is not a usable Digest header.
///
/// Messages never echo parameter values (they may carry user input of any size); a duplicate
/// parameter's name is included, names being short tokens.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("authorization header is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("authorization scheme is not Digest")]
    NotDigest,
    #[error("malformed digest parameters: {0}")]
    Syntax(&'static str),
    #[error("duplicate digest parameter `{0}`")]
    Duplicate(String),
    #[error("missing digest parameter `{0}`")]
    Missing(&'static str),
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
}

/// Parses a whole `Authorization` header value such as
/// `Digest username="abcdefgh", realm="MMS Public API", nonce="...", uri="/api/atlas/v2/orgs",
/// cnonce="...", nc=00000001, qop=auth, response="...", algorithm=MD5`.
///
/// The scheme and parameter names are case-insensitive. Values are tokens or quoted strings
/// with backslash escapes. Unknown parameters are ignored, duplicates (of any parameter) are
/// rejected. `username`, `realm`, `nonce`, `uri` and `response` are required.
pub fn parse_authorization(header_value: &str) -> Result<DigestCredentials, DigestParseError> {
    if header_value.len() > MAX_HEADER_LEN {
        return Err(DigestParseError::TooLong);
    }
    let trimmed = header_value.trim_start_matches(is_ows);
    let (scheme, params) = match trimmed.find(is_ows) {
        Some(i) => trimmed.split_at(i),
        None => (trimmed, ""),
    };
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestParseError::NotDigest);
    }

    // Known names are matched case-insensitively without allocating; only unknown names
    // (ignored, but still refused when repeated) are lowercased into a set.
    const KNOWN: [&str; 10] = [
        "username",
        "realm",
        "nonce",
        "uri",
        "algorithm",
        "qop",
        "nc",
        "cnonce",
        "response",
        "opaque",
    ];
    let mut values: [Option<String>; 10] = Default::default();
    let mut unknown: HashSet<String> = HashSet::new();
    for param in ParamIter::new(params) {
        let (name, value) = param?;
        match KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) {
            Some(i) => {
                let slot = values
                    .get_mut(i)
                    .ok_or(DigestParseError::Syntax("parameter table"))?;
                if slot.is_some() {
                    return Err(DigestParseError::Duplicate(name.to_ascii_lowercase()));
                }
                *slot = Some(value);
            }
            None => {
                let lower = name.to_ascii_lowercase();
                if !unknown.insert(lower.clone()) {
                    return Err(DigestParseError::Duplicate(lower));
                }
            }
        }
    }
    let [username, realm, nonce, uri, algorithm, qop, nc, cnonce, response, opaque] = values;

    let algorithm = match algorithm {
        Some(a) => a.parse()?,
        None => DigestAlgorithm::Md5,
    };
    Ok(DigestCredentials {
        username: username.ok_or(DigestParseError::Missing("username"))?,
        realm: realm.ok_or(DigestParseError::Missing("realm"))?,
        nonce: nonce.ok_or(DigestParseError::Missing("nonce"))?,
        uri: uri.ok_or(DigestParseError::Missing("uri"))?,
        algorithm,
        qop,
        nc,
        cnonce,
        response: response.ok_or(DigestParseError::Missing("response"))?,
        opaque,
    })
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Iterates over the `name=value` pairs of a comma separated auth-param list, tolerating
/// optional whitespace and empty list elements (RFC 9110 §5.6.1). Stops after the first error.
pub(super) struct ParamIter<'a> {
    s: &'a str,
    pos: usize,
    failed: bool,
}

impl<'a> ParamIter<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Self {
            s,
            pos: 0,
            failed: false,
        }
    }

    /// The byte at the cursor, as a char when it is ASCII; a byte of a multi-byte character
    /// reads as `U+FFFD`, which no delimiter, `tchar` or whitespace test matches.
    fn peek(&self) -> Option<char> {
        self.s.as_bytes().get(self.pos).map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and empty list elements. Returns false at the end of the input.
    fn skip_separators(&mut self) -> bool {
        loop {
            self.skip_ows();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(_) => return true,
                None => return false,
            }
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// Reads a quoted string; the cursor is on the opening quote. Copies runs between escapes
    /// as slices (one allocation when there is no escape).
    fn quoted(&mut self) -> Result<String, DigestParseError> {
        const UNTERMINATED: DigestParseError =
            DigestParseError::Syntax("unterminated quoted string");
        const CONTROL: DigestParseError =
            DigestParseError::Syntax("control character in quoted string");
        let s = self.s;
        let mut out = String::new();
        let mut run = self.pos + 1;
        let mut i = run;
        loop {
            let rest = s.get(i..).ok_or(UNTERMINATED)?;
            let c = rest.chars().next().ok_or(UNTERMINATED)?;
            match c {
                '"' => {
                    out.push_str(s.get(run..i).ok_or(UNTERMINATED)?);
                    self.pos = i + 1;
                    return Ok(out);
                }
                '\\' => {
                    out.push_str(s.get(run..i).ok_or(UNTERMINATED)?);
                    let escaped = rest.get(1..).and_then(|r| r.chars().next());
                    let escaped = escaped.ok_or(UNTERMINATED)?;
                    if escaped.is_control() && escaped != '\t' {
                        return Err(CONTROL);
                    }
                    out.push(escaped);
                    i += 1 + escaped.len_utf8();
                    run = i;
                }
                c if c.is_control() && c != '\t' => return Err(CONTROL),
                c => i += c.len_utf8(),
            }
        }
    }

    fn param(&mut self) -> Result<(&'a str, String), DigestParseError> {
        let name = self.token();
        if name.is_empty() {
            return Err(DigestParseError::Syntax("expected a parameter name"));
        }
        self.skip_ows();
        if self.peek() != Some('=') {
            return Err(DigestParseError::Syntax(
                "expected `=` after a parameter name",
            ));
        }
        self.pos += 1;
        self.skip_ows();
        let value = if self.peek() == Some('"') {
            self.quoted()?
        } else {
            let token = self.token();
            if token.is_empty() {
                return Err(DigestParseError::Syntax("expected a parameter value"));
            }
            token.to_owned()
        };
        self.skip_ows();
        match self.peek() {
            None | Some(',') => Ok((name, value)),
            Some(_) => Err(DigestParseError::Syntax("expected `,` between parameters")),
        }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Result<(&'a str, String), DigestParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || !self.skip_separators() {
            return None;
        }
        let item = self.param();
        self.failed = item.is_err();
        Some(item)
    }
}
