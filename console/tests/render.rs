//! Every view rendered into a TestBackend at 80×24 and 160×48 (and smaller),
//! read back as text and styles.

mod common;

use common::*;
use console::{Event, Front, Key, Role};
use ops::{Progress, Step};
use ratatui::style::{Color, Modifier};
use schema::Stream;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn ticker_detail(app: &mut console::App) {
    prompt(app, "releases ticker");
    app.update(Event::Releases {
        app: "ticker".into(),
        rows: releases("ticker", 7),
    });
    app.update(Event::Instances {
        app: "ticker".into(),
        rows: instances("ticker"),
    });
}

fn logs_of_ticker(app: &mut console::App) {
    prompt(app, "logs ticker");
    app.update(Event::LogRecords(vec![
        record(
            "ticker",
            1,
            "host-a",
            Stream::Stdout,
            "tick: 42 quotes refreshed",
        ),
        record(
            "ticker",
            1,
            "host-b",
            Stream::Stderr,
            "upstream timeout after 5000ms",
        ),
        record(
            "ticker",
            2,
            "host-a",
            Stream::System,
            "instance ticker-0 started",
        ),
    ]));
}

#[test]
fn overview_shows_hosts_and_apps_at_a_glance() {
    for (w, h) in SIZES {
        let buf = render(&mut operator(), w, h);
        let s = screen(&buf);
        for needle in [
            "hosts (2)",
            "host-a",
            "host-b",
            "down",
            "2s ago",
            "256Mi",
            "apps (3)",
            "api",
            "flaky",
            "crashloop",
            "3/3",
            "1/2",
            "v7",
            "RUN/WANT",
            "REQ/S",
            "ops@gw:2222",
            "operator",
        ] {
            assert!(s.contains(needle), "{w}x{h}: {needle:?} missing in\n{s}");
        }
    }
}

#[test]
fn overview_at_160_columns_shows_labels_hosts_and_details() {
    let s = screen(&render(&mut operator(), 160, 48));
    for needle in [
        "LABELS",
        "region=eu-west",
        "ARCH",
        "aarch64",
        "HOSTS",
        "host-a,host-b",
        "exit 101 after 2s",
    ] {
        assert!(s.contains(needle), "{needle:?} missing in\n{s}");
    }
}

#[test]
fn request_rates_show_where_known_and_a_dash_elsewhere() {
    let mut app = operator();
    app.update(Event::RequestRates(
        [("api".to_string(), 123.45)].into_iter().collect(),
    ));
    let buf = render(&mut app, 160, 48);
    let l = lines(&buf);
    let api = l.iter().find(|l| l.contains(" api ")).unwrap();
    assert!(api.contains("123.5"), "{api}");
    let ticker = l.iter().find(|l| l.contains("ticker")).unwrap();
    assert!(ticker.split_whitespace().any(|w| w == "-"), "{ticker}");
}

#[test]
fn narrow_overview_drops_minor_columns_and_cuts_details_with_an_ellipsis() {
    let buf = render(&mut operator(), 80, 24);
    let s = screen(&buf);
    assert!(
        !s.contains("HOSTS "),
        "HOSTS should be dropped at 80 columns:\n{s}"
    );
    let flaky = lines(&buf)
        .into_iter()
        .find(|l| l.contains("flaky"))
        .unwrap();
    assert!(
        flaky.contains("exit 101") && flaky.trim_end().ends_with('…'),
        "{flaky}"
    );

    let s = screen(&render(&mut operator(), 40, 16));
    for gone in ["LABELS", "ARCH", "KIND", "REQ/S"] {
        assert!(
            !s.contains(gone),
            "{gone} should be dropped at 40 columns:\n{s}"
        );
    }
    for kept in ["host-a", "down", "api", "v3", "3/3"] {
        assert!(s.contains(kept), "{kept} missing at 40 columns:\n{s}");
    }
}

