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
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

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

impl ChannelWriter {
    fn new(tx: mpsc::UnboundedSender<ToClient>, queued: Arc<AtomicUsize>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::new(),
            queued,
        }
    }
}

/// Serves the console on `channel` until the operator quits (`q`: exit
/// status 0) or the client goes away.
pub async fn serve(fleet: Arc<Fleet>, who: KeyEntry, channel: Channel<Msg>, pty: Pty) {
    let (read, write) = channel.split();
    let queued = Arc::new(AtomicUsize::new(0));
    let (out_tx, writer) = spawn_writer(write, queued.clone());
    let (events_tx, events_rx) = mpsc::channel::<Event>(4096);
    let (gone, input) = spawn_input(read, events_tx.clone());
    let session = Session {
        fleet,
        who,
        events_tx,
        events_rx,
        gone,
    };
    let code = session
        .run(&pty, ChannelWriter::new(out_tx.clone(), queued))
        .await;
    let _ = out_tx.send(ToClient::Exit(code));
    drop(out_tx);
    let _ = writer.await;
    // `input` drains the channel until the client closes it, then ends.
    drop(input);
}

/// Output: frames queue up on the sender it returns and leave in order;
/// the exit status goes last.
fn spawn_writer(
    write: ChannelWriteHalf<Msg>,
    queued: Arc<AtomicUsize>,
) -> (mpsc::UnboundedSender<ToClient>, JoinHandle<()>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ToClient>();
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            match m {
                ToClient::Bytes(b) => {
                    let n = b.len();
                    let sent = write.data_bytes(b).await;
                    queued.fetch_sub(n, Ordering::Relaxed);
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
    (out_tx, writer)
}

/// Input: always drained, so the session loop never waits on this channel.
/// Keys and resizes go to `events`; the receiver it returns is told when
/// the client closes its side.
fn spawn_input(
    mut read: ChannelReadHalf,
    events: mpsc::Sender<Event>,
) -> (oneshot::Receiver<()>, JoinHandle<()>) {
    let (gone_tx, gone_rx) = oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let mut parser = KeyParser::new();
        while let Some(m) = read.wait().await {
            let events_of_msg: Vec<Event> = match m {
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
            for ev in events_of_msg {
                // The app handles a key in microseconds; a full queue only
                // means a client flooding its own session.
                if events.send(ev).await.is_err() {
                    break;
                }
            }
        }
        let _ = gone_tx.send(());
        // Keep draining until the channel ends, whatever the console does.
        while read.wait().await.is_some() {}
    });
    (gone_rx, input)
}

/// One console session: the app, its events, and the commands it runs.
struct Session {
    fleet: Arc<Fleet>,
    who: KeyEntry,
    /// Events of the app: keys and resizes from the input task, command
    /// output from the driver.
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    /// Told when the client closed its side.
    gone: oneshot::Receiver<()>,
}

impl Session {
    /// Draws the console through `screen` until it ends; the exit status.
    async fn run(self, pty: &Pty, mut screen: ChannelWriter) -> u32 {
        let color = console::local::term_has_color(Some(&pty.term), false);
        let mut app = App::new(self.who.role, Front::Remote)
            .with_color(color)
            .with_log_budget(SESSION_LOG_LINES, SESSION_LOG_BYTES);
        let (cols, rows) = (dimension(pty.cols, MAX_COLS), dimension(pty.rows, MAX_ROWS));
        if (cols as u32, rows as u32) != (pty.cols, pty.rows) {
            tracing::info!(key = %self.who.name, asked_cols = pty.cols, asked_rows = pty.rows, cols, rows,
                "console drawn smaller than the terminal the client claims");
        }
        let (tx, queued) = (screen.tx.clone(), screen.queued.clone());
        let _ = crossterm::queue!(
            screen,
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide,
            crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
        );
        let _ = screen.flush();
        let terminal = Terminal::with_options(
            CrosstermBackend::new(screen),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, cols, rows)),
            },
        );
        let who = self.who.name.clone();
        let code = match terminal {
            Ok(mut terminal) => {
                let result = self.drive(&mut terminal, &mut app).await;
                leave_screen(ChannelWriter::new(tx, queued));
                match result {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::debug!(key = %who, error = %e, "console session ended");
                        1
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a console terminal");
                1
            }
        };
        tracing::info!(key = %who, code, "console session closed");
        code
    }

    /// Runs the app and its command driver until the operator quits or the
    /// client goes away.
    async fn drive(
        self,
        terminal: &mut Terminal<CrosstermBackend<ChannelWriter>>,
        app: &mut App,
    ) -> Result<(), String> {
        let (actions_tx, actions_rx) = mpsc::channel(64);
        let opts = driver::Options {
            local_files: false,
            gateway: format!("{} @ {}", self.who.name, self.fleet.name),
        };
        let exec: Arc<dyn Executor> = Arc::new(InProcess {
            fleet: self.fleet,
            who: self.who,
        });
        let drive = tokio::spawn(driver::drive(exec, opts, self.events_tx, actions_rx, None));
        let mut gone = self.gone;
        let result = tokio::select! {
            r = console::run(terminal, app, self.events_rx, actions_tx) => r.map_err(|e| e.to_string()),
            _ = &mut gone => Err("the client went away".to_string()),
        };
        drive.abort();
        result
    }
}

/// Gives the client's terminal back as it was: colours, cursor, screen.
fn leave_screen(mut w: ChannelWriter) {
    let _ = crossterm::queue!(
        w,
        crossterm::style::ResetColor,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All),
        crossterm::cursor::Show,
        crossterm::terminal::LeaveAlternateScreen
    );
    let _ = w.flush();
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
