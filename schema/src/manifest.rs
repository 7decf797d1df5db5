//! The app manifest: `APP.toml`, or the same fields given as `deploy` flags.
//!
//! ```toml
//! name = "api"
//! kind = "http"            # http | worker | job
//! replicas = 2
//! artifact = "api.wasm"    # relative to the manifest; for `deploy --manifest`
//! schedule = "*/5 * * * *" # jobs only
//!
//! [env]
//! GREETING = "hello"
//!
//! [labels]                 # placement: hosts must carry these labels
//! region = "eu"
//!
//! [limits]
//! memory_mb = 128
//! timeout_ms = 30000       # http: per request; job: per run; worker: per instance life
//! stop_grace_ms = 1000     # how long a superseded instance may finish its work
//!
//! [health]
//! path = "/healthz"        # http: requested after each switch
//! rule = "error_rate > 0.05"
//! window_s = 30
//!
//! [allow]                  # network the app may reach; none without it
//! outbound = ["https://api.example.com", "http://127.0.0.1:8080", "tcp://db.internal:5432"]
//!
//! [keyvalue]               # wasi:keyvalue: open("default") and these buckets
//! buckets = ["cache"]
//! max_mb = 64              # quota of the host's SQLite store (default 64)
//! url = "redis://10.0.0.5:6379/0"   # a shared Redis instead, for apps that span hosts
//!
//! [config]                 # wasi:config/store (secrets: `config set --secret`)
//! LOG_LEVEL = "info"
//! ```
//!
//! Every error names the field it is about, so an operator can fix the file
//! without reading code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cron::Schedule;
use crate::names::validate_app_name;
use crate::types::AppKind;

/// Most replicas one app may ask for.
pub const MAX_REPLICAS: u32 = 1000;
/// Most elements a table of an instance may have (the runtime reserves
/// this much per table; a module declaring more is refused at deploy).
pub const MAX_TABLE_ELEMENTS: u64 = 20_000;
/// Largest memory cap one instance may ask for.
pub const MAX_MEMORY_MB: u64 = 4096;
pub const DEFAULT_MEMORY_MB: u64 = 128;
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_JOB_TIMEOUT_MS: u64 = 3_600_000;
pub const DEFAULT_STOP_GRACE_MS: u64 = 1_000;
pub const DEFAULT_HEALTH_WINDOW_S: u64 = 30;
/// Longest deadline of a request, a run or an instance: a day.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Longest a superseded instance may go on: five minutes (a daemon's
/// SIGTERM waits no longer than this for its apps).
pub const MAX_STOP_GRACE_MS: u64 = 300_000;
/// Longest health window: a day.
pub const MAX_HEALTH_WINDOW_S: u64 = 86_400;
/// Largest key-value quota of one app on a host, MiB.
pub const MAX_KV_MB: u64 = 16_384;
pub const DEFAULT_KV_MB: u64 = 64;
/// Most named buckets besides `default`.
pub const MAX_BUCKETS: usize = 32;
/// Most config entries, and their total size (keys and values).
pub const MAX_CONFIG_ENTRIES: usize = 256;
pub const MAX_CONFIG_BYTES: usize = 256 << 10;
/// Most environment variables, and their total size (names and values).
pub const MAX_ENV_VARS: usize = 256;
pub const MAX_ENV_BYTES: usize = 64 << 10;

/// A manifest that was refused, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid TOML: {0}")]
    Toml(String),
    #[error("manifest field `{field}`: {message}")]
    Field { field: String, message: String },
}

fn field(field: &str, message: impl Into<String>) -> ManifestError {
    ManifestError::Field {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Resource limits of every instance of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap per instance, MiB.
    pub memory_mb: Option<u64>,
    /// Wall-clock deadline, ms: per request (http), per run (job), per instance (worker; none by default).
    pub timeout_ms: Option<u64>,
    /// Grace a superseded instance gets before it is interrupted, ms.
    pub stop_grace_ms: Option<u64>,
}

/// When a release counts as unhealthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// http: a path requested after each switch; non-2xx rolls back.
    pub path: Option<String>,
    /// A rule over the app's metrics; true rolls back.
    pub rule: Option<String>,
    /// How long after a switch the checks run, seconds.
    pub window_s: Option<u64>,
}

