//! The SSH client every cranefleet program uses to reach a gateway: keys,
//! the gateway's host key, ciphers, connecting.
//!
//! Three uses, one set of rules: `hostd agent` keeps a tunnel to the
//! gateway, pinning the gateway's host key in its data directory on first
//! contact; `hostd <command> --gateway` and the local `console` run commands
//! through the gateway, checking its host key against `~/.ssh/known_hosts`
//! like OpenSSH does (`--accept-new-host-key` records it the first time; a
//! changed key is never accepted). Addresses are `[user@]host[:port]`, port
//! 2222 by default. The same key generator makes hosts' keys, the gateway's
//! host key and the demo's keys.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::ssh_key::{LineEnding, private::Ed25519Keypair};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

/// Why the gateway could not be reached, in words that say what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("cannot read the SSH key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("bad gateway address {0:?}: expected [user@]host[:port]")]
    Address(String),
    #[error("cannot connect to the gateway at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{0}")]
    HostKey(String),
    #[error(
        "the gateway at {addr} did not accept the key {fingerprint}; an administrator enrolls it with `ssh-gateway keys add --role host|operator|viewer <its .pub file>`"
    )]
    Auth { addr: String, fingerprint: String },
    #[error("SSH error talking to the gateway: {0}")]
    Protocol(String),
    /// A standby gateway of a fleet on PostgreSQL: it names the active one.
    #[error("the gateway at {addr} said: {message}")]
    Standby { addr: String, message: String },
}

/// How a standby gateway's banner begins: it refuses every key and names
/// the active gateway, and a client given a list moves on to the next.
pub const STANDBY_BANNER: &str = "cranefleet standby:";

/// `[user@]host[:port]`, port 2222 by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl Target {
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

    /// A comma-separated list of gateways (`gw1,ops@gw2:2200`), tried in
    /// turn; at least one, at most [`MAX_GATEWAYS`].
    pub fn parse_list(s: &str, default_user: &str) -> Result<Vec<Target>, SshError> {
        let targets = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Target::parse(t, default_user))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() || targets.len() > MAX_GATEWAYS {
            return Err(SshError::Address(s.to_string()));
        }
        Ok(targets)
    }
}

/// The most gateways a `--gateway` list may name.
pub const MAX_GATEWAYS: usize = 16;

/// Connects to the first of `targets` that answers and lets the key in,
/// trying them in order; which one, and the session. When none does, the
/// error names what each said.
pub async fn connect_first(
    targets: &[Target],
    key: &PrivateKey,
    policy: HostKeyPolicy,
) -> Result<(client::Handle<Client>, Target), SshError> {
    let mut failures = Vec::new();
    let mut last = None;
    for t in targets {
        match connect(t, key, policy.clone()).await {
            Ok(h) => return Ok((h, t.clone())),
            Err(e) => {
                failures.push(format!("{}: {e}", t.addr()));
                last = Some(e);
            }
        }
    }
    let standby = failures.iter().any(|f| f.contains(STANDBY_BANNER));
    match (last, failures.len()) {
        (Some(e), 1) => Err(e),
        // A standby answered: the fleet is there, another gateway is (or
        // is about to be) active. Said as such, so callers retry soon.
        _ if standby => Err(SshError::Standby {
            addr: targets
                .iter()
                .map(Target::addr)
                .collect::<Vec<_>>()
                .join(","),
            message: format!("no active gateway answered: {}", failures.join("; ")),
        }),
        _ => Err(SshError::Connect {
            addr: targets
                .iter()
                .map(Target::addr)
                .collect::<Vec<_>>()
                .join(","),
            reason: format!("no gateway answered: {}", failures.join("; ")),
        }),
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// `~/.ssh`.
pub fn ssh_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ssh")
}

/// The invoking user's name, for SSH usernames.
pub fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cranefleet".into())
}

