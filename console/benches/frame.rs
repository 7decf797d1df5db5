//! Frame time of the overview with 200 hosts and 1000 apps (a snapshot and
//! a scroll before each frame), and of the logs view with 10k, 100k and 1M
//! lines buffered.
//!
//! Figures, not a test: `cargo bench -p console --bench frame`. Each frame
//! appends a few lines (untimed) so the view really changes, then times one
//! `Terminal::draw` of the whole console at 160×48 into a `TestBackend`:
//! layout, the visible rows, and ratatui's diff. Goal: p99 < 16 ms at 1M.

use std::time::{Duration, Instant};

use console::{App, Event, Front, Key, Role};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use schema::{AppKind, LogRecord, PsRow, Stream, Version};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const FRAMES: usize = 500;
const WIDTH: u16 = 160;
const HEIGHT: u16 = 48;

struct Gen {
    seq: u64,
    state: u64,
}

impl Gen {
    fn record(&mut self) -> LogRecord {
        self.seq += 1;
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let r = self.state;
        let host = ["host-a", "host-b", "host-c"][(r % 3) as usize];
        let stream = if r.is_multiple_of(17) {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let len = 20 + (r >> 8) % 180;
        let mut line = format!("req {} GET /api/items/{} ", self.seq, r % 10_000);
        if self.seq.is_multiple_of(10) {
            line.push_str("upstream timeout ");
        }
        while (line.len() as u64) < len {
            line.push_str("lorem ipsum ");
        }
        LogRecord {
            seq: self.seq,
            time: "2026-01-02T10:11:12.345Z".into(),
            host: host.into(),
            app: "api".into(),
            release: Some(Version(3)),
            instance: format!("api-{}", r % 4),
            stream,
            line,
            partial: false,
        }
    }
}

fn console_with(lines: usize, feed: &mut Gen) -> (App, Duration) {
    let mut app = App::new(Role::Operator, Front::Local);
    let row = PsRow {
        app: "api".into(),
        kind: AppKind::Http,
        release: Some(Version(3)),
        replicas: 3,
        running: 3,
        host: "host-a".into(),
        state: schema::RunState::Running,
        restarts: 0,
        instance: None,
        started: None,
        next_run: None,
        detail: None,
        rps: None,
        messages: None,
        requests: None,
        hosts: Vec::new(),
        canary: None,
    };
    app.update(Event::Snapshot {
        hosts: vec![],
        apps: vec![row],
    });
    app.update(Event::Resize {
        width: WIDTH,
        height: HEIGHT,
    });
    app.update(Event::Key(Key::Char('l')));
    let start = Instant::now();
    let mut left = lines;
    while left > 0 {
        let n = left.min(10_000);
        app.update(Event::LogRecords((0..n).map(|_| feed.record()).collect()));
        left -= n;
    }
    (app, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Times `FRAMES` draws, appending `per_frame` new lines before each.
fn frames(app: &mut App, feed: &mut Gen, per_frame: usize) -> (Duration, Duration, Duration) {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    let mut times = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES + 20 {
        app.update(Event::LogRecords(
            (0..per_frame).map(|_| feed.record()).collect(),
        ));
        let start = Instant::now();
        terminal.draw(|f| console::ui::draw(app, f)).unwrap();
        if i >= 20 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        *times.last().unwrap(),
    )
}

fn rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024)
}

/// The overview of a large fleet: `hosts` hosts and `apps` apps, each
/// frame after a fresh snapshot (as `watch` sends them) and a key that
/// scrolls the apps table. Returns (p50, p99, max).
fn fleet_frames(hosts: usize, apps: usize) -> (Duration, Duration, Duration) {
    let mut app = App::new(Role::Operator, Front::Local);
    app.update(Event::Resize {
        width: WIDTH,
        height: HEIGHT,
    });
    let host_rows: Vec<schema::HostRow> = (0..hosts)
        .map(|i| schema::HostRow {
            name: format!("host-{i:03}"),
            arch: "x86_64".into(),
            state: schema::HostState::Up,
            last_seen: "2026-11-30T12:00:00Z".into(),
            labels: [("region".to_string(), format!("r{}", i % 4))].into(),
            apps: (apps / hosts.max(1)) as u32,
            instances: (apps * 2 / hosts.max(1)) as u32,
            memory_bytes: 64 << 20,
        })
        .collect();
    let snapshot = |tick: usize| -> Vec<PsRow> {
        (0..apps)
            .map(|i| PsRow {
                app: format!("app-{i:04}"),
                kind: AppKind::Http,
                release: Some(Version(1 + (i % 7) as u32)),
                replicas: 2,
                running: 2,
                host: format!("host-{:03},host-{:03}", i % hosts, (i + 1) % hosts),
                state: schema::RunState::Serving,
                restarts: 0,
                instance: None,
                started: None,
                next_run: None,
                detail: None,
                rps: Some(((i * 7 + tick) % 500) as f64),
                messages: None,
                requests: Some(schema::RequestStats {
                    requests: 1000,
                    errors: (i % 5) as u64,
                    error_rate: (i % 5) as f64 / 1000.0,
                    p50_ms: 1.5,
                    p99_ms: 4.0 + (tick % 10) as f64,
                    errors_per_s: 0.0,
                }),
                hosts: vec![format!("host-{:03}", i % hosts)],
                canary: None,
            })
            .collect()
    };
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    let mut times = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES + 20 {
        app.update(Event::Snapshot {
            hosts: host_rows.clone(),
            apps: snapshot(i),
        });
        app.update(Event::Key(if (i / 100) % 2 == 0 {
            Key::Down
        } else {
            Key::Up
        }));
        let start = Instant::now();
        terminal.draw(|f| console::ui::draw(&app, f)).unwrap();
        if i >= 20 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        *times.last().unwrap(),
    )
}

fn main() {
    println!(
        "overview of a fleet, {WIDTH}x{HEIGHT}, {FRAMES} frames, a snapshot and a scroll key before each, TestBackend"
    );
    for (hosts, apps) in [(10, 50), (200, 1000)] {
        let (p50, p99, max) = fleet_frames(hosts, apps);
        println!(
            "{hosts:>5} hosts {apps:>5} apps   p50 {}  p99 {}  max {} (goal p99 < 16 ms)",
            ms(p50),
            ms(p99),
            ms(max)
        );
    }
    println!("logs view, {WIDTH}x{HEIGHT}, {FRAMES} frames per case, TestBackend");
    println!(
        "{:>9}  {:<22} {:>10} {:>10} {:>10}",
        "lines", "case", "p50", "p99", "max"
    );
    for lines in SIZES {
        let mut feed = Gen {
            seq: 0,
            state: 0x2545_f491_4f6c_dd1d,
        };
        let (mut app, ingest) = console_with(lines, &mut feed);
        let rate = lines as f64 / ingest.as_secs_f64();
        let row = |case: &str, (p50, p99, max): (Duration, Duration, Duration)| {
            println!(
                "{lines:>9}  {case:<22} {:>10} {:>10} {:>10}",
                ms(p50),
                ms(p99),
                ms(max)
            );
        };
        row("following", frames(&mut app, &mut feed, 5));

        // Paused halfway back: rows come from the middle of the buffer.
        app.update(Event::Key(Key::Char('p')));
        for _ in 0..(lines / 2 / 46) {
            app.update(Event::Key(Key::PageUp));
        }
        row("paused mid-buffer", frames(&mut app, &mut feed, 5));
        app.update(Event::Key(Key::End));

        // An active substring filter (one line in ten matches).
        app.update(Event::Key(Key::Char('/')));
        for c in "timeout".chars() {
            app.update(Event::Key(Key::Char(c)));
        }
        let start = Instant::now();
        app.update(Event::Key(Key::Enter));
        let apply = start.elapsed();
        row("filter \"timeout\"", frames(&mut app, &mut feed, 5));
        println!(
            "{lines:>9}  ingest {:.2} M lines/s; applying the filter to the buffer once: {}; {} of {} lines match; RSS {} MiB",
            rate / 1e6,
            ms(apply),
            app.logs().len(),
            app.logs().total(),
            rss_mib().map_or("?".to_string(), |m| m.to_string()),
        );
    }
}
