//! Who did something, as a type: decisions are made on what the actor is
//! (a local user on a host's control socket may break glass; a key through
//! the gateway may not act on a host's own), never on how its name reads.
//! [`Actor`]'s `Display` is the `key` of an audit entry, as CLI.md shows it.

use std::fmt;

/// Whoever asked for an action, or did it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// An enrolled key (an operator's or a viewer's), by name; on a host,
    /// the key on whose behalf the gateway acts.
    Key(String),
    /// A user of a host's control socket (`hostd --local`), named by the
    /// socket's peer credentials; `host` once the gateway records it.
    Local { user: String, host: Option<String> },
    /// A host, speaking for itself over its tunnel (its key's name).
    Host(String),
    /// The daemon itself (`gateway`, `hostd`): a rebalance, an automatic
    /// rollback.
    Daemon(&'static str),
    /// Someone who did not log in, by source address.
    Unauthenticated { source: String },
}

impl Actor {
    /// A local user of the control socket.
    pub fn local(user: impl Into<String>) -> Actor {
        Actor::Local {
            user: user.into(),
            host: None,
        }
    }

    /// Whether it acts on a host directly (break-glass), not through the
    /// gateway.
    pub fn is_local(&self) -> bool {
        matches!(self, Actor::Local { .. })
    }

    /// The user of a `local:USER` audit key a host reports, if it is one
    /// and the name is a plain user name (letters, digits, `._-`, at most
    /// 32): what else a host sends is not an actor.
    pub fn parse_local(key: &str) -> Option<String> {
        key.strip_prefix("local:")
            .filter(|u| {
                !u.is_empty()
                    && u.len() <= 32
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            })
            .map(str::to_string)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Key(name) => f.write_str(name),
            Actor::Local { user, host: None } => write!(f, "local:{user}"),
            Actor::Local {
                user,
                host: Some(h),
            } => write!(f, "local:{user}@{h}"),
            Actor::Host(h) => write!(f, "host:{h}"),
            Actor::Daemon(d) => f.write_str(d),
            Actor::Unauthenticated { source } => write!(f, "unauthenticated@{source}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_read_as_audit_keys_and_only_plain_local_users_parse() {
        assert_eq!(Actor::local("root").to_string(), "local:root");
        let on = Actor::Local {
            user: "root".into(),
            host: Some("h1".into()),
        };
        assert_eq!(on.to_string(), "local:root@h1");
        assert_eq!(Actor::Key("alice".into()).to_string(), "alice");
        assert_eq!(Actor::Daemon("gateway").to_string(), "gateway");
        assert!(Actor::local("x").is_local() && !Actor::Key("local:x".into()).is_local());
        assert_eq!(Actor::parse_local("local:root").as_deref(), Some("root"));
        for bad in [
            "alice",
            "local:",
            "local:a b",
            "local:\u{1b}[2J",
            &format!("local:{}", "u".repeat(33)),
        ] {
            assert_eq!(Actor::parse_local(bad), None, "{bad}");
        }
    }
}
