//! Commands that change the fleet: the confirmation before, the progress per
//! host during, and the outcome after.

use ops::{Command, CommandLine, OpError, Progress, Reply};
use schema::Version;
use schema::command::{DeployArgs, RestartArgs, RmArgs, RollbackArgs, ScaleArgs};

use crate::event::CommandId;

/// A command that changes the fleet, waiting for the operator's y/n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// `rollback APP [--to vN]`; `from` is the active release when known.
    /// `target`: for a plain rollback, the release it goes to as the
    /// releases the console knows say (the gateway's own choice), so the
    /// question names it and the command asks for exactly that one.
    Rollback {
        app: String,
        to: Option<Version>,
        from: Option<Version>,
        target: Option<Version>,
    },
    /// `scale APP N`; `from` is the current wanted count when known.
    Scale {
        app: String,
        from: Option<u32>,
        to: u32,
    },
    /// `rm APP`.
    Rm { app: String },
    /// `restart APP`: `release` is the active one, `crashloop` whether it
    /// is in a crash loop (the restart clears it), as last seen.
    Restart {
        app: String,
        release: Option<Version>,
        crashloop: bool,
    },
    /// `deploy …` as typed; `source` is the file (or the manifest);
    /// `replaces`: the app runs a release now, whose env the deploy's
    /// replaces (unless `--keep-env`), so the question says so.
    Deploy {
        app: String,
        source: String,
        request: Box<DeployArgs>,
        replaces: bool,
    },
    /// `config …` or `kv …` as typed: a change waits for y/n, a read runs
    /// at once and shows its answer as the outcome.
    Capability { app: String, command: Box<Command> },
}

impl Pending {
    pub fn app(&self) -> &str {
        match self {
            Pending::Rollback { app, .. }
            | Pending::Scale { app, .. }
            | Pending::Rm { app }
            | Pending::Restart { app, .. }
            | Pending::Deploy { app, .. }
            | Pending::Capability { app, .. } => app,
        }
    }

    /// The CLI.md command word.
    pub fn command(&self) -> &'static str {
        match self {
            Pending::Rollback { .. } => "rollback",
            Pending::Scale { .. } => "scale",
            Pending::Rm { .. } => "rm",
            Pending::Restart { .. } => "restart",
            Pending::Deploy { .. } => "deploy",
            Pending::Capability { command, .. } => command.name(),
        }
    }

    /// The question the confirmation asks, naming exactly what will change.
    pub fn question(&self) -> String {
        match self {
            Pending::Rollback {
                app,
                to,
                from,
                target,
            } => {
                let to = to.or(*target);
                // A newer target is a roll forward, and says so.
                let verb = match (to, *from) {
                    (Some(t), Some(f)) if t > f => "Roll forward",
                    _ => "Roll back",
                };
                let from = from.map(|v| format!(" from {v}")).unwrap_or_default();
                match to {
                    Some(v) => format!("{verb} {app}{from} to {v}?"),
                    None => format!("Roll back {app}{from} to the release before it?"),
                }
            }
            Pending::Scale {
                app,
                from: Some(f),
                to,
            } => format!(
                "Scale {app} from {f} to {to} replica{}?",
                if *to == 1 { "" } else { "s" }
            ),
            Pending::Scale {
                app,
                from: None,
                to,
            } => format!(
                "Scale {app} to {to} replica{}?",
                if *to == 1 { "" } else { "s" }
            ),
            Pending::Rm { app } => {
                format!("Remove {app}? Every instance stops; its releases stay in the audit log.")
            }
            Pending::Deploy {
                app,
                source,
                request,
                replaces,
            } => {
                let q = format!("Deploy a new release of {app} from {source}?");
                if !replaces || request.keep_env {
                    return q;
                }
                let names: Vec<&str> = request.env.iter().map(|(k, _)| k.as_str()).collect();
                let env = if request.manifest.is_some() {
                    "Its env will be the manifest's".to_string()
                } else if names.is_empty() {
                    "It will have no env".to_string()
                } else {
                    format!("Its env will be {} only", names.join(", "))
                };
                format!("{q} {env}, replacing the running release's (--keep-env keeps it).")
            }
            Pending::Restart {
                app,
                release,
                crashloop,
            } => {
                let v = release.map(|v| format!(" {v}")).unwrap_or_default();
                if *crashloop {
                    format!("Restart {app}{v} on every host, clearing its crash loop?")
                } else {
                    format!("Restart every instance of {app}{v}?")
                }
            }
            Pending::Capability { app, command } => capability_question(app, command),
        }
    }

    /// The typed command for [`crate::Action::Run`].
    pub fn request(&self) -> CommandLine {
        let command = match self {
            Pending::Rollback {
                app, to, target, ..
            } => Command::Rollback(RollbackArgs {
                app: app.clone(),
                to: to.or(*target),
            }),
            Pending::Scale { app, to, .. } => Command::Scale(ScaleArgs {
                app: app.clone(),
                replicas: *to,
            }),
            // The dialog was the confirmation.
            Pending::Rm { app } => Command::Rm(RmArgs {
                app: app.clone(),
                confirm: Some(app.clone()),
            }),
            Pending::Restart { app, .. } => Command::Restart(RestartArgs { app: app.clone() }),
            Pending::Deploy { request, .. } => Command::Deploy(request.clone()),
            Pending::Capability { command, .. } => (**command).clone(),
        };
        CommandLine {
            json: false,
            command,
        }
    }

    /// Short title of the running operation.
    pub fn title(&self) -> String {
        match self {
            Pending::Rollback {
                app, to, target, ..
            } => match to.or(*target) {
                Some(v) => format!("rollback {app} to {v}"),
                None => format!("rollback {app}"),
            },
            Pending::Scale { app, to, .. } => format!("scale {app} to {to}"),
            Pending::Rm { app } => format!("rm {app}"),
            Pending::Restart { app, .. } => format!("restart {app}"),
            Pending::Deploy { app, source, .. } => format!("deploy {app} from {source}"),
            Pending::Capability { app, command } => format!("{} {app}", command.name()),
        }
    }
}

