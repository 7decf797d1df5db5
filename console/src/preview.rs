//! A synthetic fleet for looking at the console without one.
//!
//! `console preview` runs the real app and run loop against this driver: it
//! pushes snapshots, streams log lines, answers loads, and plays rollbacks
//! and scales with per-host progress, so views and keys can be checked by
//! hand (and in tmux) before the gateway is there. Everything it shows is
//! made up and the header says so; deploy is not simulated.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use ops::{Command, CommandLine, OpError, Progress, Reply, Step};
use schema::time::{now_millis, rfc3339};
use schema::{
    AppKind, AuditEntry, HostRow, HostState, LogRecord, PsRow, ReleaseRow, ReleaseState,
    RollbackOutcome, RunState, ScaleOutcome, Stream, Version,
};
use tokio::sync::mpsc;

use crate::event::{Action, CommandId, Event};

/// How much the synthetic fleet talks.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Log lines per second of the followed app.
    pub rate: u32,
    /// Lines sent at once when an app is followed.
    pub preload: usize,
}

/// A tiny deterministic generator, so two previews look alike.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const HOSTS: &[(&str, &str)] = &[
    ("host-a", "x86_64"),
    ("host-b", "aarch64"),
    ("host-c", "x86_64"),
];
const WORDS: &[&str] = &[
    "GET /api/items 200 3ms",
    "POST /api/orders 201 12ms",
    "tick: 42 quotes refreshed",
    "cache miss for key user:1842",
    "upstream timeout after 5000ms, retrying",
    "GET /health 200 0ms",
    "worker loop: processed batch of 128",
    "warn: slow query (812ms) on orders",
];

struct FleetApp {
    row: PsRow,
    releases: Vec<ReleaseRow>,
}

/// The synthetic fleet's state.
struct Fleet {
    rng: Rng,
    apps: Vec<FleetApp>,
    audit: Vec<AuditEntry>,
    followed: Option<String>,
    seq: u64,
    /// Events due at a time (Unix ms), for progress that takes a while.
    due: VecDeque<(i64, Event)>,
}

fn release(app: &str, v: u32, state: ReleaseState, kind: AppKind, now: i64) -> ReleaseRow {
    ReleaseRow {
        app: app.into(),
        version: Version(v),
        digest: format!(
            "sha256:{:016x}{:048x}",
            u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            v
        ),
        created: rfc3339(now - i64::from(10 - v.min(9)) * 3_600_000),
        by: if v.is_multiple_of(2) {
            "alice".into()
        } else {
            "ci-deploy".into()
        },
        state,
        kind,
        kept: true,
        detail: None,
        grants: Vec::new(),
    }
}

impl Fleet {
    fn new(now: i64) -> Fleet {
        let mk = |app: &str,
                  kind,
                  active: u32,
                  replicas,
                  running,
                  state: RunState,
                  detail: Option<&str>| {
            let releases = (1..=active)
                .rev()
                .map(|v| {
                    let s = if v == active {
                        ReleaseState::Active
                    } else {
                        ReleaseState::Superseded
                    };
                    release(app, v, s, kind, now)
                })
                .collect();
            FleetApp {
                row: PsRow {
                    app: app.into(),
                    kind,
                    release: Some(Version(active)),
                    replicas,
                    running,
                    host: "host-a,host-b".into(),
                    state,
                    restarts: if state == RunState::Crashloop { 14 } else { 0 },
                    instance: None,
                    started: Some(rfc3339(now - 3_600_000)),
                    next_run: None,
                    detail: detail.map(Into::into),
                    rps: None,
                    messages: None,
                    requests: None,
                    hosts: Vec::new(),
                    canary: None,
                },
                releases,
            }
        };
        Fleet {
            rng: Rng(0x2545_f491_4f6c_dd1d),
            apps: vec![
                mk("api", AppKind::Http, 3, 3, 3, RunState::Running, None),
                mk(
                    "flaky",
                    AppKind::Worker,
                    4,
                    2,
                    1,
                    RunState::Crashloop,
                    Some("exit 101 after 2s (14 restarts)"),
                ),
                mk("report", AppKind::Job, 2, 1, 0, RunState::Scheduled, None),
                mk("ticker", AppKind::Worker, 7, 2, 2, RunState::Running, None),
            ],
            audit: vec![AuditEntry {
                time: rfc3339(now - 600_000),
                key: "alice".into(),
                action: "deploy".into(),
                app: Some("ticker".into()),
                detail: "v7 (sha256:…)".into(),
                refused: false,
            }],
            followed: None,
            seq: 0,
            due: VecDeque::new(),
        }
    }

