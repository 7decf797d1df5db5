//! The keyboard side of [`App`]: what a key does in each mode and view.

use schema::ReleaseState;

use super::{App, Level, Mode, View, read_only_message};
use crate::event::Action;
use crate::input::Key;
use crate::keys::{self, Binding, Scope};
use crate::line::{Edit, LineEditor};
use crate::ops::Pending;
use crate::prompt::{self, Intent};

impl App {
    pub(super) fn on_key(&mut self, key: Key) -> Vec<Action> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key),
            Mode::Prompt(mut ed) => match ed.handle(key, &self.history) {
                Edit::Submit(line) => self.submit_prompt(&line),
                Edit::Cancel => Vec::new(),
                Edit::Complete => {
                    let (word, _) = ed.current_word();
                    let names: Vec<&str> = if word == 0 {
                        prompt::COMMANDS.to_vec()
                    } else {
                        self.apps.iter().map(|r| r.app.as_str()).collect()
                    };
                    let found = ed.complete(names.iter().copied());
                    let text = (found.len() > 1).then(|| found.join("  "));
                    if let Some(t) = text {
                        self.say(Level::Info, t);
                    }
                    self.mode = Mode::Prompt(ed);
                    Vec::new()
                }
                Edit::Changed => {
                    self.mode = Mode::Prompt(ed);
                    Vec::new()
                }
            },
            Mode::Filter(mut ed) => {
                let before = ed.text().to_string();
                match ed.handle(key, &[]) {
                    Edit::Submit(text) => self.apply_filter(&text),
                    Edit::Cancel => {
                        self.filter_error = None;
                        Vec::new()
                    }
                    Edit::Changed | Edit::Complete => {
                        // Fixing the text clears the mark; moving does not.
                        if ed.text() != before {
                            self.filter_error = None;
                        }
                        self.mode = Mode::Filter(ed);
                        Vec::new()
                    }
                }
            }
            Mode::Confirm(p) => self.confirm_key(key, p),
            Mode::Help { scroll } => {
                let lines =
                    crate::keys::help_lines(!self.role.may_change(), &self.notes, self.size.0)
                        .len();
                let max = crate::layout::help_max_scroll(lines, self.size.0, self.size.1);
                let scroll = match key {
                    Key::Esc | Key::Char('?' | 'q') | Key::Enter | Key::Ctrl('c') => {
                        return Vec::new();
                    }
                    Key::Up | Key::Char('k') => scroll.saturating_sub(1),
                    Key::Down | Key::Char('j') => scroll.saturating_add(1),
                    Key::PageUp => scroll.saturating_sub(10),
                    Key::PageDown | Key::Char(' ') => scroll.saturating_add(10),
                    Key::Home | Key::Char('g') => 0,
                    Key::End | Key::Char('G') => max,
                    _ => scroll,
                };
                self.mode = Mode::Help {
                    scroll: scroll.min(max),
                };
                Vec::new()
            }
        }
    }

    /// The keymap scopes active in the current view.
    pub(crate) fn scopes(&self) -> Vec<Scope> {
        match self.view() {
            View::Overview | View::App | View::Host => {
                vec![Scope::Global, Scope::App, Scope::Move]
            }
            View::Logs => vec![Scope::Global, Scope::App, Scope::Move, Scope::Logs],
            View::Audit => vec![Scope::Global, Scope::Move],
        }
    }

    fn normal_key(&mut self, key: Key) -> Vec<Action> {
        let Some(kb) = keys::lookup(key, &self.scopes()) else {
            return Vec::new();
        };
        if kb.mutates && !self.role.may_change() {
            let what = match kb.binding {
                Binding::Rollback => "rollback",
                Binding::Promote => "promote",
                Binding::AbortCanary => "abort",
                _ => "scale",
            };
            self.say(Level::Error, read_only_message(what));
            return Vec::new();
        }
        match kb.binding {
            Binding::Quit => return self.quit(),
            Binding::Help => self.mode = Mode::Help { scroll: 0 },
            Binding::Prompt => self.mode = Mode::Prompt(LineEditor::new()),
            Binding::Back => return self.back(),
            Binding::Audit => return self.open_audit(),
            Binding::Events => return self.open_events(),
            Binding::Operations => self.show_ops = Some(self.visible_operation().is_none()),
            Binding::Open => match (self.view(), self.selected_app()) {
                (View::Overview, _) if self.overview.hosts_focused => {
                    if let Some(h) = self.hosts.get(self.overview.host_sel) {
                        return self.open_host(h.name.clone());
                    }
                }
                (View::Overview | View::Logs | View::Host, Some(app)) => {
                    return self.open_app(app.to_string());
                }
                _ => {}
            },
            Binding::Logs => {
                if let Some(app) = self.selected_app() {
                    return self.open_logs(app.to_string(), None);
                }
            }
            Binding::Rollback => return self.ask_rollback(),
            Binding::Promote => return self.ask_canary(true),
            Binding::AbortCanary => return self.ask_canary(false),
            Binding::ScaleUp => self.ask_scale(1),
            Binding::ScaleDown => self.ask_scale(-1),
            Binding::Filter => {
                let current = self
                    .logs
                    .filter()
                    .map(|f| f.describe().to_string())
                    .unwrap_or_default();
                self.mode = Mode::Filter(LineEditor::with_text(&current));
            }
            Binding::Pause => self.logs.set_paused(!self.logs.is_paused()),
            Binding::Left => self.logs.h_offset = self.logs.h_offset.saturating_sub(8),
            Binding::Right => {
                // No further than the longest line on screen still shows.
                let rows = self.log_rows();
                let longest = self
                    .logs
                    .visible(rows)
                    .map(|l| l.text.chars().count())
                    .max()
                    .unwrap_or(0);
                self.logs.h_offset = (self.logs.h_offset + 8).min(longest.saturating_sub(8));
            }
            Binding::SwitchPane => match self.view() {
                View::Overview => self.overview.hosts_focused ^= true,
                View::App => {
                    if let Some(d) = &mut self.detail {
                        d.instances_focused ^= true;
                    }
                }
                _ => {}
            },
            Binding::Up
            | Binding::Down
            | Binding::PageUp
            | Binding::PageDown
            | Binding::Top
            | Binding::Bottom => self.move_selection(kb.binding),
        }
        Vec::new()
    }

    fn move_selection(&mut self, b: Binding) {
        let page = self.page();
        let step = |sel: usize, len: usize| -> usize {
            let last = len.saturating_sub(1);
            match b {
                Binding::Up => sel.saturating_sub(1),
                Binding::Down => (sel + 1).min(last),
                Binding::PageUp => sel.saturating_sub(page),
                Binding::PageDown => (sel + page).min(last),
                Binding::Top => 0,
                _ => last,
            }
        };
        match self.view() {
            View::Overview if self.overview.hosts_focused => {
                self.overview.host_sel = step(self.overview.host_sel, self.hosts.len())
            }
            View::Overview => self.overview.app_sel = step(self.overview.app_sel, self.apps.len()),
            View::App => {
                if let Some(d) = &mut self.detail {
                    if d.instances_focused {
                        d.instance_sel =
                            step(d.instance_sel, d.instances.as_ref().map_or(0, Vec::len));
                    } else {
                        d.release_sel =
                            step(d.release_sel, d.releases.as_ref().map_or(0, Vec::len));
                    }
                }
            }
            View::Audit => {
                self.audit_sel = step(self.audit_sel, self.audit.as_ref().map_or(0, Vec::len))
            }
            View::Host => {
                if let Some(h) = &mut self.host_view {
                    h.sel = step(h.sel, h.len());
                }
            }
            View::Logs => {
                let rows = self.log_rows();
                match b {
                    Binding::Up => self.logs.scroll_up(1, rows),
                    Binding::Down => self.logs.scroll_down(1),
                    Binding::PageUp => self.logs.scroll_up(rows, rows),
                    Binding::PageDown => self.logs.scroll_down(rows),
                    Binding::Top => self.logs.scroll_to_top(rows),
                    _ => self.logs.set_paused(false),
                }
            }
        }
    }

    fn apply_filter(&mut self, text: &str) -> Vec<Action> {
        self.filter_error = None;
        if text.trim().is_empty() {
            self.logs.set_filter(None);
        } else {
            match (self.filter_parser)(text) {
                Ok(f) => self.logs.set_filter(Some(f)),
                Err(e) => {
                    // Shown in the prompt, which stays open for fixing; not
                    // a status line that would outlive it.
                    self.filter_error = Some(e);
                    self.mode = Mode::Filter(LineEditor::with_text(text));
                    return Vec::new();
                }
            }
        }
        self.sync_follow()
    }

    /// `P` / `A`: promote or abort the selected app's live canary, asked
    /// first; an app without one is told so.
    fn ask_canary(&mut self, promote: bool) -> Vec<Action> {
        let Some(app) = self.selected_app().map(str::to_string) else {
            return Vec::new();
        };
        let verb = if promote { "promote" } else { "abort" };
        let live = self
            .apps
            .iter()
            .find(|r| r.app == app)
            .is_some_and(|r| r.canary.is_some());
        if !live {
            self.say(Level::Error, format!("{app} has no live canary to {verb}"));
            return Vec::new();
        }
        let args = schema::command::CanaryArgs { app: app.clone() };
        let command = if promote {
            schema::command::Command::Promote(args)
        } else {
            schema::command::Command::Abort(args)
        };
        self.ask(Pending::Capability {
            app,
            command: Box::new(command),
        })
    }

    fn ask_rollback(&mut self) -> Vec<Action> {
        let Some(app) = self.selected_app().map(str::to_string) else {
            return Vec::new();
        };
        let from = self
            .apps
            .iter()
            .find(|r| r.app == app)
            .and_then(|r| r.release);
        // In an app, with a release other than the active one selected: that one.
        let to = match (self.view(), &self.detail) {
            (View::App, Some(d)) if !d.instances_focused => d
                .releases
                .as_ref()
                .and_then(|r| r.get(d.release_sel))
                .filter(|r| r.state != ReleaseState::Active && Some(r.version) != from)
                .map(|r| r.version),
            _ => None,
        };
        // Nothing before the first release: say so rather than ask.
        if to.is_none() && from == Some(schema::Version(1)) {
            self.say(
                Level::Error,
                format!("{app} has no release before v1 to roll back to"),
            );
            return Vec::new();
        }
        self.ask(Pending::Rollback {
            app,
            to,
            from,
            target: None,
        })
    }

    /// Asks `p`. A plain rollback names the release it goes to: at once
    /// when the console has the app's releases, otherwise once they come
    /// (asked for here); with none to go to, it says so instead of asking.
    pub(super) fn ask(&mut self, mut p: Pending) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Pending::Rollback {
            app,
            to: None,
            from,
            target,
        } = &mut p
        {
            let known = self
                .detail
                .as_ref()
                .filter(|d| &d.app == app)
                .and_then(|d| d.releases.as_ref());
            match known.map(|rows| crate::ops::rollback_target(app, *from, rows)) {
                Some(Ok(v)) => *target = Some(v),
                Some(Err(e)) => {
                    self.say(Level::Error, e.reason());
                    return actions;
                }
                None => actions.push(Action::LoadReleases(app.clone())),
            }
        }
        self.mode = Mode::Confirm(p);
        actions
    }

    /// The releases of the app a plain rollback's question waits for.
    pub(super) fn releases_for_question(&mut self, app: &str, rows: &[schema::ReleaseRow]) {
        let Mode::Confirm(Pending::Rollback {
            app: asked,
            to: None,
            from,
            target: target @ None,
        }) = &mut self.mode
        else {
            return;
        };
        if asked != app {
            return;
        }
        match crate::ops::rollback_target(app, *from, rows) {
            Ok(v) => *target = Some(v),
            Err(e) => {
                self.mode = Mode::Normal;
                self.say(Level::Error, e.reason());
            }
        }
    }

    fn ask_scale(&mut self, delta: i64) {
        let Some(app) = self.selected_app().map(str::to_string) else {
            return;
        };
        let Some(from) = self.apps.iter().find(|r| r.app == app).map(|r| r.replicas) else {
            self.say(
                Level::Error,
                format!("replicas of {app} unknown: use :scale {app} N"),
            );
            return;
        };
        if delta < 0 && from == 0 {
            self.say(Level::Error, format!("{app} already wants 0 replicas"));
            return;
        }
        let to = (i64::from(from) + delta).clamp(0, i64::from(u32::MAX)) as u32;
        self.mode = Mode::Confirm(Pending::Scale {
            app,
            from: Some(from),
            to,
        });
    }

    fn confirm_key(&mut self, key: Key, mut p: Pending) -> Vec<Action> {
        match key {
            Key::Char('y' | 'Y') => return self.start(p),
            Key::Char('n' | 'N' | 'q') | Key::Esc | Key::Ctrl('c') => {
                self.say(Level::Info, format!("cancelled: {}", p.title()));
                return Vec::new();
            }
            Key::Char('+' | '=') | Key::Up => {
                if let Pending::Scale { to, .. } = &mut p {
                    *to = to.saturating_add(1);
                }
            }
            Key::Char('-' | '_') | Key::Down => {
                if let Pending::Scale { to, .. } = &mut p {
                    *to = to.saturating_sub(1);
                }
            }
            _ => {}
        }
        self.mode = Mode::Confirm(p);
        Vec::new()
    }

    fn submit_prompt(&mut self, line: &str) -> Vec<Action> {
        let line = line.trim();
        if !line.is_empty() && self.history.last().map(String::as_str) != Some(line) {
            self.history.push(line.to_string());
            if self.history.len() > 100 {
                self.history.remove(0);
            }
        }
        // Apps this console just deployed count as known before the next
        // snapshot lists them.
        let deployed: Vec<String> = self
            .ops
            .iter()
            .filter(|o| o.command == "deploy" && o.outcome.as_ref().is_some_and(|x| x.ok))
            .map(|o| o.app.clone())
            .collect();
        let cx = prompt::Context {
            role: self.role,
            front: self.front,
            apps: &self.apps,
            deployed: &deployed,
        };
        match prompt::interpret(line, &cx) {
            Intent::Overview => {
                self.stack.truncate(1);
                self.sync_follow()
            }
            Intent::OpenApp(app) => self.open_app(app),
            Intent::Logs { app, filter } => self.open_logs(app, filter),
            Intent::Audit => self.open_audit(),
            Intent::Events => self.open_events(),
            Intent::Confirm(p) => self.ask(p),
            Intent::Start(p) => self.start(p),
            Intent::Refuse(why) | Intent::Usage(why) => {
                self.say(Level::Error, why);
                Vec::new()
            }
            Intent::Help => {
                self.mode = Mode::Help { scroll: 0 };
                Vec::new()
            }
            Intent::Quit => self.quit(),
            Intent::Nothing => Vec::new(),
        }
    }
}
