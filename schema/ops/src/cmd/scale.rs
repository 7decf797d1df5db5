//! `scale APP N`: the wanted replicas.

use schema::manifest::MAX_REPLICAS;
use schema::{AppKind, ScaleOutcome};

use crate::error::OpError;

/// What `scale` prints: `scaled api 2 -> 4`.
pub fn text(o: &ScaleOutcome) -> String {
    format!("scaled {} {} -> {}\n", o.app, o.from, o.replicas)
}

/// The console's one line: `api: 2 -> 4 replicas`.
pub fn summary(o: &ScaleOutcome) -> String {
    format!("{}: {} -> {} replicas", o.app, o.from, o.replicas)
}

/// What a host and the fleet refuse before scaling: more than the ceiling,
/// and a job past one replica.
pub fn check(app: &str, kind: AppKind, replicas: u32) -> Result<(), OpError> {
    if replicas > MAX_REPLICAS {
        return Err(OpError::failed(format!(
            "{replicas} replicas is more than the limit of {MAX_REPLICAS}"
        )));
    }
    if kind == AppKind::Job && replicas > 1 {
        return Err(OpError::failed(format!(
            "{app} is a job and runs one at a time: scale it to 1, or 0 to pause its schedule"
        )));
    }
    Ok(())
}