#[test]
fn every_cut_value_ends_in_an_ellipsis_and_the_header_keeps_its_clock() {
    let mut app = operator();
    app.update(Event::Connected {
        gateway: "alice@gateway-eu-west-1.example.com:2222".into(),
    });
    let mut rows = apps();
    let mut job = app_row("nightly", schema::AppKind::Job, 1, 1, 0, "scheduled");
    job.next_run = Some(common::at(-60_000));
    job.detail = Some("exit 0 after 3ms".into());
    rows.push(job);
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: rows,
    });
    // The header at 80×24: the clock whole, the gateway's name cut with `…`.
    let s = screen(&render(&mut app, 80, 24));
    let head = s.lines().next().unwrap();
    assert!(head.trim_end().ends_with("| 10:00:00"), "{head}");
    assert!(head.contains(" alice@gateway-eu-w… | operator"), "{head}");
    // A pane's title, at the narrowest.
    press(&mut app, Key::Char('e'));
    let s = screen(&render(&mut app, 40, 16));
    assert!(
        s.contains(" events (0, newest first; a: the whole… "),
        "{s}"
    );
    press(&mut app, Key::Esc);
    // The app view: its summary line cut, a job's next run relative.
    prompt(&mut app, "releases nightly");
    app.update(Event::Instances {
        app: "nightly".into(),
        rows: vec![schema::PsRow {
            instance: Some("nightly.run-210".into()),
            host: "host-a".into(),
            next_run: Some(common::at(-60_000)),
            ..app_row("nightly", schema::AppKind::Job, 1, 1, 1, "running")
        }],
    });
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.contains("nightly.run-210") && s.contains("next run in 60s"),
        "{s}"
    );
    assert!(!s.contains("2026-01-02T"), "{s}");
    let s = screen(&render(&mut app, 40, 16));
    let summary = s.lines().nth(1).unwrap();
    assert!(summary.ends_with('…'), "{summary:?}");
    // The logs view: a long host name, instance and line, each cut with `…`.
    prompt(&mut app, "logs ticker");
    let long = format!("START{}END", "x".repeat(300));
    let mut rec = record(
        "ticker",
        1,
        "a-very-long-host-name-in-eu-west-1",
        Stream::Stdout,
        &long,
    );
    rec.instance = "ticker.worker-0123456789".into();
    app.update(Event::LogRecords(vec![rec]));
    for (w, h) in SIZES {
        let s = screen(&render(&mut app, w, h));
        let row = s.lines().find(|l| l.contains("START")).unwrap();
        assert!(row.contains("a-very-long-host-name-i… "), "{w}: {row}");
        assert!(row.ends_with("x…"), "{w}: {row}");
        if w >= 120 {
            assert!(row.contains("ticker.work… "), "{w}: {row}");
        }
    }
    // A long error is not cut: it takes the hints' row, what to do last.
    let why = "ticker v8 failed on host-a (health check GET /healthz returned 500); \
               rolled back to v7 on every host; `releases ticker` shows why it failed";
    app.update(Event::Error(why.into()));
    let s = screen(&render(&mut app, 80, 24));
    let tail: String = s.lines().rev().take(2).collect::<Vec<_>>().join(" ");
    assert!(tail.contains("shows why it failed"), "{s}");
    // Longer than both rows: cut at the end of the second, with `…`.
    app.update(Event::Error(why.repeat(3)));
    let s = screen(&render(&mut app, 80, 24));
    let last = s.lines().last().unwrap().trim_end();
    assert!(last.ends_with('…'), "{s}");
}

