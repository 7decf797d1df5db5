//! Canary releases: a new release takes a share of an app's traffic next to
//! the active (stable) one, step by step, judged by a gate rule that
//! compares the two; it is promoted when every step passes and aborted
//! (marked `failed`) the moment the gate trips.
//!
//! A deploy's `[canary]` (or `--canary P%`, `--canary-hosts N`,
//! `--canary-steps P%,P%`, `--canary-window-s S`, `--canary-sticky HEADER`)
//! becomes a [`Plan`]; where a canary stands is a [`Progress`], kept in the
//! database of whoever drives it (the host alone, or the gateway), so a
//! restart resumes it without ever promoting by accident.

use serde::{Deserialize, Serialize};

/// How long each step is held unless told (`--canary-window-s`).
pub const DEFAULT_WINDOW_S: u64 = 60;
/// The longest a step may be held.
pub const MAX_WINDOW_S: u64 = 86_400;
/// The most steps a canary may have.
pub const MAX_STEPS: usize = 10;
/// The gate when the deploy gives no health rule (also
/// `schema::expr::DEFAULT_GATE`).
pub const DEFAULT_GATE: &str =
    "canary.error_rate > 2 * stable.error_rate || canary.p99_ms > stable.p99_ms + 50";
/// A worker's gate when the deploy gives none: workers serve no requests,
/// their instances' exits are what tells a bad release.
pub const DEFAULT_WORKER_GATE: &str = "canary.restarts > stable.restarts + 2";

/// `[canary]` of a manifest: what the flags say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// The first share of traffic (http) or replicas (worker, message), `10%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// The new release on this many hosts first (through a gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<u32>,
    /// Shares after the first, rising (`["50%"]`); 100 % comes last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// How long each step is held, seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u64>,
    /// http: route by this request header's hash, so one user sees one release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<String>,
}

impl Canary {
    pub fn is_empty(&self) -> bool {
        self == &Canary::default()
    }
}

/// A canary's plan, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Percent of traffic (or replicas) at each step, rising, each 1..=99;
    /// after the last, promotion. With `hosts`, a single step of 100.
    pub steps: Vec<u8>,
    pub window_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<String>,
    /// The gate rule's source.
    pub gate: String,
    /// The new release on this many hosts first, instead of a share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<u32>,
}

/// A `[canary]` that cannot run: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest field `{field}`: {message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

fn field(f: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        field: format!("canary.{f}"),
        message: message.into(),
    }
}

/// `10%` or `10` as a percent of 1..=99.
pub fn parse_share(s: &str) -> Result<u8, String> {
    let t = s.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    let v: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a share: give a percent such as 10%"))?;
    if !(1.0..=99.0).contains(&v) || v.fract() != 0.0 {
        return Err(format!(
            "a canary share is a whole percent from 1% to 99%, not {s}: 0% would send it nothing, and 100% is a plain deploy"
        ));
    }
    Ok(v as u8)
}

impl Canary {
    /// The plan, if this asks for a canary; `gate` is the deploy's health
    /// rule, if any (else [`DEFAULT_GATE`], or [`DEFAULT_WORKER_GATE`] for
    /// a worker).
    pub fn plan(&self, gate: Option<&str>, worker: bool) -> Result<Option<Plan>, PlanError> {
        if self.share.is_none() && self.hosts.is_none() && self.steps.is_empty() {
            if self.window_s.is_some() || self.sticky.is_some() {
                return Err(field(
                    "share",
                    "--canary-window-s and --canary-sticky need a canary: add --canary P% or --canary-hosts N",
                ));
            }
            return Ok(None);
        }
        let window_s = self.window_s.unwrap_or(DEFAULT_WINDOW_S);
        if window_s == 0 || window_s > MAX_WINDOW_S {
            return Err(field(
                "window_s",
                format!("{window_s} is outside 1..={MAX_WINDOW_S}"),
            ));
        }
        let mut steps = Vec::new();
        if let Some(s) = &self.share {
            steps.push(parse_share(s).map_err(|e| field("share", e))?);
        }
        for s in &self.steps {
            steps.push(parse_share(s).map_err(|e| field("steps", e))?);
        }
        for w in steps.windows(2) {
            if w[1] <= w[0] {
                return Err(field(
                    "steps",
                    format!(
                        "steps must rise: {}% comes after {}% (100% comes last by itself)",
                        w[1], w[0]
                    ),
                ));
            }
        }
        if steps.len() > MAX_STEPS {
            return Err(field(
                "steps",
                format!("{} steps; at most {MAX_STEPS}", steps.len()),
            ));
        }
        if let Some(n) = self.hosts {
            if self.share.is_some() || !self.steps.is_empty() {
                return Err(field(
                    "hosts",
                    "give either --canary P% (with --canary-steps) or --canary-hosts N, not both",
                ));
            }
            if n == 0 {
                return Err(field("hosts", "a canary on 0 hosts would run nowhere"));
            }
            steps = vec![100];
        }
        if let Some(h) = &self.sticky {
            let ok = !h.is_empty()
                && h.len() <= 64
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !ok {
                return Err(field(
                    "sticky",
                    format!("{h:?} is not a header name (letters, digits, '-', '_')"),
                ));
            }
        }
        Ok(Some(Plan {
            steps,
            window_s,
            sticky: self.sticky.as_ref().map(|h| h.to_ascii_lowercase()),
            gate: gate
                .unwrap_or(if worker {
                    DEFAULT_WORKER_GATE
                } else {
                    DEFAULT_GATE
                })
                .to_string(),
            hosts: self.hosts,
        }))
    }
}

