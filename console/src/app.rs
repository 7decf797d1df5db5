//! The console's state, and the one function that changes it.
//!
//! [`App::update`] takes an [`Event`] and answers with [`Action`]s; it does
//! no I/O, reads no clock and never blocks, so the local terminal, the SSH
//! gateway, the tests and the benchmark all drive the very same machine.

use std::collections::BTreeMap;

use ops::{OpError, Reply};
use schema::{AuditEntry, HostRow, PsRow, ReleaseRow};

use crate::event::{Action, CommandId, Event};
use crate::line::LineEditor;
use crate::logs::{
    DEFAULT_CAPACITY, FilterError, FilterParser, LogBuffer, expression_or_substring,
};
use crate::ops::{Operation, Pending};

mod host;
mod keyboard;

pub use host::HostView;

/// What the key behind this session may do, as the gateway's enrolled keys
/// say: an operator changes the fleet; anything else sees everything and
/// changes nothing (the console refuses mutating keys and commands itself,
/// and the gateway refuses them too).
pub use crate::session::{Front, Role, read_only_message};

/// The screens of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Hosts and apps at a glance.
    Overview,
    /// One app: its releases and its instances per host.
    App,
    /// The live tail of one app across hosts.
    Logs,
    /// Who did what.
    Audit,
    /// One host: its state and the apps and instances placed on it.
    Host,
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// The `:` command prompt.
    Prompt(LineEditor),
    /// The `/` log filter.
    Filter(LineEditor),
    /// A y/n question before a command that changes the fleet.
    Confirm(Pending),
    /// The `?` key list, scrolled this many rows.
    Help {
        scroll: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// The one-line message under the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub level: Level,
    pub at_ms: i64,
}

/// Snapshots of an app's requests kept for its sparklines (a snapshot
/// comes on every change and at least every 2 s: several minutes).
pub const TREND_SAMPLES: usize = 120;

/// One snapshot's figures of an app's requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub rps: f64,
    pub p99_ms: f64,
    /// Errors per second over the last seconds.
    pub errors_per_s: f64,
}

/// A status said before the clock runs: its time starts at the first tick.
const UNSTAMPED: i64 = i64::MIN;

/// The state of the link to the fleet, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected(String),
    Disconnected(String),
}

/// Where the overview's selection is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// Tab moved the keyboard to the hosts table.
    pub hosts_focused: bool,
    pub app_sel: usize,
    pub host_sel: usize,
}

/// The app opened with Enter. `None` rows are still loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub app: String,
    pub releases: Option<Vec<ReleaseRow>>,
    pub instances: Option<Vec<PsRow>>,
    pub instances_focused: bool,
    pub release_sel: usize,
    pub instance_sel: usize,
}

/// How long a message stays under the view.
const INFO_MS: i64 = 8_000;
const ERROR_MS: i64 = 30_000;
/// How long a finished operation's progress stays on screen.
pub const OPS_LINGER_MS: i64 = 10_000;

/// The console: every piece of state a view draws from.
pub struct App {
    pub(crate) role: Role,
    pub(crate) front: Front,
    pub(crate) color: bool,
    pub(crate) now_ms: i64,
    pub(crate) size: (u16, u16),
    pub(crate) link: Link,
    pub(crate) hosts: Vec<HostRow>,
    pub(crate) apps: Vec<PsRow>,
    pub(crate) rates: BTreeMap<String, f64>,
    /// Per app, what the last snapshots said of its requests, oldest
    /// first (at most [`TREND_SAMPLES`]): the app view's sparklines.
    pub(crate) trends: BTreeMap<String, std::collections::VecDeque<Sample>>,
    pub(crate) stack: Vec<View>,
    pub(crate) overview: Overview,
    pub(crate) detail: Option<Detail>,
    /// The host opened with Enter on the hosts table.
    pub(crate) host_view: Option<HostView>,
    pub(crate) audit: Option<Vec<AuditEntry>>,
    pub(crate) audit_sel: usize,
    pub(crate) logs: LogBuffer,
    pub(crate) logs_app: Option<String>,
    /// `--where` of `:logs APP --where EXPR`, sent with the follow.
    pub(crate) logs_where: Option<String>,
    /// What the driver was last told to follow (app, remote filter).
    following: Option<(String, Option<String>)>,
    pub(crate) mode: Mode,
    history: Vec<String>,
    pub(crate) ops: Vec<Operation>,
    next_id: CommandId,
    show_ops: Option<bool>,
    pub(crate) status: Option<Status>,
    filter_parser: FilterParser,
    /// Why the text in the open `/` prompt does not parse (shown there).
    pub(crate) filter_error: Option<FilterError>,
    /// Shown first on the `?` screen (see [`App::with_notes`]).
    notes: Vec<String>,
    /// The events feed from the last snapshot, oldest first.
    pub(crate) events: Vec<schema::AuditEntry>,
    /// The time of the newest event the operator has seen in the feed.
    events_seen: Option<String>,
    /// The audit view shows the events feed instead of the audit log.
    pub(crate) events_only: bool,
    dirty: bool,
    quit: bool,
}

