//! Human output: the tables and log lines every front door prints the same.

use crate::time::{ago, parse_rfc3339};
use crate::types::{AuditEntry, HostRow, LogRecord, PsRow, ReleaseRow};

/// Column-aligned text with an upper-case header, like `kubectl get`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            let pad = widths[i].saturating_sub(c.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

fn when(t: &str, now: i64) -> String {
    parse_rfc3339(t)
        .map(|ms| ago(ms, now))
        .unwrap_or_else(|| t.to_string())
}

pub fn ps(rows: &[PsRow], instances: bool) -> String {
    if instances {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    opt(&r.instance),
                    opt(&r.release),
                    r.host.clone(),
                    r.state.clone(),
                    r.restarts.to_string(),
                    opt(&r.started),
                    opt(&r.detail),
                ]
            })
            .collect();
        table(
            &[
                "INSTANCE", "RELEASE", "HOST", "STATE", "RESTARTS", "STARTED", "DETAIL",
            ],
            &body,
        )
    } else {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.app.clone(),
                    r.kind.to_string(),
                    opt(&r.release),
                    format!("{}/{}", r.running, r.replicas),
                    r.host.clone(),
                    r.state.clone(),
                    r.restarts.to_string(),
                    r.next_run
                        .clone()
                        .or_else(|| r.detail.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        table(
            &[
                "APP", "KIND", "RELEASE", "RUNNING", "HOST", "STATE", "RESTARTS", "DETAIL",
            ],
            &body,
        )
    }
}

pub fn releases(rows: &[ReleaseRow], now: i64) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let short = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
            vec![
                r.version.to_string(),
                r.state.to_string(),
                r.kind.to_string(),
                format!("sha256:{}", &short[..short.len().min(12)]),
                when(&r.created, now),
                r.by.clone(),
                if r.kept { "yes".into() } else { "no".into() },
                r.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "VERSION", "STATE", "KIND", "DIGEST", "CREATED", "BY", "KEPT", "DETAIL",
        ],
        &body,
    )
}

pub fn audit(rows: &[AuditEntry]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.time.clone(),
                r.key.clone(),
                r.action.clone(),
                opt(&r.app),
                r.detail.clone(),
            ]
        })
        .collect();
    table(&["TIME", "KEY", "ACTION", "APP", "DETAIL"], &body)
}

pub fn hosts(rows: &[HostRow], now: i64) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                r.name.clone(),
                r.arch.clone(),
                r.state.clone(),
                when(&r.last_seen, now),
                r.apps.to_string(),
                r.instances.to_string(),
                format!("{}Mi", r.memory_bytes >> 20),
                labels.join(","),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "ARCH",
            "STATE",
            "LAST SEEN",
            "APPS",
            "INSTANCES",
            "MEMORY",
            "LABELS",
        ],
        &body,
    )
}

/// One log record as a line: `TIME HOST APP[RELEASE INSTANCE] STREAM: LINE`.
pub fn log_line(r: &LogRecord) -> String {
    let release = r
        .release
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{} {} {}[{} {}] {}: {}{}",
        r.time,
        r.host,
        r.app,
        release,
        r.instance,
        r.stream,
        r.line,
        if r.partial { " …" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let t = table(
            &["A", "LONG"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(t, "A    LONG\nxyz  1\nq\n");
    }
}
