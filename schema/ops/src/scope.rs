//! Where an operation runs: the words that differ between a single host and
//! the fleet (which command to suggest, whose limit it is), and nothing else.

/// A single host (`hostd … --local`) or the fleet (the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Host,
    Fleet,
}

impl Scope {
    /// A command to suggest, as the operator types it here:
    /// `` `hostd releases api` `` on a host, `` `releases api` `` at the gateway.
    pub fn suggest(self, command: &str) -> String {
        match self {
            Scope::Host => format!("`hostd {command}`"),
            Scope::Fleet => format!("`{command}`"),
        }
    }

    /// Whose limit or store it is: `this host's`, `the gateway's`.
    pub fn owner(self) -> &'static str {
        match self {
            Scope::Host => "this host's",
            Scope::Fleet => "the gateway's",
        }
    }

    /// Where code is kept: `on this host`, `by the gateway`.
    pub fn keeper(self) -> &'static str {
        match self {
            Scope::Host => "on this host",
            Scope::Fleet => "by the gateway",
        }
    }
}