impl App {
    /// A console for a session with this role, drawn by this front door.
    /// It shows "connecting" until the driver sends `Connected` or a `Snapshot`.
    pub fn new(role: Role, front: Front) -> App {
        App {
            role,
            front,
            color: true,
            now_ms: 0,
            size: (80, 24),
            link: Link::Connecting,
            hosts: Vec::new(),
            apps: Vec::new(),
            rates: BTreeMap::new(),
            trends: BTreeMap::new(),
            stack: vec![View::Overview],
            overview: Overview::default(),
            detail: None,
            host_view: None,
            audit: None,
            audit_sel: 0,
            logs: LogBuffer::new(DEFAULT_CAPACITY),
            logs_app: None,
            logs_where: None,
            following: None,
            mode: Mode::Normal,
            history: Vec::new(),
            ops: Vec::new(),
            next_id: 1,
            show_ops: None,
            status: None,
            filter_parser: expression_or_substring,
            filter_error: None,
            notes: Vec::new(),
            events: Vec::new(),
            events_seen: None,
            events_only: false,
            dirty: true,
            quit: false,
        }
    }

    /// Draws without colour: for monochrome terminals or `NO_COLOR`. The
    /// views never rely on colour alone, so nothing is lost but emphasis.
    pub fn with_color(mut self, color: bool) -> App {
        self.color = color;
        self
    }

    /// How many log lines to keep (default [`DEFAULT_CAPACITY`]).
    pub fn with_log_capacity(mut self, lines: usize) -> App {
        self.logs = LogBuffer::new(lines);
        self
    }

    /// At most `lines` log lines and `bytes` bytes of their text: for a
    /// console whose memory must stay bounded (one of many on a gateway).
    pub fn with_log_budget(mut self, lines: usize, bytes: usize) -> App {
        self.logs = LogBuffer::with_budget(lines, bytes);
        self
    }

