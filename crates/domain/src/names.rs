//! Human-readable names and descriptions, validated on construction.
//!
//! Every free-text value a client or operator chooses that reaches an event (names and
//! descriptions of organizations, projects, API keys and service accounts, a support
//! decision's `staffMember`, an operator's name) goes through [`refuse_invisible`]: no Unicode
//! control (Cc) or format (Cf) character, so a log reader sees what was stored (a
//! right-to-left override, `U+202E`, would show `"\u{202e}ecila"` as `alice`). The patterns of
//! the names exclude them already; the check runs first everywhere, so the error says why.

use regex::Regex;
use std::sync::LazyLock;

use crate::ValidationError;

static ENTITY_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}\-_.(),:&@+']{1,64}$").ok());
static SA_TEXT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}\-_.,' ]*$").ok());

static INVISIBLE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[\p{Cc}\p{Cf}]").ok());

/// Why [`refuse_invisible`] refused a value.
pub const INVISIBLE_REASON: &str =
    "must not contain Unicode control (Cc) or format (Cf) characters";

/// Refuses a free-text value with a Unicode control (Cc) or format (Cf) character (fails
/// closed: should the pattern not compile, every value is refused).
pub fn refuse_invisible(field: &str, s: &str) -> Result<(), ValidationError> {
    if INVISIBLE.as_ref().is_none_or(|r| r.is_match(s)) {
        Err(ValidationError::new(field, INVISIBLE_REASON))
    } else {
        Ok(())
    }
}

/// The longest `staffMember` of a support decision.
pub const MAX_STAFF_MEMBER_LEN: usize = 256;

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(s))
}

fn char_len_between(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    (min..=max).contains(&n)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Debug)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An organization or project name: `^[\p{L}\p{N}\-_.(),:&@+']{1,64}$` (Atlas).
    EntityName);
name_type!(
    /// An API key description: 1 to 250 characters (Atlas).
    ApiKeyDescription);
name_type!(
    /// A service account name: 1 to 64 characters of `^[\p{L}\p{N}\-_.,' ]*$` (Atlas).
    ServiceAccountName);
name_type!(
    /// A service account description: 1 to 250 characters of `^[\p{L}\p{N}\-_.,' ]*$` (Atlas).
    ServiceAccountDescription);
name_type!(
    /// Who on the support staff asks for access (`staffMember`): 1 to
    /// [`MAX_STAFF_MEMBER_LEN`] characters, any but control and format characters (ours).
    StaffMember);

impl StaffMember {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        refuse_invisible("staffMember", s)?;
        if char_len_between(s, 1, MAX_STAFF_MEMBER_LEN) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "staffMember",
                format!("must be 1 to {MAX_STAFF_MEMBER_LEN} characters"),
            ))
        }
    }
}

impl EntityName {
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        refuse_invisible(field, s)?;
        if matches(&ENTITY_NAME, s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                r"must be 1 to 64 characters matching ^[\p{L}\p{N}\-_.(),:&@+']{1,64}$",
            ))
        }
    }
}

impl ApiKeyDescription {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        refuse_invisible("desc", s)?;
        if char_len_between(s, 1, 250) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new("desc", "must be 1 to 250 characters"))
        }
    }
}

impl ServiceAccountName {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        refuse_invisible("name", s)?;
        if char_len_between(s, 1, 64) && matches(&SA_TEXT, s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "name",
                r"must be 1 to 64 characters matching ^[\p{L}\p{N}\-_.,' ]*$",
            ))
        }
    }
}

impl ServiceAccountDescription {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        refuse_invisible("description", s)?;
        if char_len_between(s, 1, 250) && matches(&SA_TEXT, s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "description",
                r"must be 1 to 250 characters matching ^[\p{L}\p{N}\-_.,' ]*$",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names() {
        for ok in ["a", "Project-0", "été_(1),:&@+'", &"x".repeat(64)] {
            assert!(EntityName::parse("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "with space", "semi;colon", &"x".repeat(65), "slash/"] {
            assert!(EntityName::parse("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_account_text() {
        assert!(ServiceAccountName::parse("Billing").is_ok());
        assert!(ServiceAccountDescription::parse("Service account for users in finance.").is_ok());
        assert!(ServiceAccountName::parse("").is_err());
        assert!(ServiceAccountName::parse(&"é".repeat(64)).is_ok());
        assert!(ServiceAccountName::parse(&"é".repeat(65)).is_err());
        assert!(ServiceAccountName::parse("a<b").is_err());
        assert!(ServiceAccountDescription::parse(&"d".repeat(251)).is_err());
        assert!(ServiceAccountDescription::parse("tab\there").is_err());
    }

    #[test]
    fn api_key_description() {
        assert!(ApiKeyDescription::parse("any <text> at all").is_ok());
        assert!(ApiKeyDescription::parse("").is_err());
        assert!(ApiKeyDescription::parse(&"d".repeat(251)).is_err());
    }

    /// Control (Cc) and format (Cf) characters: a bidi override, zero-width joiner and space,
    /// a BOM, a soft hyphen, a tag character, NUL, tab, DEL, a C1 control.
    const INVISIBLE_SAMPLES: [char; 10] = [
        '\u{202e}',
        '\u{200d}',
        '\u{200b}',
        '\u{feff}',
        '\u{ad}',
        '\u{e0041}',
        '\0',
        '\t',
        '\u{7f}',
        '\u{85}',
    ];

    #[test]
    fn control_and_format_characters_are_refused_everywhere() {
        for c in INVISIBLE_SAMPLES {
            let text = format!("{c}ecila");
            let refused = |r: Result<(), ValidationError>, what: &str| {
                let e = r.expect_err(what);
                assert_eq!(e.reason, INVISIBLE_REASON, "{what} {c:?}");
            };
            refused(refuse_invisible("f", &text), "refuse_invisible");
            refused(StaffMember::parse(&text).map(drop), "staffMember");
            refused(ApiKeyDescription::parse(&text).map(drop), "desc");
            refused(EntityName::parse("name", &text).map(drop), "entity name");
            refused(ServiceAccountName::parse(&text).map(drop), "sa name");
            refused(
                ServiceAccountDescription::parse(&text).map(drop),
                "sa description",
            );
        }
        // Visible text of any script, spaces and symbols stay.
        for ok in ["alice", "Élodie Müller", "李小龍", "a b <c> & \"d\"", "🙂"] {
            assert!(refuse_invisible("f", ok).is_ok(), "{ok}");
            assert!(StaffMember::parse(ok).is_ok(), "{ok}");
            assert!(ApiKeyDescription::parse(ok).is_ok(), "{ok}");
        }
        assert!(StaffMember::parse("").is_err());
        assert!(StaffMember::parse(&"s".repeat(MAX_STAFF_MEMBER_LEN)).is_ok());
        assert!(StaffMember::parse(&"s".repeat(MAX_STAFF_MEMBER_LEN + 1)).is_err());
    }
}
