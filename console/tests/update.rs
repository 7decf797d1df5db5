//! `App::update`: keys and prompt lines in, actions out.

mod common;

use common::*;
use console::app::Level;
use console::logs::{LineFilter, LogLine};
use console::ops::Pending;
use console::{Action, Event, Front, Key, Mode, Role, View};
use ops::{Progress, Step};
use schema::{Stream, Version};

/// A command as the console sends it, parsed from how it would be typed.
fn request(s: &str) -> ops::CommandLine {
    ops::parse_line(s).unwrap()
}

fn rolled_back(app: &str, from: u32, to: u32, ms: u64) -> Result<Option<ops::Reply>, ops::OpError> {
    Ok(Some(ops::Reply::RolledBack(schema::RollbackOutcome {
        app: app.into(),
        from: Some(Version(from)),
        to: Version(to),
        switch_ms: ms,
    })))
}

fn status(app: &console::App) -> String {
    app.status().map(|s| s.text.clone()).unwrap_or_default()
}

fn is_error(app: &console::App) -> bool {
    app.status().is_some_and(|s| s.level == Level::Error)
}

#[test]
fn enter_opens_the_selected_app_and_loads_its_releases_and_instances() {
    let mut app = operator();
    press(&mut app, Key::Char('j'));
    let actions = press(&mut app, Key::Enter);
    assert_eq!(
        actions,
        vec![
            Action::LoadReleases("flaky".into()),
            Action::LoadInstances("flaky".into())
        ]
    );
    assert_eq!(app.view(), View::App);
    assert_eq!(app.detail().unwrap().app, "flaky");
    press(&mut app, Key::Esc);
    assert_eq!(app.view(), View::Overview);
    assert_eq!(app.selected_app(), Some("flaky"));
}

#[test]
fn rollback_key_asks_for_confirmation_then_runs() {
    let mut app = operator();
    assert_eq!(press(&mut app, Key::Char('r')), vec![]);
    assert_eq!(
        app.mode(),
        &Mode::Confirm(Pending::Rollback {
            app: "api".into(),
            to: None,
            from: Some(Version(3))
        })
    );
    assert_eq!(
        press(&mut app, Key::Char('x')),
        vec![],
        "other keys neither confirm nor cancel"
    );
    let actions = press(&mut app, Key::Char('y'));
    assert_eq!(
        actions,
        vec![Action::Run {
            id: 1,
            request: request("rollback api")
        }]
    );
    assert_eq!(app.mode(), &Mode::Normal);
    assert!(app.operations()[0].is_running());
}

#[test]
fn declining_a_confirmation_runs_nothing() {
    for no in [Key::Char('n'), Key::Esc, Key::Ctrl('c')] {
        let mut app = operator();
        press(&mut app, Key::Char('r'));
        assert_eq!(press(&mut app, no), vec![]);
        assert_eq!(app.mode(), &Mode::Normal);
        assert!(status(&app).starts_with("cancelled: rollback api"));
        assert!(app.operations().is_empty());
        assert!(!app.should_quit());
    }
}

#[test]
fn rollback_in_an_app_targets_the_selected_older_release() {
    let mut app = operator();
    prompt(&mut app, "releases ticker");
    app.update(Event::Releases {
        app: "ticker".into(),
        rows: releases("ticker", 7),
    });
    press(&mut app, Key::Down);
    press(&mut app, Key::Down);
    press(&mut app, Key::Char('r'));
    let actions = press(&mut app, Key::Char('y'));
    assert_eq!(
        actions,
        vec![Action::Run {
            id: 1,
            request: request("rollback ticker --to v5")
        }]
    );
    // With the active release selected, the default target.
    press(&mut app, Key::Home);
    press(&mut app, Key::Char('r'));
    let Mode::Confirm(Pending::Rollback { to, .. }) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    assert_eq!(*to, None);
}

#[test]
fn scale_keys_confirm_a_count_that_can_be_adjusted() {
    let mut app = operator();
    press(&mut app, Key::Char('+'));
    assert_eq!(
        app.mode(),
        &Mode::Confirm(Pending::Scale {
            app: "api".into(),
            from: Some(3),
            to: 4
        })
    );
    press(&mut app, Key::Char('+'));
    press(&mut app, Key::Char('+'));
    press(&mut app, Key::Char('-'));
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request("scale api 5")
        }]
    );
    press(&mut app, Key::Char('-'));
    assert_eq!(
        app.mode(),
        &Mode::Confirm(Pending::Scale {
            app: "api".into(),
            from: Some(3),
            to: 2
        })
    );
}

