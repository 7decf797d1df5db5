//! `ssh -t -p 2222 ops@gw`: the console, drawn by the gateway into the SSH
//! channel.
//!
//! The same [`console::App`] the local `console` binary runs, with three
//! differences that are all about the door, not the app:
//!
//! - Drawing: a ratatui terminal whose backend writes escape sequences into
//!   the channel. Its viewport is fixed to the pty size the client asked for
//!   (a channel cannot be asked its size) and follows `window-change`.
//! - Keys: the bytes the client's terminal sends, decoded by
//!   [`console::KeyParser`].
//! - Commands: run in this process with `ops::serve`, typed, under the
//!   session key's name and role, so a viewer's console is refused exactly
//!   what `ssh gw rollback` would be refused, and every action is audited.
//!
//! Nothing here may block the russh session loop: the channel's input is
//! always drained by a task of its own, and the terminal's output goes
//! through a queue to a writer task, so a slow client slows only its own
//! screen.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use console::driver::{self, Executor, Output};
use console::{App, Event, Front, KeyParser};
use ops::{CommandLine, Gone, LogFormat, Reply, Sink};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::sync::{mpsc, watch};

use crate::fleet::Fleet;
use crate::keys::KeyEntry;
use crate::operations::FleetOps;

/// Log lines each session keeps: a gateway draws many sessions, so less
/// than the local console's million.
const SESSION_LOG_LINES: usize = 100_000;
/// ... and the bytes of their text, whatever their length.
const SESSION_LOG_BYTES: usize = 4 << 20;
/// Output queued for a client that does not read it, before the session is
/// given up on (a full redraw of the largest screen is about 1 MiB).
const MAX_QUEUED: usize = 4 << 20;
/// The largest screen a session draws: a 4K monitor full of a 10-pixel
/// font. A client claiming more (up to 65535×65535 in `pty-req` and
/// `window-change`) gets the console in this much of its top-left corner;
/// each cell costs the session ~100 bytes across ratatui's two buffers, so
/// this bounds a session's screens to ~6 MiB.
pub const MAX_COLS: u16 = 400;
pub const MAX_ROWS: u16 = 150;

/// The terminal the session was opened with (`pty-req`).
#[derive(Debug, Clone)]
pub struct Pty {
    pub cols: u32,
    pub rows: u32,
    pub term: String,
}

/// Runs commands for the console in the gateway's process, as `who`: the
/// typed command goes straight to the operations layer and its replies
/// straight to the console, as values.
struct InProcess {
    fleet: Arc<Fleet>,
    who: KeyEntry,
}

/// Replies into the console's queue. A full queue slows the command down;
/// a closed one (the console went away) ends it.
struct ReplyTx(mpsc::Sender<Output>);

impl Sink for ReplyTx {
    async fn send(&mut self, reply: Reply) -> Result<(), Gone> {
        self.0.send(Output::Reply(reply)).await.map_err(|_| Gone)
    }

    fn log_format(&self) -> LogFormat {
        LogFormat::Records
    }
}

impl Executor for InProcess {
    fn start(&self, request: CommandLine, artifact: Option<Vec<u8>>) -> mpsc::Receiver<Output> {
        let (tx, rx) = mpsc::channel(64);
        let (ops, who) = (FleetOps(self.fleet.clone()), self.who.clone());
        tokio::spawn(async move {
            // The console dropping the receiver is a hangup: `logs -f` and
            // `watch` end; a change runs to its end.
            let (hangup_tx, hangup) = watch::channel(false);
            let closed = tx.clone();
            let watcher = tokio::spawn(async move {
                closed.closed().await;
                let _ = hangup_tx.send(true);
            });
            let artifact = async { Ok(artifact.unwrap_or_default()) };
            let mut sink = ReplyTx(tx.clone());
            let result = ops::serve(&ops, &who, request, artifact, &mut sink, hangup).await;
            watcher.abort();
            let _ = tx.send(Output::Done(result)).await;
        });
        rx
    }
}

/// What the writer task sends down the channel.
enum ToClient {
    Bytes(Vec<u8>),
    /// The session is over: exit status, EOF, close.
    Exit(u32),
}

/// `std::io::Write` for the ratatui backend: collects a frame's bytes and
/// queues them for the writer task on `flush` (ratatui flushes once per
/// frame). Never blocks; errors once the client stopped reading for long.
struct ChannelWriter {
    tx: mpsc::UnboundedSender<ToClient>,
    buf: Vec<u8>,
    queued: Arc<AtomicUsize>,
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.queued.load(Ordering::Relaxed) > MAX_QUEUED {
            return Err(std::io::Error::other(
                "the SSH client stopped reading the console",
            ));
        }
        let bytes = std::mem::take(&mut self.buf);
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        self.tx
            .send(ToClient::Bytes(bytes))
            .map_err(|_| std::io::Error::other("the SSH channel is closed"))
    }
}