#[test]
fn selection_is_reversed_and_marked_not_just_coloured() {
    let mut app = operator();
    press(&mut app, Key::Down);
    let buf = render(&mut app, 80, 24);
    let y = row_of(&buf, "flaky").unwrap();
    assert!(lines(&buf)[y as usize].starts_with("> flaky"));
    assert!(buf[(3, y)].modifier.contains(Modifier::REVERSED));
    let api = row_of(&buf, " api ").unwrap();
    assert!(!buf[(3, api)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn monochrome_console_uses_no_colour_but_keeps_emphasis() {
    let mut app = operator().with_color(false);
    ticker_detail(&mut app);
    for buf in [render(&mut app, 80, 24), {
        press(&mut app, Key::Esc);
        render(&mut app, 80, 24)
    }] {
        let a = buf.area;
        for y in 0..a.height {
            for x in 0..a.width {
                assert_eq!(
                    buf[(x, y)].fg,
                    Color::Reset,
                    "colour at {x},{y}:\n{}",
                    screen(&buf)
                );
            }
        }
    }
    let buf = render(&mut app, 80, 24);
    let down = row_of(&buf, "host-b").unwrap();
    let x = lines(&buf)[down as usize].find("down").unwrap() as u16;
    assert!(
        buf[(x, down)].modifier.contains(Modifier::BOLD),
        "a down host stands out without colour"
    );
}

#[test]
fn app_view_shows_releases_and_instances_grouped_by_host() {
    for (w, h) in SIZES {
        let mut app = operator();
        ticker_detail(&mut app);
        let buf = render(&mut app, w, h);
        let s = screen(&buf);
        for needle in [
            "releases of ticker",
            "v7",
            "v1",
            "active",
            "superseded",
            "alice",
            "sha256:075e5e5e5e5e",
            "instances per host (3)",
            "ticker-0",
            "ticker-2",
        ] {
            assert!(s.contains(needle), "{w}x{h}: {needle:?} missing in\n{s}");
        }
        // Newest release first, selected.
        let v7 = row_of(&buf, "> v7 ").expect("v7 selected");
        assert!(row_of(&buf, "  v6 ").unwrap() > v7);
        // host-a's two instances name the host once.
        let host_a_rows = lines(&buf).iter().filter(|l| l.contains("host-a")).count();
        assert_eq!(host_a_rows, 1, "{s}");
    }
}

#[test]
fn app_view_says_loading_until_rows_arrive() {
    let mut app = operator();
    prompt(&mut app, "ps ticker");
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.contains("loading releases…") && s.contains("loading instances…"),
        "{s}"
    );
}

#[test]
fn logs_view_shows_host_stream_and_line_with_more_detail_when_wide() {
    let mut app = operator();
    logs_of_ticker(&mut app);
    let s = screen(&render(&mut app, 80, 24));
    for needle in [
        "logs ticker | following | 3 lines",
        "10:00:00.000",
        "host-a out tick: 42 quotes",
        "host-b err upstream timeout",
        "sys instance ticker-0",
    ] {
        assert!(s.contains(needle), "80x24: {needle:?} missing in\n{s}");
    }
    assert!(
        !s.contains("ticker-0 out"),
        "no instance column at 80 columns:\n{s}"
    );
    let s = screen(&render(&mut app, 160, 48));
    assert!(s.contains("host-a v7   ticker-0     out tick: 42"), "{s}");
    let s = screen(&render(&mut app, 50, 12));
    assert!(
        !s.contains("10:00:00.000") && s.contains("host-a out tick"),
        "{s}"
    );
}

#[test]
fn logs_view_truncates_long_lines_and_scrolls_them_sideways() {
    let mut app = operator();
    prompt(&mut app, "logs ticker");
    let long = format!("START{}END", "x".repeat(300));
    app.update(Event::LogRecords(vec![record(
        "ticker",
        1,
        "host-a",
        Stream::Stdout,
        &long,
    )]));
    let buf = render(&mut app, 80, 24);
    let row = lines(&buf)
        .into_iter()
        .find(|l| l.contains("START"))
        .unwrap();
    assert_eq!(row.chars().count(), 80);
    assert!(!row.contains("END"));
    for _ in 0..40 {
        press(&mut app, Key::Right);
    }
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.contains("END") && !s.contains("START") && s.contains("col +"),
        "{s}"
    );
}

#[test]
fn logs_view_title_says_paused_and_counts_new_and_filtered_lines() {
    let mut app = operator();
    logs_of_ticker(&mut app);
    press(&mut app, Key::Char(' '));
    app.update(Event::LogRecords(vec![record(
        "ticker",
        3,
        "host-a",
        Stream::Stdout,
        "more",
    )]));
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("PAUSED +1 new"), "{s}");
    press(&mut app, Key::Char('/'));
    type_str(&mut app, "timeout");
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.lines().any(|l| l.starts_with("/timeout")),
        "filter being typed shows in the status line:\n{s}"
    );
    press(&mut app, Key::Enter);
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("/timeout 1 of 4"), "{s}");
    assert!(
        s.contains("upstream timeout") && !s.contains("quotes refreshed"),
        "{s}"
    );
}

