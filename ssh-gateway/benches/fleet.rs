//! The fleet bench: figures, not tests. Real processes on loopback.
//!
//! ```text
//! cargo build --release --workspace
//! cargo bench -p ssh-gateway --bench fleet            # every section
//! cargo bench -p ssh-gateway --bench fleet -- rollback
//! ```
//!
//! - `rollback`: wall time of `hostd --gateway … rollback` (command → every
//!   host serving the kept release) for 1, 3 and 10 hosts.
//! - `deploy`: deploy-to-ready of a 12 MB http component on 3 hosts (fetch
//!   through the tunnels, compile on each host, switch, first 200 from each).
//! - `logs`: log lines/s from an app's store to an SSH client through the
//!   gateway, against OpenSSH's `ssh localhost cat FILE` of the same bytes
//!   (where an `sshd` is installed: `fixtures/bench-tools.sh`) and a raw
//!   russh channel, with CPU seconds per million lines. Each command's wall
//!   time, and its streaming rate: the wall time less what a command that
//!   moves nothing costs on the same path (process start, SSH handshake).

#[path = "../../fixtures/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;

fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_ssh-gateway")).with_file_name(name);
    assert!(
        p.exists(),
        "{name} is not built: run `cargo build --release --workspace` first"
    );
    p
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key),
        None,
    )
    .ok();
    key
}

struct Fleet {
    dir: tempfile::TempDir,
    port: u16,
    procs: Vec<Proc>,
    agents: Vec<(String, u16, PathBuf)>,
}

