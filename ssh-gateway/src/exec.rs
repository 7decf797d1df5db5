//! `ssh -p 2222 ops@gw <command>`: one CLI.md command on an SSH exec
//! channel. Output, stderr and exit status are the CLI's: 0 success, 1
//! refused or failed (one line on stderr), 2 usage error.
//!
//! The line is parsed here, once, where its text arrives; the operations
//! layer (`ops::serve` over [`FleetOps`]) runs it and its printer renders
//! the replies onto the channel.

use std::sync::Arc;

use bytes::Bytes;
use ops::print::{Printer, Terminal};
use ops::{Command, Gone, OpError};
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{mpsc, watch};

use crate::fleet::Fleet;
use crate::keys::KeyEntry;
use crate::operations::FleetOps;

/// A piece of a command's output, as an in-memory [`Out`] passes it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// Where a command's stdout and stderr go.
pub enum Out {
    /// An SSH exec channel: stdout data, stderr extended data, exit status.
    Channel(ChannelWriteHalf<Msg>),
    /// A bounded queue read in the same process (the gateway's console). A
    /// full queue slows the command down rather than growing without bound;
    /// a dropped receiver is a client gone.
    Memory(mpsc::Sender<Output>),
}

impl Out {
    pub fn new(w: ChannelWriteHalf<Msg>) -> Out {
        Out::Channel(w)
    }

    /// An `Out` whose output arrives on the returned receiver.
    pub fn memory(capacity: usize) -> (Out, mpsc::Receiver<Output>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Out::Memory(tx), rx)
    }

    /// Writes to stderr (extended data on a channel).
    pub async fn stderr(&self, s: impl Into<Bytes>) -> Result<(), Gone> {
        Terminal::stderr(&mut &*self, s.into()).await
    }

    /// Ends a channel with the exit status; in memory the caller has the
    /// status already, and dropping the `Out` ends the stream.
    pub async fn exit(&self, code: i32) {
        if let Out::Channel(w) = self {
            let _ = w.exit_status(code as u32).await;
            let _ = w.eof().await;
            let _ = w.close().await;
        }
    }

    /// Resolves when nobody reads the output any more (memory only; a
    /// channel's hangup is seen on its read half).
    async fn gone(&self) {
        match self {
            Out::Memory(tx) => tx.closed().await,
            Out::Channel(_) => std::future::pending().await,
        }
    }
}

impl Terminal for &Out {
    async fn stdout(&mut self, b: Bytes) -> Result<(), Gone> {
        match self {
            Out::Channel(w) => w.data_bytes(b).await.map_err(|_| Gone),
            Out::Memory(tx) => tx.send(Output::Stdout(b)).await.map_err(|_| Gone),
        }
    }

    async fn stderr(&mut self, b: Bytes) -> Result<(), Gone> {
        match self {
            Out::Channel(w) => w.extended_data_bytes(1, b).await.map_err(|_| Gone),
            Out::Memory(tx) => tx.send(Output::Stderr(b)).await.map_err(|_| Gone),
        }
    }
}

/// Runs `command` for `who` on a channel and closes it with the exit status.
pub async fn run(
    fleet: Arc<Fleet>,
    who: KeyEntry,
    mut read: ChannelReadHalf,
    out: Out,
    command: String,
) {
    let cl = match ops::parse_line(&command) {
        Ok(cl) => cl,
        Err(e) => {
            let code = Printer::new(&out, false).finish(Err(e)).await;
            out.exit(code).await;
            return;
        }
    };
    // Only deploy reads stdin (`ssh gw ps` from a terminal never sends EOF),
    // and only once the key may deploy.
    let max = fleet.max_artifact_bytes;
    let ops = FleetOps(fleet);
    let mut printer = Printer::new(&out, cl.json);
    let code = match &cl.command {
        Command::Deploy(d) => {
            let from_stdin = d.file.as_deref() == Some("-");
            let artifact = async move {
                if !from_stdin {
                    return Err(OpError::usage(
                        "through the gateway the artifact comes on stdin: `ssh gw deploy APP - < app.wasm` (or `hostd deploy APP FILE --gateway …`)",
                    ));
                }
                read_stdin(&mut read, max).await.map_err(OpError::failed)
            };
            // A deploy is not cut short by a hangup: it runs to its end.
            let (_keep, hangup) = watch::channel(false);
            let r = ops::serve(&ops, &who, cl, artifact, &mut printer, hangup).await;
            printer.finish(r).await
        }
        _ => {
            // The rest of the channel's input is drained (so the session
            // never waits on us); its end means the client went away, which
            // ends `logs -f` and `watch`.
            let (hangup_tx, hangup) = watch::channel(false);
            let serve = async {
                let no_artifact = async { Ok(Vec::new()) };
                let r = ops::serve(&ops, &who, cl, no_artifact, &mut printer, hangup).await;
                printer.finish(r).await
            };
            watch_hangup_then(serve, read, hangup_tx).await
        }
    };
    out.exit(code).await;
}

/// Runs `work` while draining `read`; the channel's close flips `hangup`.
async fn watch_hangup_then(
    work: impl std::future::Future<Output = i32>,
    mut read: ChannelReadHalf,
    hangup_tx: watch::Sender<bool>,
) -> i32 {
    let watcher = async move {
        while let Some(m) = read.wait().await {
            if matches!(m, ChannelMsg::Close) {
                break;
            }
        }
        let _ = hangup_tx.send(true);
        std::future::pending::<()>().await;
    };
    tokio::select! {
        code = work => code,
        () = watcher => unreachable!("the watcher never ends"),
    }
}

/// Runs one command line in this process, for the gateway's console:
/// `stdin` is the artifact of `deploy APP -`; the command stops early (a
/// `logs -f`, a `watch`) when `out`'s receiver is dropped. Returns the exit
/// status, as the exec channel would report it.
pub async fn run_argv(
    fleet: &Arc<Fleet>,
    who: &KeyEntry,
    out: &Out,
    argv: &[String],
    stdin: Vec<u8>,
) -> i32 {
    let mut printer = Printer::new(out, true);
    let cl = match ops::parse_argv(argv) {
        Ok(cl) => cl,
        Err(e) => return printer.finish(Err(e)).await,
    };
    printer = Printer::new(out, cl.json);
    let (hangup_tx, hangup) = watch::channel(false);
    let artifact = async { Ok(stdin) };
    let ops = FleetOps(fleet.clone());
    let result = tokio::select! {
        r = ops::serve(&ops, who, cl, artifact, &mut printer, hangup) => r,
        _ = out.gone() => Ok(()),
    };
    drop(hangup_tx);
    printer.finish(result).await
}

async fn read_stdin(read: &mut ChannelReadHalf, max: u64) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(m) = read.wait().await {
        match m {
            ChannelMsg::Data { data } => {
                buf.extend_from_slice(&data);
                if buf.len() as u64 > max {
                    return Err(format!(
                        "stdin is larger than the gateway's artifact limit of {} MiB",
                        max >> 20
                    ));
                }
            }
            ChannelMsg::Eof | ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok(buf)
}