#[test]
fn audit_view_lists_newest_first() {
    // The CLI's `audit` lists oldest first: the view and `?` say the order.
    let mut app = operator();
    press(&mut app, Key::Char('?'));
    let s = screen(&render(&mut app, 160, 48));
    assert!(s.contains("audit log, newest first: who did what"), "{s}");
    for (w, h) in SIZES {
        let mut app = operator();
        press(&mut app, Key::Char('a'));
        app.update(Event::Audit(audit().into_iter().rev().collect()));
        let buf = render(&mut app, w, h);
        let s = screen(&buf);
        assert!(
            s.contains("audit (2, newest first)") && s.contains("alice") && s.contains("v7 -> v6"),
            "{s}"
        );
        assert!(
            row_of(&buf, "rollback").unwrap() < row_of(&buf, "ci-deploy").unwrap(),
            "{s}"
        );
        assert!(s.contains("2026-01-02 09:59:00"), "{s}");
    }
}

#[test]
fn confirmation_dialog_names_the_change_and_the_keys() {
    for (w, h) in SIZES {
        let mut app = operator();
        press(&mut app, Key::Char('G'));
        press(&mut app, Key::Char('r'));
        let s = screen(&render(&mut app, w, h));
        assert!(s.contains("confirm rollback"), "{s}");
        assert!(s.contains("Roll back ticker from v7 to the release"), "{s}");
        assert!(s.contains("y yes") && s.contains("n no"), "{s}");
        // The releases it asked for name the one it goes to.
        app.update(Event::Releases {
            app: "ticker".into(),
            rows: releases("ticker", 7),
        });
        let s = screen(&render(&mut app, w, h));
        assert!(s.contains("Roll back ticker from v7 to v6?"), "{s}");
    }
}

#[test]
fn progress_panel_shows_each_host_live_then_the_outcome() {
    for (w, h) in SIZES {
        let mut app = operator();
        prompt(&mut app, "rollback ticker");
        let id = match press(&mut app, Key::Char('y')).as_slice() {
            [console::Action::Run { id, .. }] => *id,
            other => panic!("{other:?}"),
        };
        let s = screen(&render(&mut app, w, h));
        assert!(
            s.contains("rollback ticker")
                && s.contains("running")
                && s.contains("waiting for the first host"),
            "{s}"
        );
        let v6 = schema::Version(6);
        app.update(Event::CommandProgress {
            id,
            progress: Progress::new("host-a", Step::Fetching { offset: 0, size: 9 }),
        });
        app.update(Event::CommandProgress {
            id,
            progress: Progress::new(
                "host-b",
                Step::Failed {
                    reason: "artifact digest mismatch".into(),
                },
            ),
        });
        app.update(Event::CommandProgress {
            id,
            progress: Progress::new("host-a", Step::Active { version: v6 }),
        });
        let s = screen(&render(&mut app, w, h));
        assert!(
            s.contains("host-a  active v6") && !s.contains("fetching"),
            "{s}"
        );
        assert!(s.contains("FAILED: artifact digest mismatch"), "{s}");
        app.update(Event::CommandDone {
            id,
            result: Ok(Some(ops::Reply::RolledBack(schema::RollbackOutcome {
                app: "ticker".into(),
                from: Some(schema::Version(7)),
                to: v6,
                switch_ms: 3,
            }))),
        });
        let s = screen(&render(&mut app, w, h));
        assert!(s.contains("done: ticker: v7 -> v6 in 3 ms"), "{s}");
        // The outcome and every host's row, not the outcome in place of one.
        assert!(
            s.contains("host-a  active v6") && s.contains("host-b  FAILED"),
            "{w}x{h}:\n{s}"
        );
    }
}