#[test]
fn scaling_below_zero_is_refused() {
    let mut app = operator();
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: vec![app_row("idle", schema::AppKind::Job, 1, 0, 0, "idle")],
    });
    press(&mut app, Key::Char('-'));
    assert_eq!(app.mode(), &Mode::Normal);
    assert!(is_error(&app) && status(&app).contains("already wants 0 replicas"));
}

#[test]
fn prompt_commands_use_the_cli_grammar_and_ask_before_changing_anything() {
    let mut app = operator();
    assert_eq!(prompt(&mut app, "rollback ticker --to v5"), vec![]);
    assert_eq!(
        app.mode(),
        &Mode::Confirm(Pending::Rollback {
            app: "ticker".into(),
            to: Some(Version(5)),
            from: Some(Version(7))
        })
    );
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request("rollback ticker --to v5")
        }]
    );

    prompt(&mut app, "scale api 4");
    let Mode::Confirm(p) = app.mode() else {
        panic!()
    };
    assert_eq!(p.question(), "Scale api from 3 to 4 replicas?");
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 2,
            request: request("scale api 4")
        }]
    );

    prompt(&mut app, "hostd rm flaky");
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 3,
            request: request("rm flaky")
        }]
    );
}

#[test]
fn prompt_usage_errors_show_the_parsers_message_on_one_line() {
    let mut app = operator();
    prompt(&mut app, "scale api many");
    assert!(is_error(&app));
    assert!(
        status(&app).contains("invalid value 'many'"),
        "{}",
        status(&app)
    );
    assert!(!status(&app).contains('\n'));
    prompt(&mut app, "frobnicate");
    assert!(
        status(&app).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        status(&app)
    );
    prompt(&mut app, "rollback 'api");
    assert!(status(&app).contains("unterminated"), "{}", status(&app));
    assert_eq!(app.mode(), &Mode::Normal);
}

#[test]
fn prompt_read_only_commands_navigate() {
    let mut app = operator();
    assert_eq!(prompt(&mut app, "audit"), vec![Action::LoadAudit]);
    assert_eq!(app.view(), View::Audit);
    let actions = prompt(&mut app, "ps ticker");
    assert_eq!(
        actions,
        vec![
            Action::LoadReleases("ticker".into()),
            Action::LoadInstances("ticker".into())
        ]
    );
    assert_eq!(app.view(), View::App);
    let actions = prompt(&mut app, r#"logs ticker --where 'stream == "stderr"'"#);
    assert_eq!(
        actions,
        vec![Action::Follow {
            app: "ticker".into(),
            filter: Some(r#"stream == "stderr""#.into())
        }]
    );
    assert_eq!(prompt(&mut app, "hosts"), vec![Action::Unfollow]);
    assert_eq!(app.view(), View::Overview);
    prompt(&mut app, "help");
    assert_eq!(app.mode(), &Mode::Help { scroll: 0 });
}

#[test]
fn deploy_over_ssh_is_refused_with_a_clear_message() {
    let mut app = console(Role::Operator, Front::Remote);
    assert_eq!(prompt(&mut app, "deploy api /tmp/app.wasm"), vec![]);
    assert_eq!(app.mode(), &Mode::Normal);
    assert!(is_error(&app));
    assert!(
        status(&app).contains("deploy reads a file on this machine"),
        "{}",
        status(&app)
    );
    assert!(
        status(&app).contains("deploy APP - < app.wasm"),
        "{}",
        status(&app)
    );
}

#[test]
fn deploy_in_the_local_console_confirms_then_runs_the_typed_command() {
    let mut app = operator();
    prompt(&mut app, "deploy api ./build/api.wasm --replicas 2");
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?} {}", app.mode(), status(&app))
    };
    assert_eq!(
        p.question(),
        "Deploy a new release of api from ./build/api.wasm?"
    );
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request("deploy api ./build/api.wasm --replicas 2")
        }]
    );
    prompt(&mut app, "deploy api -");
    assert!(
        is_error(&app) && status(&app).contains("no stdin"),
        "{}",
        status(&app)
    );
}

