//! The one keymap.
//!
//! Every single-key binding of the console is a row of [`KEYMAP`]: the app
//! looks keys up here, the `?` help draws this table, and the footer hints
//! are taken from it, so a key cannot work without being documented or be
//! documented without working.

use crate::input::Key;

/// What a key does, independent of which key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    Quit,
    Help,
    Back,
    Open,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Left,
    Right,
    SwitchPane,
    Prompt,
    Audit,
    Events,
    Logs,
    Rollback,
    Promote,
    AbortCanary,
    ScaleUp,
    ScaleDown,
    Operations,
    Pause,
    Filter,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every view.
    Global,
    /// Views with a selected app: the overview, an app, its logs, a host.
    App,
    /// Lists and tables.
    Move,
    /// The logs view.
    Logs,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "everywhere",
            Scope::App => "on the selected app",
            Scope::Move => "moving around",
            Scope::Logs => "in the logs view",
        }
    }
}

/// One row of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct KeyBinding {
    pub keys: &'static [Key],
    /// How the keys are written in the help and the footer.
    pub label: &'static str,
    pub binding: Binding,
    pub scope: Scope,
    /// Changes the fleet, so a viewer is refused.
    pub mutates: bool,
    pub help: &'static str,
    /// Short form for the footer; `None` keeps it out of the footer.
    pub hint: Option<&'static str>,
}

const fn kb(
    keys: &'static [Key],
    label: &'static str,
    binding: Binding,
    scope: Scope,
    help: &'static str,
    hint: Option<&'static str>,
) -> KeyBinding {
    KeyBinding {
        keys,
        label,
        binding,
        scope,
        mutates: false,
        help,
        hint,
    }
}

const fn mutating(mut k: KeyBinding) -> KeyBinding {
    k.mutates = true;
    k
}

use Binding as B;
use Key as K;
use Scope as S;

/// Every key, in the order the help shows them. Earlier rows win when a key
/// appears twice in scopes that are active together.
pub static KEYMAP: &[KeyBinding] = &[
    kb(
        &[K::Char('?')],
        "?",
        B::Help,
        S::Global,
        "show every key (this screen)",
        Some("help"),
    ),
    kb(
        &[K::Char(':')],
        ":",
        B::Prompt,
        S::Global,
        "command prompt: rollback APP, scale APP N, deploy APP FILE, logs APP, …",
        Some("command"),
    ),
    kb(
        &[K::Esc],
        "Esc",
        B::Back,
        S::Global,
        "back to the previous view; in logs, clear the filter first",
        Some("back"),
    ),
    kb(
        &[K::Char('q'), K::Ctrl('c')],
        "q Ctrl-C",
        B::Quit,
        S::Global,
        "quit (closes the SSH session)",
        Some("quit"),
    ),
    kb(
        &[K::Char('a')],
        "a",
        B::Audit,
        S::Global,
        "audit log, newest first: who did what, when",
        Some("audit"),
    ),
    kb(
        &[K::Char('e')],
        "e",
        B::Events,
        S::Global,
        "events: auto-rollbacks, crash loops, hosts down/up, failed deploys",
        Some("events"),
    ),
    kb(
        &[K::Char('o')],
        "o",
        B::Operations,
        S::Global,
        "show or hide the last command's progress per host",
        None,
    ),
    kb(
        &[K::Enter],
        "Enter",
        B::Open,
        S::App,
        "open the selected app, or host: what runs on it (Tab: the hosts table)",
        Some("open"),
    ),
    kb(
        &[K::Char('l')],
        "l",
        B::Logs,
        S::App,
        "live logs of the selected app across hosts",
        Some("logs"),
    ),
    mutating(kb(
        &[K::Char('r')],
        "r",
        B::Rollback,
        S::App,
        "roll back (in an app: to the selected release)",
        Some("rollback"),
    )),
    mutating(kb(
        &[K::Char('P')],
        "P",
        B::Promote,
        S::App,
        "promote the live canary now",
        None,
    )),
    mutating(kb(
        &[K::Char('A')],
        "A",
        B::AbortCanary,
        S::App,
        "abort the live canary (marked failed)",
        None,
    )),
    mutating(kb(
        &[K::Char('+'), K::Char('=')],
        "+",
        B::ScaleUp,
        S::App,
        "scale up by one replica",
        Some("scale"),
    )),
    mutating(kb(
        &[K::Char('-'), K::Char('_')],
        "-",
        B::ScaleDown,
        S::App,
        "scale down by one replica",
        None,
    )),
    kb(
        &[K::Char('/')],
        "/",
        B::Filter,
        S::Logs,
        "filter lines: an expression (status >= 500) or text (smart case)",
        Some("filter"),
    ),
    kb(
        &[K::Char(' '), K::Char('p')],
        "Space p",
        B::Pause,
        S::Logs,
        "pause or resume following",
        Some("pause"),
    ),
    kb(
        &[K::Up, K::Char('k')],
        "↑ k",
        B::Up,
        S::Move,
        "move up (in logs: scroll back, pausing)",
        None,
    ),
    kb(
        &[K::Down, K::Char('j')],
        "↓ j",
        B::Down,
        S::Move,
        "move down",
        None,
    ),
    kb(
        &[K::PageUp, K::Ctrl('b')],
        "PgUp Ctrl-B",
        B::PageUp,
        S::Move,
        "one page up",
        None,
    ),
    kb(
        &[K::PageDown, K::Ctrl('f')],
        "PgDn Ctrl-F",
        B::PageDown,
        S::Move,
        "one page down",
        None,
    ),
    kb(
        &[K::Home, K::Char('g')],
        "Home g",
        B::Top,
        S::Move,
        "first row (in logs: oldest line)",
        None,
    ),
    kb(
        &[K::End, K::Char('G')],
        "End G",
        B::Bottom,
        S::Move,
        "last row (in logs: newest line, resume following)",
        None,
    ),
    kb(
        &[K::Left, K::Char('h')],
        "← h",
        B::Left,
        S::Logs,
        "scroll long lines left",
        None,
    ),
    kb(
        &[K::Right],
        "→",
        B::Right,
        S::Logs,
        "scroll long lines right",
        None,
    ),
    kb(
        &[K::Tab, K::BackTab],
        "Tab",
        B::SwitchPane,
        S::Move,
        "switch between the two tables of a view",
        None,
    ),
];