/// Where a message app's messages come from (`[trigger]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `redis://HOST:PORT/CHANNEL`: Redis pub/sub, at most once (as Spin's
    /// Redis trigger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<String>,
    /// `redis://HOST:PORT/STREAM`: a Redis Streams consumer group, at least
    /// once (acknowledged only after the handler succeeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The consumer group of `stream` (created at the stream's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Attempts before a stream message goes to `STREAM:dead` (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Pending messages idle this long are claimed from a host that does
    /// not come back (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_idle_s: Option<u64>,
}

/// Default attempts of a stream message, and their ceiling.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const MAX_MAX_ATTEMPTS: u32 = 100;
pub const DEFAULT_CLAIM_IDLE_S: u64 = 30;

/// A trigger's source, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Stream (consumer group) or channel (pub/sub).
    pub stream: bool,
    /// `redis://HOST:PORT` (with any user and password).
    pub server: String,
    /// The channel or stream name.
    pub name: String,
}

impl Trigger {
    pub fn is_empty(&self) -> bool {
        *self == Trigger::default()
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    pub fn claim_idle_s(&self) -> u64 {
        self.claim_idle_s.unwrap_or(DEFAULT_CLAIM_IDLE_S)
    }

    /// The source, checked.
    pub fn source(&self) -> Result<Source, ManifestError> {
        let (url, stream, f) = match (&self.subscribe, &self.stream) {
            (Some(u), None) => (u, false, "trigger.subscribe"),
            (None, Some(u)) => (u, true, "trigger.stream"),
            (Some(_), Some(_)) => {
                return Err(field(
                    "trigger",
                    "give subscribe (pub/sub) or stream (consumer group), not both",
                ));
            }
            (None, None) => {
                return Err(field(
                    "trigger",
                    "a message app needs --subscribe redis://HOST:PORT/CHANNEL or --stream redis://HOST:PORT/STREAM --group GROUP",
                ));
            }
        };
        let shown = crate::render::clean(&url.chars().take(80).collect::<String>()).into_owned();
        let scheme_end = url
            .find("://")
            .filter(|_| url.starts_with("redis://") || url.starts_with("rediss://"))
            .ok_or_else(|| field(f, format!("{shown:?} is not a redis:// or rediss:// URL")))?;
        let (server, name) = url[scheme_end + 3..]
            .split_once('/')
            .map(|(h, n)| (format!("{}{h}", &url[..scheme_end + 3]), n.to_string()))
            .ok_or_else(|| {
                field(
                    f,
                    format!(
                        "{shown:?} names no {}: redis://HOST:PORT/NAME",
                        if stream { "stream" } else { "channel" }
                    ),
                )
            })?;
        let ok_name = !name.is_empty()
            && name.len() <= 256
            && !name.contains('/')
            && name
                .chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && c != '*' && c != '?' && c != '[');
        if !ok_name {
            return Err(field(
                f,
                format!(
                    "{:?} is not a {} name: 1-256 characters, no spaces, slashes, control characters or pattern characters (* ? [)",
                    crate::render::clean(&name),
                    if stream { "stream" } else { "channel" }
                ),
            ));
        }
        validate_redis_url(&server).map_err(|e| field(f, e))?;
        if stream && self.group.is_none() {
            return Err(field(
                "trigger.group",
                "a stream trigger needs --group GROUP",
            ));
        }
        if !stream && self.group.is_some() {
            return Err(field(
                "trigger.group",
                "a group goes with --stream, not --subscribe",
            ));
        }
        if let Some(g) = &self.group {
            let ok = !g.is_empty()
                && g.len() <= 128
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
            if !ok {
                return Err(field(
                    "trigger.group",
                    "a group name is 1-128 letters, digits, '-', '_', '.' or ':'",
                ));
            }
        }
        if let Some(n) = self.max_attempts
            && (n == 0 || n > MAX_MAX_ATTEMPTS)
        {
            return Err(field(
                "trigger.max_attempts",
                format!("{n} is outside 1..={MAX_MAX_ATTEMPTS}"),
            ));
        }
        if let Some(n) = self.claim_idle_s
            && (n == 0 || n > 86_400)
        {
            return Err(field(
                "trigger.claim_idle_s",
                format!("{n} is outside 1..=86400"),
            ));
        }
        Ok(Source {
            stream,
            server,
            name,
        })
    }
}