/// Loads an OpenSSH private key.
pub fn load_key(path: &Path) -> Result<PrivateKey, SshError> {
    check_key_mode(path)?;
    russh::keys::load_secret_key(path, None).map_err(|e| SshError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Refuses a private key that others may read, as OpenSSH does and in its
/// words: anyone who read it is that key.
fn check_key_mode(path: &Path) -> Result<(), SshError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // reading it says what is wrong
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SshError::Key {
            path: path.to_path_buf(),
            reason: format!(
                "UNPROTECTED PRIVATE KEY FILE: permissions {mode:04o} are too open; it is required that private key files are NOT accessible by others, so this key is not used: `chmod 600 {}`",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Loads the key at `path`, or creates an ed25519 key there (and `path.pub`)
/// if there is none. Returns the key and whether it was created.
pub fn load_or_create_key(path: &Path) -> Result<(PrivateKey, bool), SshError> {
    if path.exists() {
        return Ok((load_key(path)?, false));
    }
    let err = |reason: String| SshError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| err(format!("no randomness for a new key: {e}")))?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    if let Some(dir) = path.parent() {
        // Like ssh-keygen: a directory made for a key is its owner's alone.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(e.to_string()))?;
    }
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| err(e.to_string()))?;
    // Created 0600, never readable by others even for a moment.
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(private.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|e| err(e.to_string()))?;
    }
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| err(e.to_string()))?;
    std::fs::write(pub_path(path), format!("{public}\n")).map_err(|e| err(e.to_string()))?;
    Ok((key, true))
}

pub fn pub_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// How the gateway's host key is checked.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// A file holding the one key this host accepts; written on first contact.
    Pinned(PathBuf),
    /// An OpenSSH known_hosts file; `accept_new` records an unknown host.
    KnownHosts { path: PathBuf, accept_new: bool },
}

/// The russh handler: checks the server's key with the policy.
pub struct Client {
    policy: HostKeyPolicy,
    target: Target,
    /// Why the server key was refused, for the error message.
    refusal: Arc<Mutex<Option<String>>>,
    /// A standby gateway's banner (what it said, escaped and bounded).
    banner: Arc<Mutex<Option<String>>>,
}

