//! `App::update`, logs: following an app, pausing and scrolling back, and
//! filters (the built-in one and a filter language plugged in).

mod common;

use common::*;
use console::logs::{LineFilter, LogLine};
use console::{Action, Event, Key, Mode, View};
use schema::Stream;

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

fn expr_parser(text: &str) -> Result<Box<dyn LineFilter>, console::logs::FilterError> {
    if text.contains("==") {
        Ok(Box::new(Remote(text.to_string())))
    } else {
        Err(format!("expected a comparison in {text:?}").into())
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
    assert!(
        app.filter_error()
            .is_some_and(|e| e.message.contains("expected a comparison"))
    );
    assert!(
        matches!(app.mode(), Mode::Filter(_)),
        "a bad filter stays open for fixing"
    );
}