#[test]
fn a_failed_command_says_why_once_with_one_error_prefix() {
    for (w, h) in SIZES {
        let mut app = operator();
        prompt(&mut app, "rollback ticker");
        let id = match press(&mut app, Key::Char('y')).as_slice() {
            [console::Action::Run { id, .. }] => *id,
            other => panic!("{other:?}"),
        };
        app.update(Event::CommandProgress {
            id,
            progress: Progress::new(
                "host-b",
                Step::Failed {
                    reason: "health check GET /healthz returned 500".into(),
                },
            ),
        });
        let why = "ticker v6 failed on host-b";
        app.update(Event::CommandDone {
            id,
            result: Err(ops::OpError::failed(format!(
                "error: {why} (health check GET /healthz returned 500); rolled back to v7 on every host"
            ))),
        });
        let s = screen(&render(&mut app, w, h));
        assert_eq!(s.matches("error:").count(), 1, "{w}x{h}:\n{s}");
        assert_eq!(s.matches(why).count(), 1, "{w}x{h}:\n{s}");
        assert!(
            s.contains("error: rollback ticker: ticker v6"),
            "{w}x{h}:\n{s}"
        );
        // The panel says that it failed and each host's step; the status
        // line below says why.
        assert!(
            s.contains("FAILED (exit 1)") && s.contains("host-b  FAILED: health check"),
            "{w}x{h}:\n{s}"
        );
        // Once the status line has moved on, the panel (brought back with
        // `o`) says why itself.
        app.update(Event::Tick {
            now_ms: NOW + 60_000,
        });
        press(&mut app, Key::Char('o'));
        let s = screen(&render(&mut app, w, h));
        assert!(
            s.contains("FAILED (exit 1): rollback ticker: ticker v6") && !s.contains("error:"),
            "{w}x{h}:\n{s}"
        );
    }
}

#[test]
fn enter_on_the_hosts_table_opens_the_host_with_its_apps_and_instances_and_esc_goes_back() {
    for (w, h) in SIZES {
        let mut app = operator();
        let mut rows = apps();
        rows[0].host = "host-a".into(); // api
        rows[1].host = "host-b".into(); // flaky
        rows[2].hosts = vec!["host-a".into(), "host-b".into()]; // ticker
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: rows,
        });
        press(&mut app, Key::Tab);
        let actions = press(&mut app, Key::Enter);
        assert_eq!(
            actions,
            vec![
                console::Action::LoadInstances("api".into()),
                console::Action::LoadInstances("ticker".into())
            ]
        );
        assert_eq!(app.view(), console::View::Host);
        let s = screen(&render(&mut app, w, h));
        for needle in [
            "host-a  up  x86_64  last seen 2s ago",
            "apps (2) and instances (0) on host-a",
            "loading instances…",
        ] {
            assert!(s.contains(needle), "{w}x{h}: {needle:?} in\n{s}");
        }
        assert!(!s.contains("flaky"), "flaky is not on host-a:\n{s}");
        // Each app's instances: only those on this host.
        app.update(Event::Instances {
            app: "ticker".into(),
            rows: instances("ticker"),
        });
        app.update(Event::Instances {
            app: "api".into(),
            rows: vec![],
        });
        let s = screen(&render(&mut app, w, h));
        assert!(
            s.contains("ticker-1") && s.contains("ticker-2") && !s.contains("ticker-0"),
            "{w}x{h}:\n{s}"
        );
        assert!(s.contains("apps (2) and instances (2) on host-a"), "{s}");
        assert!(s.contains("none in flight now"), "{w}x{h}:\n{s}");
        // The keys of an app act on the selected row's app.
        assert_eq!(app.selected_app(), Some("api"));
        press(&mut app, Key::Down);
        assert_eq!(app.selected_app(), Some("ticker"));
        press(&mut app, Key::Esc);
        assert_eq!(app.view(), console::View::Overview);
    }
    // `?` says how.
    let mut app = operator();
    press(&mut app, Key::Char('?'));
    let s = screen(&render(&mut app, 160, 48));
    assert!(s.contains("open the selected app, or host"), "{s}");
}

