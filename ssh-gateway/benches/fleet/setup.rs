//! What the fleet bench's sections share: the binaries, a fleet of real
//! processes on loopback, and the arithmetic of its figures.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::*;

pub fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_ssh-gateway")).with_file_name(name);
    assert!(
        p.exists(),
        "{name} is not built: run `cargo build --release --workspace` first"
    );
    p
}

/// A gateway and `hosts` agents on loopback, each a real process, and an
/// operator key enrolled (its home in `dir/home`).
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub procs: Vec<Proc>,
    /// How each of `procs` was started (program, arguments): the gateway
    /// first, then the agents.
    pub commands: Vec<(String, Vec<String>)>,
    /// Each host's name, HTTP port and data directory.
    pub agents: Vec<(String, u16, PathBuf)>,
    /// With PostgreSQL: a second gateway's port (its process is the last
    /// of `procs`); hosts and `ops` are given both.
    pub standby_port: Option<u16>,
}

/// Starts `program` with `args`, quiet.
fn spawn(program: &str, args: &[String]) -> Proc {
    Proc::spawn(
        program,
        Command::new(bin(program))
            .args(args)
            .env("CRANEFLEET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

impl Fleet {
    pub fn start(hosts: usize) -> Fleet {
        Fleet::start_with(hosts, &[])
    }

    /// `hosts` agents started with `extra` arguments; waits (up to 10
    /// minutes) until every one is up.
    pub fn start_with(hosts: usize, extra: &[&str]) -> Fleet {
        Fleet::start_on(hosts, extra, None)
    }

    /// Like [`Fleet::start_with`], the gateway's state in the PostgreSQL
    /// database `db` (when given) and a second gateway on it, a standby,
    /// started after the first is active; both share a host key.
    pub fn start_on(hosts: usize, extra: &[&str], db: Option<&str>) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("fleet-bench")
            .tempdir()
            .unwrap();
        let port = free_port();
        let gw = dir.path().join("gw");
        let mut shared: Vec<String> = Vec::new();
        if let Some(url) = db {
            let key = keygen(dir.path(), "gateway-host-key");
            shared.extend(["--db".to_string(), url.to_string()]);
            for (flag, path) in [
                ("--host-key", key),
                ("--secrets-key", dir.path().join("secrets.key")),
            ] {
                shared.extend([flag.to_string(), path.display().to_string()]);
            }
        }
        let db_args: Vec<String> = shared.iter().take(2).cloned().collect();
        let enroll = |role: &str, key: &Path, name: &str| {
            let mut p = key.as_os_str().to_owned();
            p.push(".pub");
            run(
                Command::new(bin("ssh-gateway"))
                    .arg("--data")
                    .arg(&gw)
                    .args(&db_args)
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
        let gw_args: Vec<String> = ["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"]
            .map(String::from)
            .into_iter()
            .chain([gw.display().to_string()])
            .chain(shared.iter().cloned())
            .collect();
        let mut procs = vec![spawn("ssh-gateway", &gw_args)];
        let mut commands = vec![("ssh-gateway".to_string(), gw_args)];
        wait_for("gateway", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let standby_port = db.map(|_| free_port());
        let gateways = match standby_port {
            Some(p) => format!("127.0.0.1:{port},127.0.0.1:{p}"),
            None => format!("127.0.0.1:{port}"),
        };
        let mut agents = Vec::new();
        for i in 0..hosts {
            let name = format!("h{i}");
            let key = keygen(dir.path(), &format!("{name}-key"));
            enroll("host", &key, &name);
            let http = free_port();
            let data = dir.path().join(&name);
            let args: Vec<String> = [
                "agent",
                "--gateway",
                &gateways,
                "--name",
                &name,
                "--http",
                &format!("127.0.0.1:{http}"),
                "--host-key",
                &key.display().to_string(),
                "--data",
                &data.display().to_string(),
            ]
            .map(String::from)
            .to_vec();
            let mut args = args;
            args.extend(extra.iter().map(|s| s.to_string()));
            if extra.contains(&"--http") {
                // The extra arguments say where (or whether) it serves.
                let at = args.iter().position(|a| a == "--http").unwrap_or(0);
                args.drain(at..at + 2);
            }
            procs.push(spawn("hostd", &args));
            commands.push(("hostd".to_string(), args));
            agents.push((name, http, data));
        }
        let mut f = Fleet {
            dir,
            port,
            procs,
            commands,
            agents,
            standby_port,
        };
        f.wait_up(hosts, std::time::Duration::from_secs(600));
        if let Some(p) = standby_port {
            let args: Vec<String> = ["serve", "--listen", &format!("127.0.0.1:{p}"), "--data"]
                .map(String::from)
                .into_iter()
                .chain([f.dir.path().join("gw2").display().to_string()])
                .chain(shared.iter().cloned())
                .collect();
            f.procs.push(spawn("ssh-gateway", &args));
            f.commands.push(("ssh-gateway".to_string(), args));
            wait_for("the standby gateway", || {
                std::net::TcpStream::connect(("127.0.0.1", p)).ok()
            });
        }
        f
    }

    /// Whether the gateway at `port` answers an operator (is active).
    pub fn answers(&self, port: u16) -> bool {
        let mut c = Command::new(bin("hostd"));
        c.args([
            "--gateway",
            &format!("ops@127.0.0.1:{port}"),
            "--accept-new-host-key",
            "hosts",
        ])
        .env("HOME", self.dir.path().join("home"))
        .env("CRANEFLEET_LOG", "error");
        run(&mut c, None).code == 0
    }

    /// Hosts the gateway says are up.
    pub fn hosts_up(&self) -> usize {
        let r = self.ops(&["hosts", "--json"]);
        if r.code != 0 {
            return 0;
        }
        r.json()
            .as_array()
            .map(|a| a.iter().filter(|h| h["state"] == "up").count())
            .unwrap_or(0)
    }

    /// Waits until `hosts` are up; panics after `limit`.
    pub fn wait_up(&self, hosts: usize, limit: std::time::Duration) {
        let t = Instant::now();
        while self.hosts_up() < hosts {
            assert!(
                t.elapsed() < limit,
                "not every host came up within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Kills process `i` (0: the gateway) with SIGKILL, as a crash would.
    pub fn kill9(&mut self, i: usize) {
        self.procs[i].kill9();
    }

    /// Starts process `i` again as it was started.
    pub fn restart(&mut self, i: usize) {
        let (program, args) = &self.commands[i];
        self.procs[i] = spawn(program, args);
    }

    pub fn ops_cmd(&self) -> Command {
        let mut c = Command::new(bin("hostd"));
        let gateways = match self.standby_port {
            Some(p) => format!("ops@127.0.0.1:{},ops@127.0.0.1:{p}", self.port),
            None => format!("ops@127.0.0.1:{}", self.port),
        };
        c.args(["--gateway", &gateways, "--accept-new-host-key"])
            .env("HOME", self.dir.path().join("home"))
            .env("CRANEFLEET_LOG", "warn");
        c
    }

    pub fn ops(&self, args: &[&str]) -> Run {
        run(self.ops_cmd().args(args), None)
    }
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    percentile(&mut v, 0.5)
}

pub fn http_get(port: u16) -> Option<u16> {
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

/// Resident memory of the process `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) the process `pid` has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}