/// What network the app may reach (see `crate::grant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    #[serde(default)]
    pub outbound: Vec<String>,
}

impl Allow {
    pub fn is_empty(&self) -> bool {
        self.outbound.is_empty()
    }
}

/// Where the app's `wasi:keyvalue` buckets live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    /// `redis://…` (or `rediss://…`): a shared server; absent: the host's
    /// own SQLite store (or the gateway's fleet-wide default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Quota of the host's SQLite store, MiB (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mb: Option<u64>,
    /// Buckets besides `default` that `open` may name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
}

impl KeyValue {
    pub fn is_default(&self) -> bool {
        *self == KeyValue::default()
    }

    /// The quota in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_mb.unwrap_or(DEFAULT_KV_MB) << 20
    }

    /// Whether `open(name)` names one of the app's buckets (`""` is the
    /// default bucket too, as `wasmtime serve -S keyvalue` has it).
    pub fn has_bucket(&self, name: &str) -> bool {
        name.is_empty() || name == "default" || self.buckets.iter().any(|b| b == name)
    }

    /// The bucket's name in storage (`""` is `default`).
    pub fn bucket_name(name: &str) -> &str {
        if name.is_empty() { "default" } else { name }
    }
}

/// One value an app reads through `wasi:config/store`. A secret's value is
/// sealed at rest (`sealed:v1:…`, see `cranefleet-db`'s `secrets`) and is
/// never printed: not by `Debug`, `config`, `info`, `releases` or a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ConfigRepr")]
pub struct ConfigValue {
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

impl ConfigValue {
    pub fn plain(value: impl Into<String>) -> ConfigValue {
        ConfigValue {
            value: value.into(),
            secret: false,
        }
    }

    /// What may be shown of it: the value, or `(secret)`.
    pub fn shown(&self) -> &str {
        if self.secret { "(secret)" } else { &self.value }
    }
}

impl std::fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.shown())
    }
}

/// A manifest file writes `KEY = "value"`; stored releases write
/// `{ value, secret }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigRepr {
    Plain(String),
    Entry {
        value: String,
        #[serde(default)]
        secret: bool,
    },
}

impl From<ConfigRepr> for ConfigValue {
    fn from(r: ConfigRepr) -> ConfigValue {
        match r {
            ConfigRepr::Plain(value) => ConfigValue::plain(value),
            ConfigRepr::Entry { value, secret } => ConfigValue { value, secret },
        }
    }
}

/// Everything a release needs besides its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub kind: AppKind,
    /// Replicas wanted (default 1). Absent means "keep what the app has" on a redeploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Path of the .wasm, relative to the manifest file (only `deploy --manifest` reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub health: Health,
    #[serde(default, skip_serializing_if = "Allow::is_empty")]
    pub allow: Allow,
    #[serde(default, skip_serializing_if = "KeyValue::is_default")]
    pub keyvalue: KeyValue,
    /// What `wasi:config/store` answers. Set by `config set` (a new
    /// release, same code) and carried to every later release.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, ConfigValue>,
    /// message apps: where messages come from.
    #[serde(default, skip_serializing_if = "Trigger::is_empty")]
    pub trigger: Trigger,
    /// http apps: how requests are served and recorded (`[http]`).
    #[serde(default, skip_serializing_if = "Http::is_default")]
    pub http: Http,
    /// Deploy this release as a canary of the active one (`[canary]`).
    #[serde(default, skip_serializing_if = "crate::canary::Canary::is_empty")]
    pub canary: crate::canary::Canary,
}