#[test]
fn help_lists_every_key_and_marks_operator_only_ones() {
    let mut app = operator();
    press(&mut app, Key::Char('?'));
    let s = screen(&render(&mut app, 160, 48));
    for k in console::keys::KEYMAP {
        assert!(s.contains(k.help), "{:?} missing from help:\n{s}", k.help);
    }
    assert!(
        s.contains("roll back (in an app: to the selected release) [operator]"),
        "{s}"
    );
    // At 80×24 it does not fit: it scrolls.
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.contains("show every key") && !s.contains("hosts | audit"),
        "{s}"
    );
    for _ in 0..40 {
        press(&mut app, Key::Down);
    }
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("hosts | audit"), "{s}");
}

#[test]
fn viewer_console_says_read_only_and_hides_mutating_hints() {
    let mut app = console(Role::Viewer, Front::Remote);
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("viewer: read-only"), "{s}");
    assert!(!s.contains("rollback") && s.contains("logs"), "{s}");
    press(&mut app, Key::Char('r'));
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.contains("error: read-only console (viewer key): rollback needs an operator key"),
        "{s}"
    );
}

#[test]
fn prompt_line_shows_what_is_typed_with_the_cursor_on_it() {
    let mut app = operator();
    press(&mut app, Key::Char(':'));
    type_str(&mut app, "scale api 4");
    app.update(Event::Resize {
        width: 80,
        height: 24,
    });
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    t.draw(|f| console::ui::draw(&app, f)).unwrap();
    let s = screen(t.backend().buffer());
    assert!(s.lines().any(|l| l.starts_with(":scale api 4")), "{s}");
    assert_eq!(
        t.get_cursor_position().unwrap(),
        ratatui::layout::Position { x: 12, y: 22 }
    );
}

#[test]
fn disconnected_console_marks_its_data_stale() {
    let mut app = operator();
    app.update(Event::Disconnected("gateway closed the connection".into()));
    let s = screen(&render(&mut app, 80, 24));
    assert!(
        s.contains("DISCONNECTED (stale)") && s.contains("error: disconnected: gateway closed"),
        "{s}"
    );
}

#[test]
fn tiny_terminal_says_it_is_too_small() {
    let s = screen(&render(&mut operator(), 20, 5));
    assert!(s.contains("too small"), "{s}");
}

#[test]
fn no_view_or_overlay_panics_at_any_small_size() {
    let mut states: Vec<console::App> = Vec::new();
    states.push(operator());
    let mut a = operator();
    ticker_detail(&mut a);
    states.push(a);
    let mut a = operator();
    logs_of_ticker(&mut a);
    states.push(a);
    let mut a = operator();
    press(&mut a, Key::Char('a'));
    a.update(Event::Audit(audit()));
    states.push(a);
    let mut a = operator();
    press(&mut a, Key::Char('?'));
    states.push(a);
    let mut a = operator();
    prompt(&mut a, "scale flaky 9");
    states.push(a);
    let mut a = operator();
    prompt(&mut a, "rollback api");
    press(&mut a, Key::Char('y'));
    a.update(Event::CommandProgress {
        id: 1,
        progress: Progress::new("host-a", Step::Fetched { percent: 50 }),
    });
    states.push(a);
    let mut a = operator();
    press(&mut a, Key::Char(':'));
    type_str(&mut a, &"x".repeat(200));
    states.push(a);
    for app in &mut states {
        for w in (1..=60).step_by(3) {
            for h in 1..=16 {
                render(app, w, h);
            }
        }
        render(app, 20, 5);
        render(app, 0, 0);
    }
}

#[test]
fn nothing_the_fleet_sends_reaches_the_terminal_as_a_control_sequence() {
    let mut app = operator();
    let mut evil = host("evil\u{1b}]0;pwned\u{7}\u{1b}[2J", "x86_64", "up");
    evil.labels.insert("k".into(), "\u{9b}31m".into());
    let mut hosts = hosts();
    hosts.push(evil);
    app.update(Event::Snapshot {
        hosts,
        apps: vec![app_row(
            "api\u{1b}[5m",
            schema::AppKind::Http,
            1,
            1,
            1,
            "running",
        )],
    });
    for (w, h) in [(120, 40), (80, 24), (200, 60)] {
        let buf = render(&mut app, w, h);
        for c in buf.content.iter() {
            assert!(
                !c.symbol().chars().any(char::is_control),
                "a control character in a cell: {:?}",
                c.symbol()
            );
        }
        assert!(screen(&buf).contains("evil"));
    }
}

