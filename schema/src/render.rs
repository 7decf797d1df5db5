//! Human output: the tables and log lines every front door prints the same.

use crate::state::Tone;
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

/// How a table is drawn: plain text, or with ANSI colour for a terminal
/// (headers bold, STATE values in their [`Tone`]). The program decides
/// where it prints ([`Style::choose`]); a table drawn for a pipe, a file,
/// `--json` or a peer is always plain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Plain,
    Color,
}

impl Style {
    /// The conventions of no-color.org and `CLICOLOR_FORCE`, from the
    /// values of the environment: `NO_COLOR` set and not empty means plain,
    /// whatever else is set; `CLICOLOR_FORCE` set, not empty and not `0`
    /// means colour even into a pipe; otherwise colour only when the output
    /// is a terminal and `TERM` is not `dumb`.
    pub fn choose(
        is_terminal: bool,
        no_color: Option<&str>,
        clicolor_force: Option<&str>,
        term: Option<&str>,
    ) -> Style {
        let set = |v: Option<&str>| v.is_some_and(|v| !v.is_empty());
        if set(no_color) {
            return Style::Plain;
        }
        if set(clicolor_force) && clicolor_force != Some("0") {
            return Style::Color;
        }
        if is_terminal && term != Some("dumb") {
            Style::Color
        } else {
            Style::Plain
        }
    }

    fn paint(self, tone: Option<Tone>) -> Option<&'static str> {
        match (self, tone) {
            (Style::Plain, _) | (_, None) => None,
            (Style::Color, Some(Tone::Good)) => Some(GREEN),
            (Style::Color, Some(Tone::Warn)) => Some(YELLOW),
            (Style::Color, Some(Tone::Bad)) => Some(RED),
        }
    }
}

const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Column-aligned text with an upper-case header, like `kubectl get`.
/// Every cell is escaped and bounded ([`cell`]).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_styled(header, rows, Style::Plain)
}

/// [`table`], with a bold header in [`Style::Color`].
pub fn table_styled(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    draw(header, rows, None, style)
}

/// The column called STATE, with each row's tone.
struct Toned<'a> {
    column: usize,
    tones: &'a [Option<Tone>],
}