#[test]
fn viewer_cannot_change_the_fleet_by_key_or_prompt() {
    let mut app = console(Role::Viewer, Front::Remote);
    for k in ['r', '+', '-'] {
        assert_eq!(press(&mut app, Key::Char(k)), vec![]);
        assert_eq!(app.mode(), &Mode::Normal);
        assert!(
            is_error(&app) && status(&app).contains("read-only console (viewer key)"),
            "{}",
            status(&app)
        );
    }
    for line in ["rollback api", "scale api 4", "rm api", "deploy api x.wasm"] {
        assert_eq!(prompt(&mut app, line), vec![], "{line}");
        assert_eq!(app.mode(), &Mode::Normal, "{line}");
        let cmd = line.split(' ').next().unwrap();
        assert!(
            status(&app).contains(&format!("{cmd} needs an operator key")),
            "{line}: {}",
            status(&app)
        );
    }
    // Reading is fine.
    assert_eq!(
        prompt(&mut app, "logs api"),
        vec![Action::Follow {
            app: "api".into(),
            filter: None
        }]
    );
    assert!(app.operations().is_empty());
}

#[test]
fn progress_and_completion_update_the_operation_and_reload_what_is_shown() {
    let mut app = operator();
    prompt(&mut app, "releases ticker");
    press(&mut app, Key::Char('r'));
    let [Action::Run { id, .. }] = press(&mut app, Key::Char('y'))[..] else {
        panic!()
    };
    app.update(Event::CommandProgress {
        id,
        progress: Progress::new(
            "host-a",
            Step::Staged {
                version: Version(6),
            },
        ),
    });
    app.update(Event::CommandProgress {
        id: id + 100,
        progress: Progress::new(
            "host-z",
            Step::Active {
                version: Version(1),
            },
        ),
    });
    assert_eq!(app.operations()[0].hosts.len(), 1);
    let actions = app.update(Event::CommandDone {
        id,
        result: rolled_back("ticker", 7, 6, 4),
    });
    assert_eq!(
        actions,
        vec![
            Action::LoadReleases("ticker".into()),
            Action::LoadInstances("ticker".into())
        ]
    );
    assert_eq!(status(&app), "ticker: v7 -> v6 in 4 ms");
    assert!(!is_error(&app));
}

#[test]
fn a_failed_command_is_reported_as_an_error_with_its_reason() {
    let mut app = operator();
    prompt(&mut app, "scale api 9");
    press(&mut app, Key::Char('y'));
    app.update(Event::CommandDone {
        id: 1,
        result: Err(ops::OpError::failed("not enough free slots on any host")),
    });
    assert!(is_error(&app));
    assert_eq!(
        status(&app),
        "scale api to 9 failed (exit 1): not enough free slots on any host"
    );
}

#[test]
fn the_progress_panel_lingers_after_the_end_then_hides_and_o_brings_it_back() {
    let mut app = operator();
    prompt(&mut app, "rollback api");
    press(&mut app, Key::Char('y'));
    assert!(app.visible_operation().is_some());
    app.update(Event::CommandDone {
        id: 1,
        result: rolled_back("api", 2, 1, 3),
    });
    app.update(Event::Tick {
        now_ms: NOW + 5_000,
    });
    assert!(app.visible_operation().is_some());
    app.update(Event::Tick {
        now_ms: NOW + 11_000,
    });
    assert!(app.visible_operation().is_none());
    press(&mut app, Key::Char('o'));
    assert!(app.visible_operation().is_some());
    press(&mut app, Key::Char('o'));
    assert!(app.visible_operation().is_none());
}

#[test]
fn opening_logs_follows_and_leaving_them_unfollows() {
    let mut app = operator();
    assert_eq!(
        press(&mut app, Key::Char('l')),
        vec![Action::Follow {
            app: "api".into(),
            filter: None
        }]
    );
    assert_eq!(app.view(), View::Logs);
    assert_eq!(
        press(&mut app, Key::Char('a')),
        vec![Action::Unfollow, Action::LoadAudit]
    );
    assert_eq!(
        press(&mut app, Key::Esc),
        vec![Action::Follow {
            app: "api".into(),
            filter: None
        }]
    );
    assert_eq!(press(&mut app, Key::Esc), vec![Action::Unfollow]);
    assert_eq!(app.view(), View::Overview);
}

#[test]
fn logs_keep_only_the_followed_apps_records_and_switching_apps_starts_over() {
    let mut app = operator();
    press(&mut app, Key::Char('l'));
    app.update(Event::LogRecords(vec![
        record("api", 1, "host-a", Stream::Stdout, "mine"),
        record(
            "ticker",
            1,
            "host-a",
            Stream::Stdout,
            "late line of another app",
        ),
    ]));
    assert_eq!(app.logs().total(), 1);
    prompt(&mut app, "logs ticker");
    assert_eq!(app.logs().total(), 0);
    assert_eq!(app.logs_app(), Some("ticker"));
}

