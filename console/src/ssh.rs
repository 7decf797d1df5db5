//! The local console's link to the gateway: a russh client that checks the
//! gateway's host key like OpenSSH does, and runs each of the console's
//! commands on its own exec channel of one SSH connection.
//!
//! The console does not share code with `hostd` (only `schema` is shared
//! between the programs), so this is its own small client, with the same
//! rules as CLI.md gives `hostd --gateway`: `[user@]host[:port]` (port 2222
//! by default), `--identity FILE` (default `~/.ssh/id_ed25519`), the host
//! key checked against `~/.ssh/known_hosts`, `--accept-new-host-key` to
//! record it the first time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use schema::command::join_command_line;
use tokio::sync::mpsc;

use crate::driver::{Executor, Output};

/// Why the gateway could not be reached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("cannot read the SSH key {path}: {reason}; pass another with --identity FILE")]
    Key { path: PathBuf, reason: String },
    #[error("bad gateway address {0:?}: expected [user@]host[:port]")]
    Address(String),
    #[error("cannot connect to the gateway at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The host key is unknown or changed; the message says what to do.
    #[error("{0}")]
    HostKey(String),
    #[error(
        "the gateway at {addr} did not accept the key {fingerprint}; its administrator enrolls it with `ssh-gateway keys add --role operator|viewer <its .pub file>`"
    )]
    Auth { addr: String, fingerprint: String },
    #[error("SSH error talking to the gateway: {0}")]
    Protocol(String),
}

/// `[user@]host[:port]`, port 2222 by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    /// # Errors
    ///
    /// [`SshError::Address`] for an empty user or host, or a bad port.
    pub fn parse(s: &str, default_user: &str) -> Result<Target, SshError> {
        let err = || SshError::Address(s.to_string());
        let (user, rest) = match s.split_once('@') {
            Some((u, r)) if !u.is_empty() => (u.to_string(), r),
            Some(_) => return Err(err()),
            None => (default_user.to_string(), s),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().map_err(|_| err())?),
            _ => (rest.to_string(), 2222),
        };
        if host.is_empty() {
            return Err(err());
        }
        Ok(Target { user, host, port })
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// The invoking user's name, the SSH user when the address names none.
pub fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cranefleet".into())
}

/// `~/.ssh`.
pub fn ssh_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ssh")
}

/// Loads an OpenSSH private key (unencrypted).
///
/// # Errors
///
/// [`SshError::Key`] when the file is missing, unreadable or encrypted.
pub fn load_key(path: &Path) -> Result<PrivateKey, SshError> {
    russh::keys::load_secret_key(path, None).map_err(|e| SshError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// An OpenSSH known_hosts file, and whether an unknown gateway may be
/// recorded in it (a changed key never is).
#[derive(Debug, Clone)]
pub struct KnownHosts {
    pub path: PathBuf,
    pub accept_new: bool,
}

struct Client {
    known: KnownHosts,
    target: Target,
    /// Why the server key was refused, for the error message.
    refusal: Arc<Mutex<Option<String>>>,
}

impl Client {
    fn verify(&self, key: &PublicKey) -> Result<(), String> {
        let fp = fingerprint(key);
        let (host, port, path) = (&self.target.host, self.target.port, &self.known.path);
        match russh::keys::check_known_hosts_path(host, port, key, path) {
            Ok(true) => Ok(()),
            Ok(false) if self.known.accept_new => russh::keys::known_hosts::learn_known_hosts_path(
                host, port, key, path,
            )
            .map_err(|e| format!("cannot record the gateway key in {}: {e}", path.display())),
            Ok(false) => Err(format!(
                "the gateway [{host}]:{port} is not in {} (its key is {fp}); check the key with the gateway's operator and pass --accept-new-host-key to record it",
                path.display()
            )),
            Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
                "THE GATEWAY'S HOST KEY HAS CHANGED: [{host}]:{port} presented {fp}, which differs from line {line} of {}. \
                 Someone may be impersonating the gateway; if it was reinstalled, remove that line after checking the new key.",
                path.display()
            )),
            Err(e) => Err(format!("cannot check {}: {e}", path.display())),
        }
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => c.public_key().clone().into(),
        };
        match self.verify(&key) {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                Ok(false)
            }
        }
    }
}

type Session = client::Handle<Client>;

/// Connects, checks the host key and authenticates.
async fn connect(
    target: &Target,
    key: &PrivateKey,
    known: &KnownHosts,
) -> Result<Session, SshError> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(5)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let refusal = Arc::new(Mutex::new(None));
    let handler = Client {
        known: known.clone(),
        target: target.clone(),
        refusal: refusal.clone(),
    };
    let addr = target.addr();
    let connecting = client::connect(config, addr.as_str(), handler);
    let mut session = match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            if let Some(why) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(SshError::HostKey(why));
            }
            let reason = e.to_string();
            return Err(SshError::Connect { addr, reason });
        }
        Err(_) => {
            let reason = "timed out after 15 s".to_string();
            return Err(SshError::Connect { addr, reason });
        }
    };
    let hash = session
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let auth = session
        .authenticate_publickey(
            &target.user,
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), hash),
        )
        .await
        .map_err(|e| SshError::Protocol(e.to_string()))?;
    if !auth.success() {
        return Err(SshError::Auth {
            addr,
            fingerprint: fingerprint(key.public_key()),
        });
    }
    Ok(session)
}

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
    known: KnownHosts,
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
        known: KnownHosts,
    ) -> Result<SshExecutor, SshError> {
        let session = connect(&target, &key, &known).await?;
        let inner = Arc::new(Inner {
            target,
            key,
            known,
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
        let known = KnownHosts {
            accept_new: false,
            ..self.known.clone()
        };
        let s = Arc::new(connect(&self.target, &self.key, &known).await?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_defaults() {
        let t = Target::parse("gw", "me").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("me", "gw", 2222)
        );
        let t = Target::parse("ops@127.0.0.1:2200", "me").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("ops", "127.0.0.1", 2200)
        );
        assert!(Target::parse("@gw", "me").is_err());
        assert!(Target::parse("gw:port", "me").is_err());
    }
}
