//! The command grammar of CLI.md, shared by every front door.
//!
//! The same words are typed after `hostd`, after `ssh -p 2222 ops@gateway`
//! and into the console's `:` prompt; all three parse them with these types,
//! so a flag cannot mean one thing in one place and another elsewhere.

use clap::{Args, Parser, Subcommand};

mod capability;
mod words;
pub use capability::{ConfigAction, ConfigArgs, KvArgs, KvOp};
pub use words::{join_command_line, split_command_line};
#[cfg(test)]
mod tests;

use crate::manifest::{Health, Limits, Manifest, ManifestError};
use crate::names::Version;
use crate::time::{DurationError, parse_duration};
use crate::types::AppKind;

/// A command line as the gateway or a host's control socket receives it.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "cranefleet", disable_help_subcommand = true)]
pub struct CommandLine {
    /// One JSON document (or one JSON object per line for streams) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl CommandLine {
    /// The words that parse back into this command line: how a client at
    /// the far end of SSH sends a typed command (the only place a command
    /// becomes text again).
    pub fn to_argv(&self) -> Vec<String> {
        let w = |s: &str| s.to_string();
        // Options as `--flag=value`, so a value may start with `-`;
        // positionals after `--` when one does.
        let opt = |flag: &str, v: &str| format!("{flag}={v}");
        let (verb, mut flags, positionals): (&str, Vec<String>, Vec<String>) = match &self.command {
            Command::Deploy(d) => {
                let mut f = d.flag_words();
                if let Some(m) = &d.manifest {
                    f.push(opt("--manifest", m));
                }
                let p = d.app.iter().chain(d.file.iter()).cloned().collect();
                ("deploy", f, p)
            }
            Command::Ps(p) => ("ps", vec![], p.app.iter().cloned().collect()),
            Command::Releases(r) => ("releases", vec![], vec![r.app.clone()]),
            Command::Rollback(r) => (
                "rollback",
                r.to.iter().map(|v| opt("--to", &v.to_string())).collect(),
                vec![r.app.clone()],
            ),
            Command::Scale(s) => ("scale", vec![], vec![s.app.clone(), s.replicas.to_string()]),
            Command::Restart(r) => ("restart", vec![], vec![r.app.clone()]),
            Command::Promote(r) => ("promote", vec![], vec![r.app.clone()]),
            Command::Abort(r) => ("abort", vec![], vec![r.app.clone()]),
            Command::Logs(l) => {
                let mut f = Vec::new();
                if l.follow {
                    f.push(w("--follow"));
                }
                match l.since {
                    Some(Since::Seq(n)) => f.push(opt("--since", &n.to_string())),
                    Some(Since::Ago(d)) => f.push(opt("--since", &duration_words(d))),
                    None => {}
                }
                if let Some(t) = l.tail {
                    f.push(opt("--tail", &t.to_string()));
                }
                if let Some(x) = &l.filter {
                    f.push(opt("--where", x));
                }
                ("logs", f, vec![l.app.clone()])
            }
            Command::Rm(r) => (
                "rm",
                r.confirm.iter().map(|c| opt("--confirm", c)).collect(),
                vec![r.app.clone()],
            ),
            Command::Hosts => ("hosts", vec![], vec![]),
            Command::Audit(t) => ("audit", vec![opt("--tail", &t.tail.to_string())], vec![]),
            Command::Events(e) => {
                let mut f = vec![opt("--tail", &e.tail.to_string())];
                if e.follow {
                    f.push(w("--follow"));
                }
                ("events", f, vec![])
            }
            Command::Watch => ("watch", vec![], vec![]),
            Command::Info(i) => ("info", vec![], vec![i.app.clone()]),
            Command::Config(c) => {
                let (f, p) = c.words();
                ("config", f, p)
            }
            Command::Kv(k) => {
                let (f, p) = k.words();
                ("kv", f, p)
            }
        };
        if self.json {
            flags.push(w("--json"));
        }
        let mut a = vec![w(verb)];
        if positionals.iter().any(|p| p.starts_with('-')) {
            a.extend(flags);
            a.push(w("--"));
            a.extend(positionals);
        } else {
            a.extend(positionals);
            a.extend(flags);
        }
        a
    }

