//! Drawing: pure functions from [`App`] to a frame.
//!
//! Nothing here changes state or does I/O; a view is a function of the app,
//! so a test can render any state into a `TestBackend` and read the buffer.
//!
//! Two rules keep the console usable from any terminal, including a phone's
//! SSH client: nothing is said by colour alone (selection is reversed and
//! bold, states are words, errors say "error:"), and tables drop their least
//! important columns as the width shrinks instead of wrapping.

mod audit;
mod cut;
mod detail;
mod host;
mod logs;
mod overlay;
mod overview;
mod table;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::app::{App, Level, Link, Mode, Role, View};
use crate::keys;

use crate::layout::has_hints;
pub use crate::layout::{MIN_HEIGHT, MIN_WIDTH, body_height};

/// Styles, with or without colour. Every colour is paired with a modifier
/// or a word, so the monochrome theme loses emphasis, not meaning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theme {
    pub(crate) color: bool,
}

impl Theme {
    fn fg(self, s: Style, c: Color) -> Style {
        if self.color { s.fg(c) } else { s }
    }
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
    pub fn title(self) -> Style {
        self.fg(Style::new().add_modifier(Modifier::BOLD), Color::Cyan)
    }
    pub fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
    pub fn bad(self) -> Style {
        self.fg(Style::new().add_modifier(Modifier::BOLD), Color::Red)
    }
    pub fn warn(self) -> Style {
        self.fg(Style::new().add_modifier(Modifier::BOLD), Color::Yellow)
    }
    pub fn good(self) -> Style {
        self.fg(Style::new(), Color::Green)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    pub fn key(self) -> Style {
        self.fg(Style::new().add_modifier(Modifier::BOLD), Color::Cyan)
    }
}

pub(crate) fn theme(app: &App) -> Theme {
    Theme { color: app.color }
}

/// The style of a state word: failures stand out, healthy states do not.
/// The colour of a state the console shows: one per type, decided on the
/// type, never on its spelling.
pub(crate) trait Tone: Copy {
    fn tone(self, t: Theme) -> Style;
}

impl Tone for schema::RunState {
    fn tone(self, t: Theme) -> Style {
        use schema::RunState as S;
        match self {
            S::Crashloop => t.bad(),
            S::Degraded | S::Backoff | S::Starting | S::Stopping => t.warn(),
            S::Running => t.good(),
            _ => Style::new(),
        }
    }
}

impl Tone for schema::HostState {
    fn tone(self, t: Theme) -> Style {
        use schema::HostState as S;
        match self {
            S::Down => t.bad(),
            S::Connecting => t.warn(),
            S::Up => t.good(),
        }
    }
}

impl Tone for schema::ReleaseState {
    fn tone(self, t: Theme) -> Style {
        use schema::ReleaseState as S;
        match self {
            S::Failed | S::Crashloop => t.bad(),
            S::Staged | S::Canary => t.warn(),
            S::Active => t.good(),
            S::Superseded => Style::new(),
        }
    }
}

/// A state's name in its colour.
pub(crate) fn toned<S: Tone + std::fmt::Display>(t: Theme, s: S) -> (String, Style) {
    (s.to_string(), s.tone(t))
}

/// The colour of a deploy's progress text on one host (`staged`, `active`,
/// `failed: …`).
pub(crate) fn state_style(t: Theme, state: &str) -> Style {
    match state {
        "down" | "failed" | "crashloop" | "exited" => t.bad(),
        "degraded" | "backoff" | "starting" | "stopping" | "staged" => t.warn(),
        "up" | "running" | "active" => t.good(),
        _ => Style::new(),
    }
}

/// A block with only a top rule carrying the title: it costs one row and
/// no columns, which matters at 80×24 and below. The title is cut with `…`
/// to the `width` of the pane.
pub(crate) fn pane(t: Theme, title: String, width: u16) -> Block<'static> {
    let title = cut::ellipsize(&title, width.saturating_sub(2));
    Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(format!(" {title} "), t.title()))
}

/// Draws the whole console into the frame. Whatever the fleet sent (a
/// host's name or labels, a key name in the audit log, a log line), no
/// control character reaches the terminal: the frame is swept last.
pub fn draw(app: &App, f: &mut Frame) {
    draw_views(app, f);
    sweep_controls(f.buffer_mut());
}

/// Takes every control character out of the frame's cells: a terminal
/// would obey it (`ESC [2J`, an OSC title, a bell) instead of showing it.
pub fn sweep_controls(buf: &mut ratatui::buffer::Buffer) {
    for c in buf.content.iter_mut() {
        let sym = c.symbol();
        if sym.chars().any(char::is_control) {
            let kept: String = sym.chars().filter(|ch| !ch.is_control()).collect();
            c.set_symbol(if kept.is_empty() { " " } else { &kept });
        }
    }
}

