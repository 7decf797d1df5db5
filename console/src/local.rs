//! The local front door: the operator's own terminal, through crossterm.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::App;
use crate::event::{Action, Event};
use crate::input::Key;
use crate::run::{RunError, run};

/// Reads the local terminal's input on a thread (crossterm's reader blocks)
/// and sends keys and resizes as [`Event`]s. The thread ends soon after the
/// receiver is dropped.
pub fn spawn_input(events: mpsc::Sender<Event>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use crossterm::event::{self, Event as Ct};
        while !events.is_closed() {
            match event::poll(Duration::from_millis(200)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => return,
            }
            let ev = match event::read() {
                Ok(Ct::Key(k)) => Key::from_crossterm(k).map(Event::Key),
                Ok(Ct::Resize(width, height)) => Some(Event::Resize { width, height }),
                Ok(_) => None,
                Err(_) => return,
            };
            if let Some(ev) = ev
                && events.blocking_send(ev).is_err()
            {
                return;
            }
        }
    })
}

/// Runs the console full-screen in this terminal: raw mode and the
/// alternate screen, restored on return and on panic. `events_tx` is a
/// sender of the same channel as `events` (keys are sent on it).
///
/// # Errors
///
/// As [`run`]; also when the terminal cannot be put in raw mode.
pub async fn run_local(
    app: &mut App,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    actions: mpsc::Sender<Action>,
) -> Result<(), RunError> {
    let mut terminal = ratatui::try_init().map_err(|e| RunError::Backend(e.to_string()))?;
    let input = spawn_input(events_tx);
    let result = run(&mut terminal, app, events, actions).await;
    ratatui::restore();
    drop(input);
    result
}

/// Whether a terminal of this `TERM` shows colour. `NO_COLOR` (set to
/// anything) turns colour off whatever the terminal.
pub fn term_has_color(term: Option<&str>, no_color: bool) -> bool {
    if no_color {
        return false;
    }
    match term {
        None => true,
        Some(t) => {
            !(t == "dumb"
                || t.ends_with("-mono")
                || t.ends_with("-m")
                || t == "vt100"
                || t == "vt220")
        }
    }
}
