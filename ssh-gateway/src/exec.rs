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
use tokio::sync::watch;

use crate::fleet::Fleet;
use crate::keys::KeyEntry;
use crate::operations::FleetOps;

/// Where a command's stdout and stderr go: an SSH exec channel's data and
/// extended data, then its exit status.
pub struct Out(ChannelWriteHalf<Msg>);

impl Out {
    pub fn new(w: ChannelWriteHalf<Msg>) -> Out {
        Out(w)
    }

    /// Writes to stderr (extended data on a channel).
    pub async fn stderr(&self, s: impl Into<Bytes>) -> Result<(), Gone> {
        Terminal::stderr(&mut &*self, s.into()).await
    }

    /// Ends the channel with the exit status.
    pub async fn exit(&self, code: i32) {
        let _ = self.0.exit_status(code as u32).await;
        let _ = self.0.eof().await;
        let _ = self.0.close().await;
    }
}

impl Terminal for &Out {
    async fn stdout(&mut self, b: Bytes) -> Result<(), Gone> {
        self.0.data_bytes(b).await.map_err(|_| Gone)
    }

    async fn stderr(&mut self, b: Bytes) -> Result<(), Gone> {
        self.0.extended_data_bytes(1, b).await.map_err(|_| Gone)
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
