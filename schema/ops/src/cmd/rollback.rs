//! `rollback APP [--to vN]`: an earlier release active again, from kept code.

use schema::{ReleaseState, RollbackOutcome, Version};

use crate::error::OpError;
use crate::scope::Scope;

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

pub use schema::RollbackCandidate as Candidate;

/// The release a rollback goes to: `to`, or the newest kept, healthy
/// (superseded) release older than the active one. `releases` are newest
/// first. `keep` is how many releases' code the caller keeps, or `None`
/// where `kept` does not decide: the gateway may have let an artifact go
/// that its hosts still keep compiled, and staging says so if none does.
pub fn choose_target(
    app: &str,
    active: Option<Version>,
    releases: &[Candidate],
    to: Option<Version>,
    keep: Option<usize>,
    scope: Scope,
) -> Result<Version, OpError> {
    let usable = |r: &Candidate| keep.is_none() || r.kept;
    let listed = scope.suggest(&format!("releases {app}"));
    let target = match to {
        Some(v) => {
            let r = releases.iter().find(|r| r.version == v).ok_or_else(|| {
                OpError::failed(format!("{app} has no release {v}; {listed} lists them"))
            })?;
            if active == Some(v) && r.state == ReleaseState::Active {
                return Err(OpError::failed(format!(
                    "{app} {v} is already the active release"
                )));
            }
            r
        }
        None => {
            let below = active.unwrap_or(Version(u32::MAX));
            releases
                .iter()
                .find(|r| r.version < below && r.state == ReleaseState::Superseded && usable(r))
                .ok_or_else(|| {
                    OpError::failed(format!(
                        "{app} has no earlier healthy release to roll back to; {listed} lists them, and `rollback {app} --to vN` picks one"
                    ))
                })?
        }
    };
    if let Some(keep) = keep
        && !target.kept
    {
        return Err(OpError::failed(format!(
            "{app} {} is no longer kept {} (only the last {keep} releases are); deploy its artifact again",
            target.version,
            scope.keeper()
        )));
    }
    Ok(target.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: u32, state: ReleaseState, kept: bool) -> Candidate {
        Candidate {
            version: Version(v),
            state,
            kept,
        }
    }

    #[test]
    fn the_default_target_is_the_newest_kept_healthy_release_below_the_active() {
        use ReleaseState::*;
        let rs = [
            c(5, Active, true),
            c(4, Failed, true),
            c(3, Superseded, false),
            c(2, Superseded, true),
            c(1, Superseded, true),
        ];
        let pick = |to, scope| choose_target("api", Some(Version(5)), &rs, to, Some(5), scope);
        assert_eq!(pick(None, Scope::Host), Ok(Version(2)));
        assert_eq!(pick(Some(Version(1)), Scope::Fleet), Ok(Version(1)));
        let e = pick(Some(Version(5)), Scope::Host).unwrap_err();
        assert_eq!(e.message, "api v5 is already the active release");
        let e = pick(Some(Version(9)), Scope::Host).unwrap_err();
        assert!(e.message.contains("`hostd releases api` lists them"), "{e}");
        let e = pick(Some(Version(9)), Scope::Fleet).unwrap_err();
        assert!(e.message.contains("; `releases api` lists them"), "{e}");
        let e = pick(Some(Version(3)), Scope::Host).unwrap_err();
        assert!(e.message.contains("no longer kept on this host"), "{e}");
        // The gateway cannot tell whether its hosts still keep the code.
        let fleet = choose_target("api", Some(Version(5)), &rs, None, None, Scope::Fleet);
        assert_eq!(fleet, Ok(Version(3)));
        let none =
            choose_target("api", Some(Version(1)), &rs, None, Some(5), Scope::Host).unwrap_err();
        assert!(
            none.message
                .starts_with("api has no earlier healthy release")
        );
    }
}