fn draw(header: &[&str], rows: &[Vec<String>], state: Option<Toned<'_>>, style: Style) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    // Widths are of what shows, counted before any escape is added.
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = (&str, Option<&str>)>| {
        let mut l = String::new();
        for (i, (c, paint)) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            match paint {
                Some(p) => {
                    l.push_str(p);
                    l.push_str(c);
                    l.push_str(RESET);
                }
                None => l.push_str(c),
            }
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(c.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        l.truncate(l.trim_end().len());
        l
    };
    let mut out = String::new();
    let head = line(&mut header.iter().map(|h| (*h, None)));
    if style == Style::Color && !head.is_empty() {
        out.push_str(BOLD);
        out.push_str(&head);
        out.push_str(RESET);
    } else {
        out.push_str(&head);
    }
    out.push('\n');
    for (n, r) in rows.iter().enumerate() {
        let tone = |i: usize| match &state {
            Some(t) if t.column == i => style.paint(t.tones.get(n).copied().flatten()),
            _ => None,
        };
        out.push_str(&line(
            &mut r.iter().enumerate().map(|(i, c)| (c.as_str(), tone(i))),
        ));
        out.push('\n');
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
    ps_styled(rows, instances, Style::Plain)
}

/// `ps` (apps, or with `instances` one app's instances).
pub fn ps_styled(rows: &[PsRow], instances: bool, style: Style) -> String {
    let tones: Vec<Option<Tone>> = rows.iter().map(|r| r.state.table_tone()).collect();
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
        draw(
            &[
                "INSTANCE", "RELEASE", "HOST", "STATE", "RESTARTS", "STARTED", "DETAIL",
            ],
            &body,
            Some(Toned {
                column: 3,
                tones: &tones,
            }),
            style,
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
        draw(
            &head,
            &body,
            Some(Toned {
                column: 5,
                tones: &tones,
            }),
            style,
        )
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
    releases_styled(rows, now, Style::Plain)
}

pub fn releases_styled(rows: &[ReleaseRow], now: i64, style: Style) -> String {
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
    let tones: Vec<Option<Tone>> = rows.iter().map(|r| r.state.table_tone()).collect();
    draw(
        &head,
        &body,
        Some(Toned {
            column: 1,
            tones: &tones,
        }),
        style,
    )
}

pub fn audit(rows: &[AuditEntry]) -> String {
    audit_styled(rows, Style::Plain)
}

pub fn audit_styled(rows: &[AuditEntry], style: Style) -> String {
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
    table_styled(&["TIME", "KEY", "ACTION", "APP", "DETAIL"], &body, style)
}

pub fn hosts(rows: &[HostRow], now: i64) -> String {
    hosts_styled(rows, now, Style::Plain)
}

pub fn hosts_styled(rows: &[HostRow], now: i64, style: Style) -> String {
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
    let tones: Vec<Option<Tone>> = rows.iter().map(|r| r.state.table_tone()).collect();
    draw(
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
        Some(Toned {
            column: 2,
            tones: &tones,
        }),
        style,
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

    /// What a terminal shows: the text without its colour escapes.
    fn visible(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            let end = after.find('m').expect("an SGR sequence ends with m");
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn row(app: &str, state: crate::RunState) -> PsRow {
        PsRow {
            app: app.into(),
            kind: crate::AppKind::Worker,
            release: Some(crate::names::Version(3)),
            replicas: 2,
            running: 1,
            host: "web-1".into(),
            state,
            restarts: 0,
            instance: None,
            started: None,
            next_run: None,
            detail: Some("why".into()),
            rps: None,
            messages: None,
            requests: None,
            hosts: Vec::new(),
            canary: None,
        }
    }

    #[test]
    fn colour_is_chosen_by_no_color_then_clicolor_force_then_the_terminal() {
        use Style::{Color, Plain};
        // (is a terminal, NO_COLOR, CLICOLOR_FORCE, TERM) -> style
        let cases = [
            (true, None, None, Some("xterm-256color"), Color),
            (true, None, None, None, Color),
            (false, None, None, Some("xterm"), Plain),
            (true, None, None, Some("dumb"), Plain),
            (true, Some("1"), None, Some("xterm"), Plain),
            // no-color.org: set to anything but empty.
            (true, Some(""), None, Some("xterm"), Color),
            (false, None, Some("1"), None, Color),
            (false, None, Some("0"), None, Plain),
            (false, None, Some(""), None, Plain),
            (false, None, Some("1"), Some("dumb"), Color),
            // NO_COLOR wins over CLICOLOR_FORCE.
            (false, Some("1"), Some("1"), None, Plain),
            (true, Some("yes"), Some("1"), Some("xterm"), Plain),
        ];
        for (tty, no, force, term, want) in cases {
            assert_eq!(
                Style::choose(tty, no, force, term),
                want,
                "tty={tty} NO_COLOR={no:?} CLICOLOR_FORCE={force:?} TERM={term:?}"
            );
        }
    }

    #[test]
    fn states_are_coloured_by_their_tone_and_columns_align_on_what_shows() {
        use crate::RunState as S;
        let rows = [
            row("api", S::Running),
            row("crashy-worker", S::Crashloop),
            row("w", S::Restarting),
            row("j", S::Scheduled),
            row("h", S::Serving),
            row("m", S::Degraded),
            row("b", S::Backoff),
        ];
        let plain = ps(&rows, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert_eq!(ps_styled(&rows, false, Style::Plain), plain);
        let color = ps_styled(&rows, false, Style::Color);
        // Same text, same columns: the escapes take no width.
        assert_eq!(visible(&color), plain);
        let lines: Vec<&str> = color.lines().collect();
        assert!(lines[0].starts_with("\x1b[1mAPP ") && lines[0].ends_with("DETAIL\x1b[0m"));
        assert!(
            lines[1].contains("\x1b[32mrunning\x1b[0m    "),
            "{:?}",
            lines[1]
        );
        assert!(
            lines[2].contains("\x1b[31mcrashloop\x1b[0m  "),
            "{:?}",
            lines[2]
        );
        assert!(
            lines[3].contains("\x1b[33mrestarting\x1b[0m "),
            "{:?}",
            lines[3]
        );
        assert!(lines[4].contains("  scheduled "), "{:?}", lines[4]);
        assert!(lines[5].contains("\x1b[32mserving\x1b[0m"));
        assert!(lines[6].contains("\x1b[33mdegraded\x1b[0m"));
        assert!(lines[7].contains("\x1b[33mbackoff\x1b[0m"));
        // Only the STATE column: the app called `running` is not painted.
        let odd = ps_styled(&[row("running", S::Stopped)], false, Style::Color);
        assert!(!odd.lines().nth(1).unwrap().contains('\x1b'), "{odd:?}");
        // A peer's escape in a cell is still text, coloured or not.
        let evil = ps_styled(&[row("a\x1b[2J", S::Running)], false, Style::Color);
        assert!(evil.contains("a\\x1b[2J"), "{evil:?}");
        assert_eq!(visible(&evil), ps(&[row("a\x1b[2J", S::Running)], false));
    }

    #[test]
    fn hosts_and_releases_colour_their_states_too() {
        let host = |name: &str, state| HostRow {
            name: name.into(),
            arch: "x86_64".into(),
            state,
            last_seen: "2026-11-30T10:00:00Z".into(),
            labels: Default::default(),
            apps: 1,
            instances: 2,
            memory_bytes: 0,
        };
        let rows = [
            host("a", crate::HostState::Up),
            host("b", crate::HostState::Down),
            host("c", crate::HostState::Connecting),
        ];
        let now = crate::time::parse_rfc3339("2026-11-30T10:00:05Z").unwrap();
        let c = hosts_styled(&rows, now, Style::Color);
        assert_eq!(visible(&c), hosts(&rows, now));
        assert!(c.contains("\x1b[32mup\x1b[0m"));
        assert!(c.contains("\x1b[31mdown\x1b[0m"));
        assert!(c.contains("\x1b[33mconnecting\x1b[0m"));
        let rel = |v, state| ReleaseRow {
            app: "api".into(),
            version: crate::names::Version(v),
            digest: format!("sha256:{}", "ab".repeat(32)),
            created: "2026-11-30T10:00:00Z".into(),
            by: "alice".into(),
            state,
            kind: crate::AppKind::Http,
            kept: true,
            detail: None,
            grants: vec![],
        };
        use crate::types::ReleaseState as R;
        let rows = [rel(3, R::Active), rel(2, R::Failed), rel(1, R::Superseded)];
        let c = releases_styled(&rows, now, Style::Color);
        assert_eq!(visible(&c), releases(&rows, now));
        assert!(c.contains("\x1b[32mactive\x1b[0m"));
        assert!(c.contains("\x1b[31mfailed\x1b[0m"));
        assert!(c.contains("  superseded  "));
        let audit_rows = [AuditEntry {
            time: "2026-11-30T10:00:00Z".into(),
            key: "alice".into(),
            action: "deploy".into(),
            app: Some("api".into()),
            detail: "v3".into(),
            refused: false,
        }];
        let a = audit_styled(&audit_rows, Style::Color);
        assert!(a.starts_with("\x1b[1mTIME"));
        assert_eq!(visible(&a), audit(&audit_rows));
    }
}