impl Fleet {
    fn start(hosts: usize) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("fleet-bench")
            .tempdir()
            .unwrap();
        let port = free_port();
        let gw = dir.path().join("gw");
        let enroll = |role: &str, key: &Path, name: &str| {
            let mut p = key.as_os_str().to_owned();
            p.push(".pub");
            run(
                Command::new(bin("ssh-gateway"))
                    .arg("--data")
                    .arg(&gw)
                    .args(["keys", "add", "--role", role, "--name", name])
                    .arg(p),
                None,
            )
            .ok();
        };
        let ops = keygen(dir.path(), "ops");
        enroll("operator", &ops, "ops");
        std::fs::create_dir_all(dir.path().join("home/.ssh")).unwrap();
        std::fs::copy(&ops, dir.path().join("home/.ssh/id_ed25519")).unwrap();
        let mut procs = vec![Proc::spawn(
            "ssh-gateway",
            Command::new(bin("ssh-gateway"))
                .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
                .arg(&gw)
                .env("CRANEFLEET_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )];
        wait_for("gateway", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let mut agents = Vec::new();
        for i in 0..hosts {
            let name = format!("h{i}");
            let key = keygen(dir.path(), &format!("{name}-key"));
            enroll("host", &key, &name);
            let http = free_port();
            let data = dir.path().join(&name);
            procs.push(Proc::spawn(
                "hostd agent",
                Command::new(bin("hostd"))
                    .args([
                        "agent",
                        "--gateway",
                        &format!("127.0.0.1:{port}"),
                        "--name",
                        &name,
                        "--http",
                        &format!("127.0.0.1:{http}"),
                        "--host-key",
                    ])
                    .arg(&key)
                    .arg("--data")
                    .arg(&data)
                    .env("CRANEFLEET_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            ));
            agents.push((name, http, data));
        }
        let f = Fleet {
            dir,
            port,
            procs,
            agents,
        };
        wait_for("every host up", || {
            let r = f.ops(&["hosts", "--json"]);
            (r.code == 0
                && r.json()
                    .as_array()
                    .map(|a| a.iter().filter(|h| h["state"] == "up").count())
                    == Some(hosts))
            .then_some(())
        });
        f
    }

    fn ops_cmd(&self) -> Command {
        let mut c = Command::new(bin("hostd"));
        c.args([
            "--gateway",
            &format!("ops@127.0.0.1:{}", self.port),
            "--accept-new-host-key",
        ])
        .env("HOME", self.dir.path().join("home"))
        .env("CRANEFLEET_LOG", "warn");
        c
    }

    fn ops(&self, args: &[&str]) -> Run {
        run(self.ops_cmd().args(args), None)
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rollback() {
    println!(
        "\n## rollback: `hostd --gateway … rollback --to vN` wall time (every host switched when it returns)"
    );
    for hosts in [1usize, 3, 10] {
        let f = Fleet::start(hosts);
        let r = hosts.to_string();
        f.ops(&[
            "deploy",
            "api",
            fixture("ticker.wasm").to_str().unwrap(),
            "--replicas",
            &r,
            "--env",
            "TICK_MS=1000",
        ])
        .ok();
        f.ops(&[
            "deploy",
            "api",
            fixture("ticker.component.wasm").to_str().unwrap(),
            "--env",
            "TICK_MS=1000",
        ])
        .ok();
        let mut wall = Vec::new();
        let mut inside = Vec::new();
        for i in 0..10 {
            let to = if i % 2 == 0 { "v1" } else { "v2" };
            let t = Instant::now();
            let out = f
                .ops(&["rollback", "api", "--to", to, "--json"])
                .ok()
                .json();
            wall.push(t.elapsed().as_secs_f64() * 1000.0);
            inside.push(out["switch_ms"].as_f64().unwrap_or(0.0));
        }
        println!(
            "  {hosts:>2} host(s): wall p50 {:>6.1} ms, max {:>6.1} ms; inside the gateway p50 {:>5.1} ms (10 rollbacks)",
            percentile(&mut wall.clone(), 0.5),
            percentile(&mut wall, 1.0),
            percentile(&mut inside, 0.5)
        );
    }
}

fn deploy() {
    println!(
        "\n## deploy-to-ready: a 12 MB http component (http-hello padded with a custom section) on 3 hosts"
    );
    let f = Fleet::start(3);
    let base = std::fs::read(fixture("http-hello.wasm")).unwrap();
    let mut big = base.clone();
    let name = b"cranefleet-padding";
    let payload = (12usize << 20) - base.len() - name.len() - 16;
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.resize(body.len() + payload, 0x5a);
    big.push(0);
    let mut n = body.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            big.push(b);
            break;
        }
        big.push(b | 0x80);
    }
    big.extend_from_slice(&body);
    let path = f.dir.path().join("big.wasm");
    std::fs::write(&path, &big).unwrap();
    let t = Instant::now();
    f.ops(&["deploy", "big", path.to_str().unwrap(), "--replicas", "3"])
        .ok();
    let deployed = t.elapsed();
    for (_, http, _) in &f.agents {
        wait_for("200 from every host", || {
            let r = http_get(*http)?;
            (r == 200).then_some(())
        });
    }
    println!(
        "  {} bytes: deploy command {:.2} s (fetch + compile on 3 hosts in parallel, then switch); serving on all 3 after {:.2} s",
        big.len(),
        deployed.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}

fn http_get(port: u16) -> Option<u16> {
    http(
        &format!("127.0.0.1:{port}"),
        "GET",
        "big.localhost",
        "/",
        b"",
    )
    .ok()
    .map(|r| r.status)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn logs() {
    const LINES: u64 = 300_000;
    println!("\n## logs: records from a host's store to an SSH client through the gateway");
    println!(
        "  (SSH ciphers, every hop and peer: {})",
        if schema::tunnel::hardware_aes() {
            "AES-256-GCM first (this CPU does AES in hardware)"
        } else {
            "ChaCha20-Poly1305 first"
        }
    );
    let f = Fleet::start(1);
    // Each release floods LINES lines; four of them fill the store with a
    // few hundred thousand records, so a read's fixed costs (process start,
    // SSH handshake) are a small part of its time.
    let mut stored = 0;
    for run in 1..=4 {
        f.ops(&[
            "deploy",
            "spam",
            fixture("logspam.wasm").to_str().unwrap(),
            "--env",
            &format!("LINES={LINES}"),
            "--env",
            "LONG_LINE=10",
            "--env",
            "STAY=1",
            "--env",
            &format!("RUN={run}"),
        ])
        .ok();
        // The app floods faster than any store; wait until what it wrote is stored.
        stored = wait_settled("the store to settle", Duration::from_millis(300), || {
            let r = f
                .ops(&["logs", "spam", "--tail", "1", "--json"])
                .ok()
                .json_lines();
            r.first().and_then(|v| v["seq"].as_u64()).unwrap_or(0)
        });
    }
    let pids: Vec<u32> = f.procs.iter().map(|p| p.pid()).collect();
    const RUNS: usize = 3;
    // What connecting costs (process start, SSH handshake, auth, a request
    // answered): a read of one record.
    let connect = median_secs(RUNS, || {
        f.ops_cmd()
            .args(["logs", "spam", "--tail", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
    });
    let mut bigfile = Vec::new();
    for (what, extra) in [
        ("every record", vec![]),
        (
            "--where 'line contains \"7\"'",
            vec!["--where", "line contains \"7\""],
        ),
    ] {
        let mut secs = Vec::new();
        let mut cpus = Vec::new();
        let mut n = 0.0;
        for _ in 0..RUNS {
            let cpu_before: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
            let t = Instant::now();
            let mut args = vec!["logs", "spam", "--since", "0"];
            args.extend(extra.iter().copied());
            let out = f
                .ops_cmd()
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .output()
                .unwrap();
            secs.push(t.elapsed().as_secs_f64());
            n = out.stdout.iter().filter(|b| **b == b'\n').count() as f64;
            let cpu = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu_before;
            cpus.push(cpu / n.max(1.0) * 1e6);
            if extra.is_empty() {
                bigfile = out.stdout;
            }
        }
        let whole = percentile(&mut secs.clone(), 0.5);
        println!(
            "  {what:<32} {n:>8} lines: command {:>9.0} lines/s (median of {}), streaming {:>9.0} lines/s (less {:.0} ms to connect); {:.1} CPU s per million lines (gateway + agent)",
            n / whole,
            secs.iter()
                .map(|s| format!("{:.0} ms", s * 1e3))
                .collect::<Vec<_>>()
                .join(", "),
            n / (whole - connect).max(1e-3),
            connect * 1e3,
            percentile(&mut cpus, 0.5)
        );
        if !extra.is_empty() {
            continue;
        }
        let ours_streaming = n / (whole - connect).max(1e-3);
        match openssh_cat(&f, &bigfile, RUNS) {
            Some((cat, connect)) => println!(
                "  OpenSSH `ssh localhost cat FILE` {n:>8} lines ({:.0} MB): command {:>9.0} lines/s, streaming {:>9.0} lines/s (less {:.0} ms for `ssh localhost true`); cranefleet / OpenSSH: command {:.2}x, streaming {:.2}x",
                bigfile.len() as f64 / 1e6,
                n / cat,
                n / (cat - connect).max(1e-3),
                connect * 1e3,
                cat / whole,
                ours_streaming / (n / (cat - connect).max(1e-3)),
            ),
            None => println!(
                "  OpenSSH: no sshd here (fixtures/bench-tools.sh installs it); raw russh only"
            ),
        }
        let mut peer: Vec<f64> = (0..RUNS).map(|_| raw_russh(n as u64)).collect();
        let peer = percentile(&mut peer, 0.5);
        println!(
            "  raw russh channel in one process {n:>8} lines: streaming {peer:>9.0} lines/s; cranefleet streaming / raw russh = {:.2}x",
            ours_streaming / peer
        );
    }
    println!(
        "  ({stored} records stored of 4 × {LINES} written; the rest were dropped at capture, as hostd reports, because the app wrote them faster than any store)"
    );
}

fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    percentile(&mut v, 0.5)
}

/// The issue's peer: OpenSSH's `ssh localhost cat FILE` of the same bytes,
/// its output read by this process as `logs` output is. Starts its own
/// `sshd` (a temporary host key, config and authorized key, on a free
/// port). Returns the median seconds of `cat FILE` and of `true` (what
/// connecting costs), or `None` without an `sshd`.
fn openssh_cat(f: &Fleet, bytes: &[u8], runs: usize) -> Option<(f64, f64)> {
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
fn raw_russh(lines: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use russh::keys::ssh_key::private::Ed25519Keypair;
        use russh::server::Server as _;
        #[derive(Clone)]
        struct S(u64);
        impl russh::server::Server for S {
            type Handler = H;
            fn new_client(&mut self, _: Option<std::net::SocketAddr>) -> H {
                H(self.0)
            }
        }
        struct H(u64);
        impl russh::server::Handler for H {
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
        let key = russh::keys::PrivateKey::from(Ed25519Keypair::from_seed(&[7u8; 32]));
        let config = std::sync::Arc::new(russh::server::Config {
            keys: vec![key],
            auth_rejection_time: Duration::ZERO,
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = S(lines).run_on_socket(config, &listener).await;
        });
        struct C;
        impl russh::client::Handler for C {
            type Error = russh::Error;
            async fn check_server_key(
                &mut self,
                _: &russh::keys::PublicKeyOrCertificate,
            ) -> Result<bool, Self::Error> {
                Ok(true)
            }
        }
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
            C,
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    println!(
        "# fleet bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    if want("rollback") {
        rollback();
    }
    if want("deploy") {
        deploy();
    }
    if want("logs") {
        logs();
    }
}
