//! Listener hygiene, shared by every port a cranefleet daemon owns (the
//! gateway's SSH port, hostd's HTTP ingress, metrics endpoints).
//!
//! Nothing unauthenticated may cost more than a bounded slice of the
//! process. Three tools give that, in the manner of OpenSSH's
//! `MaxStartups`/`LoginGraceTime` and nginx's `worker_connections`:
//!
//! - [`accept`]: an accept loop step that never fails. Running out of file
//!   descriptors (`EMFILE`, `ENFILE`) or kernel memory makes it back off and
//!   try again instead of ending the server, and errors that belong to one
//!   aborted connection are skipped.
//! - [`Gate`]: caps on connections that have not authenticated yet, in
//!   total and per source address (IPv6 by /64, since one host owns a whole
//!   /64). A refused connection is closed at once, so a flood costs one
//!   descriptor per connection for microseconds. There is no penalty that
//!   outlives the flood: a slot is free again the moment its connection
//!   authenticates or closes.
//! - [`Killable`]: a stream wrapper whose I/O fails once its [`KillSwitch`]
//!   is thrown, so a connection owned by a library task (russh's session
//!   loop) can be cut off from outside — at the end of a grace time, or when
//!   the key behind it is revoked.
//!
//! [`raise_nofile_limit`] lifts the soft descriptor limit to the hard one at
//! start, as Go and nginx do, so the default 1024 is not the ceiling.

mod gate;
mod kill;

pub use gate::{Gate, Permit, Refused};
pub use kill::{KillSwitch, Killable, until_true};

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// The longest an accept loop sleeps when the process is out of resources.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often a resource error is logged while it lasts.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Whether an accept error is about one connection that went away before it
/// was accepted (skip it) rather than about the listener or the process.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

/// Whether an accept error means the process (or the system) is out of
/// descriptors or memory: it passes when connections close.
pub fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts the next connection, whatever happens meanwhile.
///
/// Never returns an error: per-connection errors are skipped, and on
/// resource exhaustion it sleeps (10 ms doubling to 1 s) and tries again,
/// logging a warning at most every ten seconds with the count of failures.
/// `what` names the listener in those warnings ("the SSH port").
pub async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    static LAST_LOG: Mutex<Option<Instant>> = Mutex::new(None);
    let mut backoff = Duration::from_millis(10);
    let mut failures = 0u64;
    loop {
        match listener.accept().await {
            Ok(c) => {
                if failures > 0 {
                    tracing::info!(listener = what, failures, "accepting connections again");
                }
                return c;
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                failures += 1;
                let log = {
                    let mut last = LAST_LOG.lock().unwrap_or_else(|p| p.into_inner());
                    let due = last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                };
                if log {
                    if is_resource_error(&e) {
                        tracing::warn!(listener = what, error = %e, failures,
                            "cannot accept a connection: out of descriptors or memory; \
                             waiting for connections to close (raise `ulimit -n` if this persists)");
                    } else {
                        tracing::warn!(listener = what, error = %e, failures, "cannot accept a connection; retrying");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Files and directories a daemon creates from now on are its owner's
/// alone (umask 077): databases and their WAL hold apps' environments.
pub fn private_umask() {
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and its parents) readable by its owner only, and takes
/// group and other access away from one that exists: a data directory holds
/// databases with apps' environments and keys.
///
/// # Errors
///
/// When the directory cannot be created or its mode read or set.
pub fn create_private_dir(dir: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
        tracing::info!(dir = %dir.display(), "took group and other access away from the data directory");
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit. Returns the
/// limit now in force.
///
/// # Errors
///
/// When the limits cannot be read or set (the limit in force is unchanged).
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the pointer, which is valid.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from the pointer, which is valid.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(want.rlim_cur);
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_errors_are_told_apart_from_connection_errors() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_resource_error(&emfile));
        assert!(!is_connection_error(&emfile));
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert!(is_connection_error(&aborted));
        assert!(!is_resource_error(&aborted));
    }

    #[test]
    fn the_nofile_limit_is_raised_to_the_hard_limit() {
        let now = raise_nofile_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, now);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
