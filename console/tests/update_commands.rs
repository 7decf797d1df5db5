//! `App::update`, commands: keys and prompt lines that change the fleet
//! ask first, run as typed commands, and show their progress and end.

mod common;

use common::*;
use console::ops::Pending;
use console::{Action, Event, Front, Key, Mode, Role, View};
use ops::{Progress, Step};
use schema::Version;

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
    // The releases are asked for, to name the one it goes to.
    assert_eq!(
        press(&mut app, Key::Char('r')),
        vec![Action::LoadReleases("api".into())]
    );
    assert_eq!(
        app.mode(),
        &Mode::Confirm(Pending::Rollback {
            app: "api".into(),
            to: None,
            from: Some(Version(3)),
            target: None,
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
        apps: vec![app_row("idle", schema::AppKind::Job, 1, 0, 0, "scheduled")],
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
            from: Some(Version(7)),
            target: None,
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
            request: request("rm flaky --confirm flaky")
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
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("api.wasm");
    std::fs::write(&wasm, b"\0asm").expect("write");
    let path = wasm.display().to_string();
    let mut app = operator();
    // A file that is not there is said before anything is asked.
    prompt(&mut app, "deploy api ./no/such/api.wasm");
    assert!(matches!(app.mode(), Mode::Normal), "{:?}", app.mode());
    assert!(
        status(&app).contains("no such file: ./no/such/api.wasm"),
        "{}",
        status(&app)
    );
    prompt(&mut app, &format!("deploy api {path} --replicas 2"));
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?} {}", app.mode(), status(&app))
    };
    // api runs a release: its env is replaced, and the question says so.
    assert_eq!(
        p.question(),
        format!(
            "Deploy a new release of api from {path}? It will have no env, replacing the running release's (--keep-env keeps it)."
        )
    );
    press(&mut app, Key::Char('n'));
    prompt(&mut app, &format!("deploy api {path} --env A=1 --env B=2"));
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    assert!(
        p.question().ends_with(
            "Its env will be A, B only, replacing the running release's (--keep-env keeps it)."
        ),
        "{}",
        p.question()
    );
    press(&mut app, Key::Char('n'));
    // Kept, or a new app: nothing to say.
    for line in [
        format!("deploy api {path} --keep-env --env A=1"),
        format!("deploy newapp {path}"),
    ] {
        prompt(&mut app, &line);
        let Mode::Confirm(p) = app.mode() else {
            panic!("{:?}", app.mode())
        };
        assert!(p.question().ends_with(".wasm?"), "{}", p.question());
        press(&mut app, Key::Char('n'));
    }
    prompt(&mut app, &format!("deploy api {path} --replicas 2"));
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request(&format!("deploy api {path} --replicas 2"))
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
fn confirmations_say_roll_forward_pluralise_and_no_rollback_is_offered_before_v1() {
    let mut app = operator();
    prompt(&mut app, "scale api 1");
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    assert_eq!(p.question(), "Scale api from 3 to 1 replica?");
    press(&mut app, Key::Char('n'));
    prompt(&mut app, "rollback ticker --to v9");
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    assert_eq!(p.question(), "Roll forward ticker from v7 to v9?");
    press(&mut app, Key::Char('n'));
    // An app at its first release: `r` says there is nothing before it.
    let mut rows = apps();
    rows[0].release = Some(schema::Version(1));
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: rows,
    });
    press(&mut app, Key::Char('r'));
    assert!(matches!(app.mode(), Mode::Normal), "{:?}", app.mode());
    assert!(
        status(&app).contains("no release before v1"),
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
        "scale api to 9: not enough free slots on any host"
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
fn config_and_kv_changes_ask_first_and_reads_run_at_once_and_a_viewer_changes_nothing() {
    let mut app = operator();
    assert_eq!(
        prompt(&mut app, "config set api PW=hunter2 --secret"),
        vec![]
    );
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    // The question names keys, never a value.
    assert_eq!(
        p.question(),
        "Set PW on api as secrets? A new release of the same code."
    );
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request("config set api PW=hunter2 --secret")
        }]
    );
    // Reads run without a question.
    assert_eq!(
        prompt(&mut app, "kv api get visits"),
        vec![Action::Run {
            id: 2,
            request: request("kv api get visits")
        }]
    );
    assert_eq!(
        prompt(&mut app, "info api"),
        vec![Action::Run {
            id: 3,
            request: request("info api")
        }]
    );
    prompt(&mut app, "kv api del visits");
    assert!(matches!(app.mode(), Mode::Confirm(_)));

    let mut v = console(Role::Viewer, Front::Remote);
    assert_eq!(prompt(&mut v, "config set api A=1"), vec![]);
    assert!(!matches!(v.mode(), Mode::Confirm(_)));
    assert!(
        status(&v).contains("config needs an operator key"),
        "{}",
        status(&v)
    );
    assert_eq!(prompt(&mut v, "kv api list").len(), 1, "a viewer may list");
}

