//! Progress of a fleet operation, typed from the host that does the work to
//! the door that shows it.
//!
//! A host reports a [`Step`] over the tunnel; the gateway adds which host
//! ([`Progress`]); the `ssh gw` door prints it as `host: step` (its
//! `Display` is the line CLI.md shows) or as `{"host","line","step"}` with
//! `--json`; the gateway's console reads the typed value and colours a row
//! by [`Step::is_failure`], never by its wording.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::Version;

/// One step of staging, activating or removing a release on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The gateway's own note before it starts: what goes where.
    Staging {
        app: String,
        version: Version,
        /// The first 12 hex digits of the artifact's sha256.
        digest: String,
        /// Empty: no host runs it (0 replicas).
        hosts: Vec<String>,
    },
    /// The host had the artifact already; nothing to fetch.
    ArtifactHere,
    /// The host starts (or resumes, `offset > 0`) fetching the artifact.
    Fetching {
        offset: u64,
        size: u64,
    },
    Fetched {
        percent: u64,
    },
    /// The whole artifact is here and its digest matches.
    FetchChecked,
    /// Compiled with Cranelift in `ms` (0: the compiled code was cached).
    Compiled {
        ms: u64,
    },
    Staged {
        version: Version,
    },
    Active {
        version: Version,
    },
    Failed {
        reason: String,
    },
    Removed {
        app: String,
    },
    RemoveFailed {
        app: String,
        reason: String,
    },
    /// A line without a type (from a host of an older release).
    Note {
        line: String,
    },
}

impl Step {
    /// Whether this step is a host's failure (shown red, counted failed).
    pub fn is_failure(&self) -> bool {
        matches!(self, Step::Failed { .. } | Step::RemoveFailed { .. })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Staging {
                app,
                version,
                digest,
                hosts,
            } => {
                write!(f, "{app} {version} (sha256:{digest}): staging on ")?;
                if hosts.is_empty() {
                    f.write_str("no host (0 replicas)")
                } else {
                    f.write_str(&hosts.join(", "))
                }
            }
            Step::ArtifactHere => f.write_str("artifact already here"),
            Step::Fetching { offset: 0, size } => write!(f, "fetching {size} bytes"),
            Step::Fetching { offset, size } => {
                write!(f, "resuming fetch at {offset} of {size} bytes")
            }
            Step::Fetched { percent } => write!(f, "fetched {percent}%"),
            Step::FetchChecked => f.write_str("fetched, digest checked"),
            Step::Compiled { ms: 0 } => f.write_str("compiled code already here"),
            Step::Compiled { ms } => write!(f, "compiled in {ms} ms"),
            Step::Staged { version } => write!(f, "staged {version}"),
            Step::Active { version } => write!(f, "active {version}"),
            Step::Failed { reason } => write!(f, "failed: {reason}"),
            Step::Removed { app } => write!(f, "removed {app}"),
            Step::RemoveFailed { app, reason } => write!(f, "could not remove {app}: {reason}"),
            Step::Note { line } => f.write_str(line),
        }
    }
}

/// A step on one host (or `gateway` for the gateway's own notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub host: String,
    pub step: Step,
}

impl Progress {
    pub fn new(host: impl Into<String>, step: Step) -> Progress {
        Progress {
            host: host.into(),
            step,
        }
    }
}

impl fmt::Display for Progress {
    /// `host: step`, as `ssh gw deploy` prints it on stderr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.host, self.step)
    }
}

/// `{"host","line","step"}`: `line` is the step's text (what scripts of the
/// first release read), `step` the typed step.
#[derive(Serialize, Deserialize)]
struct ProgressWire {
    host: String,
    line: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<Step>,
}

impl Serialize for Progress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ProgressWire {
            host: self.host.clone(),
            line: self.step.to_string(),
            step: Some(self.step.clone()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Progress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Progress, D::Error> {
        let w = ProgressWire::deserialize(d)?;
        Ok(Progress {
            host: w.host,
            step: w.step.unwrap_or(Step::Note { line: w.line }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_reads_as_the_line_the_first_release_printed() {
        let v = Version(3);
        let cases = [
            (
                Step::Staging {
                    app: "api".into(),
                    version: v,
                    digest: "0123456789ab".into(),
                    hosts: vec!["h1".into(), "h2".into()],
                },
                "api v3 (sha256:0123456789ab): staging on h1, h2",
            ),
            (
                Step::Staging {
                    app: "api".into(),
                    version: v,
                    digest: "0123456789ab".into(),
                    hosts: vec![],
                },
                "api v3 (sha256:0123456789ab): staging on no host (0 replicas)",
            ),
            (Step::ArtifactHere, "artifact already here"),
            (Step::Fetching { offset: 0, size: 9 }, "fetching 9 bytes"),
            (
                Step::Fetching { offset: 4, size: 9 },
                "resuming fetch at 4 of 9 bytes",
            ),
            (Step::Fetched { percent: 50 }, "fetched 50%"),
            (Step::FetchChecked, "fetched, digest checked"),
            (Step::Compiled { ms: 0 }, "compiled code already here"),
            (Step::Compiled { ms: 12 }, "compiled in 12 ms"),
            (Step::Staged { version: v }, "staged v3"),
            (Step::Active { version: v }, "active v3"),
            (
                Step::Failed {
                    reason: "trap".into(),
                },
                "failed: trap",
            ),
            (Step::Removed { app: "api".into() }, "removed api"),
            (
                Step::RemoveFailed {
                    app: "api".into(),
                    reason: "gone".into(),
                },
                "could not remove api: gone",
            ),
        ];
        for (step, line) in cases {
            assert_eq!(step.to_string(), line);
        }
    }

    #[test]
    fn json_keeps_host_and_line_and_adds_the_step() {
        let p = Progress::new(
            "h1",
            Step::Active {
                version: Version(2),
            },
        );
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["host"], "h1");
        assert_eq!(j["line"], "active v2");
        assert_eq!(j["step"]["step"], "active");
        assert_eq!(serde_json::from_value::<Progress>(j).unwrap(), p);
        let old: Progress = serde_json::from_str(r#"{"host":"h","line":"staging"}"#).unwrap();
        assert_eq!(
            old.step,
            Step::Note {
                line: "staging".into()
            }
        );
        assert!(!old.step.is_failure());
        assert!(
            Step::Failed {
                reason: String::new()
            }
            .is_failure()
        );
    }
}
