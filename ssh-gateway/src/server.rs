//! The russh server: public-key authentication against enrolled keys, and
//! what each kind of channel request becomes.
//!
//! - `exec` (`ssh gw ps`): a CLI.md command, for operator and viewer keys.
//! - subsystem `cranefleet-tunnel`: a host's tunnel, for host keys only.
//! - `shell` with a pty (`ssh -t gw`): the console, drawn into the channel
//!   (`shell.rs`); without a pty, a message saying to use `ssh -t`.
//!
//! Anything a key's role does not allow is refused with a message and
//! audited; an unknown key never gets past authentication.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId};

use crate::exec;
use crate::fleet::Fleet;
use crate::keys::{self, KeyEntry, Role};

#[derive(Clone)]
pub struct Server {
    pub fleet: Arc<Fleet>,
}

impl server::Server for Server {
    type Handler = Conn;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Conn {
        Conn {
            fleet: self.fleet.clone(),
            peer,
            key: None,
            channels: HashMap::new(),
            pty: HashMap::new(),
        }
    }

    fn handle_session_error(&mut self, error: <Conn as server::Handler>::Error) {
        tracing::debug!(%error, "ssh session ended with an error");
    }
}

/// One SSH connection.
pub struct Conn {
    fleet: Arc<Fleet>,
    peer: Option<SocketAddr>,
    key: Option<KeyEntry>,
    /// Session channels opened and not yet given a purpose.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Terminal sizes asked for with `pty-req`.
    pty: HashMap<ChannelId, (u32, u32, String)>,
}

impl Conn {
    async fn lookup(&self, key: &PublicKey) -> Option<KeyEntry> {
        let fp = keys::fingerprint(key);
        self.fleet
            .db()
            .call(move |c| keys::by_fingerprint(c, &fp))
            .await
            .ok()
            .flatten()
    }

    fn peer(&self) -> String {
        self.peer
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    async fn refuse_key(&self, user: &str, key: &PublicKey) {
        let fp = keys::fingerprint(key);
        tracing::warn!(user, peer = %self.peer(), key = %fp, "refused an unknown key");
        self.fleet
            .audit(
                &fp,
                "auth",
                None,
                format!(
                    "refused: unknown key {fp} for user {user} from {}",
                    self.peer()
                ),
            )
            .await;
    }

    /// Refuses a channel request: a line on stderr, exit 1, audited.
    async fn refuse(&mut self, channel: ChannelId, action: &str, why: String) {
        let who = self
            .key
            .as_ref()
            .map(|k| k.name.clone())
            .unwrap_or_else(|| "unknown".into());
        self.fleet
            .audit(&who, action, None, format!("refused: {why}"))
            .await;
        if let Some(ch) = self.channels.remove(&channel) {
            let (_, w) = ch.split();
            let out = exec::Out::new(w);
            let _ = out.stderr(format!("error: {why}\n")).await;
            out.exit(1).await;
        }
    }
}

impl server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Unknown keys are turned away before the client signs anything.
        match self.lookup(offer.public_key).await {
            Some(_) => Ok(Auth::Accept),
            None => {
                self.refuse_key(user, offer.public_key).await;
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.lookup(key.public_key).await {
            Some(entry) => {
                tracing::info!(key = %entry.name, role = %entry.role, user, peer = %self.peer(), "authenticated");
                self.key = Some(entry);
                Ok(Auth::Accept)
            }
            None => {
                self.refuse_key(user, key.public_key).await;
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.key.is_none() {
            return Ok(()); // dropping the handle rejects it
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pty
            .insert(channel, (col_width, row_height, term.to_string()));
        session.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        let command = String::from_utf8_lossy(data).into_owned();
        if key.role == Role::Host {
            session.channel_success(channel)?;
            self.refuse(
                channel,
                "exec",
                format!(
                    "the key {} is enrolled as a host; host keys may only open the agent tunnel",
                    key.name
                ),
            )
            .await;
            return Ok(());
        }
        let Some(ch) = self.channels.remove(&channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        let (read, write) = ch.split();
        tracing::info!(key = %key.name, command, "exec");
        tokio::spawn(exec::run(
            self.fleet.clone(),
            key,
            read,
            exec::Out::new(write),
            command,
        ));
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        if name != schema::tunnel::SUBSYSTEM {
            session.channel_failure(channel)?;
            return Ok(());
        }
        if key.role != Role::Host {
            session.channel_success(channel)?;
            self.refuse(
                channel,
                "tunnel",
                format!(
                    "the key {} is enrolled as {}; only host keys may open the agent tunnel",
                    key.name, key.role
                ),
            )
            .await;
            return Ok(());
        }
        let Some(ch) = self.channels.remove(&channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        tokio::spawn(crate::tunnel::serve(
            self.fleet.clone(),
            key.name,
            ch.into_stream(),
        ));
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        session.channel_success(channel)?;
        if key.role == Role::Host {
            let why = format!(
                "the key {} is enrolled as a host; host keys may only open the agent tunnel",
                key.name
            );
            self.refuse(channel, "shell", why).await;
            return Ok(());
        }
        let Some((cols, rows, term)) = self.pty.remove(&channel) else {
            // Not audited: asking without a terminal is a usage slip, not a refusal.
            if let Some(ch) = self.channels.remove(&channel) {
                let (_, w) = ch.split();
                let out = exec::Out::new(w);
                let _ = out
                    .stderr(
                        "error: the console needs a terminal: use `ssh -t -p PORT USER@GATEWAY` \
                         (or run a command: `ssh -p PORT USER@GATEWAY ps`)\n",
                    )
                    .await;
                out.exit(2).await;
            }
            return Ok(());
        };
        let Some(ch) = self.channels.remove(&channel) else {
            return Ok(());
        };
        tracing::info!(key = %key.name, role = %key.role, cols, rows, term, "console session");
        let pty = crate::shell::Pty { cols, rows, term };
        tokio::spawn(crate::shell::serve(self.fleet.clone(), key, ch, pty));
        Ok(())
    }
}