    /// Lines the `?` screen shows first, under "this fleet" (the demo says
    /// how to reach its fleet with plain ssh and where its keys are); the
    /// status line points at them on start.
    pub fn with_notes(mut self, notes: Vec<String>) -> App {
        if !notes.is_empty() {
            self.status = Some(Status {
                level: Level::Info,
                text: "? shows the keys, and how to reach this fleet with plain ssh".into(),
                // Timed from the first tick: the clock is not running yet.
                at_ms: UNSTAMPED,
            });
        }
        self.notes = notes;
        self
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Why the open `/` prompt's text does not parse, if it does not.
    pub fn filter_error(&self) -> Option<&FilterError> {
        self.filter_error.as_ref()
    }

    /// Replaces the `/` filter language (default: an expression of the
    /// filter language, or a substring).
    pub fn with_filter_parser(mut self, parser: FilterParser) -> App {
        self.filter_parser = parser;
        self
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn front(&self) -> Front {
        self.front
    }
    pub fn view(&self) -> View {
        *self.stack.last().unwrap_or(&View::Overview)
    }
    pub fn mode(&self) -> &Mode {
        &self.mode
    }
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
    pub fn logs(&self) -> &LogBuffer {
        &self.logs
    }
    pub fn logs_app(&self) -> Option<&str> {
        self.logs_app.as_deref()
    }
    pub fn detail(&self) -> Option<&Detail> {
        self.detail.as_ref()
    }
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether anything visible changed since the last call; the run loop
    /// draws only then.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The app the single keys act on: the overview's selection, the opened
    /// app, or the app whose logs are shown.
    pub fn selected_app(&self) -> Option<&str> {
        match self.view() {
            View::Overview => self.apps.get(self.overview.app_sel).map(|r| r.app.as_str()),
            View::App => self.detail.as_ref().map(|d| d.app.as_str()),
            View::Logs => self.logs_app.as_deref(),
            View::Host => self.host_view.as_ref().and_then(HostView::selected_app),
            View::Audit => None,
        }
    }

    /// The operation whose progress panel is on screen, if any: the newest,
    /// while it runs and for a while after, unless `o` says otherwise.
    pub fn visible_operation(&self) -> Option<&Operation> {
        let op = self.ops.last()?;
        let recent = match &op.outcome {
            None => true,
            Some(o) => self.now_ms - o.finished_ms < OPS_LINGER_MS,
        };
        self.show_ops.unwrap_or(recent).then_some(op)
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            level,
            at_ms: self.now_ms,
        });
    }

    /// Rows a page-up moves: about the height of a table on screen.
    pub(crate) fn page(&self) -> usize {
        crate::layout::body_height(self.size.0, self.size.1)
            .saturating_sub(4)
            .max(1)
    }

    /// Rows of log lines on screen.
    pub(crate) fn log_rows(&self) -> usize {
        let op_hosts = self.visible_operation().map(|op| op.hosts.len());
        crate::layout::logs_rows(self.size.0, self.size.1, op_hosts)
    }

    /// Applies one event; returns what the driver should do about it.
    pub fn update(&mut self, event: Event) -> Vec<Action> {
        let was_dirty = std::mem::replace(&mut self.dirty, true);
        match event {
            Event::Key(k) => return self.on_key(k),
            Event::Resize { width, height } => self.size = (width, height),
            Event::Tick { now_ms } => {
                self.now_ms = now_ms;
                if let Some(s) = self.status.as_mut().filter(|s| s.at_ms == UNSTAMPED) {
                    s.at_ms = now_ms;
                }
                if let Some(s) = &self.status {
                    let ttl = if s.level == Level::Error {
                        ERROR_MS
                    } else {
                        INFO_MS
                    };
                    if now_ms - s.at_ms > ttl {
                        self.status = None;
                    }
                }
            }
            Event::Connected { gateway } => self.link = Link::Connected(gateway),
            Event::Snapshot { hosts, apps } => return self.on_snapshot(hosts, apps),
            Event::RequestRates(r) => self.rates = r,
            Event::Events(e) => {
                self.events = e;
                // Open, the feed is being read: nothing in it is new.
                if self.view() == View::Audit && self.events_only {
                    self.mark_events_seen();
                }
            }
            Event::Releases { app, mut rows } => {
                self.releases_for_question(&app, &rows);
                if let Some(d) = self.detail.as_mut().filter(|d| d.app == app) {
                    rows.sort_by_key(|r| std::cmp::Reverse(r.version));
                    d.release_sel = d.release_sel.min(rows.len().saturating_sub(1));
                    d.releases = Some(rows);
                }
            }
            Event::Instances { app, mut rows } => {
                if let Some(h) = self.host_view.as_mut() {
                    h.instances_of(&app, &rows);
                }
                if let Some(d) = self.detail.as_mut().filter(|d| d.app == app) {
                    rows.sort_by(|a, b| (&a.host, &a.instance).cmp(&(&b.host, &b.instance)));
                    d.instance_sel = d.instance_sel.min(rows.len().saturating_sub(1));
                    d.instances = Some(rows);
                }
            }
            Event::Audit(mut rows) => {
                rows.sort_by(|a, b| b.time.cmp(&a.time));
                self.audit_sel = self.audit_sel.min(rows.len().saturating_sub(1));
                self.audit = Some(rows);
            }
            Event::LogRecords(records) => {
                let app = self.logs_app.clone();
                let kept = self
                    .logs
                    .push(records.into_iter().filter(|r| Some(&r.app) == app.as_ref()));
                self.dirty = was_dirty || kept > 0;
            }
            Event::CommandProgress { id, progress } => {
                if let Some(op) = self.ops.iter_mut().find(|o| o.id == id) {
                    op.progress(&progress);
                }
            }
            Event::CommandDone { id, result } => return self.on_done(id, &result),
            Event::Error(e) => self.say(Level::Error, e),
            Event::Disconnected(why) => {
                self.say(Level::Error, format!("disconnected: {why}"));
                self.link = Link::Disconnected(why);
            }
        }
        Vec::new()
    }

