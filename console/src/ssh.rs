//! The local console's link to the gateway: each of the console's commands
//! runs on its own exec channel of one SSH connection, made with the shared
//! client ([`ssh_client`]) under the same rules as `hostd --gateway`:
//! `[user@]host[:port]` (port 2222 by default), `--identity FILE` (default
//! `~/.ssh/id_ed25519`), the host key checked against `~/.ssh/known_hosts`,
//! `--accept-new-host-key` to record it the first time.

use std::sync::Arc;

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
        argv: Vec<String>,
        stdin: Option<Vec<u8>>,
        tx: mpsc::Sender<Output>,
    ) {
        let mut ch = match self.open().await {
            Ok(ch) => ch,
            Err(e) => {
                let _ = tx.send(Output::Failed(e.to_string())).await;
                return;
            }
        };
        let what = argv.first().cloned().unwrap_or_default();
        let started = async {
            ch.exec(true, join_command_line(&argv)).await?;
            if let Some(bytes) = &stdin {
                ch.data(&bytes[..]).await?;
            }
            ch.eof().await
        };
        if let Err(e) = started.await {
            let _ = tx
                .send(Output::Failed(format!(
                    "cannot run {what} on the gateway: {e}"
                )))
                .await;
            return;
        }
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
            let out = match msg {
                Some(ChannelMsg::Data { data }) => Output::Stdout(data.to_vec()),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => Output::Stderr(data.to_vec()),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    code = Some(exit_status as i32);
                    continue;
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => continue,
            };
            if tx.send(out).await.is_err() {
                let _ = ch.close().await;
                return;
            }
        }
        let end = match code {
            Some(c) => Output::Exit(c),
            None => Output::Failed(format!(
                "lost the gateway at {} during {what}",
                self.target.addr()
            )),
        };
        let _ = tx.send(end).await;
    }
}

impl Executor for SshExecutor {
    fn start(&self, argv: Vec<String>, stdin: Option<Vec<u8>>) -> mpsc::Receiver<Output> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.inner.clone().exec(argv, stdin, tx));
        rx
    }
}