    fn snapshot(&mut self, now: i64) -> Event {
        let hosts = HOSTS
            .iter()
            .enumerate()
            .map(|(i, (name, arch))| {
                let down = i == 2;
                HostRow {
                    name: (*name).into(),
                    arch: (*arch).into(),
                    state: if down { HostState::Down } else { HostState::Up },
                    last_seen: rfc3339(if down {
                        now - 420_000
                    } else {
                        now - self.rng.below(3000) as i64
                    }),
                    labels: BTreeMap::from([(
                        "region".to_string(),
                        if i == 1 { "eu" } else { "us" }.to_string(),
                    )]),
                    apps: if down { 0 } else { 3 },
                    instances: if down { 0 } else { 4 },
                    memory_bytes: if down {
                        0
                    } else {
                        (180 + self.rng.below(40)) << 20
                    },
                }
            })
            .collect();
        Event::Snapshot {
            hosts,
            apps: self.apps.iter().map(|a| a.row.clone()).collect(),
        }
    }

    fn log_lines(&mut self, app: &str, n: usize, now: i64) -> Event {
        let records = (0..n)
            .map(|i| {
                self.seq += 1;
                let (host, _) = HOSTS[self.rng.below(2) as usize];
                let word = WORDS[self.rng.below(WORDS.len() as u64) as usize];
                let stream = match self.rng.below(20) {
                    0 => Stream::Stderr,
                    1 => Stream::System,
                    _ => Stream::Stdout,
                };
                LogRecord {
                    seq: self.seq,
                    time: rfc3339(now - (n - i) as i64),
                    host: host.into(),
                    app: app.into(),
                    release: self
                        .apps
                        .iter()
                        .find(|a| a.row.app == app)
                        .and_then(|a| a.row.release),
                    instance: format!("{app}-{}", self.rng.below(3)),
                    stream,
                    line: format!("{word} #{}", self.seq),
                    partial: false,
                }
            })
            .collect();
        Event::LogRecords(records)
    }

    fn instances(&self, app: &str, now: i64) -> Vec<PsRow> {
        let Some(a) = self.apps.iter().find(|a| a.row.app == app) else {
            return Vec::new();
        };
        (0..a.row.running)
            .map(|i| PsRow {
                instance: Some(format!("{app}-{i}")),
                host: HOSTS[(i % 2) as usize].0.into(),
                state: RunState::Running,
                started: Some(rfc3339(now - 900_000 * i64::from(i + 1))),
                ..a.row.clone()
            })
            .collect()
    }

    /// Plays a command: progress per host over a second or so, then the end.
    fn run(&mut self, id: CommandId, request: &CommandLine, now: i64) {
        let mut plan = Plan {
            id,
            at: now,
            events: Vec::new(),
        };
        let cmd = &request.command;
        let Some(app) = cmd
            .app()
            .and_then(|n| self.apps.iter().position(|a| a.row.app == n))
        else {
            plan.done(100, Err("no such app"));
            return self.due.extend(plan.events);
        };
        let name = self.apps[app].row.app.clone();
        let played = match cmd {
            Command::Rollback(r) => self.rollback(app, r.to, &mut plan),
            Command::Scale(s) => {
                self.scale(app, s.replicas, &mut plan);
                true
            }
            Command::Rm(_) => {
                self.apps.remove(app);
                let out = ops::cmd::rm::outcome(&name);
                plan.done(300, Ok(Reply::Removed(out)));
                true
            }
            _ => {
                plan.done(100, Err("the preview does not simulate this command"));
                true
            }
        };
        self.due.extend(plan.events);
        // A rollback with nowhere to go changed nothing: not audited.
        if played {
            self.audit.push(AuditEntry {
                time: rfc3339(now),
                key: "preview".into(),
                action: cmd.name().into(),
                app: Some(name),
                detail: request.to_argv().join(" "),
                refused: false,
            });
        }
    }

    /// Rolls the app at `app` back to `to`, or to the release before its
    /// active one: staged, then active, on the two hosts that are up.
    /// False when there is no release to roll back to.
    fn rollback(&mut self, app: usize, to: Option<Version>, plan: &mut Plan) -> bool {
        let a = &mut self.apps[app];
        let from = a.row.release;
        let to = to.or_else(|| from.and_then(|v| (v.0 > 1).then(|| Version(v.0 - 1))));
        let Some(to) = to else {
            plan.done(100, Err("no earlier release to roll back to"));
            return false;
        };
        for (h, _) in &HOSTS[..2] {
            plan.progress(150, h, Step::Staged { version: to });
        }
        for (h, _) in &HOSTS[..2] {
            plan.progress(120, h, Step::Active { version: to });
        }
        a.row.release = Some(to);
        for r in &mut a.releases {
            r.state = if r.version == to {
                ReleaseState::Active
            } else {
                ReleaseState::Superseded
            };
        }
        let out = RollbackOutcome {
            app: a.row.app.clone(),
            from,
            to,
            switch_ms: 4,
        };
        plan.done(50, Ok(Reply::RolledBack(out)));
        true
    }

