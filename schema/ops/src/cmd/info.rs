//! `info APP`: an app at a glance — kind, active release, where it runs,
//! grants, key-value store, limits, health, env and config names. Never a
//! value of config or env (env may hold what an operator thought harmless;
//! `config APP` shows non-secret values).

use schema::manifest::{DEFAULT_MEMORY_MB, Manifest};
use schema::{AppInfo, AppKind, Version};

/// The info of an app whose active release has `manifest` (`None`: no
/// active release).
pub fn of(
    app: &str,
    kind: AppKind,
    release: Option<Version>,
    replicas: u32,
    hosts: Vec<String>,
    manifest: Option<&Manifest>,
) -> AppInfo {
    let m = manifest
        .cloned()
        .unwrap_or_else(|| Manifest::new(app, kind));
    AppInfo {
        app: app.to_string(),
        kind,
        release,
        replicas,
        hosts,
        grants: m.allow.outbound.clone(),
        keyvalue: if m.keyvalue.url.is_some() {
            "redis"
        } else {
            "sqlite"
        }
        .into(),
        keyvalue_url: m
            .keyvalue
            .url
            .as_deref()
            .map(schema::render::mask_url_password),
        keyvalue_max_mb: m.keyvalue.max_bytes() >> 20,
        buckets: std::iter::once("default".to_string())
            .chain(m.keyvalue.buckets.iter().cloned())
            .collect(),
        schedule: m.schedule.clone(),
        schedule_note: m
            .schedule
            .as_deref()
            .and_then(|s| schema::cron::Schedule::parse(s).ok())
            .map(|s| s.describe()),
        memory_mb: m.limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
        timeout_ms: m.timeout_ms(),
        health: m.health.clone(),
        http: (kind == AppKind::Http).then(|| schema::info::HttpInfo {
            reuse: m.http.reuse(),
            access_log: m.http.access_log(),
        }),
        canary: None,
        env: m.env.keys().cloned().collect(),
        config: m
            .config
            .iter()
            .map(|(k, v)| schema::ConfigRow {
                key: k.clone(),
                value: None,
                secret: v.secret,
            })
            .collect(),
        labels: m.labels.clone(),
    }
}

pub fn text(i: &AppInfo) -> String {
    let c = |s: &str| schema::render::clean(s).into_owned();
    let none = || "none".to_string();
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<10} {v}\n"));
    line("app", c(&i.app));
    line("kind", i.kind.to_string());
    line(
        "release",
        i.release.map(|v| v.to_string()).unwrap_or_else(none),
    );
    line("replicas", i.replicas.to_string());
    line(
        "hosts",
        if i.hosts.is_empty() {
            none()
        } else {
            c(&i.hosts.join(", "))
        },
    );
    line(
        "grants",
        if i.grants.is_empty() {
            "none (no network)".into()
        } else {
            c(&i.grants.join(", "))
        },
    );
    line(
        "keyvalue",
        match &i.keyvalue_url {
            Some(u) => format!("redis {}; buckets {}", c(u), i.buckets.join(", ")),
            None => format!(
                "sqlite on each host, {} MiB; buckets {}",
                i.keyvalue_max_mb,
                i.buckets.join(", ")
            ),
        },
    );
    if let Some(s) = &i.schedule {
        let note = i
            .schedule_note
            .as_deref()
            .map(|n| format!(": {}", c(n)))
            .unwrap_or_default();
        line("schedule", format!("{}{note}", c(s)));
    }
    line(
        "limits",
        format!(
            "{} MiB{}",
            i.memory_mb,
            i.timeout_ms
                .map(|t| format!(", timeout {t} ms"))
                .unwrap_or_default()
        ),
    );
    let h = &i.health;
    line(
        "health",
        match (&h.path, &h.rule) {
            (None, None) => none(),
            (p, r) => [
                p.as_ref().map(|p| format!("path {}", c(p))),
                r.as_ref().map(|r| format!("rule {}", c(r))),
                h.window_s.map(|w| format!("window {w} s")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
        },
    );
    if let Some(h) = &i.http {
        line(
            "http",
            format!(
                "{}, access log {}",
                if h.reuse > 1 {
                    format!(
                        "instances reused for {} requests (globals survive between requests)",
                        h.reuse
                    )
                } else {
                    "a fresh instance per request".to_string()
                },
                if h.access_log { "on" } else { "off" }
            ),
        );
    }
    if let Some(c) = &i.canary {
        line(
            "canary",
            format!(
                "{}; gate {}{}",
                c.summary(),
                c.gate,
                c.sticky
                    .as_ref()
                    .map(|h| format!("; sticky by {h}"))
                    .unwrap_or_default()
            ),
        );
    }
    line(
        "env",
        if i.env.is_empty() {
            none()
        } else {
            c(&i.env.join(", "))
        },
    );
    line(
        "config",
        if i.config.is_empty() {
            none()
        } else {
            c(&i.config
                .iter()
                .map(|r| {
                    if r.secret {
                        format!("{} (secret)", r.key)
                    } else {
                        r.key.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", "))
        },
    );
    if !i.labels.is_empty() {
        line(
            "labels",
            c(&i.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")),
        );
    }
    out
}

/// The console's one line.
pub fn summary(i: &AppInfo) -> String {
    format!(
        "{} {} {}, {} replicas on {}; grants {}; config {}",
        i.app,
        i.kind,
        i.release
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into()),
        i.replicas,
        if i.hosts.is_empty() {
            "-".to_string()
        } else {
            i.hosts.join(",")
        },
        if i.grants.is_empty() {
            "none".to_string()
        } else {
            i.grants.join(" ")
        },
        i.config
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>()
            .join(",")
    )
}
