//! The host registry: which hosts are connected now, whether each is up
//! (and settled: up without a break for the grace period), and what each
//! last reported. It knows nothing of releases or placement; the fleet asks
//! it and decides.
//!
//! A host's life here is `schema::HostState`: known from before a restart,
//! it is connecting (its replicas stay, nobody is told it is up) until it
//! speaks or the grace period ends; it connects (up, not settled, unless
//! it was up already: a reconnect within the grace period costs nothing);
//! its heartbeats keep it up; once up for the grace period it is settled
//! and may receive moved replicas; silent for the grace period, it is down.
//! A host whose tunnel closes (the agent stopped, the process died, the
//! connection was reset) is down at once: nobody waits out the grace
//! period to learn what the gateway already saw. Its replicas still move
//! only once it has been gone for the grace period, so an agent restarted
//! within it (an upgrade) costs nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema::tunnel::{Heartbeat, HostApp};
use schema::{HostState, Version};
use tokio::sync::broadcast;

use crate::tunnel::HostConn;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the gateway last heard from a host.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub state: HostState,
    /// Up without a break for the grace period: only such a host receives
    /// replicas moved by a rebalance (a host that connects and drops at
    /// once never does). Meaningful only while up.
    pub settled: bool,
    /// When the host last came up (from down, or new).
    pub up_since: Instant,
    pub seen: Instant,
    pub seen_ms: i64,
    pub apps: Vec<HostApp>,
    pub hb: Option<Heartbeat>,
    /// Down and already reported by [`Registry::sweep`] (its replicas may
    /// move).
    pub gone: bool,
}

impl Live {
    fn new(state: HostState, settled: bool, now_ms: i64) -> Live {
        Live {
            state,
            settled,
            up_since: Instant::now(),
            seen: Instant::now(),
            seen_ms: now_ms,
            apps: Vec::new(),
            hb: None,
            gone: false,
        }
    }

    /// Counts as up for placement and `ps`: up, or connecting after a
    /// restart (its replicas stay where they are).
    pub fn up(&self) -> bool {
        self.state.keeps_replicas()
    }
}

/// A host gone for the grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gone {
    pub host: String,
    /// Its tunnel closed (it was shown down then); else it went silent.
    pub closed: bool,
}

pub(super) struct Registry {
    conns: Mutex<HashMap<String, Arc<HostConn>>>,
    live: Mutex<HashMap<String, Live>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Host names as they (re)connect: log followers resume on them.
    connected: broadcast::Sender<String>,
}

impl Registry {
    /// The registry at start: hosts known from before a restart are
    /// connecting (and settled) until they have had the usual time to
    /// report, so their replicas stay where they are.
    pub(super) fn new(known: impl IntoIterator<Item = String>, now_ms: i64) -> Registry {
        Registry {
            conns: Mutex::new(HashMap::new()),
            live: Mutex::new(
                known
                    .into_iter()
                    .map(|h| (h, Live::new(HostState::Connecting, true, now_ms)))
                    .collect(),
            ),
            locks: Mutex::new(HashMap::new()),
            connected: broadcast::channel(64).0,
        }
    }

    /// The host's open tunnel, if any.
    pub(super) fn conn(&self, host: &str) -> Option<Arc<HostConn>> {
        lock(&self.conns)
            .get(host)
            .cloned()
            .filter(|c| !c.is_closed())
    }

    pub(super) fn is_up(&self, host: &str) -> bool {
        lock(&self.live).get(host).is_some_and(Live::up)
    }

    /// Up without a break for the grace period.
    pub(super) fn is_settled(&self, host: &str) -> bool {
        lock(&self.live)
            .get(host)
            .is_some_and(|l| l.up() && l.settled)
    }

    /// A host accepted on `conn`, reporting `apps`. Returns whether it was
    /// down (a host coming back).
    pub(super) fn connect(
        &self,
        name: &str,
        conn: Arc<HostConn>,
        apps: Vec<HostApp>,
        now_ms: i64,
    ) -> bool {
        lock(&self.conns).insert(name.to_string(), conn);
        let mut live = lock(&self.live);
        let was_down = live.get(name).is_some_and(|l| l.state == HostState::Down);
        let (settled, up_since) = match live.get(name) {
            Some(l) if l.up() => (l.settled, l.up_since),
            _ => (false, Instant::now()),
        };
        live.insert(
            name.to_string(),
            Live {
                settled,
                up_since,
                apps,
                ..Live::new(HostState::Up, settled, now_ms)
            },
        );
        was_down
    }