/// Serves the console on `channel` until the operator quits (`q`: exit
/// status 0) or the client goes away.
pub async fn serve(fleet: Arc<Fleet>, who: KeyEntry, channel: Channel<Msg>, pty: Pty) {
    let role = who.role;
    let (mut read, write) = channel.split();

    // Output: frames queue up here and leave in order; the exit status goes last.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ToClient>();
    let queued = Arc::new(AtomicUsize::new(0));
    let queued2 = queued.clone();
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            match m {
                ToClient::Bytes(b) => {
                    let n = b.len();
                    let sent = write.data_bytes(b).await;
                    queued2.fetch_sub(n, Ordering::Relaxed);
                    if sent.is_err() {
                        return;
                    }
                }
                ToClient::Exit(code) => {
                    let _ = write.exit_status(code).await;
                    let _ = write.eof().await;
                    let _ = write.close().await;
                    return;
                }
            }
        }
    });

    // Input: always drained, so the session loop never waits on this channel.
    let (events_tx, events_rx) = mpsc::channel::<Event>(4096);
    let (gone_tx, mut gone_rx) = tokio::sync::oneshot::channel::<()>();
    let keys_tx = events_tx.clone();
    let input = tokio::spawn(async move {
        let mut parser = KeyParser::new();
        while let Some(m) = read.wait().await {
            let events: Vec<Event> = match m {
                ChannelMsg::Data { data } => {
                    parser.feed(&data).into_iter().map(Event::Key).collect()
                }
                ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                } => vec![Event::Resize {
                    width: dimension(col_width, MAX_COLS),
                    height: dimension(row_height, MAX_ROWS),
                }],
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => Vec::new(),
            };
            for ev in events {
                // The app handles a key in microseconds; a full queue only
                // means a client flooding its own session.
                if keys_tx.send(ev).await.is_err() {
                    break;
                }
            }
        }
        let _ = gone_tx.send(());
        // Keep draining until the channel ends, whatever the console does.
        while read.wait().await.is_some() {}
    });

    let color = console::local::term_has_color(Some(&pty.term), false);
    let mut app = App::new(role, Front::Remote)
        .with_color(color)
        .with_log_budget(SESSION_LOG_LINES, SESSION_LOG_BYTES);
    let (cols, rows) = (dimension(pty.cols, MAX_COLS), dimension(pty.rows, MAX_ROWS));
    if (cols as u32, rows as u32) != (pty.cols, pty.rows) {
        tracing::info!(key = %who.name, asked_cols = pty.cols, asked_rows = pty.rows, cols, rows,
            "console drawn smaller than the terminal the client claims");
    }
    let area = Rect::new(0, 0, cols, rows);
    let mut writer_half = ChannelWriter {
        tx: out_tx.clone(),
        buf: Vec::new(),
        queued: queued.clone(),
    };
    let _ = crossterm::queue!(
        writer_half,
        crossterm::terminal::EnterAlternateScreen,
        crossterm::cursor::Hide,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
    );
    let _ = writer_half.flush();
    let backend = CrosstermBackend::new(writer_half);
    let terminal = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    );
    let code = match terminal {
        Ok(mut terminal) => {
            let (actions_tx, actions_rx) = mpsc::channel(64);
            let exec: Arc<dyn Executor> = Arc::new(InProcess {
                fleet: fleet.clone(),
                who: who.clone(),
            });
            let opts = driver::Options {
                local_files: false,
                gateway: format!("{} @ {}", who.name, fleet.name),
            };
            let drive = tokio::spawn(driver::drive(exec, opts, events_tx, actions_rx, None));
            let result = tokio::select! {
                r = console::run(&mut terminal, &mut app, events_rx, actions_tx) => r.map_err(|e| e.to_string()),
                _ = &mut gone_rx => Err("the client went away".to_string()),
            };
            drive.abort();
            let mut w = ChannelWriter {
                tx: out_tx.clone(),
                buf: Vec::new(),
                queued,
            };
            let _ = crossterm::queue!(
                w,
                crossterm::style::ResetColor,
                crossterm::terminal::Clear(crossterm::terminal::ClearType::All),
                crossterm::cursor::Show,
                crossterm::terminal::LeaveAlternateScreen
            );
            let _ = w.flush();
            match result {
                Ok(()) => 0,
                Err(e) => {
                    tracing::debug!(key = %who.name, error = %e, "console session ended");
                    1
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a console terminal");
            1
        }
    };
    tracing::info!(key = %who.name, code, "console session closed");
    let _ = out_tx.send(ToClient::Exit(code));
    drop(out_tx);
    let _ = writer.await;
    // `input` drains the channel until the client closes it, then ends.
    drop(input);
}

/// A pty dimension as the session draws it: at least 1, at most `max`.
/// (0 means "unknown" in `pty-req`; it gets the smallest screen.)
fn dimension(v: u32, max: u16) -> u16 {
    v.clamp(1, max as u32) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_terminal_sizes_are_clamped_to_a_real_screen() {
        assert_eq!(dimension(65_535, MAX_COLS), MAX_COLS);
        assert_eq!(dimension(u32::MAX, MAX_ROWS), MAX_ROWS);
        assert_eq!(dimension(0, MAX_ROWS), 1);
        assert_eq!(dimension(80, MAX_COLS), 80);
        // What the clamp allows stays within the memory the header promises.
        let cells = MAX_COLS as usize * MAX_ROWS as usize;
        assert!(cells * 2 * std::mem::size_of::<ratatui::buffer::Cell>() < 8 << 20);
    }
}
