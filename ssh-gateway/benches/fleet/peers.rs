//! The `logs` section's peers: OpenSSH's `ssh localhost cat FILE` and a
//! bare russh channel, the same bytes through each.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::keygen;
use crate::harness::*;
use crate::setup::{Fleet, median_secs};

/// The peer: OpenSSH's `ssh localhost cat FILE` of the same bytes,
/// its output read by this process as `logs` output is. Starts its own
/// `sshd` (a temporary host key, config and authorized key, on a free
/// port). Returns the median seconds of `cat FILE` and of `true` (what
/// connecting costs), or `None` without an `sshd`.
pub fn openssh_cat(f: &Fleet, bytes: &[u8], runs: usize) -> Option<(f64, f64)> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let dir = f.dir.path().join("openssh");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bigfile");
    std::fs::write(&file, bytes).unwrap();
    let host_key = keygen(&dir, "sshd_host");
    let client = keygen(&dir, "client");
    let auth = dir.join("authorized_keys");
    std::fs::copy(client.with_extension("pub"), &auth).unwrap();
    // sshd's privilege separation directory, when run as root.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nLogLevel ERROR\nPidFile {}\n",
            host_key.display(),
            auth.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let _sshd = Proc::spawn(
        "sshd",
        Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stderr(Stdio::null()),
    );
    wait_for("sshd to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let ciphers = if schema::tunnel::hardware_aes() {
        "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
    } else {
        "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com"
    };
    let ssh = |cmd: &str| {
        let mut c = Command::new("ssh");
        c.args(["-c", ciphers, "-p", &port.to_string(), "-i"])
            .arg(&client)
            .args(SSH_OPTIONS)
            .args(["127.0.0.1", cmd])
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let cat = format!("cat {}", file.display());
    let got = ssh(&cat).output().unwrap();
    if got.stdout.len() != bytes.len() {
        println!("  OpenSSH: `ssh localhost cat` did not work here; raw russh only");
        return None;
    }
    let whole = median_secs(runs, || {
        let out = ssh(&cat).stdout(Stdio::piped()).output().unwrap();
        assert_eq!(out.stdout.len(), bytes.len());
    });
    let connect = median_secs(runs, || {
        ssh("true").status().unwrap();
    });
    Some((whole, connect))
}

/// Lines/s through a bare russh server → client channel in this process.
pub fn raw_russh(lines: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let addr = serve_lines(lines).await;
        let mut preferred = russh::Preferred::default();
        if schema::tunnel::hardware_aes() {
            preferred.cipher = std::borrow::Cow::Borrowed(&[
                russh::cipher::AES_256_GCM,
                russh::cipher::CHACHA20_POLY1305,
            ]);
        }
        let mut s = russh::client::connect(
            std::sync::Arc::new(russh::client::Config {
                preferred,
                ..Default::default()
            }),
            addr,
            AnyServer,
        )
        .await
        .unwrap();
        let _ = s.authenticate_none("bench").await.unwrap();
        let mut ch = s.channel_open_session().await.unwrap();
        let t = Instant::now();
        let mut got = 0u64;
        while let Some(m) = ch.wait().await {
            if let russh::ChannelMsg::Data { data } = m {
                got += data.iter().filter(|b| **b == b'\n').count() as u64;
            }
        }
        got as f64 / t.elapsed().as_secs_f64()
    })
}

/// Starts a russh server on a free loopback port that sends `lines` log
/// lines down every session channel, then closes it; its address.
async fn serve_lines(lines: u64) -> std::net::SocketAddr {
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::server::Server as _;
    let key = russh::keys::PrivateKey::from(Ed25519Keypair::from_seed(&[7u8; 32]));
    let config = std::sync::Arc::new(russh::server::Config {
        keys: vec![key],
        auth_rejection_time: Duration::ZERO,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = LineServer(lines).run_on_socket(config, &listener).await;
    });
    addr
}

/// The server of [`serve_lines`]: anyone may connect.
#[derive(Clone)]
struct LineServer(u64);

impl russh::server::Server for LineServer {
    type Handler = LineServer;
    fn new_client(&mut self, _: Option<std::net::SocketAddr>) -> LineServer {
        self.clone()
    }
}

impl russh::server::Handler for LineServer {
    type Error = russh::Error;
    async fn auth_none(&mut self, _: &str) -> Result<russh::server::Auth, Self::Error> {
        Ok(russh::server::Auth::Accept)
    }
    async fn channel_open_session(
        &mut self,
        ch: russh::Channel<russh::server::Msg>,
        reply: russh::server::ChannelOpenHandle,
        _: &mut russh::server::Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let n = self.0;
        tokio::spawn(async move {
            let line = b"2026-11-24T10:00:00.000Z h0 spam[v1 spam.1] stdout: spam 123456\n";
            let mut buf = Vec::with_capacity(line.len() * 512);
            let mut sent = 0;
            while sent < n {
                buf.clear();
                for _ in 0..512.min(n - sent) {
                    buf.extend_from_slice(line);
                    sent += 1;
                }
                if ch.data_bytes(buf.clone()).await.is_err() {
                    return;
                }
            }
            let _ = ch.eof().await;
            let _ = ch.close().await;
        });
        Ok(())
    }
}

/// The client of [`raw_russh`]: any server key will do.
struct AnyServer;

impl russh::client::Handler for AnyServer {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}