/// `[http]`: how an http app's requests are served and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// One `access` record per request (method, path, status, latency_ms,
    /// bytes); default on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<bool>,
    /// Requests one instance serves, one after another, before it is
    /// dropped (default 1: a fresh instance per request). Above 1 the
    /// guest's globals and memory survive from one request to the next,
    /// as in a warm Lambda: opt in only for code written for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<u32>,
}

/// Most requests one instance may serve before it is dropped.
pub const MAX_REUSE: u32 = 100_000;

impl Http {
    pub fn is_default(&self) -> bool {
        self == &Http::default()
    }

    pub fn access_log(&self) -> bool {
        self.access_log.unwrap_or(true)
    }

    /// Requests per instance: 1 unless reuse was asked for.
    pub fn reuse(&self) -> u32 {
        self.reuse.unwrap_or(1).max(1)
    }
}

impl Manifest {
    /// A manifest with defaults for everything but name and kind.
    pub fn new(name: impl Into<String>, kind: AppKind) -> Manifest {
        Manifest {
            name: name.into(),
            kind,
            replicas: None,
            artifact: None,
            schedule: None,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            limits: Limits::default(),
            health: Health::default(),
            allow: Allow::default(),
            keyvalue: KeyValue::default(),
            config: BTreeMap::new(),
            trigger: Trigger::default(),
            http: Http::default(),
            canary: crate::canary::Canary::default(),
        }
    }

