//! `rm APP`: stop and forget an app.

use schema::command::RmArgs;

use crate::error::{ErrorKind, OpError};
use crate::reply::RmOutcome;

/// `rm` removes an app's releases, compiled code and logs from every host:
/// refused unless `--confirm` repeats the app's name.
pub fn check(a: &RmArgs) -> Result<(), OpError> {
    let app = schema::render::clean(&a.app);
    match a.confirm.as_deref() {
        Some(c) if c == a.app => Ok(()),
        Some(c) => Err(OpError::new(
            ErrorKind::Usage,
            format!(
                "--confirm names {:?}, not {app:?}: nothing removed; to remove {app}, run `rm {app} --confirm {app}`",
                schema::render::clean(c)
            ),
        )),
        None => Err(OpError::new(
            ErrorKind::Usage,
            format!(
                "rm removes {app} from every host with its releases, compiled code and logs: repeat its name to confirm, `rm {app} --confirm {app}` (to stop it and keep all that: `scale {app} 0`)"
            ),
        )),
    }
}

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