#[test]
fn a_message_app_shows_its_backlog_rate_and_handlers_in_the_apps_table_and_its_view() {
    let mut app = operator();
    let mut q = app_row("orders", schema::AppKind::Message, 2, 8, 3, "serving");
    q.messages = Some(schema::MessageStats {
        pending: Some(120),
        in_flight: 3,
        handled_per_s: 950.0,
        handled: 48_210,
        failed: 7,
        dead_lettered: 2,
    });
    let mut apps = apps();
    apps.push(q);
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps,
    });
    app.update(Event::RequestRates(
        [("orders".to_string(), 950.0)].into_iter().collect(),
    ));
    let buf = render(&mut app, 160, 48);
    let l = lines(&buf);
    let row = l
        .iter()
        .find(|l| l.contains("orders"))
        .unwrap_or_else(|| panic!("{}", screen(&buf)));
    for needle in [
        "message",
        "3/8",
        "950.0",
        "pending 120",
        "handled 48210",
        "dead-lettered 2",
    ] {
        assert!(row.contains(needle), "{needle:?} missing in {row}");
    }
    // Handlers on demand are not a shortfall: the count is not in warning
    // colour the way a worker missing replicas is.
    let y = l.iter().position(|l| l.contains("orders")).unwrap_or(0) as u16;
    let x = row.find("3/8").unwrap_or(0) as u16;
    assert_ne!(buf[(x, y)].fg, Color::Yellow, "{row}");
    // The app view says the same in its summary.
    prompt(&mut app, "releases orders");
    let s = screen(&render(&mut app, 160, 48));
    assert!(s.contains("pending 120"), "{s}");
}

#[test]
fn a_filter_that_does_not_parse_is_shown_in_the_open_prompt_with_its_place_marked() {
    for (w, h) in SIZES {
        let mut app = operator();
        logs_of_ticker(&mut app);
        press(&mut app, Key::Char('/'));
        type_str(&mut app, "stream = stderr");
        press(&mut app, Key::Enter);
        let buf = render(&mut app, w, h);
        let l = lines(&buf);
        let prompt_row = l
            .iter()
            .position(|l| l.starts_with("/stream = stderr"))
            .unwrap_or_else(|| panic!("{w}x{h}: the prompt stays open:\n{}", screen(&buf)));
        // The message is under the prompt; the offending character is
        // marked in it.
        let below = &l[prompt_row + 1];
        assert!(below.contains("error: at column 8:"), "{w}x{h}: {below:?}");
        let cell = &buf[(8, prompt_row as u16)];
        assert_eq!(cell.symbol(), "=", "{w}x{h}");
        assert!(cell.modifier.contains(Modifier::REVERSED), "{w}x{h}");
        // Esc closes it, and nothing sticks on the status line.
        press(&mut app, Key::Esc);
        let s = screen(&render(&mut app, w, h));
        assert!(!s.contains("error:"), "{w}x{h}:\n{s}");
    }
    // The ? screen says what / takes.
    let mut app = operator();
    press(&mut app, Key::Char('?'));
    let s = screen(&render(&mut app, 160, 48));
    assert!(!s.contains("substring;"), "{s}");
    assert!(s.contains("an expression (status >= 500) or text"), "{s}");
}

#[test]
fn notes_head_the_help_screen_wrapped_to_it_and_the_status_line_points_at_them() {
    let cmd = "ssh -t -p 40123 -i /tmp/cranefleet-demo-abc/operator_key -o UserKnownHostsFile=/tmp/cranefleet-demo-abc/known_hosts ops@127.0.0.1";
    for (w, h) in SIZES {
        let mut app = operator().with_notes(vec![
            "keys in /tmp/cranefleet-demo-abc: operator_key (operator), viewer_key (viewer)".into(),
            format!("  {cmd}"),
        ]);
        let s = screen(&render(&mut app, w, h));
        assert!(s.contains("? shows the keys"), "{w}x{h}:\n{s}");
        press(&mut app, Key::Char('?'));
        let s = screen(&render(&mut app, w, h));
        assert!(s.contains("this fleet"), "{w}x{h}:\n{s}");
        assert!(
            s.contains("keys in /tmp/cranefleet-demo-abc"),
            "{w}x{h}:\n{s}"
        );
        // The whole command is there, wrapped, not cut: its pieces in order.
        let flat: String = s
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c == ' '))
            .collect::<Vec<_>>()
            .join("");
        assert!(
            flat.replace(' ', "").contains(&cmd.replace(' ', "")),
            "{w}x{h}:\n{s}"
        );
    }
}