fn draw_views(app: &App, f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(f, area);
        return;
    }
    let t = theme(app);
    let hints = u16::from(has_hints(area.height));
    let [head, body, status, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(hints),
    ])
    .areas(area);
    header(app, t, f, head);
    let ops_h = crate::layout::ops_height(
        app.visible_operation().map(|op| op.hosts.len()),
        body.height,
    );
    let [view, ops] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(ops_h)]).areas(body);
    match app.view() {
        View::Overview => overview::draw(app, f, view),
        View::App => detail::draw(app, f, view),
        View::Logs => logs::draw(app, f, view),
        View::Audit => audit::draw(app, f, view),
        View::Host => host::draw(app, f, view),
    }
    if ops_h > 0
        && let Some(op) = app.visible_operation()
    {
        // The status line says a failure's reason (unless a prompt holds it).
        let said_below = !matches!(app.mode(), Mode::Prompt(_) | Mode::Filter(_))
            && op
                .outcome
                .as_ref()
                .is_some_and(|o| app.status().is_some_and(|s| s.text == o.summary));
        overlay::ops(op, said_below, t, f, ops);
    }
    // A long error takes the hints' row as well: it matters more.
    let long_error = matches!(app.mode(), Mode::Normal)
        && app.status().is_some_and(|s| s.level == Level::Error)
        && status_text(app, t).width() > usize::from(status.width);
    if hints > 0 && long_error {
        status_line(app, t, f, status.union(hint));
    } else {
        status_line(app, t, f, status);
        if hints > 0 {
            hints_line(app, t, f, hint);
        }
    }
    match app.mode() {
        Mode::Confirm(p) => overlay::confirm(p, t, f, body),
        Mode::Help { scroll } => overlay::help(app, *scroll, t, f, body),
        _ => {}
    }
}

fn too_small(f: &mut Frame, area: Rect) {
    let text = format!(
        "cranefleet: window {}x{} is too small; need {MIN_WIDTH}x{MIN_HEIGHT}. q quits.",
        area.width, area.height
    );
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn header(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let up = app
        .hosts
        .iter()
        .filter(|h| h.state == schema::HostState::Up)
        .count();
    // The gateway's name may be cut (and then dropped) to make room; the
    // state of the link never is.
    let name = match &app.link {
        Link::Connected(g) if !g.is_empty() => Some(g.clone()),
        _ => None,
    };
    let link = match &app.link {
        Link::Connecting => Span::styled("connecting…", t.warn()),
        Link::Connected(_) => Span::raw(name.clone().unwrap_or_else(|| "connected".into())),
        Link::Disconnected(_) => Span::styled("DISCONNECTED (stale)", t.bad()),
    };
    let role = match app.role {
        Role::Operator => Span::raw("operator"),
        Role::Viewer => Span::styled("viewer: read-only", t.warn()),
        Role::Host => Span::styled("host key: read-only", t.warn()),
    };
    let events = {
        // New events since the feed was last opened (`e`).
        let (n, recent) = app.unseen_events();
        let style = if n == 0 {
            t.dim()
        } else if recent {
            t.bad()
        } else {
            t.warn()
        };
        Span::styled(format!("events {n}"), style)
    };
    let clock = schema::time::rfc3339(app.now_ms);
    let clock = Line::from(vec![
        Span::styled(" | ", t.dim()),
        Span::raw(clock.get(11..19).unwrap_or("").to_string()),
    ]);
    // The clock keeps its place at the right end; the parts on its left
    // give way, least important first: the app count (the apps pane counts
    // them too), then the gateway's name is cut, then the brand goes, then
    // the name.
    let mut brand = true;
    let mut apps = true;
    let mut link = Some(link);
    let room = usize::from(area.width).saturating_sub(clock.width());
    let build = |brand: bool, apps: bool, link: &Option<Span<'static>>| -> Line<'static> {
        let sep = || Span::styled(" | ", t.dim());
        let mut spans = if brand {
            vec![Span::styled(" cranefleet ", t.selected()), Span::raw(" ")]
        } else {
            vec![Span::raw(" ")]
        };
        if let Some(l) = link {
            spans.extend([l.clone(), sep()]);
        }
        spans.extend([
            role.clone(),
            sep(),
            Span::raw(format!("hosts {up}/{} up", app.hosts.len())),
        ]);
        if apps {
            spans.extend([sep(), Span::raw(format!("apps {}", app.apps.len()))]);
        }
        spans.extend([sep(), events.clone()]);
        Line::from(spans)
    };
    let over = |brand, apps, link: &Option<Span<'static>>| {
        build(brand, apps, link).width().saturating_sub(room)
    };
    if over(brand, apps, &link) > 0 {
        apps = false;
    }
    if let (Some(n), Some(l)) = (&name, link.as_mut()) {
        let excess = over(brand, apps, &Some(l.clone()));
        if excess > 0 {
            let keep = n.chars().count().saturating_sub(excess).max(12);
            l.content = cut::ellipsize(n, keep as u16).into_owned().into();
        }
    }
    if over(brand, apps, &link) > 0 {
        brand = false;
    }
    if name.is_some() && over(brand, apps, &link) > 0 {
        link = None;
    }
    let mut line = cut::cut_line(build(brand, apps, &link), room as u16);
    line.spans.extend(clock.spans);
    cut::one_line(f, line, area);
}

