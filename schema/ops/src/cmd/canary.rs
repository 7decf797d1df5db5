//! `deploy --canary`, `promote APP`, `abort APP`: what a host and the fleet
//! share about canaries — the checks before one starts, the words of the
//! outcomes.

use schema::canary::{Outcome, Progress, Status};

use crate::error::OpError;

/// What `promote` and `abort` print.
pub fn text(o: &Outcome) -> String {
    format!("{}\n", summary(o))
}

/// `promoted api v4 (was v3) on h1, h2` / `aborted api v4 (v3 serves alone; v4 is failed) on h1`.
pub fn summary(o: &Outcome) -> String {
    let on = if o.hosts.is_empty() {
        String::new()
    } else {
        format!(" on {}", o.hosts.join(", "))
    };
    if o.action == "promoted" {
        format!("promoted {} {} (was {}){on}", o.app, o.version, o.stable)
    } else {
        format!(
            "aborted {} {} ({} serves alone; {} is failed){on}",
            o.app, o.version, o.stable, o.version
        )
    }
}

/// What a deploy as a canary prints after the usual line.
pub fn started(s: &Status) -> String {
    let at = if s.hosts.is_empty() {
        format!("{}% of requests", s.share)
    } else {
        format!("hosts {}", s.hosts.join(", "))
    };
    format!(
        "canary {} next to {} on {at}, step {} of {}, {} s per step; gate: {}\n`promote` or `abort` ends it by hand; `ps` shows how it does\n",
        s.version, s.stable, s.step, s.steps, s.left_s, s.gate
    )
}

/// Refuses a canary deploy that cannot start: no active release to judge
/// it against, or a canary of the app already live.
pub fn check_start(
    app: &str,
    active: Option<schema::Version>,
    live: Option<schema::Version>,
) -> Result<schema::Version, OpError> {
    if let Some(v) = live {
        return Err(OpError::failed(format!(
            "{app} has a live canary ({v}); `promote {app}` or `abort {app}` first, then deploy again"
        )));
    }
    active.ok_or_else(|| {
        OpError::failed(format!(
            "{app} has no active release to compare a canary with; deploy it without --canary first"
        ))
    })
}

/// Refuses `promote`/`abort` of an app without a live canary.
pub fn no_canary(app: &str, verb: &str) -> OpError {
    OpError::failed(format!(
        "{app} has no live canary to {verb}; `deploy {app} FILE --canary 10%` starts one"
    ))
}

/// A step's audit line and system record: `canary v4 at 50% (step 2 of 2)`.
pub fn step_line(p: &Progress) -> String {
    format!(
        "canary {} at {}% (step {} of {})",
        p.version,
        p.share(),
        p.step + 1,
        p.plan.steps.len()
    )
}

/// An abort's audit line and system record.
pub fn aborted_line(p: &Progress, why: &str) -> String {
    format!(
        "canary {} aborted ({why}); {} serves alone",
        p.version, p.stable
    )
}

/// A promotion's audit detail: `v4 (was v3), canary ended`.
pub fn promoted_detail(p: &Progress) -> String {
    format!("{} (was {}), canary ended", p.version, p.stable)
}
