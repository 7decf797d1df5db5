//! `rollback APP [--to vN]`: an earlier release active again, from kept code.

use schema::RollbackOutcome;

/// What `rollback` prints: `rolled back api v3 -> v2 in 4 ms`.
pub fn text(o: &RollbackOutcome) -> String {
    let from = o
        .from
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into());
    format!(
        "rolled back {} {from} -> {} in {} ms\n",
        o.app, o.to, o.switch_ms
    )
}

/// The console's one line: `api: v3 -> v2 in 4 ms`.
pub fn summary(o: &RollbackOutcome) -> String {
    let from = o.from.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    format!("{}: {from} -> {} in {} ms", o.app, o.to, o.switch_ms)
}