/// The status line's message: an error says so in words.
fn status_text(app: &App, t: Theme) -> Line<'static> {
    match app.status() {
        Some(s) if s.level == Level::Error => Line::from(vec![
            Span::styled("error: ", t.bad()),
            Span::raw(s.text.clone()),
        ]),
        Some(s) => Line::from(s.text.clone()),
        None => Line::default(),
    }
}

/// Draws the status line in `area`: its first row, or both rows when a
/// long error may take the hints' row too.
fn status_line(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let (lead, ed) = match app.mode() {
        Mode::Prompt(ed) => (":", ed),
        Mode::Filter(ed) => ("/", ed),
        _ => {
            let line = status_text(app, t);
            if line.width() > usize::from(area.width) && area.height > 1 {
                // A long error wraps into the hints' row rather than lose
                // what to do, which comes last.
                f.render_widget(Clear, area);
                let rows = cut::wrap_cut(line, area.width, area.height);
                f.render_widget(Paragraph::new(rows), area);
            } else {
                cut::one_line(f, line, area);
            }
            return;
        }
    };
    // Keep the cursor on screen: show the end of a line longer than the width.
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let skip = ed.cursor().saturating_sub(width);
    let shown: Vec<char> = ed.text().chars().skip(skip).collect();
    let mut spans = vec![Span::styled(lead, t.key())];
    // A `/` filter that does not parse: the character it fails at marked,
    // as the CLI's caret marks it (the message is on the line below).
    let mark = match (app.mode(), app.filter_error()) {
        (Mode::Filter(_), Some(e)) => e.column.map(|c| c.saturating_sub(1).saturating_sub(skip)),
        _ => None,
    };
    match mark {
        Some(at) if at < shown.len() => {
            spans.push(Span::raw(shown[..at].iter().collect::<String>()));
            spans.push(Span::styled(
                shown[at].to_string(),
                t.bad().add_modifier(ratatui::style::Modifier::REVERSED),
            ));
            spans.push(Span::raw(shown[at + 1..].iter().collect::<String>()));
        }
        Some(_) => {
            // Past the end: what is missing goes where the text ends.
            spans.push(Span::raw(shown.iter().collect::<String>()));
            spans.push(Span::styled("‸", t.bad()));
        }
        None => spans.push(Span::raw(shown.iter().collect::<String>())),
    }
    let line = Line::from(spans);
    f.render_widget(Paragraph::new(line), area);
    let x = area.x + 1 + (ed.cursor() - skip) as u16;
    f.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
}

fn hints_line(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let pairs: Vec<(&str, &str)> = match app.mode() {
        Mode::Confirm(crate::ops::Pending::Scale { .. }) => {
            vec![("y", "yes"), ("n", "no"), ("+/-", "adjust")]
        }
        Mode::Confirm(_) => vec![("y", "yes"), ("n", "no")],
        Mode::Prompt(_) => vec![
            ("Enter", "run"),
            ("Esc", "cancel"),
            ("Tab", "complete"),
            ("↑", "history"),
        ],
        Mode::Filter(_) => {
            if let Some(e) = app.filter_error() {
                let line = Line::from(vec![
                    Span::styled(" error: ", t.bad()),
                    Span::raw(e.to_string()),
                ]);
                f.render_widget(Paragraph::new(line), area);
                return;
            }
            vec![("Enter", "apply"), ("Esc", "cancel"), ("empty", "clear")]
        }
        Mode::Help { .. } => vec![("Esc", "close"), ("↑↓", "scroll")],
        Mode::Normal => keys::hints(&app.scopes(), !app.role.may_change()),
    };
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (k, label) in pairs {
        let w = k.chars().count() + label.chars().count() + 3;
        if used + w > usize::from(area.width) {
            break;
        }
        used += w;
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::raw(format!(" {label} ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// "4s ago" from an RFC 3339 time, relative to the last tick; the input as
/// given when it does not parse, `-` when empty.
pub(crate) fn ago(app: &App, time: &str) -> String {
    if time.is_empty() {
        return "-".into();
    }
    match schema::time::parse_rfc3339(time) {
        Some(ms) => schema::time::ago(ms, app.now_ms),
        None => time.to_string(),
    }
}