/// The binding of `key` among the scopes active in the current view.
pub fn lookup(key: Key, scopes: &[Scope]) -> Option<&'static KeyBinding> {
    KEYMAP
        .iter()
        .find(|b| scopes.contains(&b.scope) && b.keys.contains(&key))
}

/// The footer's hints for these scopes: `key label` pairs, most useful first.
/// A viewer is not shown keys it may not use.
pub fn hints(scopes: &[Scope], read_only: bool) -> Vec<(&'static str, &'static str)> {
    KEYMAP
        .iter()
        .filter(|b| scopes.contains(&b.scope) && !(read_only && b.mutates))
        .filter_map(|b| {
            b.hint
                .map(|h| (b.label.split(' ').next().unwrap_or(b.label), h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_in_scopes_that_are_active_together() {
        let together = [
            vec![S::Global, S::App, S::Move],
            vec![S::Global, S::App, S::Move, S::Logs],
            vec![S::Global, S::Move],
        ];
        for scopes in together {
            let mut seen = std::collections::HashSet::new();
            for b in KEYMAP.iter().filter(|b| scopes.contains(&b.scope)) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k:?} bound twice in {scopes:?}");
                }
            }
        }
    }
}

/// One line of the `?` screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpLine {
    /// A warning above everything (a viewer's read-only console).
    Note(&'static str),
    /// What whoever started this console wants it to say first (the demo:
    /// how to reach its fleet with ssh, where its keys are).
    Text(String),
    Title(String),
    /// A key (padded to the widest) or a `:` command, and what it does.
    Entry {
        key: String,
        help: String,
    },
}

/// The `?` screen, for a console that may change the fleet or not: every
/// row of [`KEYMAP`] by scope, then the `:` prompt's commands. The app
/// bounds its scrolling by this list's length; `ui` draws it.
pub fn help_lines(read_only: bool, notes: &[String], width: u16) -> Vec<HelpLine> {
    let mut lines = Vec::new();
    if read_only {
        lines.push(HelpLine::Note(
            "read-only console (viewer key): keys marked [operator] are refused",
        ));
    }
    if !notes.is_empty() {
        lines.push(HelpLine::Title("this fleet".to_string()));
        // Wrapped to the panel (a command cut short cannot be copied).
        let room = usize::from(crate::layout::help_inner_width(width).saturating_sub(2)).max(10);
        for n in notes {
            let chars: Vec<char> = n.chars().collect();
            for piece in chars.chunks(room) {
                lines.push(HelpLine::Text(piece.iter().collect()));
            }
        }
    }
    let label_w = KEYMAP
        .iter()
        .map(|k| k.label.chars().count())
        .max()
        .unwrap_or(8);
    for scope in [Scope::Global, Scope::App, Scope::Logs, Scope::Move] {
        lines.push(HelpLine::Title(scope.title().to_string()));
        for k in KEYMAP.iter().filter(|k| k.scope == scope) {
            let mut help = k.help.to_string();
            if k.mutates {
                help.push_str(" [operator]");
            }
            lines.push(HelpLine::Entry {
                key: format!("{:label_w$}", k.label),
                help,
            });
        }
    }
    lines.push(HelpLine::Title("the : prompt (CLI.md grammar)".to_string()));
    for (cmd, what) in [
        ("rollback APP [--to vN]", "confirm, then progress per host"),
        ("scale APP N", "confirm, then progress per host"),
        (
            "deploy APP FILE",
            "local console only: FILE is read on this machine",
        ),
        (
            "restart APP",
            "confirm; fresh instances, a crash loop cleared",
        ),
        ("rm APP", "confirm; releases stay in the audit log"),
        ("logs APP [--where EXPR]", "open the logs view"),
        ("ps [APP] | releases APP", "open the overview or an app"),
        ("hosts | audit | help | q", ""),
    ] {
        lines.push(HelpLine::Entry {
            key: format!(":{cmd}"),
            help: what.to_string(),
        });
    }
    lines
}
