//! The local console's link to the gateway: each of the console's commands
//! runs on its own exec channel of one SSH connection, made with the shared
//! client ([`ssh_client`]) under the same rules as `hostd --gateway`:
//! `[user@]host[:port]` (port 2222 by default), `--identity FILE` (default
//! `~/.ssh/id_ed25519`), the host key checked against `~/.ssh/known_hosts`,
//! `--accept-new-host-key` to record it the first time.

use std::sync::Arc;

use ops::{Command, CommandLine, ErrorKind, LogChunk, OpError, Reply, wire};
use russh::ChannelMsg;
use russh::client;
use russh::keys::PrivateKey;
use schema::command::join_command_line;
pub use ssh_client::{HostKeyPolicy, SshError, Target, load_key, local_user, ssh_dir};
use tokio::sync::mpsc;

use crate::driver::{Executor, Output};

type Session = client::Handle<ssh_client::Client>;

/// Runs the console's commands on the gateway, each on an exec channel of
/// one SSH connection, which is made again (on the next command) if it
/// breaks: a flaky link costs a reconnect, not the console.
#[derive(Clone)]
pub struct SshExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    key: PrivateKey,
    policy: HostKeyPolicy,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
}

impl SshExecutor {
    /// Connects once, so that a wrong address, key or host key is reported
    /// before the console takes over the terminal.
    ///
    /// # Errors
    ///
    /// Whatever [`SshError`] the first connection met.
    pub async fn connect(
        target: Target,
        key: PrivateKey,
        policy: HostKeyPolicy,
    ) -> Result<SshExecutor, SshError> {
        let session = ssh_client::connect(&target, &key, policy.clone()).await?;
        let inner = Arc::new(Inner {
            target,
            key,
            policy,
            session: tokio::sync::Mutex::new(Some(Arc::new(session))),
        });
        Ok(SshExecutor { inner })
    }

    pub fn target(&self) -> &Target {
        &self.inner.target
    }
}

impl Inner {
    /// The live connection, or a new one.
    async fn session(&self, fresh: bool) -> Result<Arc<Session>, SshError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref()
            && !fresh
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        // Recorded host keys were checked by the first connection; a
        // reconnect never records a new one.
        let policy = match &self.policy {
            HostKeyPolicy::KnownHosts { path, .. } => HostKeyPolicy::KnownHosts {
                path: path.clone(),
                accept_new: false,
            },
            pinned => pinned.clone(),
        };
        let s = Arc::new(ssh_client::connect(&self.target, &self.key, policy).await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn open(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        let s = self.session(false).await?;
        match s.channel_open_session().await {
            Ok(ch) => Ok(ch),
            // The connection died since it was last used: one new try.
            Err(_) => self
                .session(true)
                .await?
                .channel_open_session()
                .await
                .map_err(|e| SshError::Protocol(e.to_string())),
        }
    }

    async fn exec(
        self: Arc<Self>,
        request: CommandLine,
        stdin: Option<Vec<u8>>,
        tx: mpsc::Sender<Output>,
    ) {
        let gone = |m: String| Output::Done(Err(OpError::new(ErrorKind::Gone, m)));
        let mut ch = match self.open().await {
            Ok(ch) => ch,
            Err(e) => {
                let _ = tx.send(gone(e.to_string())).await;
                return;
            }
        };
        let what = request.command.name();
        // The wire is text: the typed command as words, with --json so the
        // answer reads back into replies.
        let words = CommandLine {
            json: true,
            command: request.command.clone(),
        }
        .to_argv();
        let started = async {
            ch.exec(true, join_command_line(&words)).await?;
            if let Some(bytes) = &stdin {
                ch.data(&bytes[..]).await?;
            }
            ch.eof().await
        };
        if let Err(e) = started.await {
            let _ = tx
                .send(gone(format!("cannot run {what} on the gateway: {e}")))
                .await;
            return;
        }
        let (mut stdout, mut stderr) = (Lines::default(), Lines::default());
        let mut errors = String::new();
        let mut code = None;
        loop {
            let msg = tokio::select! {
                m = ch.wait() => m,
                // Nobody reads any more: stop the command on the gateway.
                _ = tx.closed() => {
                    let _ = ch.close().await;
                    return;
                }
            };
            let replies = match msg {
                Some(ChannelMsg::Data { data }) => {
                    match decode_lines(&request.command, stdout.push(&data)) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = ch.close().await;
                            let e = OpError::failed(format!(
                                "{what}: unreadable answer from the gateway: {e}"
                            ));
                            let _ = tx.send(Output::Done(Err(e))).await;
                            return;
                        }
                    }
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr
                    .push(&data)
                    .into_iter()
                    .filter_map(|line| match wire::decode_stderr(&line) {
                        Some(p) => Some(Reply::Progress(p)),
                        None => {
                            errors.push_str(&line);
                            errors.push('\n');
                            None
                        }
                    })
                    .collect(),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    code = Some(exit_status as i32);
                    continue;
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => continue,
            };
            for r in replies {
                if tx.send(Output::Reply(r)).await.is_err() {
                    let _ = ch.close().await;
                    return;
                }
            }
        }
        if let Some(rest) = stderr.rest() {
            errors.push_str(&rest);
        }
        let end = match code {
            Some(0) => Output::Done(Ok(())),
            Some(c) => Output::Done(Err(wire::error_of(c, &errors))),
            None => gone(format!(
                "lost the gateway at {} during {what}",
                self.target.addr()
            )),
        };
        let _ = tx.send(end).await;
    }
}