    /// Parses and validates `APP.toml` text.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            // toml's message already names the key ("unknown field `replica`").
            ManifestError::Toml(e.message().to_string() + &span_hint(text, e.span()))
        })?;
        m.validate()?;
        if let Some(k) = m.config.iter().find(|(_, v)| v.secret).map(|(k, _)| k) {
            return Err(field(
                &format!("config.{k}"),
                format!(
                    "a manifest file holds no secrets: set it with `config set {} {k}=… --secret` (sealed at rest, never printed)",
                    m.name
                ),
            ));
        }
        Ok(m)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every rule a manifest must meet; the error names the field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        validate_app_name(&self.name).map_err(|e| field("name", e.to_string()))?;
        if self.replicas() > MAX_REPLICAS {
            return Err(field(
                "replicas",
                format!(
                    "{} is more than the limit of {MAX_REPLICAS}",
                    self.replicas()
                ),
            ));
        }
        match (self.kind, &self.schedule) {
            (AppKind::Job, None) => {
                return Err(field(
                    "schedule",
                    "a job needs a cron schedule, e.g. \"*/5 * * * *\" (or \"*/10 * * * * *\" with seconds)",
                ));
            }
            (AppKind::Job, Some(s)) => {
                Schedule::parse(s).map_err(|e| field("schedule", e.to_string()))?;
                if self.replicas() > 1 {
                    return Err(field(
                        "replicas",
                        "a job runs one at a time; use 0 (paused) or 1",
                    ));
                }
            }
            (kind, Some(_)) => {
                return Err(field(
                    "schedule",
                    format!("only jobs have a schedule; this app is kind {kind}"),
                ));
            }
            (_, None) => {}
        }
        validate_env(&self.env)?;
        for (k, v) in &self.labels {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 63
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            if !ok(k) || !ok(v) {
                return Err(field(
                    &format!("labels.{k}"),
                    "labels are 1-63 letters, digits, '-', '_' or '.'",
                ));
            }
        }
        self.validate_limits()?;
        self.validate_capabilities()?;
        match self.kind {
            AppKind::Message => {
                self.trigger.source()?;
            }
            kind if !self.trigger.is_empty() => {
                return Err(field(
                    "trigger",
                    format!("only message apps have a trigger; this app is kind {kind}"),
                ));
            }
            _ => {}
        }
        if let Some(p) = &self.health.path {
            if self.kind != AppKind::Http {
                return Err(field(
                    "health.path",
                    format!(
                        "only http apps answer a health path; this app is kind {}",
                        self.kind
                    ),
                ));
            }
            if !p.starts_with('/') {
                return Err(field("health.path", format!("{p:?} must start with '/'")));
            }
        }
        if let Some(rule) = &self.health.rule {
            let r =
                crate::expr::parse_rule(rule).map_err(|e| field("health.rule", e.to_string()))?;
            if r.is_gate() && self.canary.is_empty() {
                return Err(field(
                    "health.rule",
                    "`canary.` and `stable.` metrics compare the two releases of a canary: deploy with --canary P% (or drop the prefixes)",
                ));
            }
        }
        self.validate_canary()?;
        Ok(())
    }

    /// Grants that parse, a key-value store that can be used, config
    /// within its bounds.
    fn validate_capabilities(&self) -> Result<(), ManifestError> {
        crate::grant::parse_all(&self.allow.outbound)
            .map_err(|e| field("allow.outbound", e.to_string()))?;
        let kv = &self.keyvalue;
        if let Some(mb) = kv.max_mb
            && (mb == 0 || mb > MAX_KV_MB)
        {
            return Err(field(
                "keyvalue.max_mb",
                if mb == 0 {
                    "a quota of 0 would refuse every write; leave it out for the default of 64 MiB"
                        .to_string()
                } else {
                    format!("{mb} is outside 1..={MAX_KV_MB}")
                },
            ));
        }
        if let Some(url) = &kv.url {
            validate_redis_url(url).map_err(|e| field("keyvalue.url", e))?;
        }
        if kv.buckets.len() > MAX_BUCKETS {
            return Err(field(
                "keyvalue.buckets",
                format!("{} buckets; at most {MAX_BUCKETS}", kv.buckets.len()),
            ));
        }
        for b in &kv.buckets {
            let ok = !b.is_empty()
                && b.len() <= 63
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
            if !ok || b == "default" {
                return Err(field(
                    "keyvalue.buckets",
                    format!(
                        "{:?}: bucket names are 1-63 letters, digits, '-', '_' or '.' (and `default` is always there)",
                        crate::render::clean(b)
                    ),
                ));
            }
        }
        validate_config(&self.config)
    }

    /// A canary's plan, if the release asks for one: its shares, window
    /// and gate (the health rule, or the default gate).
    pub fn canary_plan(&self) -> Result<Option<crate::canary::Plan>, ManifestError> {
        self.canary
            .plan(self.health.rule.as_deref(), self.kind == AppKind::Worker)
            .map_err(|e| field(&e.field, e.message))
    }

    fn validate_canary(&self) -> Result<(), ManifestError> {
        let Some(plan) = self.canary_plan()? else {
            return Ok(());
        };
        if self.kind == AppKind::Job {
            return Err(field(
                "canary",
                "a job runs one at a time: there is nothing to share with a canary; deploy it plainly (a failed run is in `ps` and the logs)",
            ));
        }
        if plan.sticky.is_some() && self.kind != AppKind::Http {
            return Err(field(
                "canary.sticky",
                format!(
                    "--canary-sticky routes http requests by a header; this app is kind {}",
                    self.kind
                ),
            ));
        }
        if plan.sticky.is_some() && plan.hosts.is_some() {
            return Err(field(
                "canary.sticky",
                "--canary-sticky splits requests by a share; --canary-hosts moves whole hosts",
            ));
        }
        crate::expr::parse_rule(&plan.gate).map_err(|e| field("health.rule", e.to_string()))?;
        Ok(())
    }

    /// Every limit within its ceiling.
    fn validate_limits(&self) -> Result<(), ManifestError> {
        if let Some(mb) = self.limits.memory_mb
            && (mb == 0 || mb > MAX_MEMORY_MB)
        {
            return Err(field(
                "limits.memory_mb",
                format!("{mb} is outside 1..={MAX_MEMORY_MB}"),
            ));
        }
        let within = |f: &str, v: Option<u64>, lo: u64, hi: u64| match v {
            Some(v) if v < lo || v > hi => Err(field(f, format!("{v} is outside {lo}..={hi}"))),
            _ => Ok(()),
        };
        within(
            "limits.timeout_ms",
            self.limits.timeout_ms,
            1,
            MAX_TIMEOUT_MS,
        )?;
        within(
            "limits.stop_grace_ms",
            self.limits.stop_grace_ms,
            0,
            MAX_STOP_GRACE_MS,
        )?;
        within(
            "health.window_s",
            self.health.window_s,
            1,
            MAX_HEALTH_WINDOW_S,
        )?;
        within(
            "http.reuse",
            self.http.reuse.map(u64::from),
            1,
            u64::from(MAX_REUSE),
        )?;
        if self.http.reuse.is_some() && self.kind != AppKind::Http {
            return Err(field(
                "http.reuse",
                format!(
                    "only http apps serve requests; this app is kind {}",
                    self.kind
                ),
            ));
        }
        Ok(())
    }

    /// Replicas wanted: the manifest's, or 1.
    pub fn replicas(&self) -> u32 {
        self.replicas.unwrap_or(1)
    }

    pub fn memory_bytes(&self) -> u64 {
        self.limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB) * 1024 * 1024
    }

    /// The deadline that applies to this kind, if any.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self.kind {
            AppKind::Http | AppKind::Message => {
                Some(self.limits.timeout_ms.unwrap_or(DEFAULT_HTTP_TIMEOUT_MS))
            }
            AppKind::Job => Some(self.limits.timeout_ms.unwrap_or(DEFAULT_JOB_TIMEOUT_MS)),
            AppKind::Worker => self.limits.timeout_ms,
        }
    }

    pub fn stop_grace_ms(&self) -> u64 {
        self.limits.stop_grace_ms.unwrap_or(DEFAULT_STOP_GRACE_MS)
    }

    pub fn health_window_s(&self) -> u64 {
        self.health.window_s.unwrap_or(DEFAULT_HEALTH_WINDOW_S)
    }
}

