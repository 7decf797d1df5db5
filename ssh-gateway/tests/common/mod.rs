//! A fleet on loopback for tests: a real `ssh-gateway`, real `hostd agent`s,
//! real SSH (russh on both sides, and OpenSSH's `ssh` where a test says so).

#![allow(dead_code)]

#[path = "../../../fixtures/harness.rs"]
pub mod harness;
pub mod pty;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use harness::*;
use serde_json::Value;

pub fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ssh-gateway"))
}

/// `hostd`, built fresh for these tests.
pub fn hostd_bin() -> PathBuf {
    workspace_bin("hostd")
}

/// `console`, built fresh for these tests.
pub fn console_bin() -> PathBuf {
    workspace_bin("console")
}

/// A gateway, its operator and viewer keys, and the agents started on it.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub port: u16,
    gateway: Option<Proc>,
    gateway_starts: u32,
    pub agents: Vec<Agent>,
    host_key: Option<PathBuf>,
    /// More arguments for `ssh-gateway serve`.
    pub gateway_args: Vec<String>,
    /// Soft and hard limit on the gateway's open files, if not inherited.
    pub gateway_nofile: Option<u64>,
    /// The gateways' shared PostgreSQL database (`--db`), if not SQLite.
    pub db_url: Option<String>,
    /// A second gateway on the same database (a standby until the first
    /// dies), its port and data; hosts and operators are given both.
    pub standby_port: Option<u16>,
    standby: Option<Proc>,
    standby_starts: u32,
}

pub struct Agent {
    pub name: String,
    pub data: PathBuf,
    pub key: PathBuf,
    pub http: u16,
    /// More arguments for `hostd agent`.
    pub extra: Vec<String>,
    proc: Option<Proc>,
    starts: u32,
}

impl Fleet {
    /// A gateway with an operator key `alice` and a viewer key `victor`.
    pub fn start() -> Fleet {
        Fleet::start_with(&[])
    }

    /// Like [`Fleet::start`], the gateway serving with `args` as well.
    pub fn start_with(args: &[&str]) -> Fleet {
        let mut f = Fleet::new(args, None);
        f.enroll_and_start();
        f
    }

    /// Two gateways on one PostgreSQL database `db_url`, sharing a host
    /// key and a secrets key: the first is started (and becomes active),
    /// [`Fleet::start_standby`] starts the second. Hosts and operators are
    /// given both addresses.
    pub fn start_on_postgres(db_url: &str, args: &[&str]) -> Fleet {
        let mut f = Fleet::new(args, Some(db_url));
        f.host_key = Some(keygen(f.dir.path(), "gateway-host-key"));
        f.standby_port = Some(free_port());
        let secrets = f.path("secrets.key");
        f.gateway_args
            .extend(["--secrets-key".to_string(), secrets.display().to_string()]);
        f.enroll_and_start();
        f
    }

