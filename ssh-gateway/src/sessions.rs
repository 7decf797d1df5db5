//! Open connections by the key they authenticated with, so that a key is
//! exactly its role for as long as it is enrolled.
//!
//! `ssh-gateway keys rm` and `keys role` may run as another process on the
//! same data directory while the gateway serves. [`watch_keys`] notices the
//! change (SQLite's `data_version` moves when another connection commits),
//! reads the keys again and closes every connection whose key is gone or
//! whose role changed: a multiplexed OpenSSH connection, a console, a
//! host's tunnel. Each closing is audited. It looks every
//! [`CHECK_EVERY`], so a change applies within a second.

use schema::audit::Action;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use db::SqlDb as Db;
use tokio::sync::watch;

use crate::fleet::Fleet;
use crate::keys::{self, Role};

/// How often the keys are looked at for a change.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

struct Open {
    fingerprint: String,
    name: String,
    role: Role,
    kill: net::KillSwitch,
}

/// The authenticated connections.
#[derive(Default)]
pub struct Sessions {
    next: std::sync::atomic::AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
}

/// Deregisters its connection when dropped (the connection ended).
pub struct Registered {
    sessions: Arc<Sessions>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a connection that authenticated with `fingerprint` as
    /// `name` in `role`; `kill` cuts it off.
    pub fn register(
        self: &Arc<Self>,
        fingerprint: &str,
        name: &str,
        role: Role,
        kill: net::KillSwitch,
    ) -> Registered {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            id,
            Open {
                fingerprint: fingerprint.to_string(),
                name: name.to_string(),
                role,
                kill,
            },
        );
        Registered {
            sessions: self.clone(),
            id,
        }
    }

    /// Connections open now, per role of their key.
    pub fn count_by_role(&self) -> Vec<(Role, usize)> {
        let mut counts: Vec<(Role, usize)> = Vec::new();
        for o in self.lock().values() {
            match counts.iter_mut().find(|(r, _)| *r == o.role) {
                Some((_, n)) => *n += 1,
                None => counts.push((o.role, 1)),
            }
        }
        counts
    }

    /// Closes the connections whose key is no longer enrolled as it was
    /// (`enrolled`: fingerprint → name and role now). Returns, per key
    /// name, why and how many were closed.
    fn revoke(&self, enrolled: &HashMap<String, (String, Role)>) -> Vec<(String, String, usize)> {
        let mut closed: HashMap<(String, String), usize> = HashMap::new();
        self.lock().retain(|_, o| {
            let why = match enrolled.get(&o.fingerprint) {
                None => format!("the key {} was removed", o.name),
                Some((_, role)) if *role != o.role => {
                    format!("the key {} changed from {} to {role}", o.name, o.role)
                }
                Some(_) => return true,
            };
            o.kill.kill();
            *closed.entry((o.name.clone(), why)).or_default() += 1;
            false
        });
        closed.into_iter().map(|((n, w), c)| (n, w, c)).collect()
    }
}

/// Closes connections of removed or changed keys within [`CHECK_EVERY`],
/// until `shutdown`.
pub async fn watch_keys(
    fleet: Arc<Fleet>,
    sessions: Arc<Sessions>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seen = data_version(fleet.db()).await;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = data_version(fleet.db()).await;
        if now == seen {
            continue;
        }
        seen = now;
        apply(&fleet, &sessions).await;
    }
}

/// Reads the keys and closes what they no longer allow.
pub async fn apply(fleet: &Fleet, sessions: &Sessions) {
    let Ok(list) = fleet.db().call(|c| keys::list(c)).await else {
        return;
    };
    let enrolled: HashMap<String, (String, Role)> = list
        .into_iter()
        .map(|k| (k.fingerprint, (k.name, k.role)))
        .collect();
    for (name, why, n) in sessions.revoke(&enrolled) {
        tracing::warn!(key = %name, closed = n, "{why}: closed its connections");
        fleet
            .audit(
                "gateway",
                Action::Revoke,
                None,
                format!(
                    "{why}: closed {n} open connection{}",
                    if n == 1 { "" } else { "s" }
                ),
            )
            .await;
    }
}

/// A count that moves when another connection commits (SQLite's
/// `data_version`, PostgreSQL's write counters): a `keys` command run
/// beside the gateway, or another gateway of the fleet.
async fn data_version(db: &Db) -> Option<i64> {
    db.call(|c| c.data_version()).await.ok()
}