/// " at line L, column C" for a byte span of `text`.
fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    format!(" (at line {line}, column {col})")
}

/// The rules for an app's environment: names of letters, digits and `_`
/// (not starting with a digit), and at most [`MAX_ENV_VARS`] variables of
/// [`MAX_ENV_BYTES`] in all. Checked where a deploy is typed as well, so an
/// oversized `--env` is refused with its reason before it travels.
/// A Redis URL the key-value store can use: `redis://` or `rediss://`,
/// with a host.
pub fn validate_redis_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or_else(|| {
            format!(
                "{:?} is not a redis:// or rediss:// URL",
                crate::render::clean(&url.chars().take(80).collect::<String>())
            )
        })?;
    let host = rest.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with('/') || url.len() > 1024 {
        return Err("a Redis URL names a host, as in redis://127.0.0.1:6379/0".into());
    }
    Ok(())
}

/// Config keys are letters, digits, `_`, `-` and `.`; bounded in number and size.
pub fn validate_config(config: &BTreeMap<String, ConfigValue>) -> Result<(), ManifestError> {
    for k in config.keys() {
        let ok = !k.is_empty()
            && k.len() <= 128
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok {
            return Err(field(
                &format!("config.{}", crate::render::clean(k)),
                "config keys are 1-128 letters, digits, '_', '-' or '.'",
            ));
        }
    }
    let bytes: usize = config.iter().map(|(k, v)| k.len() + v.value.len()).sum();
    if config.len() > MAX_CONFIG_ENTRIES || bytes > MAX_CONFIG_BYTES {
        return Err(field(
            "config",
            format!(
                "{} entries of {bytes} bytes; at most {MAX_CONFIG_ENTRIES} entries of {} KiB in all",
                config.len(),
                MAX_CONFIG_BYTES >> 10
            ),
        ));
    }
    Ok(())
}

