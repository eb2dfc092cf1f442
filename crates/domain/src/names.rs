//! Human-readable names and descriptions, validated on construction.

use regex::Regex;
use std::sync::LazyLock;

use crate::ValidationError;

static ENTITY_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}\-_.(),:&@+']{1,64}$").ok());
static SA_TEXT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}\-_.,' ]*$").ok());

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

impl EntityName {
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
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
        if char_len_between(s, 1, 250) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new("desc", "must be 1 to 250 characters"))
        }
    }
}

impl ServiceAccountName {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
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
}
