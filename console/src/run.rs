//! The loop that connects an [`App`] to a terminal and a driver.
//!
//! Both front doors use it: the local binary with a crossterm terminal, the
//! gateway with a terminal whose backend writes into the SSH channel. The
//! loop owns no I/O of its own besides drawing: keys, resizes and fleet news
//! arrive as [`Event`]s on one channel, and what the app asks for leaves as
//! [`Action`]s on another.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use tokio::sync::mpsc;

use crate::app::App;
use crate::event::{Action, Event};

/// How often relative times ("4s ago"), the clock and message expiry move.
pub const TICK: Duration = Duration::from_secs(1);

/// Events handled before a frame is drawn, at most: a flood of log batches
/// is coalesced into one frame, but cannot starve the screen.
const BATCH: usize = 1024;

/// Why the loop stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The backend failed to draw or resize (the terminal or channel is gone).
    #[error("drawing the console failed: {0}")]
    Backend(String),
    /// The driver dropped its receiver of actions while the console needed it.
    #[error("the console's driver stopped taking actions")]
    DriverGone,
}

/// Runs the console until the operator quits or the driver hangs up.
///
/// Draws once at the start, then only when an event changed something (a
/// tick every [`TICK`] counts, for relative times). All queued events are
/// applied before a frame is drawn. On [`Event::Resize`] the terminal is
/// resized to exactly that size, which is how a remote front door should
/// report window changes: give it a terminal built with
/// `Viewport::Fixed(Rect::new(0, 0, cols, rows))` from the pty request, since
/// a backend writing into a channel cannot ask the remote terminal its size.
///
/// Returns `Ok(())` after sending [`Action::Quit`] (and `Unfollow` before it
/// if logs were followed), or when the event channel closes.
///
/// # Errors
///
/// [`RunError::Backend`] when drawing fails, [`RunError::DriverGone`] when an
/// action cannot be sent because the driver is gone.
pub async fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut events: mpsc::Receiver<Event>,
    actions: mpsc::Sender<Action>,
) -> Result<(), RunError> {
    let area = terminal.get_frame().area();
    app.update(Event::Resize {
        width: area.width,
        height: area.height,
    });
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if app.take_dirty() {
            terminal
                .draw(|f| crate::ui::draw(app, f))
                .map_err(|e| RunError::Backend(e.to_string()))?;
        }
        let first = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => ev,
                None => return Ok(()),
            },
            _ = tick.tick() => Event::Tick { now_ms: schema::time::now_millis() },
        };
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(ev) = next {
            if let Event::Resize { width, height } = ev {
                terminal
                    .resize(Rect::new(0, 0, width, height))
                    .map_err(|e| RunError::Backend(e.to_string()))?;
            }
            for action in app.update(ev) {
                let quit = action == Action::Quit;
                let sent = actions.send(action).await;
                if quit {
                    return Ok(());
                }
                sent.map_err(|_| RunError::DriverGone)?;
            }
            handled += 1;
            next = if handled < BATCH {
                events.try_recv().ok()
            } else {
                None
            };
        }
    }
}