    fn new(args: &[&str], db_url: Option<&str>) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("fleet")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home/.ssh")).unwrap();
        Fleet {
            port: free_port(),
            dir,
            gateway: None,
            gateway_starts: 0,
            agents: Vec::new(),
            host_key: None,
            gateway_args: args.iter().map(|a| a.to_string()).collect(),
            gateway_nofile: None,
            db_url: db_url.map(String::from),
            standby_port: None,
            standby: None,
            standby_starts: 0,
        }
    }

    /// Enrolls `alice` (operator, the `ops` key) and `victor` (viewer),
    /// then starts the gateway.
    fn enroll_and_start(&mut self) {
        let alice = keygen(self.dir.path(), "alice");
        std::fs::copy(&alice, self.dir.path().join("home/.ssh/id_ed25519")).unwrap();
        self.enroll("operator", &alice, "alice");
        let victor = keygen(self.dir.path(), "victor");
        self.enroll("viewer", &victor, "victor");
        self.start_gateway();
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn gw_data(&self) -> PathBuf {
        self.path("gw")
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The second gateway's address.
    pub fn standby_addr(&self) -> String {
        format!("127.0.0.1:{}", self.standby_port.expect("a standby"))
    }

    /// What hosts and operators are given: every gateway, as `user@addr`.
    pub fn gateway_list(&self, user: &str) -> String {
        match self.standby_port {
            Some(_) => format!("{user}@{},{user}@{}", self.addr(), self.standby_addr()),
            None => format!("{user}@{}", self.addr()),
        }
    }

    /// `--db URL`, when the gateways share PostgreSQL.
    fn db_args(&self) -> Vec<String> {
        match &self.db_url {
            Some(u) => vec!["--db".into(), u.clone()],
            None => Vec::new(),
        }
    }

    pub fn enroll(&self, role: &str, key: &Path, name: &str) {
        let mut pubkey = key.as_os_str().to_owned();
        pubkey.push(".pub");
        run(
            Command::new(gateway_bin())
                .arg("--data")
                .arg(self.gw_data())
                .args(self.db_args())
                .args(["keys", "add", "--role", role, "--name", name])
                .arg(&pubkey),
            None,
        )
        .ok();
    }

    /// Starts (or restarts) the gateway on the same port and data.
    pub fn start_gateway(&mut self) {
        self.gateway_starts += 1;
        let log = self.path(&format!("gateway-{}.log", self.gateway_starts));
        let p = self.spawn_gateway(self.port, &self.gw_data(), &log);
        self.gateway = Some(p);
    }

    /// Starts (or restarts) the second gateway, on its own port and data.
    pub fn start_standby(&mut self) {
        self.standby_starts += 1;
        let log = self.path(&format!("standby-{}.log", self.standby_starts));
        let port = self.standby_port.expect("a fleet with a standby");
        let p = self.spawn_gateway(port, &self.path("gw2"), &log);
        self.standby = Some(p);
    }

    /// The second gateway's process.
    pub fn standby(&mut self) -> &mut Proc {
        self.standby.as_mut().expect("the standby is started")
    }

    pub fn standby_log(&self) -> String {
        (1..=self.standby_starts)
            .map(|i| read(&self.path(&format!("standby-{i}.log"))))
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    fn spawn_gateway(&self, port: u16, data: &Path, log: &Path) -> Proc {
        let log = std::fs::File::create(log).unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(gateway_bin());
        cmd.args(["serve", "--listen", &addr, "--name", "testgw", "--data"])
            .arg(data)
            .args(self.db_args())
            .env("CRANEFLEET_LOG", "info,ssh_gateway=debug,russh=warn")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(k) = &self.host_key {
            cmd.arg("--host-key").arg(k);
        }
        cmd.args(&self.gateway_args);
        if let Some(n) = self.gateway_nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and reads one rlimit
            // from a pointer to a local.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let p = Proc::spawn("ssh-gateway", &mut cmd);
        wait_for("the gateway to listen", || {
            std::net::TcpStream::connect(&addr).ok().map(|_| ())
        });
        p
    }

    /// Serves with a different host key from now on (the next start).
    pub fn use_host_key(&mut self, key: PathBuf) {
        self.host_key = Some(key);
    }

    /// The running gateway process.
    pub fn gateway(&mut self) -> &mut Proc {
        self.gateway.as_mut().expect("the gateway is started")
    }

    pub fn kill_gateway(&mut self) {
        if let Some(mut p) = self.gateway.take() {
            p.kill9();
        }
    }

    pub fn stop_gateway(&mut self) {
        if let Some(mut p) = self.gateway.take() {
            p.stop();
        }
    }

    pub fn gateway_log(&self) -> String {
        (1..=self.gateway_starts)
            .map(|i| read(&self.path(&format!("gateway-{i}.log"))))
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// Enrolls and starts an agent named `name`; waits until it is up.
    pub fn add_agent(&mut self, name: &str, labels: &[&str]) -> usize {
        self.add_agent_with(name, labels, &[])
    }

    /// Like [`Fleet::add_agent`], the agent started with `extra` arguments.
    pub fn add_agent_with(&mut self, name: &str, labels: &[&str], extra: &[&str]) -> usize {
        let key = keygen(self.dir.path(), &format!("{name}-host"));
        self.enroll("host", &key, name);
        let a = Agent {
            name: name.to_string(),
            data: self.path(name),
            key,
            http: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            proc: None,
            starts: 0,
        };
        self.agents.push(a);
        let i = self.agents.len() - 1;
        self.start_agent(i, labels);
        self.wait_host_up(name);
        i
    }

    /// Starts an agent named `name` holding `key` (enrolled or not, under
    /// whatever name); does not wait for it to come up.
    pub fn add_agent_with_key(&mut self, name: &str, key: &Path) -> usize {
        self.agents.push(Agent {
            name: name.to_string(),
            data: self.path(&format!("{name}-{}", self.agents.len())),
            key: key.to_path_buf(),
            http: free_port(),
            extra: Vec::new(),
            proc: None,
            starts: 0,
        });
        let i = self.agents.len() - 1;
        self.start_agent(i, &[]);
        i
    }

    /// A scripted host: OpenSSH opens the tunnel subsystem with `key` and
    /// writes `frames` into it. Its stdout is piped and read only if the
    /// caller does (a host that never reads); dropping the returned stdin
    /// ends the tunnel.
    pub fn scripted_host(
        &self,
        key: &str,
        frames: &[u8],
    ) -> (std::process::Child, std::process::ChildStdin) {
        use std::io::Write as _;
        let mut host = self
            .ssh_cmd(key, &["-s", "cranefleet-tunnel"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = host.stdin.take().unwrap();
        stdin.write_all(frames).unwrap();
        (host, stdin)
    }

    /// Runs `ssh-gateway --data GW ARGS` beside the running gateway.
    pub fn gateway_cmd(&self, args: &[&str]) -> Run {
        self.gateway_cmd_env(args, &[])
    }

    /// [`Fleet::gateway_cmd`] with this environment (and no colour unless
    /// it asks for it).
    pub fn gateway_cmd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run(
            Command::new(gateway_bin())
                .arg("--data")
                .arg(self.gw_data())
                .args(self.db_args())
                .args(args)
                .env_remove("CLICOLOR_FORCE")
                .envs(env.iter().copied()),
            None,
        )
    }

    pub fn start_agent(&mut self, i: usize, labels: &[&str]) {
        let addr = match self.standby_port {
            Some(_) => format!("{},{}", self.addr(), self.standby_addr()),
            None => self.addr(),
        };
        let a = &mut self.agents[i];
        a.starts += 1;
        let log = std::fs::File::create(a.data.with_extension(format!("log{}", a.starts))).unwrap();
        let mut cmd = Command::new(hostd_bin());
        cmd.args([
            "agent",
            "--gateway",
            &addr,
            "--name",
            &a.name,
            "--http",
            &format!("127.0.0.1:{}", a.http),
            "--host-key",
        ])
        .arg(&a.key)
        .arg("--data")
        .arg(&a.data)
        .env("CRANEFLEET_LOG", "info,hostd=debug,russh=warn")
        .env_remove("CRANEFLEET_GATEWAY")
        .stdout(Stdio::null())
        .stderr(log);
        for l in labels {
            cmd.args(["--label", l]);
        }
        cmd.args(&a.extra);
        a.proc = Some(Proc::spawn("hostd agent", &mut cmd));
    }

    /// Stops an agent as its service manager would (SIGTERM).
    pub fn stop_agent(&mut self, i: usize) {
        if let Some(mut p) = self.agents[i].proc.take() {
            p.stop();
        }
    }

    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut p) = self.agents[i].proc.take() {
            p.kill9();
        }
    }

    pub fn agent_log(&self, i: usize) -> String {
        let a = &self.agents[i];
        (1..=a.starts)
            .map(|n| read(&a.data.with_extension(format!("log{n}"))))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `hostd --gateway alice@gw …`, with a known_hosts of its own.
    pub fn ops(&self, args: &[&str]) -> Run {
        self.ops_stdin(args, None)
    }

    pub fn ops_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.ops_env(args, stdin, &[])
    }

    /// [`Fleet::ops_stdin`] with this environment (and no colour unless it
    /// asks for it).
    pub fn ops_env(&self, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
        run(
            Command::new(hostd_bin())
                .args([
                    "--gateway",
                    &self.gateway_list("alice"),
                    "--accept-new-host-key",
                ])
                .args(args)
                .env("HOME", self.path("home"))
                .env_remove("CRANEFLEET_GATEWAY")
                .env_remove("CLICOLOR_FORCE")
                .envs(env.iter().copied())
                .env("CRANEFLEET_LOG", "warn"),
            stdin,
        )
    }

    /// `hostd --gateway alice@gw …` left running (`logs -f`, `events -f`,
    /// `watch`), its stdout piped; the caller kills it.
    pub fn ops_child(&self, args: &[&str]) -> std::process::Child {
        Command::new(hostd_bin())
            .args([
                "--gateway",
                &self.gateway_list("alice"),
                "--accept-new-host-key",
            ])
            .args(args)
            .env("HOME", self.path("home"))
            .env_remove("CRANEFLEET_GATEWAY")
            .env("CRANEFLEET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hostd --gateway …")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.ops(&a).ok().json()
    }

    /// OpenSSH's client, with `key`.
    pub fn ssh(&self, key: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        run(&mut self.ssh_cmd(key, args), stdin)
    }

    /// The OpenSSH command line [`Fleet::ssh`] runs, to start by hand.
    pub fn ssh_cmd(&self, key: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-p", &self.port.to_string(), "-i"])
            .arg(self.path(key))
            .args(SSH_OPTIONS)
            .arg(format!("{key}@127.0.0.1"))
            .args(args);
        c
    }

    /// `ssh -t` into the gateway with `key` (as user `key`), on a pty that
    /// claims `claimed` (cols, rows) while the test emulates a `screen`-sized
    /// terminal (the same size, unless a test plays a hostile client).
    pub fn ssh_console(&self, key: &str, claimed: (u16, u16), screen: (u16, u16)) -> pty::Pty {
        let mut cmd = Command::new("ssh");
        cmd.args(["-t", "-p", &self.port.to_string(), "-i"])
            .arg(self.path(key))
            .args(SSH_OPTIONS)
            .arg(format!("{key}@127.0.0.1"));
        pty::Pty::spawn_claiming("ssh -t", &mut cmd, claimed, screen)
    }

    /// OpenSSH's client opening the tunnel subsystem with `key`, as a host would.
    pub fn ssh_subsystem(&self, key: &str, stdin: &[u8]) -> Run {
        self.ssh(key, &["-s", "cranefleet-tunnel"], Some(stdin))
    }

    /// `hostd --local …` on an agent's own control socket.
    pub fn local(&self, i: usize, args: &[&str]) -> Run {
        run(
            Command::new(hostd_bin())
                .arg("--data")
                .arg(&self.agents[i].data)
                .args(args)
                .arg("--local")
                .env_remove("CRANEFLEET_GATEWAY"),
            None,
        )
    }

    pub fn host_state(&self, name: &str) -> Option<String> {
        let hosts = self.ops(&["hosts", "--json"]);
        if hosts.code != 0 {
            return None;
        }
        hosts
            .json()
            .as_array()?
            .iter()
            .find(|h| h["name"] == name)
            .and_then(|h| h["state"].as_str().map(String::from))
    }

    pub fn wait_host_up(&self, name: &str) {
        wait_for(&format!("host {name} to be up"), || {
            (self.host_state(name).as_deref() == Some("up")).then_some(())
        });
    }

    /// Waits until `app` has `n` running instances of `release` over the fleet.
    pub fn wait_running(&self, app: &str, release: &str, n: u64) {
        wait_for(&format!("{app} to run {n} instances of {release}"), || {
            let r = self.ops(&["ps", app, "--json"]);
            if r.code != 0 {
                return None;
            }
            let rows = r.json();
            let running = rows
                .as_array()?
                .iter()
                .filter(|r| r["release"] == release && r["state"] == "running")
                .count() as u64;
            (running == n).then_some(())
        })
    }

    /// Instances of `app` running per host.
    pub fn spread(&self, app: &str) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for r in self.json(&["ps", app]).as_array().unwrap() {
            if r["state"] == "running" {
                *m.entry(r["host"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        m
    }

    pub fn releases(&self, app: &str) -> Vec<(String, String)> {
        self.json(&["releases", app])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["version"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// The last `n` lines of a log, for a failing test's output.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- gateway log (last 60 lines) ---\n{}",
                tail(&self.gateway_log(), 60)
            );
            for i in 0..self.agents.len() {
                eprintln!(
                    "--- {} log (last 30 lines) ---\n{}",
                    self.agents[i].name,
                    tail(&self.agent_log(i), 30)
                );
            }
        }
        for a in &mut self.agents {
            if let Some(mut p) = a.proc.take() {
                p.stop();
            }
        }
        if let Some(mut p) = self.gateway.take() {
            p.stop();
        }
    }
}

/// A deploy of a large artifact under way: its process and its stderr lines.
pub struct BigDeploy {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl BigDeploy {
    /// Waits for the deploy to end: its exit code and all of its stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let code = self.child.wait().ok().and_then(|s| s.code());
        let _ = self.reader.join();
        let lines = self.lines.lock().unwrap().join("\n");
        (code, lines)
    }
}

/// Starts a deploy of a large artifact and returns once `host` reports `progress`.
pub fn deploy_big_until(f: &Fleet, app: &str, host: &str, progress: &str) -> BigDeploy {
    let big = padded_wasm(
        &std::fs::read(fixture("ticker.component.wasm")).unwrap(),
        48 << 20,
    );
    let path = f.path("big.wasm");
    std::fs::write(&path, &big).unwrap();
    let mut child = Command::new(hostd_bin())
        .args([
            "--gateway",
            &f.gateway_list("alice"),
            "--accept-new-host-key",
            "deploy",
            app,
        ])
        .arg(&path)
        .env("HOME", f.path("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let all = lines.clone();
    let reader = std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            all.lock().unwrap().push(l.clone());
            let _ = tx.send(l);
        }
    });
    let want = format!("{host}: {progress}");
    loop {
        let l = rx
            .recv_timeout(DEADLINE)
            .expect("the deploy to start fetching");
        if l.starts_with(&want) {
            break;
        }
    }
    BigDeploy {
        child,
        lines,
        reader,
    }
}

impl Fleet {
    /// After the gateway died mid-deploy of `api` v2 over v1 (running `n`
    /// instances placed as `spread`): v2 failed as interrupted, v1 is active
    /// and runs everywhere (nothing of v2 does), and the audit trail still
    /// starts with `audit_before`; the placement is as it was.
    pub fn assert_interrupted_deploy_lost_nothing(
        &self,
        n: u64,
        spread: &std::collections::BTreeMap<String, u64>,
        audit_before: &Value,
    ) {
        assert_eq!(
            self.releases("api"),
            vec![
                ("v2".into(), "failed".into()),
                ("v1".into(), "active".into())
            ]
        );
        let rel = self.json(&["releases", "api"]);
        assert!(
            rel[0]["detail"]
                .as_str()
                .unwrap()
                .contains("interrupted by a gateway restart"),
            "{rel}"
        );
        let audit = self.json(&["audit"]);
        let before = audit_before.as_array().unwrap();
        assert_eq!(
            &audit.as_array().unwrap()[..before.len()],
            &before[..],
            "audit entries survive"
        );
        self.wait_running("api", "v1", n);
        let ps = self.json(&["ps", "api"]);
        assert!(
            ps.as_array().unwrap().iter().all(|r| r["release"] == "v1"),
            "never half-switched: {ps}"
        );
        assert_eq!(&self.spread("api"), spread, "placement survives");
    }
}