#[test]
fn restart_asks_naming_the_release_and_an_unknown_app_is_refused_before_asking() {
    let mut app = operator();
    prompt(&mut app, "restart flaky");
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    assert_eq!(
        p.question(),
        "Restart flaky v4 on every host, clearing its crash loop?"
    );
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request("restart flaky")
        }]
    );
    prompt(&mut app, "restart nope");
    assert!(matches!(app.mode(), Mode::Normal), "{:?}", app.mode());
    assert!(
        status(&app).contains("unknown app \"nope\""),
        "{}",
        status(&app)
    );
}

#[test]
fn the_prompt_refuses_an_unknown_app_and_a_negative_count_before_asking_or_opening_anything() {
    let mut app = operator();
    for line in [
        "releases nope",
        "scale nope 3",
        "rollback nope",
        "logs nope",
    ] {
        prompt(&mut app, line);
        assert!(
            matches!(app.mode(), Mode::Normal),
            "{line}: {:?}",
            app.mode()
        );
        assert!(
            status(&app).contains("unknown app \"nope\""),
            "{line}: {}",
            status(&app)
        );
    }
    prompt(&mut app, "scale ticker -1");
    assert!(matches!(app.mode(), Mode::Normal));
    assert!(
        status(&app).contains("replicas are a count: 0 (stopped) or more"),
        "{}",
        status(&app)
    );
    assert!(!status(&app).contains("-- -1"), "{}", status(&app));
}

#[test]
fn a_plain_rollback_names_the_release_it_goes_to_and_asks_for_that_one() {
    // From the overview: asked for the releases, named once they come.
    let mut app = operator();
    assert_eq!(
        press(&mut app, Key::Char('r')),
        vec![Action::LoadReleases("api".into())]
    );
    let mut rows = releases("api", 3);
    rows[1].state = schema::ReleaseState::Failed; // v2
    app.update(Event::Releases {
        app: "api".into(),
        rows,
    });
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    // Not the failed v2: the release a rollback goes to.
    assert_eq!(p.question(), "Roll back api from v3 to v1?");
    assert_eq!(
        press(&mut app, Key::Char('y')),
        vec![Action::Run {
            id: 1,
            request: request("rollback api --to v1")
        }]
    );
    assert_eq!(status(&app), "running: rollback api to v1");

    // In the app's view, the releases are known: named at once.
    let mut app = operator();
    prompt(&mut app, "releases ticker");
    app.update(Event::Releases {
        app: "ticker".into(),
        rows: releases("ticker", 7),
    });
    assert_eq!(prompt(&mut app, "rollback ticker"), vec![]);
    let Mode::Confirm(p) = app.mode() else {
        panic!("{:?}", app.mode())
    };
    assert_eq!(p.question(), "Roll back ticker from v7 to v6?");

    // No healthy release before the active one: said instead of asked.
    let mut app = operator();
    press(&mut app, Key::Char('r'));
    let mut rows = releases("api", 3);
    rows[0].state = schema::ReleaseState::Failed;
    rows[1].state = schema::ReleaseState::Failed;
    app.update(Event::Releases {
        app: "api".into(),
        rows,
    });
    assert_eq!(app.mode(), &Mode::Normal);
    assert!(is_error(&app), "{}", status(&app));
    assert!(
        status(&app).starts_with("api has no earlier healthy release to roll back to"),
        "{}",
        status(&app)
    );
}
