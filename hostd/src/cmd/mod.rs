//! The commands of CLI.md, one file each.
//!
//! Fleet commands (`deploy`, `ps`, …) run inside the daemon: a front door
//! (the control socket, later the tunnel) parses the command line with the
//! shared grammar and calls [`run`], which writes what the command prints to
//! an [`Out`]. Daemon and local-only commands (`serve`, `precompile`) run in
//! the `hostd` process itself.

pub mod agent;
pub mod audit;
pub mod demo;
pub mod deploy;
pub mod hosts;
pub mod logs;
pub mod precompile;
pub mod ps;
pub mod releases;
pub mod rm;
pub mod rollback;
pub mod scale;
pub mod serve;

use std::pin::Pin;
use std::sync::Arc;

use schema::command::{Command, CommandLine};
use schema::frame::ExecMsg;
use serde::Serialize;
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use crate::connection::FrameWriter;
use crate::host::{Host, HostError};

/// Where a command's output goes: stdout and stderr frames of the exec protocol.
pub struct Out {
    w: FrameWriter<Pin<Box<dyn AsyncWrite + Send>>>,
}

impl Out {
    pub fn new(w: Pin<Box<dyn AsyncWrite + Send>>) -> Out {
        Out {
            w: FrameWriter::new(w),
        }
    }

    pub async fn stdout(&mut self, s: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.w.send(&ExecMsg::Stdout(s.as_ref().to_vec())).await
    }

    pub async fn stderr(&mut self, s: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.w.send(&ExecMsg::Stderr(s.as_ref().to_vec())).await
    }

    pub async fn exit(&mut self, code: i32) -> std::io::Result<()> {
        self.w.send(&ExecMsg::Exit(code)).await?;
        self.w.shutdown().await
    }
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// Refused or failed: exit 1 with one line on stderr.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The client went away; nothing more to say to it.
    #[error("client disconnected: {0}")]
    Io(#[from] std::io::Error),
}

/// What a command runs with.
pub struct Ctx<'a> {
    pub host: &'a Arc<Host>,
    /// Who asked: `local:<user>` on the control socket.
    pub who: &'a str,
    pub json: bool,
    pub out: &'a mut Out,
    /// What the client sent as stdin (the artifact for `deploy APP -`).
    pub stdin: Vec<u8>,
    /// Becomes true when the client hangs up (ends `logs -f`).
    pub hangup: watch::Receiver<bool>,
}

impl Ctx<'_> {
    /// Prints `value` as one JSON document (or one line of a stream).
    pub async fn json<T: Serialize>(&mut self, value: &T) -> Result<(), CmdError> {
        let mut s =
            serde_json::to_string(value).map_err(|e| std::io::Error::other(e.to_string()))?;
        s.push('\n');
        self.out.stdout(s).await?;
        Ok(())
    }

    pub async fn print(&mut self, text: impl AsRef<str>) -> Result<(), CmdError> {
        self.out.stdout(text.as_ref()).await?;
        Ok(())
    }
}

/// Runs one fleet command and returns its exit status (CLI.md: 0 success,
/// 1 refused or failed with one line on stderr).
pub async fn run(ctx: &mut Ctx<'_>, cl: CommandLine) -> i32 {
    let result = match cl.command {
        Command::Deploy(a) => deploy::execute(ctx, a).await,
        Command::Ps(a) => ps::execute(ctx, a).await,
        Command::Releases(a) => releases::execute(ctx, a).await,
        Command::Rollback(a) => rollback::execute(ctx, a).await,
        Command::Scale(a) => scale::execute(ctx, a).await,
        Command::Logs(a) => logs::execute(ctx, a).await,
        Command::Rm(a) => rm::execute(ctx, a).await,
        Command::Hosts => hosts::execute(ctx).await,
        Command::Audit(a) => audit::execute(ctx, a).await,
        // A host has no fleet to watch; the gateway streams it.
        Command::Watch => {
            let _ = ctx
                .out
                .stderr("error: watch needs a gateway: `hostd --gateway GW watch` or `ssh -p 2222 GW watch`\n")
                .await;
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(CmdError::Host(e)) => {
            let _ = ctx.out.stderr(format!("error: {e}\n")).await;
            1
        }
        Err(CmdError::Io(_)) => 1,
    }
}
