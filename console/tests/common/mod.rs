//! A small fleet and helpers shared by the console's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use console::app::Level;
use console::{Action, App, Event, Front, Key, Role};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use schema::{
    AppKind, AuditEntry, HostRow, LogRecord, PsRow, ReleaseRow, ReleaseState, Stream, Version,
};

/// 2026-01-02T10:00:00.000Z
pub const NOW: i64 = 1_767_348_000_000;

pub fn at(ms_before_now: i64) -> String {
    schema::time::rfc3339(NOW - ms_before_now)
}

pub fn host(name: &str, arch: &str, state: &str) -> HostRow {
    HostRow {
        name: name.into(),
        arch: arch.into(),
        state: state.parse().expect("a host state"),
        last_seen: at(if state == "up" { 2_000 } else { 300_000 }),
        labels: BTreeMap::from([("region".to_string(), "eu-west".to_string())]),
        apps: 2,
        instances: 3,
        memory_bytes: 256 << 20,
    }
}

pub fn app_row(
    name: &str,
    kind: AppKind,
    release: u32,
    replicas: u32,
    running: u32,
    state: &str,
) -> PsRow {
    PsRow {
        app: name.into(),
        kind,
        release: Some(Version(release)),
        replicas,
        running,
        host: "host-a,host-b".into(),
        state: state.parse().expect("a run state"),
        restarts: 0,
        instance: None,
        started: Some(at(3_600_000)),
        next_run: None,
        detail: None,
        rps: None,
        messages: None,
        requests: None,
        hosts: Vec::new(),
        canary: None,
    }
}

pub fn hosts() -> Vec<HostRow> {
    vec![
        host("host-a", "x86_64", "up"),
        host("host-b", "aarch64", "down"),
    ]
}

pub fn apps() -> Vec<PsRow> {
    let mut flaky = app_row("flaky", AppKind::Worker, 4, 2, 1, "crashloop");
    flaky.restarts = 14;
    flaky.detail = Some("exit 101 after 2s; restarts stopped after 14 attempts in a row".into());
    vec![
        app_row("api", AppKind::Http, 3, 3, 3, "running"),
        flaky,
        app_row("ticker", AppKind::Worker, 7, 2, 2, "running"),
    ]
}

pub fn releases(app: &str, active: u32) -> Vec<ReleaseRow> {
    (1..=active)
        .map(|v| ReleaseRow {
            app: app.into(),
            version: Version(v),
            digest: format!("sha256:{v:02x}{}", "5e".repeat(31)),
            created: at(i64::from(10 - v) * 3_600_000),
            by: if v == active {
                "alice".into()
            } else {
                "ci-deploy".into()
            },
            state: if v == active {
                ReleaseState::Active
            } else {
                ReleaseState::Superseded
            },
            kind: AppKind::Worker,
            kept: true,
            detail: None,
            grants: Vec::new(),
        })
        .collect()
}

pub fn instances(app: &str) -> Vec<PsRow> {
    ["host-b", "host-a", "host-a"]
        .iter()
        .enumerate()
        .map(|(i, h)| PsRow {
            instance: Some(format!("{app}-{i}")),
            host: (*h).into(),
            ..app_row(app, AppKind::Worker, 7, 2, 2, "running")
        })
        .collect()
}

pub fn audit() -> Vec<AuditEntry> {
    vec![
        AuditEntry {
            time: at(60_000),
            key: "alice".into(),
            action: "rollback".into(),
            app: Some("ticker".into()),
            detail: "v7 -> v6".into(),
            refused: false,
        },
        AuditEntry {
            time: at(600_000),
            key: "ci-deploy".into(),
            action: "deploy".into(),
            app: Some("ticker".into()),
            detail: "v7".into(),
            refused: false,
        },
    ]
}

pub fn record(app: &str, seq: u64, host: &str, stream: Stream, line: &str) -> LogRecord {
    LogRecord {
        seq,
        time: at(0),
        host: host.into(),
        app: app.into(),
        release: Some(Version(7)),
        instance: format!("{app}-0"),
        stream,
        line: line.into(),
        partial: false,
    }
}

/// A console that has seen one tick and one snapshot of the small fleet.
pub fn console(role: Role, front: Front) -> App {
    let mut app = App::new(role, front);
    app.update(Event::Tick { now_ms: NOW });
    app.update(Event::Connected {
        gateway: "ops@gw:2222".into(),
    });
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: apps(),
    });
    app
}

pub fn operator() -> App {
    console(Role::Operator, Front::Local)
}

pub fn press(app: &mut App, key: Key) -> Vec<Action> {
    app.update(Event::Key(key))
}

/// Types `text` character by character; returns every action.
pub fn type_str(app: &mut App, text: &str) -> Vec<Action> {
    text.chars()
        .flat_map(|c| press(app, Key::Char(c)))
        .collect()
}

/// Opens the prompt, types `line` and presses Enter.
pub fn prompt(app: &mut App, line: &str) -> Vec<Action> {
    let mut a = press(app, Key::Char(':'));
    a.extend(type_str(app, line));
    a.extend(press(app, Key::Enter));
    a
}

pub fn render(app: &mut App, width: u16, height: u16) -> Buffer {
    app.update(Event::Resize { width, height });
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| console::ui::draw(app, f)).unwrap();
    t.backend().buffer().clone()
}

/// The buffer as lines of text (trailing spaces kept).
pub fn lines(buf: &Buffer) -> Vec<String> {
    let a = buf.area;
    (a.y..a.bottom())
        .map(|y| {
            (a.x..a.right())
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

pub fn screen(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// The row of the first line containing `needle`.
pub fn row_of(buf: &Buffer, needle: &str) -> Option<u16> {
    lines(buf)
        .iter()
        .position(|l| l.contains(needle))
        .map(|i| buf.area.y + i as u16)
}

// What `App::update` tests share.

/// A command as the console sends it, parsed from how it would be typed.
pub fn request(s: &str) -> Box<ops::CommandLine> {
    Box::new(ops::parse_line(s).unwrap())
}

pub fn rolled_back(
    app: &str,
    from: u32,
    to: u32,
    ms: u64,
) -> Result<Option<ops::Reply>, ops::OpError> {
    Ok(Some(ops::Reply::RolledBack(schema::RollbackOutcome {
        app: app.into(),
        from: Some(Version(from)),
        to: Version(to),
        switch_ms: ms,
    })))
}

pub fn status(app: &console::App) -> String {
    app.status().map(|s| s.text.clone()).unwrap_or_default()
}

pub fn is_error(app: &console::App) -> bool {
    app.status().is_some_and(|s| s.level == Level::Error)
}

/// The logs of `api` at 80×24 with `n` records, every tenth a timeout.
pub fn logs_with(n: u64) -> console::App {
    let mut app = operator();
    app.update(Event::Resize {
        width: 80,
        height: 24,
    });
    press(&mut app, Key::Char('l'));
    let recs = (1..=n)
        .map(|i| {
            record(
                "api",
                i,
                "host-a",
                Stream::Stdout,
                &format!("line {i}{}", if i % 10 == 0 { " timeout" } else { "" }),
            )
        })
        .collect();
    app.update(Event::LogRecords(recs));
    app
}
