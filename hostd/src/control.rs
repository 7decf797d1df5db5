//! The control socket: `hostd <command> --local` talks to the daemon here.
//!
//! One connection runs one command, in the exec protocol of
//! `schema::frame`: hello, the command line, stdin, then stdout/stderr
//! frames and an exit status back. The socket file is mode 0600: whoever can
//! open it controls the host, so it is its owner alone.

use std::sync::Arc;

use std::pin::Pin;

use bytes::Bytes;
use ops::Gone;
use ops::print::{Printer, Terminal};
use schema::Actor;
use schema::frame::{EXEC_PROTOCOL_VERSION, ExecMsg, MAX_FRAME};
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::connection::{ConnError, FrameReader, FrameWriter};
use crate::host::{Host, HostOps};

/// Where a command's output goes: stdout and stderr frames of the exec
/// protocol, then its exit status.
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

impl Terminal for &mut Out {
    async fn stdout(&mut self, b: Bytes) -> Result<(), Gone> {
        Out::stdout(self, b).await.map_err(|_| Gone)
    }

    async fn stderr(&mut self, b: Bytes) -> Result<(), Gone> {
        Out::stderr(self, b).await.map_err(|_| Gone)
    }
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: UnixListener, host: Arc<Host>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    tokio::spawn(handle(host.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = net::until_true(&mut shutdown) => return,
        }
    }
}

/// The local user of the process at the other end of the socket.
fn peer_name(stream: &UnixStream) -> Actor {
    match stream.peer_cred() {
        Ok(c) => Actor::local(user_name(c.uid()).unwrap_or_else(|| format!("uid{}", c.uid()))),
        Err(_) => Actor::local("unknown"),
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

async fn handle(host: Arc<Host>, stream: UnixStream) {
    let who = peer_name(&stream);
    let (r, w) = stream.into_split();
    let reader = FrameReader::new(r, MAX_FRAME);
    let mut out = Out::new(Box::pin(w));
    if let Err(e) = session(&host, &who, reader, &mut out).await {
        tracing::warn!(who = %who, error = %e, "control connection ended with an error");
        let _ = out.stderr(format!("error: {e}\n")).await;
        let _ = out.exit(1).await;
    }
}

async fn session(
    host: &Arc<Host>,
    who: &Actor,
    mut reader: FrameReader<OwnedReadHalf>,
    out: &mut Out,
) -> Result<(), ConnError> {
    let unexpected = |what: &str, got: Option<ExecMsg>| {
        ConnError::Io(std::io::Error::other(format!(
            "expected {what}, got {}",
            match got {
                None => "end of stream".to_string(),
                Some(m) => format!("{m:?}").chars().take(60).collect(),
            }
        )))
    };
    match reader.next_exec().await? {
        Some(ExecMsg::Hello(h)) if h.version == EXEC_PROTOCOL_VERSION => {}
        Some(ExecMsg::Hello(h)) => {
            out.stderr(format!(
                "error: this hostd speaks exec protocol v{EXEC_PROTOCOL_VERSION}, the client v{}; use client and daemon of the same release\n",
                h.version
            ))
            .await?;
            out.exit(1).await?;
            return Ok(());
        }
        other => return Err(unexpected("hello", other)),
    }
    let (argv, explicit) = match reader.next_exec().await? {
        Some(ExecMsg::Exec(e)) => (e.argv, e.local),
        other => return Err(unexpected("a command", other)),
    };
    let mut stdin = Vec::new();
    loop {
        match reader.next_exec().await? {
            Some(ExecMsg::Stdin(b)) => {
                if (stdin.len() + b.len()) as u64 > host.config.max_artifact_bytes {
                    out.stderr(format!(
                        "error: stdin is larger than this host's artifact limit of {} MiB\n",
                        host.config.max_artifact_bytes >> 20
                    ))
                    .await?;
                    out.exit(1).await?;
                    return Ok(());
                }
                stdin.extend_from_slice(&b);
            }
            Some(ExecMsg::StdinEnd) => break,
            other => return Err(unexpected("stdin", other)),
        }
    }
    let cl = match ops::parse_argv(&argv) {
        Ok(cl) => cl,
        Err(e) => {
            let code = Printer::new(&mut *out, false).finish(Err(e)).await;
            out.exit(code).await?;
            return Ok(());
        }
    };
    // A rollback of an app a gateway manages is the break-glass way out
    // of trouble: only when asked for by name (`--local`), never because no
    // gateway was configured in this shell.
    if let schema::command::Command::Rollback(r) = &cl.command
        && !explicit
        && let Some(gw) = host.managed_by(&r.app).await
    {
        let app = schema::render::clean(&r.app);
        let msg = format!(
            "error: {app} is managed by the gateway {gw}: roll it back through the gateway (`hostd rollback {app} --gateway USER@GATEWAY`), or, break-glass while the gateway cannot be reached, here with `hostd rollback {app} --local` (recorded and reported to the gateway); nothing changed\n"
        );
        out.stderr(msg).await?;
        out.exit(1).await?;
        return Ok(());
    }
    // A hangup (the client's end of the socket closing) ends `logs -f`.
    let (hangup_tx, hangup) = watch::channel(false);
    let mut rest = reader.into_inner();
    let watcher = tokio::spawn(async move {
        let mut b = [0u8; 1];
        let _ = rest.read(&mut b).await;
        let _ = hangup_tx.send(true);
    });
    tracing::debug!(who = %who, command = cl.command.name(), "running");
    let ops = HostOps(host.clone());
    let mut printer = Printer::new(&mut *out, cl.json);
    let artifact = async { Ok(stdin) };
    let result = ops::serve(&ops, who, cl, artifact, &mut printer, hangup).await;
    let code = printer.finish(result).await;
    watcher.abort();
    out.exit(code).await?;
    Ok(())
}