/// Where a live canary stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub app: String,
    /// The canary release.
    pub version: crate::Version,
    /// The release it is judged against (active everywhere else).
    pub stable: crate::Version,
    pub plan: Plan,
    /// Index into `plan.steps` of the step now held.
    pub step: usize,
    /// When the step began (ms since the epoch); a resumed canary starts
    /// its step's window again.
    pub step_started_ms: i64,
    /// Who deployed it.
    pub by: String,
    /// Hosts running the canary with `--canary-hosts` (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl Progress {
    /// The share now, percent.
    pub fn share(&self) -> u8 {
        self.plan.steps.get(self.step).copied().unwrap_or(100)
    }
}

/// What `ps` shows of a live canary (and `deploy --canary` answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: crate::Version,
    pub stable: crate::Version,
    /// 1-based step now held, of `steps`.
    pub step: usize,
    pub steps: usize,
    /// Percent of traffic on the canary now.
    pub share: u8,
    /// Seconds until this step's window ends.
    pub left_s: u64,
    pub gate: String,
    /// The gate's inputs since the step began, each release side by side.
    pub canary_stats: Gauge,
    pub stable_stats: Gauge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// One release's requests, error rate and p99 over a canary's step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Gauge {
    pub requests: u64,
    pub errors: u64,
    /// `None` without requests.
    pub error_rate: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Gauge {
    /// `1204 req, 0.2% err, p99 4.1 ms`.
    pub fn summary(&self) -> String {
        let pct = |x: Option<f64>| {
            x.map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "-".into())
        };
        let ms = |x: Option<f64>| {
            x.map(|r| format!("{r:.1} ms"))
                .unwrap_or_else(|| "-".into())
        };
        format!(
            "{} req, {} err, p99 {}",
            self.requests,
            pct(self.error_rate),
            ms(self.p99_ms)
        )
    }

    /// Adds another host's figures (p99: the worst).
    pub fn merge(&mut self, o: &Gauge) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.error_rate = if self.requests > 0 {
            Some(self.errors as f64 / self.requests as f64)
        } else {
            None
        };
        self.p99_ms = match (self.p99_ms, o.p99_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Status {
    /// `canary v3 at 10% (step 1 of 2, 42 s left): v3 1204 req, 0.2% err, p99 4.1 ms | v2 …`.
    pub fn summary(&self) -> String {
        let at = match self.hosts.len() {
            0 => format!("{}%", self.share),
            n => format!("{n} host{}", if n == 1 { "" } else { "s" }),
        };
        format!(
            "canary {} at {at} (step {} of {}, {} s left): {} {} | {} {}",
            self.version,
            self.step,
            self.steps,
            self.left_s,
            self.version,
            self.canary_stats.summary(),
            self.stable,
            self.stable_stats.summary()
        )
    }
}

/// What `promote` and `abort` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub app: String,
    /// The canary release.
    pub version: crate::Version,
    /// The release it ran next to.
    pub stable: crate::Version,
    /// `promoted` (the canary is active everywhere) or `aborted` (it is
    /// `failed`, the stable release serves alone).
    pub action: String,
    pub hosts: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(share: Option<&str>, steps: &[&str]) -> Canary {
        Canary {
            share: share.map(str::to_string),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            ..Canary::default()
        }
    }

    #[test]
    fn plans_and_refusals() {
        let p = c(Some("10%"), &["50%"]).plan(None, false).unwrap().unwrap();
        assert_eq!(p.steps, vec![10, 50]);
        assert_eq!(p.window_s, DEFAULT_WINDOW_S);
        assert_eq!(p.gate, DEFAULT_GATE);
        assert_eq!(
            c(None, &["10%", "50"])
                .plan(None, false)
                .unwrap()
                .unwrap()
                .steps,
            vec![10, 50]
        );
        assert!(c(None, &[]).plan(None, false).unwrap().is_none());
        for (share, steps, says) in [
            (Some("0%"), &[][..], "from 1% to 99%"),
            (Some("150%"), &[], "from 1% to 99%"),
            (Some("100%"), &[], "100% is a plain deploy"),
            (Some("ten"), &[], "not a share"),
            (Some("10%"), &["5%"], "steps must rise: 5% comes after 10%"),
            (Some("10%"), &["10%"], "steps must rise"),
        ] {
            let e = c(share, steps).plan(None, false).unwrap_err().to_string();
            assert!(e.contains(says), "{share:?} {steps:?}: {e}");
        }
        let both = Canary {
            share: Some("10%".into()),
            hosts: Some(1),
            ..Canary::default()
        };
        assert!(
            both.plan(None, false)
                .unwrap_err()
                .to_string()
                .contains("not both")
        );
        let sticky = Canary {
            share: Some("10%".into()),
            sticky: Some("X-User".into()),
            ..Canary::default()
        };
        assert_eq!(
            sticky.plan(None, false).unwrap().unwrap().sticky.as_deref(),
            Some("x-user")
        );
        let bad = Canary {
            share: Some("10%".into()),
            sticky: Some("x user".into()),
            ..Canary::default()
        };
        assert!(bad.plan(None, false).is_err());
        let alone = Canary {
            window_s: Some(5),
            ..Canary::default()
        };
        assert!(
            alone
                .plan(None, false)
                .unwrap_err()
                .to_string()
                .contains("need a canary")
        );
    }
}
