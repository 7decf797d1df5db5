//! `scale APP N`: the wanted replicas.

use schema::ScaleOutcome;

/// What `scale` prints: `scaled api 2 -> 4`.
pub fn text(o: &ScaleOutcome) -> String {
    format!("scaled {} {} -> {}\n", o.app, o.from, o.replicas)
}

/// The console's one line: `api: 2 -> 4 replicas`.
pub fn summary(o: &ScaleOutcome) -> String {
    format!("{}: {} -> {} replicas", o.app, o.from, o.replicas)
}
