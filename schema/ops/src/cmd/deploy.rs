//! `deploy APP FILE|- [flags]`: a new release from an artifact.

use schema::DeployOutcome;

/// What `deploy` prints: `deployed api v3 (sha256:0123456789ab…, http, 2
/// replicas); compiled in 120 ms`.
pub fn text(o: &DeployOutcome) -> String {
    let compiled = if o.compile_ms > 0 {
        format!("compiled in {} ms", o.compile_ms)
    } else {
        "code was already compiled".to_string()
    };
    let short = &o.digest[..o.digest.len().min(19)];
    format!(
        "deployed {} {} ({short}…, {}, {} replica{}); {compiled}\n",
        o.app,
        o.version,
        o.kind,
        o.replicas,
        if o.replicas == 1 { "" } else { "s" }
    )
}

/// The console's one line.
pub fn summary(o: &DeployOutcome) -> String {
    format!(
        "{} {} {} ({} replicas, compiled in {} ms)",
        o.app, o.version, o.state, o.replicas, o.compile_ms
    )
}