/// Reads the stdout lines of `command` back into replies; consecutive log
/// records become one batch.
fn decode_lines(command: &Command, lines: Vec<String>) -> Result<Vec<Reply>, serde_json::Error> {
    let mut out: Vec<Reply> = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        match (wire::decode_stdout(command, line)?, out.last_mut()) {
            (
                Reply::Logs(LogChunk::Records(mut more)),
                Some(Reply::Logs(LogChunk::Records(batch))),
            ) => batch.append(&mut more),
            (r, _) => out.push(r),
        }
    }
    Ok(out)
}

/// Splits a byte stream into lines; keeps an unfinished last line for later.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let Some(end) = self.buf.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let done: Vec<u8> = self.buf.drain(..=end).collect();
        String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rest(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.is_empty()).then(|| String::from_utf8_lossy(&rest).into_owned())
    }
}

impl Executor for SshExecutor {
    fn start(&self, request: CommandLine, artifact: Option<Vec<u8>>) -> mpsc::Receiver<Output> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.inner.clone().exec(request, artifact, tx));
        rx
    }
}

#[cfg(test)]
mod lines_tests {
    use super::*;

    #[test]
    fn lines_wait_for_their_newline() {
        let mut l = Lines::default();
        assert!(l.push(b"{\"a\":").is_empty());
        assert_eq!(l.push(b"1}\n{\"b\""), vec!["{\"a\":1}".to_string()]);
        assert_eq!(l.rest().as_deref(), Some("{\"b\""));
    }

    #[test]
    fn log_lines_of_one_read_become_one_batch() {
        let cl = ops::parse_line("logs api -f").unwrap();
        let rec = |seq: u64| {
            format!(
                r#"{{"seq":{seq},"time":"2026-11-30T10:00:00.000Z","host":"h","app":"api","release":"v1","instance":"api-0","stream":"stdout","line":"x"}}"#
            )
        };
        let replies = decode_lines(&cl.command, vec![rec(1), rec(2), String::new()]).unwrap();
        assert_eq!(replies.len(), 1);
        let Reply::Logs(LogChunk::Records(b)) = &replies[0] else {
            panic!("{replies:?}")
        };
        assert_eq!(b.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    }
}
