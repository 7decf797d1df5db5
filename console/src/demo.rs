//! `console demo`: a whole fleet on this machine, and the console on it.
//!
//! Starts `ssh-gateway` and two `hostd agent`s (the binaries built next to
//! this one) on loopback with free ports, in a fresh temp directory; makes
//! and enrolls their keys; deploys the sample apps through the gateway like
//! an operator would; then opens the console. Quitting stops every process
//! it started, by pid, and removes the directory. Nothing is simulated: the
//! same fleet answers plain `ssh` while the demo runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use console::cli::DemoArgs;
use console::driver::{self, Executor};
use console::ssh::{HostKeyPolicy, SshExecutor, Target};
use ops::Reply;
use russh::keys::PrivateKey;

/// The sample apps, as built in `fixtures/`.
const HELLO: &[u8] = include_bytes!("../../fixtures/wasm/http-hello.wasm");
const TICKER: &[u8] = include_bytes!("../../fixtures/wasm/ticker.wasm");
const JOB: &[u8] = include_bytes!("../../fixtures/wasm/job.wasm");

/// How long the fleet may take to come up before the demo gives up.
const DEADLINE: Duration = Duration::from_secs(90);

/// A process the demo started, stopped by pid when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<Proc> {
        let log = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // If the console dies without cleaning up, its children go with it.
        // SAFETY: prctl is async-signal-safe and touches only this process.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        if !self.running() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} (pid {pid}) did not stop on SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo's processes and directory; dropping it stops and removes them.
