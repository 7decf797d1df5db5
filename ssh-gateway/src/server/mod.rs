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

use schema::audit::Action;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId};
use tokio::sync::{oneshot, watch};

mod listen;
pub mod standby;

pub use listen::{Limits, run};

use crate::exec;
use crate::fleet::Fleet;
use crate::keys::{self, KeyEntry, Role};

#[derive(Clone)]
pub struct Server {
    pub fleet: Arc<Fleet>,
    /// Console sessions open on this gateway, all connections together.
    consoles: Arc<std::sync::atomic::AtomicUsize>,
    /// Authenticated connections by key, closed when their key is removed
    /// or its role changes.
    sessions: Arc<crate::sessions::Sessions>,
    /// Refusals before login, counted and written once per interval.
    refusals: Arc<crate::refusals::Refusals>,
}

/// Session channels one connection may have open at once (OpenSSH's
/// `MaxSessions`).
pub const MAX_SESSIONS: usize = 10;
/// Console sessions the gateway draws at once; each costs up to ~10 MiB.
pub const MAX_CONSOLES: usize = 64;

impl Server {
    pub fn new(fleet: Arc<Fleet>) -> Server {
        Server {
            fleet,
            consoles: Arc::default(),
            sessions: Arc::default(),
            refusals: Arc::default(),
        }
    }

    /// The authenticated connections (`--metrics` counts them by role).
    pub fn sessions(&self) -> Arc<crate::sessions::Sessions> {
        self.sessions.clone()
    }

    fn new_client(
        &self,
        peer: SocketAddr,
        authenticated: oneshot::Sender<()>,
        shutdown: watch::Receiver<bool>,
        switch: net::KillSwitch,
    ) -> Conn {
        Conn {
            switch,
            sessions: self.sessions.clone(),
            refusals: self.refusals.clone(),
            tried_none: None,
            registered: None,
            fleet: self.fleet.clone(),
            shutdown,
            peer: Some(peer),
            key: None,
            channels: HashMap::new(),
            pty: HashMap::new(),
            authenticated: Some(authenticated),
            open: 0,
            consoles: self.consoles.clone(),
        }
    }
}

/// One SSH connection.
pub struct Conn {
    /// Cuts this connection off (its key was removed or changed role).
    switch: net::KillSwitch,
    sessions: Arc<crate::sessions::Sessions>,
    refusals: Arc<crate::refusals::Refusals>,
    /// The user of a `none` login (every client probes with one first): a
    /// refusal only if the connection never authenticates.
    tried_none: Option<String>,
    /// Held while authenticated: the connection is known by its key.
    registered: Option<crate::sessions::Registered>,
    fleet: Arc<Fleet>,
    /// Set when the gateway shuts down: the tasks a channel starts end.
    shutdown: watch::Receiver<bool>,
    peer: Option<SocketAddr>,
    key: Option<KeyEntry>,
    /// Session channels opened and not yet given a purpose.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Terminal sizes asked for with `pty-req`.
    pty: HashMap<ChannelId, (u32, u32, String)>,
    /// Told once the key is accepted, which frees the connection's
    /// unauthenticated slot and stops its grace timer.
    authenticated: Option<oneshot::Sender<()>>,
    /// Session channels open on this connection.
    open: usize,
    consoles: Arc<std::sync::atomic::AtomicUsize>,
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
        tracing::debug!(peer = %self.peer(), key = %fp, "refused an unknown key");
        self.refusals.note(
            self.peer.map(|p| p.ip()),
            &format!("unknown key {fp}"),
            user,
        );
    }

    /// Counts a login attempt by a method we do not offer.
    fn refuse_method(&self, method: &str, user: &str) -> Auth {
        tracing::debug!(peer = %self.peer(), method, "refused a login method");
        self.refusals
            .note(self.peer.map(|p| p.ip()), &format!("{method} login"), user);
        Auth::reject()
    }

    /// Audits a refused request of an authenticated connection.
    async fn audit_refusal(&self, action: Action, why: String) {
        let who = self
            .key
            .as_ref()
            .map(|k| k.name.clone())
            .unwrap_or_else(|| "unknown".into());
        tracing::info!(key = %who, peer = %self.peer(), "refused {action}: {why}");
        self.fleet.audit_refused(&who, action, None, why).await;
    }

    /// Refuses a channel request: a line on stderr, exit 1, audited.
    async fn refuse(&mut self, channel: ChannelId, action: Action, why: String) {
        let who = self
            .key
            .as_ref()
            .map(|k| k.name.clone())
            .unwrap_or_else(|| "unknown".into());
        self.fleet.audit_refused(&who, action, None, &why).await;
        if let Some(ch) = self.channels.remove(&channel) {
            let (_, w) = ch.split();
            let out = exec::Out::new(w);
            let _ = out.stderr(format!("error: {why}\n")).await;
            out.exit(1).await;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.key.is_none()
            && let Some(user) = self.tried_none.take()
        {
            self.refusals
                .note(self.peer.map(|p| p.ip()), "none login", &user);
        }
    }
}

