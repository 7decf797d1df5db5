//! Commands that change the fleet: the confirmation before, the progress per
//! host during, and the outcome after.

use schema::{DeployOutcome, RollbackOutcome, ScaleOutcome, Version};

use crate::event::CommandId;

/// A command that changes the fleet, waiting for the operator's y/n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// `rollback APP [--to vN]`; `from` is the active release when known.
    Rollback {
        app: String,
        to: Option<Version>,
        from: Option<Version>,
    },
    /// `scale APP N`; `from` is the current wanted count when known.
    Scale {
        app: String,
        from: Option<u32>,
        to: u32,
    },
    /// `rm APP`.
    Rm { app: String },
    /// `deploy …` exactly as typed (plus `--json`); `source` is the file.
    Deploy {
        app: String,
        source: String,
        argv: Vec<String>,
    },
}

impl Pending {
    pub fn app(&self) -> &str {
        match self {
            Pending::Rollback { app, .. }
            | Pending::Scale { app, .. }
            | Pending::Rm { app }
            | Pending::Deploy { app, .. } => app,
        }
    }

    /// The CLI.md command word.
    pub fn command(&self) -> &'static str {
        match self {
            Pending::Rollback { .. } => "rollback",
            Pending::Scale { .. } => "scale",
            Pending::Rm { .. } => "rm",
            Pending::Deploy { .. } => "deploy",
        }
    }

    /// The question the confirmation asks, naming exactly what will change.
    pub fn question(&self) -> String {
        match self {
            Pending::Rollback { app, to, from } => {
                let from = from.map(|v| format!(" from {v}")).unwrap_or_default();
                match to {
                    Some(v) => format!("Roll back {app}{from} to {v}?"),
                    None => format!("Roll back {app}{from} to the release before it?"),
                }
            }
            Pending::Scale {
                app,
                from: Some(f),
                to,
            } => format!("Scale {app} from {f} to {to} replicas?"),
            Pending::Scale {
                app,
                from: None,
                to,
            } => format!("Scale {app} to {to} replicas?"),
            Pending::Rm { app } => {
                format!("Remove {app}? Every instance stops; its releases stay in the audit log.")
            }
            Pending::Deploy { app, source, .. } => {
                format!("Deploy a new release of {app} from {source}?")
            }
        }
    }

    /// The command line for [`crate::Action::Run`], with `--json` so the
    /// outcome can be read.
    pub fn argv(&self) -> Vec<String> {
        let s = |x: &str| x.to_string();
        match self {
            Pending::Rollback { app, to, .. } => {
                let mut a = vec![s("rollback"), app.clone()];
                if let Some(v) = to {
                    a.extend([s("--to"), v.to_string()]);
                }
                a.push(s("--json"));
                a
            }
            Pending::Scale { app, to, .. } => {
                vec![s("scale"), app.clone(), to.to_string(), s("--json")]
            }
            Pending::Rm { app } => vec![s("rm"), app.clone(), s("--json")],
            Pending::Deploy { argv, .. } => argv.clone(),
        }
    }

    /// Short title of the running operation.
    pub fn title(&self) -> String {
        match self {
            Pending::Rollback {
                app, to: Some(v), ..
            } => format!("rollback {app} to {v}"),
            Pending::Rollback { app, to: None, .. } => format!("rollback {app}"),
            Pending::Scale { app, to, .. } => format!("scale {app} to {to}"),
            Pending::Rm { app } => format!("rm {app}"),
            Pending::Deploy { app, source, .. } => format!("deploy {app} from {source}"),
        }
    }
}

/// The latest state a host reported for an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProgress {
    pub host: String,
    /// As reported: `staging`, `compiled in 120 ms`, `active`, `failed: …`.
    pub state: String,
    pub failed: bool,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// One line: `ticker: v3 -> v2 in 4 ms`, or what failed and why.
    pub summary: String,
    pub finished_ms: i64,
}

/// A command the console ran, and what is known of it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: CommandId,
    pub command: &'static str,
    pub app: String,
    pub title: String,
    pub started_ms: i64,
    /// One row per host, in the order hosts first reported.
    pub hosts: Vec<HostProgress>,
    /// Progress lines not about one host, newest last (a few kept).
    pub notes: Vec<String>,
    pub outcome: Option<Outcome>,
}