struct Fleet {
    // Declared first: dropped (stopped) before the directory goes.
    procs: Vec<Proc>,
    dir: PathBuf,
    port: u16,
    http: Vec<u16>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Hosts first, so the gateway does not see them vanish one by one.
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ssh-gateway` and `hostd` next to this executable.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot tell where console is installed")?;
    let p = me.with_file_name(name);
    if !p.is_file() {
        bail!(
            "console demo runs {name}, which is not next to {} — build them: cargo build --release --workspace",
            me.display()
        );
    }
    Ok(p)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// A fresh directory under the system temp dir, short enough for the
/// hosts' Unix socket paths.
fn make_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let p = base.join(format!(
            "cranefleet-console-demo-{}-{i}",
            std::process::id()
        ));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(p);
        }
    }
    bail!("cannot create a demo directory under {}", base.display())
}

/// Writes a new ed25519 key in OpenSSH format at `path` (and `path.pub`).
fn make_key(path: &Path) -> anyhow::Result<PrivateKey> {
    Ok(ssh_client::load_or_create_key(path)?.0)
}

fn run_quiet(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Fleet {
    fn start(port: Option<u16>) -> anyhow::Result<Fleet> {
        let (gateway_bin, hostd_bin) = (sibling("ssh-gateway")?, sibling("hostd")?);
        let dir = make_dir()?;
        let mut fleet = Fleet {
            procs: Vec::new(),
            port: match port {
                Some(p) => p,
                None => free_port()?,
            },
            http: vec![free_port()?, free_port()?],
            dir,
        };
        let gw_data = fleet.dir.join("gateway");
        let enroll = |role: &str, key: &Path, name: &str| {
            run_quiet(
                Command::new(&gateway_bin)
                    .arg("--data")
                    .arg(&gw_data)
                    .args(["keys", "add", "--role", role, "--name", name])
                    .arg(ssh_client::pub_path(key)),
                &format!("ssh-gateway keys add {name}"),
            )
        };
        for (file, role, name) in [
            ("operator_key", "operator", "ops"),
            ("viewer_key", "viewer", "viewer"),
        ] {
            let path = fleet.dir.join(file);
            make_key(&path)?;
            enroll(role, &path, name)?;
        }
        let addr = format!("127.0.0.1:{}", fleet.port);
        let mut gw = Command::new(&gateway_bin);
        gw.args(["serve", "--listen", &addr, "--name", "demo", "--data"])
            .arg(&gw_data)
            .env("CRANEFLEET_LOG", "info,russh=warn");
        let log = fleet.dir.join("gateway.log");
        fleet.procs.push(Proc::spawn("ssh-gateway", &mut gw, &log)?);
        for (i, http) in fleet.http.clone().into_iter().enumerate() {
            let name = format!("host-{}", i + 1);
            let key = fleet.dir.join(format!("{name}.key"));
            make_key(&key)?;
            enroll("host", &key, &name)?;
            let mut agent = Command::new(&hostd_bin);
            agent
                .args(["agent", "--gateway", &addr, "--name", &name])
                .args(["--http", &format!("127.0.0.1:{http}"), "--host-key"])
                .arg(&key)
                .arg("--data")
                .arg(fleet.dir.join(&name))
                .env_remove("CRANEFLEET_GATEWAY")
                .env_remove("CRANEFLEET_DATA")
                .env("CRANEFLEET_LOG", "info,russh=warn");
            let log = fleet.dir.join(format!("{name}.log"));
            fleet
                .procs
                .push(Proc::spawn("hostd agent", &mut agent, &log)?);
        }
        Ok(fleet)
    }

    /// Checks every process is still alive (a taken port, a bad build).
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for p in &mut self.procs {
            if !p.running() {
                bail!(
                    "{} exited during the demo's start; its log is in {}",
                    p.name,
                    self.dir.display()
                );
            }
        }
        Ok(())
    }

    async fn connect(&mut self) -> anyhow::Result<SshExecutor> {
        let target = Target {
            user: "ops".into(),
            host: "127.0.0.1".into(),
            port: self.port,
        };
        let key = console::ssh::load_key(&self.dir.join("operator_key"))?;
        let known = HostKeyPolicy::KnownHosts {
            path: self.dir.join("known_hosts"),
            accept_new: true,
        };
        let start = Instant::now();
        loop {
            self.check_alive()?;
            match SshExecutor::connect(target.clone(), key.clone(), known.clone()).await {
                Ok(e) => return Ok(e),
                Err(e) if start.elapsed() > DEADLINE => {
                    return Err(e).context("the demo gateway did not answer");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until `check` holds for the answer of `command`.
    async fn wait(
        &mut self,
        exec: &SshExecutor,
        what: &str,
        command: ops::Command,
        check: impl Fn(&Reply) -> bool,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            let answer = driver::collect(exec.start(driver::request(command.clone()), None)).await;
            if answer.is_ok_and(|replies| replies.iter().any(&check)) {
                return Ok(());
            }
            if start.elapsed() > DEADLINE {
                bail!(
                    "timed out waiting for {what}; logs are in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn deploy(&mut self, exec: &SshExecutor) -> anyhow::Result<()> {
        let apps: [(&str, &[u8], &[&str]); 3] = [
            (
                "hello",
                HELLO,
                &[
                    "--kind",
                    "http",
                    "--replicas",
                    "4",
                    "--env",
                    "GREETING=cranefleet",
                ],
            ),
            (
                "ticker",
                TICKER,
                &[
                    "--kind",
                    "worker",
                    "--replicas",
                    "2",
                    "--env",
                    "TICK_MS=1000",
                ],
            ),
            (
                "nightly",
                JOB,
                &[
                    "--kind",
                    "job",
                    "--schedule",
                    "@every 15s",
                    "--env",
                    "JOB_MS=500",
                ],
            ),
        ];
        for (app, bytes, flags) in apps {
            let mut argv = vec!["deploy".to_string(), app.to_string(), "-".to_string()];
            argv.extend(flags.iter().map(|s| s.to_string()));
            let request = ops::parse_argv(&argv)?;
            if let Err(e) = driver::collect(exec.start(request, Some(bytes.to_vec()))).await {
                bail!("deploying the sample app {app} failed: {}", e.message);
            }
            println!("  deployed {app}");
        }
        Ok(())
    }
}

pub async fn execute(args: DemoArgs, color: bool) -> anyhow::Result<()> {
    let mut fleet = Fleet::start(args.port)?;
    println!(
        "cranefleet demo: a gateway on 127.0.0.1:{} and two hosts, in {}",
        fleet.port,
        fleet.dir.display()
    );
    let exec = fleet.connect().await?;
    fleet
        .wait(
            &exec,
            "both hosts to join",
            ops::Command::Hosts,
            |r| matches!(r, Reply::Hosts(h) if h.iter().filter(|h| h.state == schema::HostState::Up).count() == 2),
        )
        .await?;
    fleet.deploy(&exec).await?;
    fleet
        .wait(
            &exec,
            "the apps to run",
            ops::Command::Ps(Default::default()),
            |r| {
                matches!(r, Reply::Ps { rows, .. } if rows.iter()
                    .filter(|a| a.app == "ticker")
                    .all(|a| a.running >= a.replicas))
            },
        )
        .await?;
    let (dir, port) = (fleet.dir.display().to_string(), fleet.port);
    let known = format!("-o UserKnownHostsFile={dir}/known_hosts");
    let http = fleet.http[0];
    // Printed, and shown on the console's `?` screen: the console covers the
    // terminal while it runs, and a newcomer has no second one open.
    let notes = vec![
        format!("keys in {dir}: operator_key (operator), viewer_key (viewer), known_hosts"),
        "this console, drawn by the gateway:".to_string(),
        format!("  ssh -t -p {port} -i {dir}/operator_key {known} ops@127.0.0.1"),
        "the same, read-only:".to_string(),
        format!("  ssh -t -p {port} -i {dir}/viewer_key {known} viewer@127.0.0.1"),
        "any command:".to_string(),
        format!("  ssh -p {port} -i {dir}/operator_key {known} ops@127.0.0.1 releases hello"),
        "the http app, on a host's ingress:".to_string(),
        format!("  curl http://hello.localhost:{http}/"),
    ];
    println!(
        "
The fleet is running. Its keys are in {dir} (operator_key, viewer_key,
known_hosts). Reach it with plain ssh while the demo runs:

  # this console, drawn by the gateway
  ssh -t -p {port} -i {dir}/operator_key {known} ops@127.0.0.1
  # the same, read-only
  ssh -t -p {port} -i {dir}/viewer_key {known} viewer@127.0.0.1
  # any command
  ssh -p {port} -i {dir}/operator_key {known} ops@127.0.0.1 releases hello
  # the http app, on a host's ingress
  curl http://hello.localhost:{http}/

{how}",
        how = if args.no_console {
            "Ctrl-C stops the fleet and removes its directory."
        } else {
            "Opening the console (? shows these commands again); q quits it and stops the fleet."
        }
    );
    let result = if args.no_console {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    } else {
        crate::open_console(exec, color, notes).await
    };
    drop(fleet);
    println!("stopped the demo fleet and removed {dir}");
    result
}
