//! Outbound grants: what network an app may reach, in the spirit of Spin's
//! `allowed_outbound_hosts`. A grant is `SCHEME://HOST[:PORT]`:
//!
//! - `http://127.0.0.1:8080`, `https://api.example.com` (port 443 implied),
//!   `https://*.example.com` (any subdomain, not the apex);
//! - `tcp://db.internal:5432` (a port is required) for `wasi:sockets`.
//!
//! No grant, no network. A grant names a destination, never a path: the
//! check is made on each request's scheme, host and port.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Most grants one app may have.
pub const MAX_GRANTS: usize = 64;
/// Longest grant, in bytes.
pub const MAX_GRANT_LEN: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
    Tcp,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tcp => "tcp",
        }
    }

    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Tcp => None,
        }
    }
}

/// One parsed grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    pub scheme: Scheme,
    /// Lowercase host name or IP literal (IPv6 without brackets); a leading
    /// `*.` matches any subdomain.
    pub host: String,
    /// The port; `None` only for http(s) grants, meaning the default port.
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "grant {grant:?}: {why} (a grant looks like http://127.0.0.1:8080, https://*.example.com or tcp://db.internal:5432)"
)]
pub struct GrantError {
    pub grant: String,
    pub why: String,
}

impl FromStr for Grant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Grant, GrantError> {
        let err = |why: &str| GrantError {
            grant: crate::render::clean(&s.chars().take(80).collect::<String>()).into_owned(),
            why: why.to_string(),
        };
        if s.len() > MAX_GRANT_LEN {
            return Err(err(&format!("longer than {MAX_GRANT_LEN} bytes")));
        }
        let (scheme, rest) = s.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "tcp" => Scheme::Tcp,
            other => {
                return Err(err(&format!(
                    "the scheme {other:?} is not one of http, https, tcp"
                )));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err(
                "a grant names a host and port only (no path, query or user)",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| err("an unclosed [ in the host"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port =
            match port {
                Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    err(&format!("the port {p:?} is not a number from 1 to 65535"))
                })?,
                None => scheme
                    .default_port()
                    .ok_or_else(|| err("a tcp grant needs a port"))?,
            };
        let host = host.to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if name.contains('*') || (host.contains('*') && !host.starts_with("*.")) {
            return Err(err(
                "a wildcard may only begin the host, as in *.example.com",
            ));
        }
        let valid = !name.is_empty()
            && name.len() <= 253
            && (name.parse::<std::net::IpAddr>().is_ok()
                || name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }));
        if !valid {
            return Err(err("the host is not a host name or IP address"));
        }
        Ok(Grant { scheme, host, port })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.scheme.default_port() == Some(self.port) {
            write!(f, "{}://{host}", self.scheme.as_str())
        } else {
            write!(f, "{}://{host}:{}", self.scheme.as_str(), self.port)
        }
    }
}

impl Grant {
    /// Whether this grant lets the app reach `host:port` over `scheme`.
    /// `host` is compared case-insensitively, without brackets.
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host);
        match self.host.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => host.eq_ignore_ascii_case(&self.host),
        }
    }
}

/// Parses an app's grant list, refusing duplicates' waste and too many.
pub fn parse_all(list: &[String]) -> Result<Vec<Grant>, GrantError> {
    if list.len() > MAX_GRANTS {
        return Err(GrantError {
            grant: format!("{} grants", list.len()),
            why: format!("an app may have at most {MAX_GRANTS}"),
        });
    }
    let mut out: Vec<Grant> = Vec::with_capacity(list.len());
    for g in list {
        let g: Grant = g.parse()?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Whether any of `grants` allows the destination.
pub fn allowed(grants: &[Grant], scheme: Scheme, host: &str, port: u16) -> bool {
    grants.iter().any(|g| g.allows(scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Grant {
        s.parse().unwrap()
    }

    #[test]
    fn grants_parse_and_match_scheme_host_and_port() {
        let local = g("http://127.0.0.1:8080");
        assert!(local.allows(Scheme::Http, "127.0.0.1", 8080));
        assert!(!local.allows(Scheme::Http, "127.0.0.1", 8081));
        assert!(!local.allows(Scheme::Https, "127.0.0.1", 8080));
        let api = g("https://API.example.com/");
        assert_eq!(api.to_string(), "https://api.example.com");
        assert!(api.allows(Scheme::Https, "api.example.com", 443));
        assert!(api.allows(Scheme::Https, "Api.Example.Com.", 443));
        assert!(!api.allows(Scheme::Https, "api.example.com", 8443));
        let wild = g("https://*.example.com");
        assert!(wild.allows(Scheme::Https, "a.b.example.com", 443));
        assert!(!wild.allows(Scheme::Https, "example.com", 443));
        assert!(!wild.allows(Scheme::Https, "evilexample.com", 443));
        let db = g("tcp://db.internal:5432");
        assert!(db.allows(Scheme::Tcp, "db.internal", 5432));
        let v6 = g("tcp://[::1]:6379");
        assert!(v6.allows(Scheme::Tcp, "::1", 6379));
        assert_eq!(v6.to_string(), "tcp://[::1]:6379");
    }

    #[test]
    fn a_grant_that_does_not_parse_says_why() {
        for (bad, why) in [
            ("127.0.0.1:8080", "no scheme"),
            ("ftp://x.org", "not one of http, https, tcp"),
            ("tcp://db.internal", "needs a port"),
            ("http://x.org:0", "1 to 65535"),
            ("http://x.org:99999", "1 to 65535"),
            ("http://x.org/path", "no path"),
            ("http://user@x.org", "no path"),
            ("http://a.*.org", "wildcard"),
            ("http://*", "wildcard"),
            ("http://bad_host", "not a host name"),
            ("http://", "not a host name"),
        ] {
            let e = bad.parse::<Grant>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("http://h{i}.org")).collect();
        assert!(
            parse_all(&many)
                .unwrap_err()
                .to_string()
                .contains("at most 64")
        );
        let long = format!("http://{}.org", "a".repeat(300));
        assert!(
            long.parse::<Grant>()
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
    }
}