fn logs_with(n: u64) -> console::App {
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

fn bottom_seq(app: &console::App) -> u64 {
    app.logs().visible(10).last().unwrap().seq
}

#[test]
fn pausing_the_logs_keeps_the_view_still_while_lines_arrive() {
    let mut app = logs_with(100);
    press(&mut app, Key::Char('p'));
    assert!(app.logs().is_paused());
    app.update(Event::LogRecords(vec![record(
        "api",
        101,
        "host-a",
        Stream::Stdout,
        "new",
    )]));
    assert_eq!(bottom_seq(&app), 100);
    assert_eq!(app.logs().unseen(), 1);
    press(&mut app, Key::Char('p'));
    assert_eq!(bottom_seq(&app), 101);
}

#[test]
fn scrolling_back_pauses_and_end_resumes_following() {
    let mut app = logs_with(100);
    press(&mut app, Key::Up);
    assert!(app.logs().is_paused());
    assert_eq!(bottom_seq(&app), 99);
    press(&mut app, Key::PageUp);
    let page_up = bottom_seq(&app);
    assert!(page_up < 90, "{page_up}");
    press(&mut app, Key::Char('g'));
    assert_eq!(app.logs().visible(app.logs().len()).next().unwrap().seq, 1);
    press(&mut app, Key::PageDown);
    assert!(app.logs().is_paused());
    press(&mut app, Key::End);
    assert!(!app.logs().is_paused());
    assert_eq!(bottom_seq(&app), 100);
}

#[test]
fn slash_filters_the_tail_and_esc_clears_the_filter_before_leaving() {
    let mut app = logs_with(100);
    press(&mut app, Key::Char('/'));
    type_str(&mut app, "TIMEOUT");
    press(&mut app, Key::Enter);
    assert_eq!(
        app.logs().len(),
        0,
        "upper case in the pattern makes it case-sensitive"
    );
    press(&mut app, Key::Char('/'));
    for _ in 0..7 {
        press(&mut app, Key::Backspace);
    }
    type_str(&mut app, "timeout");
    press(&mut app, Key::Enter);
    assert_eq!(app.logs().len(), 10);
    assert_eq!(app.logs().total(), 100);
    app.update(Event::LogRecords(vec![
        record("api", 101, "host-a", Stream::Stdout, "no match"),
        record("api", 102, "host-a", Stream::Stdout, "read timeout"),
    ]));
    assert_eq!(app.logs().len(), 11);
    assert_eq!(bottom_seq(&app), 102);
    assert_eq!(press(&mut app, Key::Esc), vec![]);
    assert!(app.logs().filter().is_none());
    assert_eq!(app.view(), View::Logs);
    assert_eq!(press(&mut app, Key::Esc), vec![Action::Unfollow]);
}

struct Remote(String);
impl LineFilter for Remote {
    fn matches(&self, l: &LogLine) -> bool {
        l.stream == Stream::Stderr
    }
    fn describe(&self) -> &str {
        &self.0
    }
    fn remote_expr(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

fn expr_parser(text: &str) -> Result<Box<dyn LineFilter>, String> {
    if text.contains("==") {
        Ok(Box::new(Remote(text.to_string())))
    } else {
        Err(format!("expected a comparison in {text:?}"))
    }
}

#[test]
fn a_filter_language_plugs_in_and_runs_where_records_are_made() {
    let mut app = operator().with_filter_parser(expr_parser);
    press(&mut app, Key::Char('l'));
    press(&mut app, Key::Char('/'));
    type_str(&mut app, r#"stream == "stderr""#);
    assert_eq!(
        press(&mut app, Key::Enter),
        vec![Action::Follow {
            app: "api".into(),
            filter: Some(r#"stream == "stderr""#.into())
        }]
    );
    app.update(Event::LogRecords(vec![
        record("api", 1, "h", Stream::Stdout, "a"),
        record("api", 2, "h", Stream::Stderr, "b"),
    ]));
    assert_eq!(app.logs().len(), 1);
    press(&mut app, Key::Char('/'));
    press(&mut app, Key::Ctrl('u'));
    type_str(&mut app, "nonsense");
    assert_eq!(press(&mut app, Key::Enter), vec![]);
    assert!(status(&app).contains("filter: expected a comparison"));
    assert!(
        matches!(app.mode(), Mode::Filter(_)),
        "a bad filter stays open for fixing"
    );
}

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
fn a_changed_app_reloads_its_instances_while_it_is_open() {
    let mut app = operator();
    prompt(&mut app, "ps ticker");
    assert_eq!(
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: apps()
        }),
        vec![]
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