    /// The tunnel `conn` closed (a newer one of the same host stays): the
    /// host is down at once. Returns whether it was up.
    pub(super) fn disconnect(&self, conn: &Arc<HostConn>) -> bool {
        let mut conns = lock(&self.conns);
        if !conns.get(&conn.name).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            return false;
        }
        conns.remove(&conn.name);
        drop(conns);
        let mut live = lock(&self.live);
        match live.get_mut(&conn.name) {
            Some(l) if l.state != HostState::Down => {
                l.state = HostState::Down;
                l.settled = false;
                true
            }
            _ => false,
        }
    }

    /// Records a heartbeat; returns whether the host was down.
    pub(super) fn heartbeat(&self, host: &str, hb: Heartbeat, now_ms: i64) -> bool {
        let mut live = lock(&self.live);
        let l = live
            .entry(host.to_string())
            .or_insert_with(|| Live::new(HostState::Down, false, now_ms));
        let was_down = l.state == HostState::Down;
        if was_down {
            l.settled = false;
            l.up_since = Instant::now();
        }
        l.state = HostState::Up;
        l.gone = false;
        l.seen = Instant::now();
        l.seen_ms = now_ms;
        l.apps = hb.apps.clone();
        l.hb = Some(hb);
        was_down
    }

    /// What `host` reported of each app it runs.
    pub(super) fn reported(&self, host: &str) -> HashMap<String, HostApp> {
        lock(&self.live)
            .get(host)
            .map(|l| l.apps.iter().map(|a| (a.app.clone(), a.clone())).collect())
            .unwrap_or_default()
    }

    /// The release `host` reports active for `app`.
    pub(super) fn reported_active(&self, host: &str, app: &str) -> Option<Version> {
        self.reported(host).get(app).and_then(|a| a.active)
    }

    /// Whether `host` keeps `v` of `app` compiled (or runs it).
    pub(super) fn keeps(&self, host: &str, app: &str, v: Version) -> bool {
        self.reported(host)
            .get(app)
            .is_some_and(|a| a.kept.contains(&v) || a.active == Some(v))
    }

    /// Hosts that report running `app`.
    pub(super) fn running(&self, app: &str) -> Vec<String> {
        lock(&self.live)
            .iter()
            .filter(|(_, l)| l.apps.iter().any(|a| a.app == app))
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// Every host as last heard of.
    pub(super) fn snapshot(&self) -> HashMap<String, Live> {
        lock(&self.live).clone()
    }

    /// Marks hosts silent for `grace` down, and hosts up for `grace`
    /// settled; returns (newly gone: silent, or closed, for `grace`, whose
    /// replicas may move; newly settled).
    pub(super) fn sweep(&self, grace: Duration) -> (Vec<Gone>, Vec<String>) {
        let mut live = lock(&self.live);
        let mut down = Vec::new();
        let mut settled = Vec::new();
        for (h, l) in live.iter_mut() {
            if l.up() && l.seen.elapsed() > grace {
                l.state = HostState::Down;
                l.gone = true;
                down.push(Gone {
                    host: h.clone(),
                    closed: false,
                });
            } else if l.state == HostState::Down && !l.gone && l.seen.elapsed() > grace {
                // Closed earlier (already shown down): now its replicas move.
                l.gone = true;
                down.push(Gone {
                    host: h.clone(),
                    closed: true,
                });
            } else if l.state == HostState::Up && !l.settled && l.up_since.elapsed() >= grace {
                l.settled = true;
                settled.push(h.clone());
            }
        }
        (down, settled)
    }

    /// Held while one host is brought to the desired state.
    pub(super) async fn lock_host(&self, host: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.locks)
            .entry(host.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    /// Tells log followers that `host` (re)connected.
    pub(super) fn announce(&self, host: &str) {
        let _ = self.connected.send(host.to_string());
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.connected.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat() -> Heartbeat {
        Heartbeat {
            apps: Vec::new(),
            ps: Vec::new(),
            instance_rows: Vec::new(),
            instances: 0,
            memory_bytes: 0,
        }
    }

    fn state(r: &Registry, h: &str) -> HostState {
        r.snapshot()[h].state
    }

    #[test]
    fn a_host_known_before_a_restart_is_connecting_until_it_speaks_or_the_grace_ends() {
        let r = Registry::new(["a".to_string(), "b".to_string()], 0);
        assert_eq!(state(&r, "a"), HostState::Connecting);
        // Connecting keeps replicas where they are, and is not called up.
        assert!(r.is_up("a") && r.is_settled("a"));
        assert!(
            !r.heartbeat("a", beat(), 1),
            "a connecting host was not down"
        );
        assert_eq!(state(&r, "a"), HostState::Up);
        // b never speaks: after the grace period it is down; a stays up.
        std::thread::sleep(Duration::from_millis(30));
        r.heartbeat("a", beat(), 2);
        let (down, _) = r.sweep(Duration::from_millis(20));
        assert_eq!(
            down,
            [Gone {
                host: "b".into(),
                closed: false
            }]
        );
        assert_eq!(state(&r, "b"), HostState::Down);
        assert!(!r.is_up("b"));
        assert_eq!(state(&r, "a"), HostState::Up);
        // A down host that speaks again is up, but not settled until it has
        // been up for the grace period.
        assert!(r.heartbeat("b", beat(), 3), "b was down");
        assert_eq!(state(&r, "b"), HostState::Up);
        assert!(!r.is_settled("b"));
    }
}