/// The release a plain `rollback APP` goes to, chosen from `releases` as
/// the gateway chooses (`ops::cmd::rollback`), or why there is none.
pub fn rollback_target(
    app: &str,
    active: Option<Version>,
    releases: &[schema::ReleaseRow],
) -> Result<Version, OpError> {
    let mut candidates: Vec<schema::RollbackCandidate> = releases
        .iter()
        .map(|r| schema::RollbackCandidate {
            version: r.version,
            state: r.state,
            kept: r.kept,
        })
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.version));
    ops::cmd::rollback::choose_target(app, active, &candidates, None, None, ops::Scope::Fleet)
}

/// The question before a `config` or `kv` change, naming keys, never values.
fn capability_question(app: &str, command: &Command) -> String {
    use schema::command::{ConfigAction, KvOp};
    match command {
        Command::Config(c) => match &c.action {
            ConfigAction::Set { pairs, secret } => format!(
                "Set {} on {app}{}? A new release of the same code.",
                pairs
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if *secret { " as secrets" } else { "" }
            ),
            ConfigAction::Unset(keys) => format!(
                "Unset {} on {app}? A new release of the same code.",
                keys.join(", ")
            ),
            ConfigAction::Show => format!("Show the config of {app}?"),
        },
        Command::Kv(k) => match &k.op {
            KvOp::Set(key, _) => format!("Set {key} in {app}/{}?", k.bucket()),
            KvOp::Del(key) => format!("Delete {key} from {app}/{}?", k.bucket()),
            KvOp::Get(key) => format!("Read {key} from {app}/{}?", k.bucket()),
            KvOp::List => format!("List the keys of {app}/{}?", k.bucket()),
        },
        Command::Promote(_) => format!(
            "Promote the canary of {app}: make it active on every host now, without waiting for its steps?"
        ),
        Command::Abort(_) => format!(
            "Abort the canary of {app}: send its requests back to the active release and mark it failed?"
        ),
        other => format!("Run {} on {app}?", other.name()),
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
    /// The exit status the command ended with (CLI.md: 0, 1 or 2).
    pub code: i32,
    /// One line: `ticker: v3 -> v2 in 4 ms`, or the command and why it
    /// failed (`rollback api: api has no release v9; …`), said once: on
    /// the status line, the panel showing only `FAILED (exit 1)` beside it.
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

    /// Records a step of a host: updates that host's row (in the order
    /// hosts first reported). The gateway's own steps are notes.
    pub fn progress(&mut self, p: &Progress) {
        if p.host == "gateway" {
            if self.notes.len() == MAX_NOTES {
                self.notes.remove(0);
            }
            self.notes.push(p.step.to_string());
            return;
        }
        let row = HostProgress {
            host: p.host.clone(),
            state: p.step.to_string(),
            failed: p.step.is_failure(),
        };
        match self.hosts.iter_mut().find(|h| h.host == p.host) {
            Some(h) => *h = row,
            None => self.hosts.push(row),
        }
    }

    /// Records the end: the outcome the command answered, or why it failed.
    pub fn finish(&mut self, result: &Result<Option<Reply>, OpError>, now_ms: i64) {
        let (code, summary) = match result {
            Ok(reply) => (0, self.success_summary(reply.as_ref())),
            // The reason as the command said it (`error: ` taken off once,
            // the status line puts its own in front).
            Err(e) => (e.exit_code(), format!("{}: {}", self.title, e.reason())),
        };
        self.outcome = Some(Outcome {
            ok: result.is_ok(),
            code,
            summary,
            finished_ms: now_ms,
        });
    }

    fn success_summary(&self, reply: Option<&Reply>) -> String {
        use ops::cmd;
        match reply {
            Some(Reply::RolledBack(o)) => cmd::rollback::summary(o),
            Some(Reply::Scaled(o)) => cmd::scale::summary(o),
            Some(Reply::Restarted(o)) => cmd::restart::summary(o),
            Some(Reply::CanaryEnded(o)) => cmd::canary::summary(o),
            Some(Reply::Deployed(o)) => cmd::deploy::summary(o),
            Some(Reply::Removed(o)) => cmd::rm::summary(o),
            Some(Reply::ConfigChanged(o)) => cmd::config::summary(o),
            Some(Reply::Config { app, rows }) => {
                let shown = cmd::config::text(app, rows);
                shown.trim_end().replace('\n', ", ")
            }
            Some(Reply::Kv(o)) => cmd::kv::summary(o),
            Some(Reply::Info(i)) => cmd::info::summary(i),
            _ => format!("{}: done", self.title),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::progress::Step;

    #[test]
    fn progress_keeps_the_latest_state_per_host_in_first_seen_order() {
        let p = Pending::Rollback {
            app: "api".into(),
            to: None,
            from: Some(Version(3)),
            target: None,
        };
        let mut op = Operation::new(1, &p, 0);
        let v = Version(2);
        for (host, step) in [
            ("host-b", Step::Staged { version: v }),
            ("host-a", Step::Staged { version: v }),
            (
                "gateway",
                Step::Note {
                    line: "switching now".into(),
                },
            ),
            ("host-b", Step::Active { version: v }),
            (
                "host-a",
                Step::Failed {
                    reason: "trap".into(),
                },
            ),
        ] {
            op.progress(&Progress::new(host, step));
        }
        let rows: Vec<(&str, &str, bool)> = op
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.state.as_str(), h.failed))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("host-b", "active v2", false),
                ("host-a", "failed: trap", true)
            ]
        );
        assert_eq!(op.notes, vec!["switching now".to_string()]);
    }

    #[test]
    fn outcome_reads_the_typed_answer_or_the_reason() {
        let p = Pending::Rollback {
            app: "api".into(),
            to: None,
            from: None,
            target: None,
        };
        let mut op = Operation::new(1, &p, 0);
        let answer = Reply::RolledBack(schema::RollbackOutcome {
            app: "api".into(),
            from: Some(Version(3)),
            to: Version(2),
            switch_ms: 4,
        });
        op.finish(&Ok(Some(answer)), 10);
        assert_eq!(
            op.outcome.as_ref().unwrap().summary,
            "api: v3 -> v2 in 4 ms"
        );
        let mut op = Operation::new(2, &p, 0);
        let e = OpError::failed("no earlier release of api to roll back to");
        op.finish(&Err(e), 10);
        let o = op.outcome.unwrap();
        assert!(!o.ok);
        assert_eq!(
            (o.code, o.summary.as_str()),
            (1, "rollback api: no earlier release of api to roll back to")
        );
    }
}
