//! Caps on connections that have not authenticated yet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts unauthenticated connections, in total and per source, and refuses
/// new ones past either cap. Cheap to share: clone the `Arc`.
#[derive(Debug)]
pub struct Gate {
    total: usize,
    per_source: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    open: usize,
    by_source: HashMap<Source, usize>,
    refused: u64,
}

/// What a cap is counted by: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(u32::from(v4)),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every unauthenticated slot is taken.
    Total(usize),
    /// This source holds its share of them.
    PerSource(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total(n) => write!(f, "{n} connections are already authenticating"),
            Refused::PerSource(n) => {
                write!(f, "this address already has {n} connections authenticating")
            }
        }
    }
}

/// One admitted connection's slot; dropping it (or [`Permit::release`])
/// frees the slot.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    source: Option<Source>,
}

impl Gate {
    /// A gate admitting at most `total` unauthenticated connections, and at
    /// most `per_source` from one address. Both are at least 1.
    pub fn new(total: usize, per_source: usize) -> Arc<Gate> {
        Arc::new(Gate {
            total: total.max(1),
            per_source: per_source.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain counters, consistent after any panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    ///
    /// # Errors
    ///
    /// [`Refused`] when either cap is reached; the caller closes the
    /// connection.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let source = Source::from(ip);
        let mut s = self.state();
        if s.open >= self.total {
            s.refused += 1;
            return Err(Refused::Total(self.total));
        }
        let n = s.by_source.get(&source).copied().unwrap_or(0);
        if n >= self.per_source {
            s.refused += 1;
            return Err(Refused::PerSource(self.per_source));
        }
        s.open += 1;
        s.by_source.insert(source, n + 1);
        Ok(Permit {
            gate: self.clone(),
            source: Some(source),
        })
    }

    /// Connections admitted and not yet authenticated or closed.
    pub fn open(&self) -> usize {
        self.state().open
    }

    /// Connections refused since the gate was made.
    pub fn refused(&self) -> u64 {
        self.state().refused
    }
}

impl Permit {
    /// Frees the slot now (the connection authenticated).
    pub fn release(mut self) {
        self.free();
    }

    fn free(&mut self) {
        let Some(source) = self.source.take() else {
            return;
        };
        let mut s = self.gate.state();
        s.open = s.open.saturating_sub(1);
        if let Some(n) = s.by_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                s.by_source.remove(&source);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_share_and_others_still_get_in() {
        let g = Gate::new(10, 2);
        let a1 = g.admit(ip("10.0.0.1")).unwrap();
        let _a2 = g.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(g.admit(ip("10.0.0.1")).unwrap_err(), Refused::PerSource(2));
        let _b = g.admit(ip("10.0.0.2")).unwrap();
        // The penalty ends with the connection: no lockout afterwards.
        drop(a1);
        let _a3 = g.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(g.open(), 3);
        assert_eq!(g.refused(), 1);
    }

    #[test]
    fn the_total_cap_holds_across_sources_and_release_frees_a_slot() {
        let g = Gate::new(2, 5);
        let a = g.admit(ip("10.0.0.1")).unwrap();
        let _b = g.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(g.admit(ip("10.0.0.3")).unwrap_err(), Refused::Total(2));
        a.release();
        assert!(g.admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let g = Gate::new(10, 1);
        let _a = g.admit(ip("2001:db8::1")).unwrap();
        assert!(g.admit(ip("2001:db8::2")).is_err(), "same /64");
        assert!(g.admit(ip("2001:db8:0:1::1")).is_ok(), "another /64");
        let _v4 = g.admit(ip("192.0.2.1")).unwrap();
        assert!(g.admit(ip("::ffff:192.0.2.1")).is_err());
    }
}