impl Client {
    fn verify(&self, key: &PublicKey) -> Result<(), String> {
        let fp = fingerprint(key);
        match &self.policy {
            HostKeyPolicy::Pinned(path) => {
                let line = key.to_openssh().map_err(|e| e.to_string())?;
                match std::fs::read_to_string(path) {
                    Ok(pinned) => {
                        let pinned_key = PublicKey::from_openssh(pinned.trim()).map_err(|e| {
                            format!(
                                "the pinned gateway key in {} is unreadable: {e}",
                                path.display()
                            )
                        })?;
                        if pinned_key.key_data() == key.key_data() {
                            Ok(())
                        } else {
                            Err(format!(
                                "THE GATEWAY'S HOST KEY HAS CHANGED: {} presented {fp}, but this host pinned {} in {}. \
                                 Someone may be impersonating the gateway. If the gateway was reinstalled, confirm its key \
                                 with its operator (`ssh-gateway keys list` shows it), then delete {} and restart the agent.",
                                self.target.addr(),
                                fingerprint(&pinned_key),
                                path.display(),
                                path.display()
                            ))
                        }
                    }
                    Err(_) => {
                        std::fs::write(path, format!("{line}\n")).map_err(|e| {
                            format!("cannot pin the gateway key in {}: {e}", path.display())
                        })?;
                        tracing::warn!(gateway = %self.target.addr(), key = %fp, file = %path.display(), "pinned the gateway's host key on first contact");
                        Ok(())
                    }
                }
            }
            HostKeyPolicy::KnownHosts { path, accept_new } => {
                let (host, port) = (&self.target.host, self.target.port);
                match russh::keys::check_known_hosts_path(host, port, key, path) {
                    Ok(true) => Ok(()),
                    Ok(false) if *accept_new => {
                        russh::keys::known_hosts::learn_known_hosts_path(host, port, key, path)
                            .map_err(|e| {
                                format!("cannot record the gateway key in {}: {e}", path.display())
                            })?;
                        eprintln!(
                            "recorded the gateway's host key {fp} for [{host}]:{port} in {}",
                            path.display()
                        );
                        Ok(())
                    }
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

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if banner.starts_with(STANDBY_BANNER) {
            let shown: String = banner.trim().chars().take(512).collect();
            *self.banner.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(schema::render::clean(&shown).into_owned());
        }
        Ok(())
    }
}

/// Ciphers on a CPU with AES and carry-less multiply instructions:
/// AES-GCM first, several times cheaper per byte there than
/// ChaCha20-Poly1305 (russh's and OpenSSH's first choice, which stays first
/// elsewhere). Tunnels carry artifacts and bulk log reads, and `logs`
/// through the gateway is often a bulk read too.
const HARDWARE_AES_ORDER: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
];

/// Connects to the gateway, checks its host key, and authenticates with `key`.
///
/// # Errors
///
/// [`SshError::Connect`] when the address does not answer within 15 s,
/// [`SshError::HostKey`] when the policy refuses the gateway's key (the
/// message says why and what to do), [`SshError::Auth`] when the gateway
/// does not accept `key`.
pub async fn connect(
    target: &Target,
    key: &PrivateKey,
    policy: HostKeyPolicy,
) -> Result<client::Handle<Client>, SshError> {
    let mut preferred = russh::Preferred::default();
    if schema::tunnel::hardware_aes() {
        preferred.cipher = std::borrow::Cow::Borrowed(HARDWARE_AES_ORDER);
    }
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(5)),
        keepalive_max: 3,
        nodelay: true,
        preferred,
        ..Default::default()
    });
    let refusal = Arc::new(Mutex::new(None));
    let banner = Arc::new(Mutex::new(None));
    let handler = Client {
        policy,
        target: target.clone(),
        refusal: refusal.clone(),
        banner: banner.clone(),
    };
    let addr = target.addr();
    let connected = tokio::time::timeout(
        Duration::from_secs(15),
        client::connect(config, addr.as_str(), handler),
    )
    .await;
    let mut session = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            if let Some(why) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(SshError::HostKey(why));
            }
            return Err(SshError::Connect {
                addr,
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(SshError::Connect {
                addr,
                reason: "timed out after 15 s".into(),
            });
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
        if let Some(message) = banner.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(SshError::Standby { addr, message });
        }
        return Err(SshError::Auth {
            addr,
            fingerprint: fingerprint(key.public_key()),
        });
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_lists_parse_in_order_and_refuse_nonsense() {
        let l = Target::parse_list("gw1, ops@gw2:2200", "me").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].addr(), "gw1:2222");
        assert_eq!(l[1].user, "ops");
        assert!(Target::parse_list(",", "me").is_err());
        assert!(Target::parse_list("gw1,gw2:port", "me").is_err());
        let many = vec!["gw"; MAX_GATEWAYS + 1].join(",");
        assert!(Target::parse_list(&many, "me").is_err());
    }

    #[test]
    fn targets_parse_with_defaults() {
        assert_eq!(
            Target::parse("gw", "me").unwrap(),
            Target {
                user: "me".into(),
                host: "gw".into(),
                port: 2222
            }
        );
        assert_eq!(
            Target::parse("ops@127.0.0.1:2200", "me").unwrap(),
            Target {
                user: "ops".into(),
                host: "127.0.0.1".into(),
                port: 2200
            }
        );
        assert!(Target::parse("@gw", "me").is_err());
        assert!(Target::parse("gw:port", "me").is_err());
    }

    #[test]
    fn keys_are_created_once_and_reloaded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("host_key");
        let (k1, created) = load_or_create_key(&p).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_key(&p).unwrap();
        assert!(!created);
        assert_eq!(k1.public_key(), k2.public_key());
        let line = std::fs::read_to_string(pub_path(&p)).unwrap();
        assert!(line.starts_with("ssh-ed25519 "));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a new private key is 0600");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_key(&p).unwrap_err().to_string();
        assert!(
            e.contains("UNPROTECTED PRIVATE KEY FILE") && e.contains("0644"),
            "{e}"
        );
    }
}