impl server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.tried_none
            .get_or_insert_with(|| user.chars().take(crate::refusals::MAX_USER).collect());
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(self.refuse_method("password", user))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.refuse_method("keyboard-interactive", user))
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator: &str,
        _originator_port: u32,
        _reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let to = schema::render::cell(&format!("{host}:{port}"));
        self.audit_refusal(Action::Forward, format!("port forwarding to {to}"))
            .await;
        Ok(()) // dropping the handle rejects it
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        socket_path: &str,
        _reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let to = schema::render::cell(socket_path);
        self.audit_refusal(Action::Forward, format!("socket forwarding to {to}"))
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let on = schema::render::cell(&format!("{address}:{port}"));
        self.audit_refusal(Action::Forward, format!("remote forwarding of {on}"))
            .await;
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let on = schema::render::cell(socket_path);
        self.audit_refusal(Action::Forward, format!("remote forwarding of {on}"))
            .await;
        Ok(false)
    }

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
                self.registered = Some(self.sessions.register(
                    &entry.fingerprint,
                    &entry.name,
                    entry.role,
                    self.switch.clone(),
                ));
                // Removed or changed between the lookup and the
                // registration: the watcher may have looked already.
                if self.lookup(key.public_key).await.map(|e| e.role) != Some(entry.role) {
                    self.registered = None;
                    return Ok(Auth::reject());
                }
                self.key = Some(entry);
                if let Some(tx) = self.authenticated.take() {
                    let _ = tx.send(());
                }
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
        if self.open >= MAX_SESSIONS {
            tracing::warn!(peer = %self.peer(), "refused a session channel: {MAX_SESSIONS} are open on this connection");
            return Ok(());
        }
        self.open += 1;
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.open = self.open.saturating_sub(1);
        self.channels.remove(&channel);
        self.pty.remove(&channel);
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
        // The size is clamped where the console is drawn; the name only
        // picks colours, so a long one is cut.
        let term: String = term.chars().take(64).collect();
        self.pty.insert(channel, (col_width, row_height, term));
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
                Action::Exec,
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
        // Never the values a command sets (a secret): the parsed, masked form.
        let shown = schema::command::CommandLine::shown_line(&command);
        tracing::info!(key = %key.name, command = %shown, "exec");
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
            let what = schema::render::cell(name);
            self.audit_refusal(
                Action::Subsystem,
                format!(
                    "the subsystem {what:?}; the gateway serves only {}",
                    schema::tunnel::SUBSYSTEM
                ),
            )
            .await;
            session.channel_failure(channel)?;
            return Ok(());
        }
        if key.role != Role::Host {
            session.channel_success(channel)?;
            self.refuse(
                channel,
                Action::Tunnel,
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
            self.fleet.tunnel_link(),
            self.shutdown.clone(),
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
            self.refuse(channel, Action::Shell, why).await;
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
        use std::sync::atomic::Ordering;
        if self.consoles.fetch_add(1, Ordering::SeqCst) >= MAX_CONSOLES {
            self.consoles.fetch_sub(1, Ordering::SeqCst);
            self.channels.insert(channel, ch);
            let why = format!(
                "the gateway is drawing {MAX_CONSOLES} consoles already; try again later, or run commands with `ssh -p PORT USER@GATEWAY ps`"
            );
            self.refuse(channel, Action::Shell, why).await;
            return Ok(());
        }
        tracing::info!(key = %key.name, role = %key.role, cols, rows, term, "console session");
        let pty = crate::shell::Pty { cols, rows, term };
        let (fleet, consoles) = (self.fleet.clone(), self.consoles.clone());
        tokio::spawn(async move {
            crate::shell::serve(fleet, key, ch, pty).await;
            consoles.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(())
    }
}
