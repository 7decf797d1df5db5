//! `App::update`, the rest of the screen: snapshots and the selection,
//! quitting, the prompt's completion and history, help, messages, and
//! when a redraw is due.

mod common;

use common::*;
use console::{Action, Event, Key, Mode};
use schema::{Stream, Version};

#[test]
fn snapshots_keep_the_selection_on_the_same_app() {
    let mut app = operator();
    press(&mut app, Key::Char('G'));
    assert_eq!(app.selected_app(), Some("ticker"));
    let mut rows = apps();
    rows.insert(0, app_row("aaa", schema::AppKind::Http, 1, 1, 1, "running"));
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: rows,
    });
    assert_eq!(app.selected_app(), Some("ticker"));
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: vec![],
    });
    assert_eq!(app.selected_app(), None);
    assert_eq!(press(&mut app, Key::Char('r')), vec![]);
    assert_eq!(app.mode(), &Mode::Normal);
}

#[test]
fn every_snapshot_reloads_the_open_apps_instances_even_when_its_row_is_unchanged() {
    let mut app = operator();
    prompt(&mut app, "ps ticker");
    // After a rollback the app's row reads the same (v2, 2/2 running)
    // while its hosts replace v1's instances with v2's: the table must not
    // keep showing v1 until Esc/Enter.
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: apps()
        }),
        vec![Action::LoadInstances("ticker".into())]
    );
    let mut rows = apps();
    rows[2].running = 1;
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: rows.clone()
        }),
        vec![Action::LoadInstances("ticker".into())]
    );
    rows[2].release = Some(Version(8));
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: rows
        }),
        vec![
            Action::LoadInstances("ticker".into()),
            Action::LoadReleases("ticker".into())
        ]
    );
}

#[test]
fn q_quits_and_stops_following_but_not_while_typing() {
    let mut app = operator();
    press(&mut app, Key::Char(':'));
    assert_eq!(press(&mut app, Key::Char('q')), vec![]);
    assert!(!app.should_quit());
    assert_eq!(
        press(&mut app, Key::Ctrl('c')),
        vec![],
        "Ctrl-C cancels the prompt"
    );
    assert_eq!(app.mode(), &Mode::Normal);
    press(&mut app, Key::Char('l'));
    assert_eq!(
        press(&mut app, Key::Char('q')),
        vec![Action::Unfollow, Action::Quit]
    );
    assert!(app.should_quit());
    let mut app = operator();
    assert_eq!(press(&mut app, Key::Ctrl('c')), vec![Action::Quit]);
    let mut app = operator();
    assert_eq!(prompt(&mut app, "q"), vec![Action::Quit]);
}

#[test]
fn tab_completes_commands_then_app_names() {
    let mut app = operator();
    press(&mut app, Key::Char(':'));
    type_str(&mut app, "rol");
    press(&mut app, Key::Tab);
    type_str(&mut app, "ti");
    press(&mut app, Key::Tab);
    let Mode::Prompt(ed) = app.mode() else {
        panic!()
    };
    assert_eq!(ed.text(), "rollback ticker ");
    press(&mut app, Key::Ctrl('u'));
    type_str(&mut app, "r");
    press(&mut app, Key::Tab);
    assert!(
        status(&app).contains("releases") && status(&app).contains("rm"),
        "ambiguous: candidates listed"
    );
}

#[test]
fn the_prompt_remembers_earlier_lines() {
    let mut app = operator();
    prompt(&mut app, "audit");
    prompt(&mut app, "hosts");
    press(&mut app, Key::Char(':'));
    press(&mut app, Key::Up);
    press(&mut app, Key::Up);
    let Mode::Prompt(ed) = app.mode() else {
        panic!()
    };
    assert_eq!(ed.text(), "audit");
    assert_eq!(press(&mut app, Key::Enter), vec![Action::LoadAudit]);
}

#[test]
fn help_opens_with_question_mark_and_closes_with_esc() {
    let mut app = operator();
    press(&mut app, Key::Char('?'));
    assert!(matches!(app.mode(), Mode::Help { .. }));
    assert_eq!(press(&mut app, Key::Char('r')), vec![]);
    assert!(
        matches!(app.mode(), Mode::Help { .. }),
        "keys under the help do nothing"
    );
    press(&mut app, Key::End);
    let Mode::Help { scroll: max } = *app.mode() else {
        panic!()
    };
    assert!(max > 0, "at 80x24 the key list scrolls");
    press(&mut app, Key::Down);
    assert_eq!(app.mode(), &Mode::Help { scroll: max }, "not past the end");
    press(&mut app, Key::Up);
    assert_eq!(app.mode(), &Mode::Help { scroll: max - 1 });
    press(&mut app, Key::Esc);
    assert_eq!(app.mode(), &Mode::Normal);
}

#[test]
fn messages_expire_with_the_clock() {
    let mut app = operator();
    press(&mut app, Key::Char('r'));
    press(&mut app, Key::Char('n'));
    assert!(app.status().is_some());
    app.update(Event::Tick {
        now_ms: NOW + 9_000,
    });
    assert!(app.status().is_none());
}

#[test]
fn only_changes_make_the_console_dirty() {
    let mut app = logs_with(3);
    assert!(app.take_dirty());
    assert!(!app.take_dirty());
    app.update(Event::LogRecords(vec![record(
        "api",
        2,
        "host-a",
        Stream::Stdout,
        "resent",
    )]));
    assert!(!app.take_dirty(), "a resent record changes nothing");
    app.update(Event::LogRecords(vec![record(
        "api",
        4,
        "host-a",
        Stream::Stdout,
        "new",
    )]));
    assert!(app.take_dirty());
}

#[test]
fn the_open_audit_log_reloads_on_every_change() {
    let mut app = operator();
    press(&mut app, Key::Char('a'));
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: apps()
        }),
        vec![Action::LoadAudit]
    );
}

#[test]
fn an_open_hosts_instances_reload_when_the_snapshot_changes_what_runs_there() {
    let mut app = operator();
    press(&mut app, Key::Tab);
    press(&mut app, Key::Enter);
    assert_eq!(app.view(), console::View::Host);
    // The same figures: nothing to ask.
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: apps()
        }),
        vec![]
    );
    // One app on it changed: its apps' instances again.
    let mut rows = apps();
    rows[2].running = 1;
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: rows
        }),
        ["api", "flaky", "ticker"]
            .map(|a| Action::LoadInstances(a.into()))
            .to_vec()
    );
}