    /// Scales the app at `app` to `replicas`, all running at once.
    fn scale(&mut self, app: usize, replicas: u32, plan: &mut Plan) {
        let a = &mut self.apps[app];
        let from = a.row.replicas;
        for (h, _) in &HOSTS[..2] {
            let note = Step::Note {
                line: "placing replicas".into(),
            };
            plan.progress(200, h, note);
        }
        a.row.replicas = replicas;
        a.row.running = replicas;
        let out = ScaleOutcome {
            app: a.row.app.clone(),
            from,
            replicas,
        };
        plan.done(200, Ok(Reply::Scaled(out)));
    }
}

/// The events a command plays, each due some milliseconds after the one
/// before it.
struct Plan {
    id: CommandId,
    at: i64,
    events: Vec<(i64, Event)>,
}

impl Plan {
    fn later(&mut self, ms: i64, ev: Event) {
        self.at += ms;
        self.events.push((self.at, ev));
    }

    fn progress(&mut self, ms: i64, host: &str, step: Step) {
        let ev = Event::CommandProgress {
            id: self.id,
            progress: Progress::new(host, step),
        };
        self.later(ms, ev);
    }

    fn done(&mut self, ms: i64, result: Result<Reply, &str>) {
        let ev = Event::CommandDone {
            id: self.id,
            result: result.map(Some).map_err(OpError::failed),
        };
        self.later(ms, ev);
    }
}

/// Drives the console with the synthetic fleet until it quits.
pub async fn drive(
    events: mpsc::Sender<Event>,
    mut actions: mpsc::Receiver<Action>,
    opts: Options,
) {
    let now = now_millis();
    let mut fleet = Fleet::new(now);
    let mut send = Vec::new();
    send.push(Event::Connected {
        gateway: "preview: synthetic fleet".into(),
    });
    send.push(fleet.snapshot(now));
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u64;
    loop {
        for ev in send.drain(..) {
            if events.send(ev).await.is_err() {
                return;
            }
        }
        tokio::select! {
            action = actions.recv() => {
                let now = now_millis();
                match action {
                    None | Some(Action::Quit) => return,
                    Some(Action::Follow { app, .. }) => {
                        send.push(fleet.log_lines(&app, opts.preload, now));
                        fleet.followed = Some(app);
                    }
                    Some(Action::Unfollow) => fleet.followed = None,
                    Some(Action::LoadReleases(app)) => {
                        let rows = fleet.apps.iter().find(|a| a.row.app == app).map(|a| a.releases.clone()).unwrap_or_default();
                        send.push(Event::Releases { app, rows });
                    }
                    Some(Action::LoadInstances(app)) => {
                        let rows = fleet.instances(&app, now);
                        send.push(Event::Instances { app, rows });
                    }
                    Some(Action::LoadAudit) => send.push(Event::Audit(fleet.audit.clone())),
                    Some(Action::Run { id, request }) => fleet.run(id, &request, now),
                }
            }
            _ = every.tick() => {
                let now = now_millis();
                ticks += 1;
                while fleet.due.front().is_some_and(|(at, _)| *at <= now) {
                    let (_, ev) = fleet.due.pop_front().expect("checked");
                    let finished = matches!(ev, Event::CommandDone { .. });
                    send.push(ev);
                    if finished {
                        send.push(fleet.snapshot(now));
                    }
                }
                if let Some(app) = fleet.followed.clone() {
                    let n = (opts.rate as usize).div_ceil(10);
                    if n > 0 {
                        send.push(fleet.log_lines(&app, n, now));
                    }
                }
                if ticks.is_multiple_of(20) {
                    send.push(fleet.snapshot(now));
                    let rates = fleet.apps.iter().filter(|a| a.row.kind == AppKind::Http)
                        .map(|a| (a.row.app.clone(), 100.0 + fleet.rng.below(500) as f64 / 10.0)).collect::<Vec<_>>();
                    send.push(Event::RequestRates(rates.into_iter().collect()));
                }
            }
        }
    }
}
