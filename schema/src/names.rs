//! Identifiers shared by every program: app names and release versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name or version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid app name {0:?}: use 1-63 lowercase letters, digits and '-', starting with a letter (it becomes a DNS label: APP.localhost)"
    )]
    App(String),
    #[error("invalid release {0:?}: expected a version like v3")]
    Version(String),
}

/// Checks that `name` can be an app name.
///
/// App names become the first label of the ingress `Host` header
/// (`APP.localhost`), so they follow DNS label rules, minus uppercase (hosts
/// are case-insensitive and we want one spelling in logs and SQL).
pub fn validate_app_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::App(name.to_string()))
    }
}

/// A release number of one app: `v1`, `v2`, … (monotonic per app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl FromStr for Version {
    type Err = NameError;

    /// Accepts `v3`, `V3` and a bare `3`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix(['v', 'V']).unwrap_or(s);
        match digits.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Version(n)),
            _ => Err(NameError::Version(s.to_string())),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_dns_label_rules() {
        for ok in ["api", "a", "ticker-2", "a1-b2"] {
            assert!(validate_app_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Api", "1api", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            let err = validate_app_name(bad).unwrap_err().to_string();
            assert!(err.contains("invalid app name"), "{bad}: {err}");
        }
    }

    #[test]
    fn versions_print_and_parse_as_vn() {
        assert_eq!(Version(3).to_string(), "v3");
        assert_eq!("v3".parse::<Version>().unwrap(), Version(3));
        assert_eq!("3".parse::<Version>().unwrap(), Version(3));
        assert!("v0".parse::<Version>().is_err());
        assert!("vx".parse::<Version>().is_err());
        assert_eq!(serde_json::to_string(&Version(7)).unwrap(), "\"v7\"");
    }
}