    fn on_snapshot(&mut self, mut hosts: Vec<HostRow>, mut apps: Vec<PsRow>) -> Vec<Action> {
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        apps.sort_by(|a, b| a.app.cmp(&b.app));
        if self.link == Link::Connecting {
            self.link = Link::Connected(String::new());
        }
        // Keep the selection on the same app when rows come and go.
        let selected = self.apps.get(self.overview.app_sel).map(|r| r.app.clone());
        let mut actions = Vec::new();
        // The audit log open is live: every snapshot (a change) reloads it.
        if self.view() == View::Audit && !self.events_only {
            actions.push(Action::LoadAudit);
        }
        if let (View::App, Some(d)) = (self.view(), &self.detail) {
            // Instances change without the app's row changing (a host's
            // report after a switch: v1 stopping, v2 running, the same
            // count): every snapshot reloads them while the view is open.
            actions.push(Action::LoadInstances(d.app.clone()));
            let old = self.apps.iter().find(|r| r.app == d.app);
            let new = apps.iter().find(|r| r.app == d.app);
            if old.map(|r| r.release) != new.map(|r| r.release) {
                actions.push(Action::LoadReleases(d.app.clone()));
            }
        }
        self.overview.app_sel = selected
            .and_then(|s| apps.iter().position(|r| r.app == s))
            .unwrap_or(self.overview.app_sel)
            .min(apps.len().saturating_sub(1));
        self.overview.host_sel = self.overview.host_sel.min(hosts.len().saturating_sub(1));
        actions.extend(self.host_snapshot(&hosts, &apps));
        // The trends: one sample per snapshot of every app that serves.
        for r in &apps {
            let Some(q) = &r.requests else { continue };
            let t = self.trends.entry(r.app.clone()).or_default();
            if t.len() == TREND_SAMPLES {
                t.pop_front();
            }
            t.push_back(Sample {
                rps: r.rps.unwrap_or(0.0),
                p99_ms: q.p99_ms,
                errors_per_s: q.errors_per_s,
            });
        }
        self.trends.retain(|a, _| apps.iter().any(|r| &r.app == a));
        self.hosts = hosts;
        self.apps = apps;
        actions
    }

    /// What the last snapshots said of `app`'s requests, oldest first.
    pub fn trend(&self, app: &str) -> Vec<Sample> {
        self.trends
            .get(app)
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default()
    }

    fn on_done(&mut self, id: CommandId, result: &Result<Option<Reply>, OpError>) -> Vec<Action> {
        let now = self.now_ms;
        let Some(op) = self.ops.iter_mut().find(|o| o.id == id) else {
            return Vec::new();
        };
        op.finish(result, now);
        let (app, outcome) = (op.app.clone(), op.outcome.clone().expect("just finished"));
        self.say(
            if outcome.ok {
                Level::Info
            } else {
                Level::Error
            },
            outcome.summary,
        );
        let mut actions = Vec::new();
        if self.view() == View::App && self.detail.as_ref().is_some_and(|d| d.app == app) {
            actions.extend([
                Action::LoadReleases(app.clone()),
                Action::LoadInstances(app),
            ]);
        }
        if self.view() == View::Audit {
            actions.push(Action::LoadAudit);
        }
        actions
    }

