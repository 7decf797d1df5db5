//! Human output: the tables and log lines every front door prints the same.

use crate::time::{ago, parse_rfc3339};
use crate::types::{AuditEntry, HostRow, LogRecord, PsRow, ReleaseRow};

/// Whether `b` starts a byte sequence a terminal would obey: a C0 control
/// other than tab, DEL, or a C1 control (U+0080..U+009F, `C2 80..9F` in
/// UTF-8).
fn is_control_at(b: &[u8], i: usize) -> bool {
    match b[i] {
        b'\t' => false,
        0..=0x1f | 0x7f => true,
        0xc2 => b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
        _ => false,
    }
}

/// Appends `s` with every control character a terminal would obey written
/// as text (`\x1b`, `\u{9b}`): whatever a peer puts in a name, a label or a
/// log line reaches an operator's screen as characters, never as commands.
pub fn escape_into(s: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        if is_control_at(s, i) {
            out.extend_from_slice(&s[start..i]);
            if s[i] == 0xc2 {
                out.extend_from_slice(format!("\\u{{{:x}}}", s[i + 1]).as_bytes());
                i += 2;
            } else {
                out.extend_from_slice(format!("\\x{:02x}", s[i]).as_bytes());
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// `s` with its control characters escaped (see [`escape_into`]); borrowed
/// when there is none, which is nearly always.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    if !(0..b.len()).any(|i| is_control_at(b, i)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len() + 8);
    escape_into(b, &mut out);
    // Only ASCII was inserted, at character boundaries.
    std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// Like [`clean`], keeping line breaks: a message of several lines.
pub fn clean_lines(s: &str) -> String {
    s.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

/// Longest cell a table prints; the rest is cut with `…`.
pub const MAX_CELL: usize = 200;

/// A table cell: escaped, and at most [`MAX_CELL`] characters.
pub fn cell(s: &str) -> String {
    let c = clean(s);
    if c.chars().count() <= MAX_CELL {
        return c.into_owned();
    }
    let mut cut: String = c.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// Column-aligned text with an upper-case header, like `kubectl get`.
/// Every cell is escaped and bounded ([`cell`]).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    let rows = &rows[..];
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
                    r.state.to_string(),
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
        // Request columns when some app serves requests (or messages).
        let traffic = rows.iter().any(|r| r.requests.is_some());
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.app.clone(),
                    r.kind.to_string(),
                    opt(&r.release),
                    format!("{}/{}", r.running, r.replicas),
                    r.host.clone(),
                    r.state.to_string(),
                    r.restarts.to_string(),
                ];
                if traffic {
                    row.extend(request_cells(r));
                }
                row.push(
                    r.next_run
                        .clone()
                        .or_else(|| r.detail.clone())
                        .unwrap_or_default(),
                );
                row
            })
            .collect();
        let mut head = vec![
            "APP", "KIND", "RELEASE", "RUNNING", "HOST", "STATE", "RESTARTS",
        ];
        if traffic {
            head.extend(["REQ/S", "ERR%", "P99"]);
        }
        head.push("DETAIL");
        table(&head, &body)
    }
}

/// REQ/S (the last seconds), ERR% and P99 (the last minute) of an app; `-`
/// for one that serves no requests.
fn request_cells(r: &PsRow) -> [String; 3] {
    match &r.requests {
        None => ["-".into(), "-".into(), "-".into()],
        Some(q) => [
            format!("{:.1}", r.rps.unwrap_or(0.0)),
            if q.requests == 0 {
                "-".into()
            } else {
                format!("{:.1}%", q.error_rate * 100.0)
            },
            if q.requests == 0 {
                "-".into()
            } else {
                format!("{:.1}ms", q.p99_ms)
            },
        ],
    }
}

pub fn releases(rows: &[ReleaseRow], now: i64) -> String {
    // A GRANTS column only when some release has grants.
    let grants = rows.iter().any(|r| !r.grants.is_empty());
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let short = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
            let mut row = vec![
                r.version.to_string(),
                r.state.to_string(),
                r.kind.to_string(),
                format!("sha256:{}", &short[..short.len().min(12)]),
                when(&r.created, now),
                r.by.clone(),
                if r.kept { "yes".into() } else { "no".into() },
            ];
            if grants {
                row.push(if r.grants.is_empty() {
                    "-".into()
                } else {
                    r.grants.join(",")
                });
            }
            row.push(r.detail.clone().unwrap_or_default());
            row
        })
        .collect();
    let mut head = vec![
        "VERSION", "STATE", "KIND", "DIGEST", "CREATED", "BY", "KEPT",
    ];
    if grants {
        head.push("GRANTS");
    }
    head.push("DETAIL");
    table(&head, &body)
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
                r.state.to_string(),
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

/// One log record as a line: `TIME HOST APP[RELEASE INSTANCE] STREAM: LINE`,
/// control characters escaped ([`escape_into`]).
pub fn log_line(r: &LogRecord) -> String {
    let release = r
        .release
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{} {} {}[{} {}] {}: {}{}",
        r.time,
        clean(&r.host),
        clean(&r.app),
        release,
        clean(&r.instance),
        r.stream,
        clean(&r.line),
        if r.partial { " …" } else { "" }
    )
}

/// A URL with the password (anything before `@` after the scheme) masked:
/// `redis://:pw@host` → `redis://***@host`. How a store's URL is shown.
pub fn mask_url_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_as_text_and_cells_are_bounded() {
        assert_eq!(clean("plain ünïcode\ttab"), "plain ünïcode\ttab");
        assert_eq!(clean("a\x1b[2Jb\u{9b}c\x7f"), "a\\x1b[2Jb\\u{9b}c\\x7f");
        assert_eq!(clean("line\r\n"), "line\\x0d\\x0a");
        let long = "x".repeat(MAX_CELL * 3);
        assert_eq!(cell(&long).chars().count(), MAX_CELL);
        let t = table(&["NAME"], &[vec!["evil\x1b]0;pwned\x07".into()]]);
        assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t:?}");
    }

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let t = table(
            &["A", "LONG"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(t, "A    LONG\nxyz  1\nq\n");
    }
}
