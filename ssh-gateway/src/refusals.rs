//! Refusals before login, counted rather than written one by one.
//!
//! Every unknown key, password, keyboard-interactive or `none` attempt is a
//! refusal worth auditing, but a loop of them must not fill the audit log
//! (four clients once wrote 7 MiB in 15 s). They are counted per source
//! address and what was tried (the key's fingerprint, or the method), and
//! written as one audit entry per pair per interval with the count and the
//! first user name (cut to 64 characters, control characters escaped).
//! The table of pending counts is bounded; past it, refusals are counted
//! together as "other".
//!
//! The same task keeps the audit log within `--audit-keep` entries: it
//! drops the oldest *refusals* first and never an operator's action; when
//! it drops anything it says so in the log it prunes.

use schema::audit::Action;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::fleet::Fleet;

/// Distinct (source, attempt) pairs counted between two writes.
pub const MAX_PENDING: usize = 4096;
/// Longest user name kept of a refused attempt.
pub const MAX_USER: usize = 64;

#[derive(Debug)]
struct Pending {
    user: String,
    count: u64,
}

/// Refusals counted since the last write.
#[derive(Default)]
pub struct Refusals {
    pending: Mutex<HashMap<(String, String), Pending>>,
}

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one refused attempt: `what` was tried (`unknown key SHA256:…`,
    /// `password`) by `user` from `source`.
    pub fn note(&self, source: Option<IpAddr>, what: &str, user: &str) {
        let source = source.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
        let mut p = self.lock();
        let key = if p.len() >= MAX_PENDING && !p.contains_key(&(source.clone(), what.to_string()))
        {
            ("other".to_string(), "other attempts".to_string())
        } else {
            (source, what.to_string())
        };
        p.entry(key)
            .or_insert_with(|| Pending {
                user: schema::render::clean(&user.chars().take(MAX_USER).collect::<String>())
                    .into_owned(),
                count: 0,
            })
            .count += 1;
    }

    /// Writes one audit entry per counted pair.
    pub async fn flush(&self, fleet: &Fleet, every: Duration) {
        let pending = std::mem::take(&mut *self.lock());
        for ((source, what), p) in pending {
            let times = if p.count == 1 {
                "once".to_string()
            } else {
                format!("{} times", p.count)
            };
            fleet
                .record(
                    &schema::Actor::Unauthenticated {
                        source: source.clone(),
                    }
                    .to_string(),
                    Action::Auth,
                    None,
                    true,
                    format!(
                        "refused {times} in {} s: {what} for user {:?} from {source}",
                        every.as_secs().max(1),
                        p.user
                    ),
                )
                .await;
        }
    }
}

/// Writes the counted refusals every `every`, and prunes the audit log to
/// `keep` entries, until `shutdown` (then once more).
pub async fn run(
    fleet: Arc<Fleet>,
    refusals: Arc<Refusals>,
    every: Duration,
    keep: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        refusals.flush(&fleet, every).await;
        prune(&fleet, keep).await;
        if last {
            return;
        }
    }
}

/// Keeps the audit log within `keep` entries, refusals dropped first.
async fn prune(fleet: &Fleet, keep: u64) {
    let dropped = fleet
        .db()
        .call(move |c| crate::store::prune_audit(c, keep))
        .await;
    match dropped {
        Ok((0, _)) => {}
        Ok((n, over)) => {
            tracing::info!(
                dropped = n,
                keep,
                "pruned the oldest refusals from the audit log"
            );
            let mut d = format!("dropped the {n} oldest refusals to keep {keep} entries");
            if over > 0 {
                d.push_str(&format!(
                    "; {over} operator actions past the bound are kept (raise --audit-keep)"
                ));
            }
            fleet.audit("gateway", Action::AuditPrune, None, d).await;
        }
        Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
    }
}