    /// The command as a log line may show it: values a `config set` or
    /// `kv set` carries are masked (a secret, a token in a bucket), and
    /// control characters escaped.
    pub fn shown(&self) -> String {
        let masked = match &self.command {
            Command::Config(c) => match &c.action {
                ConfigAction::Set { pairs, secret } => CommandLine {
                    json: self.json,
                    command: Command::Config(ConfigArgs {
                        app: c.app.clone(),
                        action: ConfigAction::Set {
                            pairs: pairs
                                .iter()
                                .map(|(k, _)| (k.clone(), "***".into()))
                                .collect(),
                            secret: *secret,
                        },
                    }),
                },
                _ => self.clone(),
            },
            Command::Kv(k) => match &k.op {
                KvOp::Set(key, _) => CommandLine {
                    json: self.json,
                    command: Command::Kv(KvArgs {
                        op: KvOp::Set(key.clone(), "***".into()),
                        ..k.clone()
                    }),
                },
                _ => self.clone(),
            },
            _ => self.clone(),
        };
        crate::render::clean(&join_command_line(&masked.to_argv())).into_owned()
    }

    /// How an exec line is logged: [`shown`](Self::shown) when it parses,
    /// else only its length (a mistyped `config set` may still hold a secret).
    pub fn shown_line(line: &str) -> String {
        match split_command_line(line)
            .ok()
            .and_then(|w| CommandLine::parse_argv(&w).ok())
        {
            Some(cl) => cl.shown(),
            None => format!("(a line that does not parse, {} bytes)", line.len()),
        }
    }

    /// Parses `argv` as typed after the program name.
    pub fn parse_argv<I, S>(argv: I) -> Result<CommandLine, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        CommandLine::try_parse_from(
            std::iter::once("cranefleet".into()).chain(argv.into_iter().map(Into::into)),
        )
    }
}

/// The fleet commands of CLI.md.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// New release of APP from a .wasm (module or component), or from stdin with `-`.
    Deploy(Box<DeployArgs>),
    /// Apps, or one app's instances.
    Ps(PsArgs),
    /// Every release of an app.
    Releases(ReleasesArgs),
    /// Make an earlier release active (default: the one before the active).
    Rollback(RollbackArgs),
    /// Set the wanted replicas.
    Scale(ScaleArgs),
    /// Restart every instance of the active release (clears a crash loop).
    Restart(RestartArgs),
    /// End a live canary by hand: make it active everywhere.
    Promote(CanaryArgs),
    /// End a live canary by hand: drop it (it is marked failed); the active release serves alone.
    Abort(CanaryArgs),
    /// Log records, oldest first; -f follows.
    Logs(LogsArgs),
    /// Stop and forget an app (its releases stay in the audit log).
    Rm(RmArgs),
    /// Hosts and what they run.
    Hosts,
    /// Who did what, when, from which key: oldest first, the newest last
    /// (as logs; the console's audit view lists newest first).
    Audit(AuditArgs),
    /// What on-call must know: auto-rollbacks, crash loops, hosts down and
    /// up, failed deploys; oldest first, -f follows.
    Events(EventsArgs),
    /// The fleet as it changes: hosts and apps now, then again on every
    /// change (and at least every 2 s) until the client goes away; with
    /// `--json`, one `WatchSnapshot` per line. What the console shows live.
    Watch,
    /// An app at a glance: kind, release, grants, key-value store, health, env and config names.
    Info(InfoArgs),
    /// An app's wasi:config values: `config APP`, `config set APP K=V... [--secret]`, `config unset APP K...`.
    Config(ConfigArgs),
    /// An app's wasi:keyvalue buckets: `kv APP list|get KEY|set KEY VALUE|del KEY [--bucket B]`.
    Kv(KvArgs),
}

