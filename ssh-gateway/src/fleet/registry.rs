//! The host registry: which hosts are connected now, whether each is up
//! (and settled: up without a break for the grace period), and what each
//! last reported. It knows nothing of releases or placement; the fleet asks
//! it and decides.
//!
//! A host's life here: it connects (up, not settled, unless it was up
//! already: a reconnect within the grace period costs nothing); its
//! heartbeats keep it up; once up for the grace period it is settled and
//! may receive moved replicas; silent for the grace period, it is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema::Version;
use schema::tunnel::{Heartbeat, HostApp};
use tokio::sync::broadcast;

use crate::tunnel::HostConn;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the gateway last heard from a host.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub up: bool,
    /// Up without a break for the grace period: only such a host receives
    /// replicas moved by a rebalance (a host that connects and drops at
    /// once never does).
    pub settled: bool,
    /// When the host last came up (from down, or new).
    pub up_since: Instant,
    pub seen: Instant,
    pub seen_ms: i64,
    pub apps: Vec<HostApp>,
    pub hb: Option<Heartbeat>,
}

impl Live {
    fn new(up: bool, settled: bool, now_ms: i64) -> Live {
        Live {
            up,
            settled,
            up_since: Instant::now(),
            seen: Instant::now(),
            seen_ms: now_ms,
            apps: Vec::new(),
            hb: None,
        }
    }
}

pub(super) struct Registry {
    conns: Mutex<HashMap<String, Arc<HostConn>>>,
    live: Mutex<HashMap<String, Live>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Host names as they (re)connect: log followers resume on them.
    connected: broadcast::Sender<String>,
}

impl Registry {
    /// The registry at start: hosts known from before a restart count as
    /// up (and settled) until they have had the usual time to report, so
    /// their replicas stay where they are.
    pub(super) fn new(known: impl IntoIterator<Item = String>, now_ms: i64) -> Registry {
        Registry {
            conns: Mutex::new(HashMap::new()),
            live: Mutex::new(
                known
                    .into_iter()
                    .map(|h| (h, Live::new(true, true, now_ms)))
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
        lock(&self.live).get(host).is_some_and(|l| l.up)
    }

    /// Up without a break for the grace period.
    pub(super) fn is_settled(&self, host: &str) -> bool {
        lock(&self.live)
            .get(host)
            .is_some_and(|l| l.up && l.settled)
    }

    /// A host accepted on `conn`, reporting `apps`.
    pub(super) fn connect(&self, name: &str, conn: Arc<HostConn>, apps: Vec<HostApp>, now_ms: i64) {
        lock(&self.conns).insert(name.to_string(), conn);
        let mut live = lock(&self.live);
        let (settled, up_since) = match live.get(name) {
            Some(l) if l.up => (l.settled, l.up_since),
            _ => (false, Instant::now()),
        };
        live.insert(
            name.to_string(),
            Live {
                settled,
                up_since,
                apps,
                ..Live::new(true, settled, now_ms)
            },
        );
    }

    /// The tunnel `conn` closed (a newer one of the same host stays).
    pub(super) fn disconnect(&self, conn: &Arc<HostConn>) {
        let mut conns = lock(&self.conns);
        if conns.get(&conn.name).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&conn.name);
        }
    }

    /// Records a heartbeat; returns whether the host was down.
    pub(super) fn heartbeat(&self, host: &str, hb: Heartbeat, now_ms: i64) -> bool {
        let mut live = lock(&self.live);
        let l = live
            .entry(host.to_string())
            .or_insert_with(|| Live::new(false, false, now_ms));
        let was_down = !l.up;
        if was_down {
            l.settled = false;
            l.up_since = Instant::now();
        }
        l.up = true;
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
    /// settled; returns (newly down, newly settled).
    pub(super) fn sweep(&self, grace: Duration) -> (Vec<String>, Vec<String>) {
        let mut live = lock(&self.live);
        let mut down = Vec::new();
        let mut settled = Vec::new();
        for (h, l) in live.iter_mut() {
            if l.up && l.seen.elapsed() > grace {
                l.up = false;
                down.push(h.clone());
            } else if l.up && !l.settled && l.up_since.elapsed() >= grace {
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