/// Progress notes kept per operation; older ones are dropped.
const MAX_NOTES: usize = 8;

impl Operation {
    pub fn new(id: CommandId, pending: &Pending, now_ms: i64) -> Operation {
        Operation {
            id,
            command: pending.command(),
            app: pending.app().to_string(),
            title: pending.title(),
            started_ms: now_ms,
            hosts: Vec::new(),
            notes: Vec::new(),
            outcome: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.outcome.is_none()
    }

    /// Records a progress line. `host: state` updates that host's row;
    /// anything else is a note.
    pub fn progress(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some((host, state)) = line.split_once(": ")
            && !host.is_empty()
            && !host.contains(char::is_whitespace)
        {
            let failed = state.starts_with("failed") || state.starts_with("error");
            let row = HostProgress {
                host: host.to_string(),
                state: state.to_string(),
                failed,
            };
            match self.hosts.iter_mut().find(|h| h.host == host) {
                Some(h) => *h = row,
                None => self.hosts.push(row),
            }
            return;
        }
        if self.notes.len() == MAX_NOTES {
            self.notes.remove(0);
        }
        self.notes.push(line.to_string());
    }

    /// Records the end: the exit status and the command's output.
    pub fn finish(&mut self, code: i32, stdout: &str, stderr: &str, now_ms: i64) {
        let ok = code == 0;
        let summary = if ok {
            self.success_summary(stdout)
        } else {
            let why = first_line(stderr)
                .or_else(|| first_line(stdout))
                .unwrap_or("no reason given");
            format!("{} failed (exit {code}): {why}", self.title)
        };
        self.outcome = Some(Outcome {
            ok,
            summary,
            finished_ms: now_ms,
        });
    }

    fn success_summary(&self, stdout: &str) -> String {
        let parsed = match self.command {
            "rollback" => serde_json::from_str::<RollbackOutcome>(stdout)
                .ok()
                .map(|o| {
                    let from = o.from.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
                    format!("{}: {from} -> {} in {} ms", o.app, o.to, o.switch_ms)
                }),
            "scale" => serde_json::from_str::<ScaleOutcome>(stdout)
                .ok()
                .map(|o| format!("{}: {} -> {} replicas", o.app, o.from, o.replicas)),
            "deploy" => serde_json::from_str::<DeployOutcome>(stdout).ok().map(|o| {
                format!(
                    "{} {} {} ({} replicas, compiled in {} ms)",
                    o.app, o.version, o.state, o.replicas, o.compile_ms
                )
            }),
            "rm" => Some(format!("{} removed", self.app)),
            _ => None,
        };
        parsed
            .or_else(|| first_line(stdout).map(|l| format!("{}: {l}", self.title)))
            .unwrap_or_else(|| format!("{}: done", self.title))
    }
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_keeps_the_latest_state_per_host_in_first_seen_order() {
        let p = Pending::Rollback {
            app: "api".into(),
            to: None,
            from: Some(Version(3)),
        };
        let mut op = Operation::new(1, &p, 0);
        for l in [
            "host-b: staging",
            "host-a: staging",
            "switching now",
            "host-b: active",
            "host-a: failed: trap",
        ] {
            op.progress(l);
        }
        let rows: Vec<(&str, &str, bool)> = op
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.state.as_str(), h.failed))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("host-b", "active", false),
                ("host-a", "failed: trap", true)
            ]
        );
        assert_eq!(op.notes, vec!["switching now".to_string()]);
    }

    #[test]
    fn outcome_reads_the_json_answer_or_falls_back_to_stderr() {
        let p = Pending::Rollback {
            app: "api".into(),
            to: None,
            from: None,
        };
        let mut op = Operation::new(1, &p, 0);
        op.finish(
            0,
            r#"{"app":"api","from":"v3","to":"v2","switch_ms":4}"#,
            "",
            10,
        );
        assert_eq!(
            op.outcome.as_ref().unwrap().summary,
            "api: v3 -> v2 in 4 ms"
        );
        let mut op = Operation::new(2, &p, 0);
        op.finish(1, "", "\nno earlier release of api to roll back to\n", 10);
        let o = op.outcome.unwrap();
        assert!(!o.ok);
        assert_eq!(
            o.summary,
            "rollback api failed (exit 1): no earlier release of api to roll back to"
        );
    }
}