impl Command {
    /// The word that names the command (`deploy`, `ps`, …), as recorded in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Deploy(_) => "deploy",
            Command::Ps(_) => "ps",
            Command::Releases(_) => "releases",
            Command::Rollback(_) => "rollback",
            Command::Scale(_) => "scale",
            Command::Restart(_) => "restart",
            Command::Promote(_) => "promote",
            Command::Abort(_) => "abort",
            Command::Logs(_) => "logs",
            Command::Rm(_) => "rm",
            Command::Hosts => "hosts",
            Command::Audit(_) => "audit",
            Command::Events(_) => "events",
            Command::Watch => "watch",
            Command::Info(_) => "info",
            Command::Config(_) => "config",
            Command::Kv(_) => "kv",
        }
    }

    /// Whether a `viewer` key may run it.
    pub fn is_read_only(&self) -> bool {
        match self {
            Command::Ps(_)
            | Command::Releases(_)
            | Command::Logs(_)
            | Command::Hosts
            | Command::Audit(_)
            | Command::Events(_)
            | Command::Watch
            | Command::Info(_) => true,
            Command::Config(c) => !c.changes(),
            Command::Kv(k) => !k.changes(),
            Command::Deploy(_)
            | Command::Rollback(_)
            | Command::Scale(_)
            | Command::Restart(_)
            | Command::Promote(_)
            | Command::Abort(_)
            | Command::Rm(_) => false,
        }
    }

    /// The app the command is about, if any.
    pub fn app(&self) -> Option<&str> {
        match self {
            Command::Deploy(a) => a.app.as_deref(),
            Command::Ps(a) => a.app.as_deref(),
            Command::Releases(a) => Some(&a.app),
            Command::Rollback(a) => Some(&a.app),
            Command::Scale(a) => Some(&a.app),
            Command::Restart(a) => Some(&a.app),
            Command::Promote(a) | Command::Abort(a) => Some(&a.app),
            Command::Logs(a) => Some(&a.app),
            Command::Rm(a) => Some(&a.app),
            Command::Info(i) => Some(&i.app),
            Command::Config(c) => Some(&c.app),
            Command::Kv(k) => Some(&k.app),
            Command::Hosts | Command::Audit(_) | Command::Events(_) | Command::Watch => None,
        }
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct DeployArgs {
    /// The app's name (a DNS label); optional with --manifest.
    pub app: Option<String>,
    /// The .wasm to deploy, or `-` for stdin.
    pub file: Option<String>,
    /// Read name, kind, replicas, env, limits and health from APP.toml; flags given too override it.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<String>,
    /// The kind of app (default: inferred from the artifact's exports; job
    /// with --schedule, message with --subscribe or --stream).
    #[arg(long)]
    pub kind: Option<AppKind>,
    /// Replicas wanted: instances kept running, or an http app's
    /// concurrent instances per host (default 1 for a new app; a redeploy
    /// keeps the app's count).
    #[arg(long, value_name = "N")]
    pub replicas: Option<u32>,
    /// Environment variable of every instance (repeatable). A deploy's env
    /// replaces the running release's whole env (what changed is said by
    /// name), unless --keep-env.
    #[arg(long, value_name = "K=V", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// Keep the running release's env and set --env over it, instead of
    /// replacing it.
    #[arg(long)]
    pub keep_env: bool,
    /// Cron schedule of a job, in UTC (5 fields, 6 with seconds, @hourly,
    /// @every 30s…). @every counts from the Unix epoch, not from the deploy:
    /// @every 1h runs at :00 of every hour.
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// Memory cap per instance, MiB (default 128, at most 4096).
    #[arg(long, value_name = "N")]
    pub memory_mb: Option<u64>,
    /// Deadline per request (http), per run (job) or per instance (worker),
    /// ms (default 30000 for http, 3600000 for a job, none for a worker).
    #[arg(long, value_name = "N")]
    pub timeout_ms: Option<u64>,
    /// Grace given to superseded instances before they are interrupted, ms
    /// (default 1000).
    #[arg(long, value_name = "N")]
    pub stop_grace_ms: Option<u64>,
    /// Placement label hosts must carry (repeatable).
    #[arg(long, value_name = "K=V", value_parser = parse_kv)]
    pub label: Vec<(String, String)>,
    /// http: path requested after the switch; a non-2xx rolls back.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// A rule over the app's metrics; true during the window rolls back.
    #[arg(long, value_name = "EXPR")]
    pub health_rule: Option<String>,
    /// How long after a switch health is checked, seconds (default 30).
    #[arg(long, value_name = "N")]
    pub health_window_s: Option<u64>,
    /// http: one `access` log record per request (default on).
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub access_log: Option<bool>,
    /// http: requests one instance serves before it is dropped (default 1,
    /// at most 100000). Above 1 globals survive between requests: only for
    /// code written for it.
    #[arg(long, value_name = "N")]
    pub reuse: Option<u32>,
    /// Network the app may reach: http://HOST:PORT, https://*.example.com, tcp://HOST:PORT (repeatable).
    #[arg(long, value_name = "URL")]
    pub allow_outbound: Vec<String>,
    /// wasi:keyvalue in a shared Redis (redis://…) instead of the host's SQLite store.
    #[arg(long, value_name = "URL")]
    pub keyvalue_url: Option<String>,
    /// Quota of the host's key-value store, MiB (default 64).
    #[arg(long, value_name = "N")]
    pub keyvalue_max_mb: Option<u64>,
    /// A wasi:keyvalue bucket besides `default` (repeatable).
    #[arg(long, value_name = "NAME")]
    pub keyvalue_bucket: Vec<String>,
    /// A wasi:config value (repeatable; secrets: `config set --secret`).
    #[arg(long, value_name = "K=V", value_parser = parse_kv)]
    pub config: Vec<(String, String)>,
    /// message apps: a Redis pub/sub channel, redis://HOST:PORT/CHANNEL (at most once).
    #[arg(long, value_name = "URL")]
    pub subscribe: Option<String>,
    /// message apps: a Redis stream, redis://HOST:PORT/STREAM, read by --group (at least once).
    #[arg(long, value_name = "URL")]
    pub stream: Option<String>,
    /// The stream's consumer group (created at the stream's start if absent).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Attempts before a stream message goes to STREAM:dead (default 5).
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Claim messages pending this long on a host that does not come back (default 30).
    #[arg(long, value_name = "S")]
    pub claim_idle_s: Option<u64>,
    /// Deploy as a canary: this share of requests (a worker's replicas, a
    /// message app's messages) goes to the new release, judged against the
    /// active one by the gate, --health-rule (default: canary.error_rate > 2 *
    /// stable.error_rate || canary.p99_ms > stable.p99_ms + 50; a worker's:
    /// canary.restarts > stable.restarts + 2).
    #[arg(long, value_name = "P%")]
    pub canary: Option<String>,
    /// Deploy as a canary on this many hosts first (through a gateway).
    #[arg(long, value_name = "N")]
    pub canary_hosts: Option<u32>,
    /// Shares after --canary, rising, comma-separated (10%,50%); 100% comes last.
    #[arg(long, value_name = "P%,P%", value_delimiter = ',')]
    pub canary_steps: Vec<String>,
    /// How long each canary step is held before the next, seconds (default 60).
    #[arg(long, value_name = "S")]
    pub canary_window_s: Option<u64>,
    /// http canaries: route by this request header's hash, so one user sees one release.
    #[arg(long, value_name = "HEADER")]
    pub canary_sticky: Option<String>,
}

impl DeployArgs {
    /// Fills every field the flags left empty from a manifest file, so that
    /// flags win over the file. Used where the file is read: on the client.
    pub fn overlay_manifest(&mut self, m: &Manifest) {
        self.app.get_or_insert_with(|| m.name.clone());
        self.kind = self.kind.or(Some(m.kind));
        self.replicas = self.replicas.or(m.replicas);
        if self.schedule.is_none() {
            self.schedule = m.schedule.clone();
        }
        // File entries first, so a flag for the same key comes later and wins.
        let mut env: Vec<(String, String)> = m.env.clone().into_iter().collect();
        env.append(&mut self.env);
        self.env = env;
        let mut labels: Vec<(String, String)> = m.labels.clone().into_iter().collect();
        labels.append(&mut self.label);
        self.label = labels;
        self.memory_mb = self.memory_mb.or(m.limits.memory_mb);
        self.timeout_ms = self.timeout_ms.or(m.limits.timeout_ms);
        self.stop_grace_ms = self.stop_grace_ms.or(m.limits.stop_grace_ms);
        if self.health_path.is_none() {
            self.health_path = m.health.path.clone();
        }
        if self.health_rule.is_none() {
            self.health_rule = m.health.rule.clone();
        }
        self.health_window_s = self.health_window_s.or(m.health.window_s);
        self.access_log = self.access_log.or(m.http.access_log);
        self.reuse = self.reuse.or(m.http.reuse);
        let mut outbound = m.allow.outbound.clone();
        outbound.append(&mut self.allow_outbound);
        self.allow_outbound = outbound;
        if self.keyvalue_url.is_none() {
            self.keyvalue_url = m.keyvalue.url.clone();
        }
        self.keyvalue_max_mb = self.keyvalue_max_mb.or(m.keyvalue.max_mb);
        let mut buckets = m.keyvalue.buckets.clone();
        buckets.append(&mut self.keyvalue_bucket);
        self.keyvalue_bucket = buckets;
        let mut config: Vec<(String, String)> = m
            .config
            .iter()
            .filter(|(_, v)| !v.secret)
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        config.append(&mut self.config);
        self.config = config;
        let t = &m.trigger;
        if self.subscribe.is_none() && self.stream.is_none() {
            self.subscribe = t.subscribe.clone();
            self.stream = t.stream.clone();
        }
        if self.group.is_none() {
            self.group = t.group.clone();
        }
        self.max_attempts = self.max_attempts.or(t.max_attempts);
        self.claim_idle_s = self.claim_idle_s.or(t.claim_idle_s);
        let c = &m.canary;
        if self.canary.is_none() && self.canary_hosts.is_none() && self.canary_steps.is_empty() {
            self.canary = c.share.clone();
            self.canary_hosts = c.hosts;
            self.canary_steps = c.steps.clone();
        }
        self.canary_window_s = self.canary_window_s.or(c.window_s);
        if self.canary_sticky.is_none() {
            self.canary_sticky = c.sticky.clone();
        }
        self.manifest = None;
    }

    /// Builds the release's manifest from the flags. `inferred` is the kind
    /// the artifact's exports suggest, used when `--kind` is absent.
    pub fn to_manifest(&self, inferred: AppKind) -> Result<Manifest, ManifestError> {
        let name = self.app.clone().ok_or_else(|| ManifestError::Field {
            field: "name".into(),
            message: "no app name: give APP or a manifest with `name`".into(),
        })?;
        let kind = self.kind.unwrap_or(if self.schedule.is_some() {
            AppKind::Job
        } else if self.subscribe.is_some() || self.stream.is_some() {
            AppKind::Message
        } else {
            inferred
        });
        let m = Manifest {
            name,
            kind,
            replicas: self.replicas,
            artifact: None,
            schedule: self.schedule.clone(),
            env: self.env.iter().cloned().collect(),
            labels: self.label.iter().cloned().collect(),
            limits: Limits {
                memory_mb: self.memory_mb,
                timeout_ms: self.timeout_ms,
                stop_grace_ms: self.stop_grace_ms,
            },
            health: Health {
                path: self.health_path.clone(),
                rule: self.health_rule.clone(),
                window_s: self.health_window_s,
            },
            http: crate::manifest::Http {
                access_log: self.access_log,
                reuse: self.reuse,
            },
            allow: crate::manifest::Allow {
                outbound: self.allow_outbound.clone(),
            },
            keyvalue: crate::manifest::KeyValue {
                url: self.keyvalue_url.clone(),
                max_mb: self.keyvalue_max_mb,
                buckets: {
                    let mut b = self.keyvalue_bucket.clone();
                    b.dedup();
                    b
                },
            },
            config: self
                .config
                .iter()
                .map(|(k, v)| (k.clone(), crate::manifest::ConfigValue::plain(v.clone())))
                .collect(),
            trigger: crate::manifest::Trigger {
                subscribe: self.subscribe.clone(),
                stream: self.stream.clone(),
                group: self.group.clone(),
                max_attempts: self.max_attempts,
                claim_idle_s: self.claim_idle_s,
            },
            canary: crate::canary::Canary {
                share: self.canary.clone(),
                hosts: self.canary_hosts,
                steps: self.canary_steps.clone(),
                window_s: self.canary_window_s,
                sticky: self.canary_sticky.clone(),
            },
        };
        m.validate()?;
        Ok(m)
    }

    /// The command line that says what these flags say, with `file` as the
    /// artifact argument: how a client forwards a deploy whose file (and
    /// manifest) it read itself.
    pub fn to_argv(&self, file: &str) -> Vec<String> {
        let d = DeployArgs {
            file: Some(file.to_string()),
            manifest: None,
            ..self.clone()
        };
        CommandLine {
            json: false,
            command: Command::Deploy(Box::new(d)),
        }
        .to_argv()
    }

    /// The flags of this deploy as words (`--manifest` aside). Every field
    /// of [`DeployArgs`] is here: a test round-trips a deploy with all of
    /// them set.
    fn flag_words(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut opt = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(format!("{flag}={v}"));
            }
        };
        opt("--kind", self.kind.map(|k| k.to_string()));
        opt("--replicas", self.replicas.map(|v| v.to_string()));
        opt("--schedule", self.schedule.clone());
        opt("--memory-mb", self.memory_mb.map(|v| v.to_string()));
        opt("--timeout-ms", self.timeout_ms.map(|v| v.to_string()));
        opt("--stop-grace-ms", self.stop_grace_ms.map(|v| v.to_string()));
        opt("--health-path", self.health_path.clone());
        opt(
            "--access-log",
            self.access_log
                .map(|on| if on { "on" } else { "off" }.to_string()),
        );
        opt("--reuse", self.reuse.map(|v| v.to_string()));
        opt("--canary", self.canary.clone());
        opt("--canary-hosts", self.canary_hosts.map(|v| v.to_string()));
        opt(
            "--canary-steps",
            (!self.canary_steps.is_empty()).then(|| self.canary_steps.join(",")),
        );
        opt(
            "--canary-window-s",
            self.canary_window_s.map(|v| v.to_string()),
        );
        opt("--canary-sticky", self.canary_sticky.clone());
        opt("--health-rule", self.health_rule.clone());
        opt(
            "--health-window-s",
            self.health_window_s.map(|v| v.to_string()),
        );
        for (k, v) in &self.env {
            a.push(format!("--env={k}={v}"));
        }
        if self.keep_env {
            a.push("--keep-env".to_string());
        }
        for (k, v) in &self.label {
            a.push(format!("--label={k}={v}"));
        }
        for g in &self.allow_outbound {
            a.push(format!("--allow-outbound={g}"));
        }
        opt_push(&mut a, "--keyvalue-url", self.keyvalue_url.clone());
        opt_push(
            &mut a,
            "--keyvalue-max-mb",
            self.keyvalue_max_mb.map(|v| v.to_string()),
        );
        for b in &self.keyvalue_bucket {
            a.push(format!("--keyvalue-bucket={b}"));
        }
        for (k, v) in &self.config {
            a.push(format!("--config={k}={v}"));
        }
        opt_push(&mut a, "--subscribe", self.subscribe.clone());
        opt_push(&mut a, "--stream", self.stream.clone());
        opt_push(&mut a, "--group", self.group.clone());
        opt_push(
            &mut a,
            "--max-attempts",
            self.max_attempts.map(|v| v.to_string()),
        );
        opt_push(
            &mut a,
            "--claim-idle-s",
            self.claim_idle_s.map(|v| v.to_string()),
        );
        a
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct PsArgs {
    /// Show this app's instances instead of all apps.
    pub app: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ReleasesArgs {
    /// The app whose releases to list.
    pub app: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RollbackArgs {
    /// The app to roll back.
    pub app: String,
    /// The release to make active (default: the newest healthy one before the active).
    #[arg(long, value_name = "vN")]
    pub to: Option<Version>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CanaryArgs {
    /// The app whose live canary ends.
    pub app: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RestartArgs {
    /// The app whose instances restart.
    pub app: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ScaleArgs {
    /// The app to scale.
    pub app: String,
    /// Replicas wanted (0 stops every instance and keeps the app).
    pub replicas: u32,
}

/// Records `logs APP` shows when neither `--tail` nor `--since` is given.
pub const DEFAULT_TAIL: u64 = 100;

/// Where `logs` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Records with a sequence number greater than this one.
    Seq(u64),
    /// Records no older than this.
    Ago(std::time::Duration),
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Since::Seq(n));
    }
    parse_duration(s)
        .map(Since::Ago)
        .map_err(|e: DurationError| format!("{e}, or a sequence number"))
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LogsArgs {
    /// The app whose records to show.
    pub app: String,
    /// Keep printing records as they arrive.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// A sequence number (records after it) or a duration (`5m`: records from the last five minutes).
    #[arg(long, value_name = "SEQ|DURATION", value_parser = parse_since)]
    pub since: Option<Since>,
    /// Only the last N records (default 100 unless --since is given).
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Only records matching the expression, e.g. `stream == "stderr"`.
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct InfoArgs {
    /// The app to describe.
    pub app: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RmArgs {
    /// The app to stop and forget.
    pub app: String,
    /// The app's name again: `rm` removes its releases, compiled code and
    /// logs from every host (to stop it and keep them: `scale APP 0`).
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct EventsArgs {
    /// Keep printing events as they happen.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The last N events first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub tail: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AuditArgs {
    /// Only the last N entries (the newest N, still oldest first).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub tail: u64,
}

/// `on` or `off` (also `true`/`false`, `yes`/`no`).
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not on or off")),
    }
}

/// A duration as `parse_duration` reads it back: whole seconds, then the
/// milliseconds left (`90s`, `1500ms` as `1s500ms`).
fn duration_words(d: std::time::Duration) -> String {
    match (d.as_secs(), d.subsec_millis()) {
        (s, 0) => format!("{s}s"),
        (0, ms) => format!("{ms}ms"),
        (s, ms) => format!("{s}s{ms}ms"),
    }
}

fn opt_push(a: &mut Vec<String>, flag: &str, v: Option<String>) {
    if let Some(v) = v {
        a.push(format!("{flag}={v}"));
    }
}