#[test]
fn an_http_apps_view_shows_sparklines_of_its_rate_p99_and_errors_and_the_table_its_error_rate() {
    let mut app = operator();
    for (i, (rps, p99, errors)) in [(10.0, 2.0, 0), (20.0, 3.0, 0), (40.0, 9.0, 4)]
        .into_iter()
        .enumerate()
    {
        let mut rows = apps();
        rows[0].rps = Some(rps);
        rows[0].requests = Some(schema::RequestStats {
            requests: 100 * (i as u64 + 1),
            errors,
            error_rate: errors as f64 / (100.0 * (i as f64 + 1.0)),
            p50_ms: 1.0,
            p99_ms: p99,
            errors_per_s: errors as f64 / 2.0,
        });
        app.update(Event::Snapshot {
            hosts: hosts(),
            apps: rows,
        });
    }
    assert_eq!(app.trend("api").len(), 3);
    let s = screen(&render(&mut app, 160, 48));
    let api = s.lines().find(|l| l.contains(" api ")).unwrap_or("");
    assert!(api.contains("1.3%") && api.contains("9.0ms"), "{api}");
    prompt(&mut app, "releases api");
    for (w, h) in SIZES {
        let s = screen(&render(&mut app, w, h));
        let line = s
            .lines()
            .find(|l| l.contains("req/s"))
            .unwrap_or_else(|| panic!("{w}x{h}:\n{s}"));
        assert!(line.contains("▃▅█"), "{w}x{h}: the rate rising: {line}");
        assert!(line.contains("p99") && line.contains("9.0ms"), "{line}");
        assert!(
            line.contains("errors/s ▁▁█ 2.0  (4 in the last min, 1.3%)"),
            "{line}"
        );
    }
}

#[test]
fn the_header_counts_new_events_and_e_opens_the_feed() {
    let mut app = operator();
    app.update(Event::Tick {
        now_ms: 1_764_496_800_000,
    });
    let ev = schema::AuditEntry {
        time: schema::time::rfc3339(1_764_496_790_000),
        key: "gateway".into(),
        action: "auto-rollback".into(),
        app: Some("api".into()),
        detail: "api v8 -> v7: health rule `error_rate > 0.05` tripped on host-a".into(),
        refused: false,
    };
    app.update(Event::Events(vec![ev.clone()]));
    let s = screen(&render(&mut app, 160, 48));
    assert!(s.contains("events 1"), "{s}");
    press(&mut app, Key::Char('e'));
    for (w, h) in SIZES {
        let s = screen(&render(&mut app, w, h));
        assert!(s.contains("events (1, newest first"), "{w}x{h}:\n{s}");
        assert!(s.contains("auto-rollback"), "{w}x{h}:\n{s}");
        assert!(s.contains("events 0"), "seen once opened: {w}x{h}:\n{s}");
    }
}

#[test]
fn a_job_says_when_it_runs_next_relatively_and_how_its_last_run_ended() {
    let mut app = operator();
    app.update(Event::Tick {
        now_ms: 1_764_496_800_000,
    });
    let mut rows = apps();
    let mut job = app_row("nightly", schema::AppKind::Job, 1, 1, 0, "scheduled");
    job.next_run = Some(schema::time::rfc3339(1_764_496_812_000));
    job.detail = Some("exit 0 after 3ms".into());
    rows.push(job);
    app.update(Event::Snapshot {
        hosts: hosts(),
        apps: rows,
    });
    let s = screen(&render(&mut app, 160, 48));
    let row = s.lines().find(|l| l.contains("nightly")).unwrap_or("");
    assert!(
        row.contains("next run in 12s; last: exit 0 after 3ms"),
        "{row}"
    );
}