    fn quit(&mut self) -> Vec<Action> {
        self.quit = true;
        let mut actions = Vec::new();
        if self.following.take().is_some() {
            actions.push(Action::Unfollow);
        }
        actions.push(Action::Quit);
        actions
    }

    fn go(&mut self, view: View) -> Vec<Action> {
        if let Some(pos) = self.stack.iter().position(|v| *v == view) {
            self.stack.truncate(pos.max(1));
        }
        if self.view() != view {
            self.stack.push(view);
        }
        self.sync_follow()
    }

    fn back(&mut self) -> Vec<Action> {
        if self.view() == View::Logs && self.logs.filter().is_some() {
            self.logs.set_filter(None);
            return self.sync_follow();
        }
        if self.stack.len() > 1 {
            self.stack.pop();
        } else {
            self.status = None;
        }
        self.sync_follow()
    }

    /// Tells the driver to follow exactly what the logs view on screen needs:
    /// the shown app with its remote filter, or nothing when logs are hidden.
    fn sync_follow(&mut self) -> Vec<Action> {
        let want = match (self.view(), &self.logs_app) {
            (View::Logs, Some(app)) => {
                let remote = self.logs.filter().and_then(|f| f.remote_expr());
                let filter = match (&self.logs_where, remote) {
                    (Some(w), Some(r)) => Some(format!("({w}) && ({r})")),
                    (w, r) => w.clone().or(r),
                };
                Some((app.clone(), filter))
            }
            _ => None,
        };
        if want == self.following {
            return Vec::new();
        }
        self.following = want.clone();
        vec![match want {
            Some((app, filter)) => Action::Follow { app, filter },
            None => Action::Unfollow,
        }]
    }

    fn open_app(&mut self, app: String) -> Vec<Action> {
        if let Some(i) = self.apps.iter().position(|r| r.app == app) {
            self.overview.app_sel = i;
        }
        if self.detail.as_ref().is_none_or(|d| d.app != app) {
            self.detail = Some(Detail {
                app: app.clone(),
                releases: None,
                instances: None,
                instances_focused: false,
                release_sel: 0,
                instance_sel: 0,
            });
        }
        let mut actions = self.go(View::App);
        actions.extend([
            Action::LoadReleases(app.clone()),
            Action::LoadInstances(app),
        ]);
        actions
    }

    fn open_logs(&mut self, app: String, where_expr: Option<String>) -> Vec<Action> {
        if self.logs_app.as_ref() != Some(&app) {
            self.logs.clear();
            self.logs_app = Some(app);
        }
        self.logs_where = where_expr;
        self.go(View::Logs)
    }

    fn open_audit(&mut self) -> Vec<Action> {
        self.events_only = false;
        let mut actions = self.go(View::Audit);
        actions.push(Action::LoadAudit);
        actions
    }

    /// The audit view showing the events feed (live from the snapshots).
    pub(crate) fn open_events(&mut self) -> Vec<Action> {
        self.events_only = true;
        self.mark_events_seen();
        self.go(View::Audit)
    }

    fn mark_events_seen(&mut self) {
        if let Some(last) = self.events.last() {
            self.events_seen = Some(last.time.clone());
        }
    }

    /// Events in the feed not seen yet in its view, and whether any is
    /// recent (the last 10 minutes): the header's counter.
    pub fn unseen_events(&self) -> (usize, bool) {
        let new: Vec<&schema::AuditEntry> = self
            .events
            .iter()
            .filter(|e| self.events_seen.as_ref().is_none_or(|seen| &e.time > seen))
            .collect();
        let recent = new.iter().any(|e| {
            schema::time::parse_rfc3339(&e.time).is_some_and(|t| self.now_ms - t < 10 * 60 * 1000)
        });
        (new.len(), recent)
    }

    fn start(&mut self, p: Pending) -> Vec<Action> {
        let id = self.next_id;
        self.next_id += 1;
        self.ops.push(Operation::new(id, &p, self.now_ms));
        if self.ops.len() > 32 {
            self.ops.remove(0);
        }
        self.show_ops = None;
        self.say(Level::Info, format!("running: {}", p.title()));
        vec![Action::Run {
            id,
            request: Box::new(p.request()),
        }]
    }
}
