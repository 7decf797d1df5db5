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
        }
    }

    /// Parses and validates `APP.toml` text.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            // toml's message already names the key ("unknown field `replica`").
            ManifestError::Toml(e.message().to_string() + &span_hint(text, e.span()))
        })?;
        m.validate()?;
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
        if let Some(rule) = &self.health.rule
            && let Err(e) = crate::expr::parse_rule(rule)
        {
            return Err(field("health.rule", e.to_string()));
        }
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
            AppKind::Http => Some(self.limits.timeout_ms.unwrap_or(DEFAULT_HTTP_TIMEOUT_MS)),
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
