//! `rm APP`: stop and forget an app.

use crate::reply::RmOutcome;

/// What `rm` prints: `removed api`.
pub fn text(o: &RmOutcome) -> String {
    format!("removed {}\n", o.app)
}

/// The console's one line.
pub fn summary(o: &RmOutcome) -> String {
    format!("{} removed", o.app)
}

/// The outcome of removing `app`.
pub fn outcome(app: &str) -> RmOutcome {
    RmOutcome {
        app: app.to_string(),
        removed: true,
    }
}
