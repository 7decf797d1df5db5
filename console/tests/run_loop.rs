//! The run loop joining an app, a terminal and a driver.

mod common;

use common::*;
use console::{Action, Event, Key, run};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tokio::sync::mpsc;

fn drain(rx: &mut mpsc::Receiver<Action>) -> Vec<Action> {
    let mut got = Vec::new();
    while let Ok(a) = rx.try_recv() {
        got.push(a);
    }
    got
}

#[tokio::test]
async fn the_loop_draws_what_arrives_and_ends_when_the_driver_hangs_up() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut app = console::App::new(console::Role::Operator, console::Front::Remote);
    let (ev_tx, ev_rx) = mpsc::channel(16);
    let (act_tx, mut act_rx) = mpsc::channel(16);
    ev_tx
        .send(Event::Snapshot {
            hosts: hosts(),
            apps: apps(),
        })
        .await
        .unwrap();
    ev_tx.send(Event::Key(Key::Char('l'))).await.unwrap();
    drop(ev_tx);
    run(&mut terminal, &mut app, ev_rx, act_tx).await.unwrap();
    assert_eq!(
        drain(&mut act_rx),
        vec![Action::Follow {
            app: "api".into(),
            filter: None
        }]
    );
    let s = screen(terminal.backend().buffer());
    assert!(s.contains("logs api | following"), "{s}");
}

#[tokio::test]
async fn q_ends_the_loop_after_telling_the_driver() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut app = operator();
    let (ev_tx, ev_rx) = mpsc::channel(16);
    let (act_tx, mut act_rx) = mpsc::channel(16);
    ev_tx.send(Event::Key(Key::Char('l'))).await.unwrap();
    ev_tx.send(Event::Key(Key::Char('q'))).await.unwrap();
    run(&mut terminal, &mut app, ev_rx, act_tx).await.unwrap();
    assert_eq!(
        drain(&mut act_rx),
        vec![
            Action::Follow {
                app: "api".into(),
                filter: None
            },
            Action::Unfollow,
            Action::Quit
        ]
    );
    // `ev_tx` is still alive here: the loop ended because of q, not a hang-up.
    drop(ev_tx);
}

#[tokio::test]
async fn a_resize_event_resizes_a_fixed_viewport_like_an_ssh_pty() {
    // The remote front door: a fixed viewport from the pty request, resized
    // on window-change; the backend cannot ask the far terminal its size.
    let backend = TestBackend::new(120, 40);
    let opts = TerminalOptions {
        viewport: Viewport::Fixed(Rect::new(0, 0, 80, 24)),
    };
    let mut terminal = Terminal::with_options(backend, opts).unwrap();
    let mut app = operator();
    let (ev_tx, ev_rx) = mpsc::channel(16);
    let (act_tx, _act_rx) = mpsc::channel(16);
    ev_tx
        .send(Event::Resize {
            width: 100,
            height: 30,
        })
        .await
        .unwrap();
    drop(ev_tx);
    run(&mut terminal, &mut app, ev_rx, act_tx).await.unwrap();
    assert_eq!(terminal.get_frame().area(), Rect::new(0, 0, 100, 30));
    let lines = lines(terminal.backend().buffer());
    assert!(
        lines[29].contains("quit"),
        "hints on the last row of the new size:\n{}",
        lines.join("\n")
    );
}

#[tokio::test]
async fn the_loop_reports_a_driver_that_stopped_taking_actions() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut app = operator();
    let (ev_tx, ev_rx) = mpsc::channel(16);
    let (act_tx, act_rx) = mpsc::channel(16);
    drop(act_rx);
    ev_tx.send(Event::Key(Key::Char('a'))).await.unwrap();
    let err = run(&mut terminal, &mut app, ev_rx, act_tx)
        .await
        .unwrap_err();
    assert!(matches!(err, console::RunError::DriverGone), "{err}");
}