pub fn validate_env(env: &BTreeMap<String, String>) -> Result<(), ManifestError> {
    for k in env.keys() {
        let ok = !k.is_empty()
            && !k.as_bytes()[0].is_ascii_digit()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(field(
                &format!("env.{k}"),
                "environment variable names are letters, digits and '_', not starting with a digit",
            ));
        }
    }
    let env_bytes: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if env.len() > MAX_ENV_VARS || env_bytes > MAX_ENV_BYTES {
        return Err(field(
            "env",
            format!(
                "{} variables of {env_bytes} bytes; at most {MAX_ENV_VARS} variables of {} KiB in all (keep secrets and big values in a file or wasi:config)",
                env.len(),
                MAX_ENV_BYTES >> 10
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_buckets_have_ceilings() {
        let mut m = Manifest::new("api", AppKind::Http);
        for i in 0..=MAX_CONFIG_ENTRIES {
            m.config.insert(format!("K{i}"), ConfigValue::plain("v"));
        }
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("at most 256 entries"), "{e}");
        let mut m = Manifest::new("api", AppKind::Http);
        m.config.insert(
            "BIG".into(),
            ConfigValue::plain("x".repeat(MAX_CONFIG_BYTES)),
        );
        assert!(m.validate().is_err());
        let mut m = Manifest::new("api", AppKind::Http);
        m.keyvalue.buckets = (0..=MAX_BUCKETS).map(|i| format!("b{i}")).collect();
        assert!(m.validate().unwrap_err().to_string().contains("at most 32"));
        let mut m = Manifest::new("api", AppKind::Http);
        m.config.insert("bad key".into(), ConfigValue::plain("v"));
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("config keys are")
        );
    }

    #[test]
    fn a_full_manifest_parses() {
        let m = Manifest::from_toml(
            r#"
name = "api"
kind = "http"
replicas = 2
artifact = "api.wasm"
[env]
GREETING = "hi"
[labels]
region = "eu-1"
[limits]
memory_mb = 64
timeout_ms = 500
[health]
path = "/healthz"
window_s = 10
"#,
        )
        .unwrap();
        assert_eq!(m.kind, AppKind::Http);
        assert_eq!(m.replicas, Some(2));
        assert_eq!(m.env["GREETING"], "hi");
        assert_eq!(m.memory_bytes(), 64 << 20);
        assert_eq!(m.timeout_ms(), Some(500));
        let again = Manifest::from_toml(&m.to_toml()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn defaults_fill_what_is_missing() {
        let m = Manifest::from_toml("name = \"w\"\nkind = \"worker\"\n").unwrap();
        assert_eq!(m.replicas(), 1);
        assert_eq!(m.memory_bytes(), DEFAULT_MEMORY_MB << 20);
        assert_eq!(m.timeout_ms(), None);
    }

    fn err(text: &str) -> String {
        Manifest::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("name = \"w\"\nkind = \"worker\"\nreplica = 2\n").contains("replica"));
        assert!(err("name = \"w\"\nkind = \"blob\"\n").contains("blob"));
        assert!(err("name = \"W\"\nkind = \"worker\"\n").contains("`name`"));
        assert!(err("name = \"j\"\nkind = \"job\"\n").contains("`schedule`"));
        assert!(
            err("name = \"j\"\nkind = \"job\"\nschedule = \"61 * * * *\"\n").contains("`schedule`")
        );
        assert!(
            err("name = \"w\"\nkind = \"worker\"\nschedule = \"* * * * *\"\n")
                .contains("only jobs")
        );
        assert!(
            err("name = \"w\"\nkind = \"worker\"\n[limits]\nmemory_mb = 0\n")
                .contains("`limits.memory_mb`")
        );
        assert!(
            err("name = \"w\"\nkind = \"worker\"\n[env]\n\"1X\" = \"a\"\n").contains("`env.1X`")
        );
        assert!(
            err("name = \"w\"\nkind = \"worker\"\n[health]\npath = \"/h\"\n")
                .contains("`health.path`")
        );
        assert!(err("name = \"w\"\nkind = \"worker\"\nreplicas = -1\n").contains("line 3"));
    }
}
