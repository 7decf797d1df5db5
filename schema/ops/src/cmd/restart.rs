//! `restart APP`: every instance of the active release, fresh (and a crash
//! loop cleared, without a deploy).

use schema::RestartOutcome;

use crate::error::OpError;

/// What `restart` prints: `restarted api v3 on h1, h2 (crash loop cleared)`.
pub fn text(o: &RestartOutcome) -> String {
    format!("restarted {}\n", summary(o))
}

/// The console's one line.
pub fn summary(o: &RestartOutcome) -> String {
    let mut s = format!("{} {}", o.app, o.release);
    if !o.hosts.is_empty() {
        s.push_str(&format!(" on {}", o.hosts.join(", ")));
    }
    if o.cleared_crashloop {
        s.push_str(" (crash loop cleared)");
    }
    s
}

/// What a host and the fleet refuse before restarting: an app with no
/// active release, or one scaled to 0 (nothing runs to restart).
pub fn check(app: &str, active: bool, replicas: u32) -> Result<(), OpError> {
    if !active {
        return Err(OpError::failed(format!(
            "{app} has no active release to restart; deploy it first"
        )));
    }
    if replicas == 0 {
        return Err(OpError::failed(format!(
            "{app} is scaled to 0: nothing runs to restart; `scale {app} N` starts it"
        )));
    }
    Ok(())
}
