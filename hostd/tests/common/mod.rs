//! hostd's test helpers on top of the shared harness.

#![allow(dead_code)]

#[path = "../../../fixtures/harness.rs"]
pub mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use harness::*;
use serde_json::Value;

/// A `hostd serve` started by the test in its own temp dir.
pub struct Hostd {
    pub dir: tempfile::TempDir,
    proc: Option<Proc>,
    pub http: Option<u16>,
    /// The `--metrics` port, if the daemon serves metrics.
    pub metrics: Option<u16>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    starts: u32,
}

pub fn hostd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hostd"))
}

impl Hostd {
    pub fn start() -> Hostd {
        Hostd::start_with(&[])
    }

    /// Starts a daemon with extra `serve` flags; an ingress on a free port.
    pub fn start_with(extra: &[&str]) -> Hostd {
        Hostd::start_with_env(extra, &[])
    }

    /// Starts a daemon serving Prometheus metrics on a free port as well.
    pub fn start_with_metrics(extra: &[&str]) -> Hostd {
        Hostd::start_inner(extra, &[], true)
    }

    /// Starts a daemon with extra `serve` flags and environment.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Hostd {
        Hostd::start_inner(extra, env, false)
    }

    fn start_inner(extra: &[&str], env: &[(&str, &str)], metrics: bool) -> Hostd {
        let dir = tempfile::Builder::new()
            .prefix("hostd")
            .tempdir()
            .expect("tempdir");
        let mut h = Hostd {
            dir,
            proc: None,
            http: Some(free_port()),
            metrics: metrics.then(free_port),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: 0,
        };
        h.launch();
        h
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http.expect("ingress"))
    }

    /// Where the daemon serves `GET /metrics`.
    pub fn metrics_addr(&self) -> String {
        format!("127.0.0.1:{}", self.metrics.expect("--metrics"))
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("hostd-{}.log", self.starts)))
            .expect("log file");
        let mut cmd = Command::new(hostd_bin());
        cmd.arg("serve")
            .arg("--data")
            .arg(self.dir.path())
            .arg("--name")
            .arg("testhost")
            .arg("--http")
            .arg(
                self.http
                    .map(|p| format!("127.0.0.1:{p}"))
                    .unwrap_or_else(|| "none".into()),
            )
            .args(
                self.metrics
                    .map(|p| vec!["--metrics".to_string(), format!("127.0.0.1:{p}")])
                    .unwrap_or_default(),
            )
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("CRANEFLEET_LOG", "info,hostd=debug")
            .env_remove("CRANEFLEET_SOCKET")
            .env_remove("CRANEFLEET_GATEWAY")
            .stdout(Stdio::null())
            .stderr(log);
        self.proc = Some(Proc::spawn("hostd serve", &mut cmd));
        let started = wait_for("hostd to answer on its control socket", || {
            if let Some(p) = self.proc.as_mut()
                && let Ok(Some(status)) = p.child.try_wait()
            {
                return Some(Err(status));
            }
            (self.run(&["ps"]).code == 0).then_some(Ok(()))
        });
        if let Err(status) = started {
            let log = self.daemon_log();
            // A free port can be taken by a parallel test between
            // `free_port` and the bind: on a first start, take another.
            let taken = log.contains("Address already in use") || log.contains("address is in use");
            if self.starts == 1 && self.http.is_some() && taken {
                self.starts = 0;
                self.http = Some(free_port());
                self.metrics = self.metrics.map(|_| free_port());
                return self.launch();
            }
            panic!("hostd exited at start ({status}):\n{log}");
        }
    }

    /// Everything the daemon logged, over all its starts.
    pub fn daemon_log(&self) -> String {
        (1..=self.starts)
            .map(|i| read(&self.dir.path().join(format!("hostd-{i}.log"))))
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// The daemon's process.
    pub fn proc(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("running")
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("running").pid()
    }

    /// Stops the daemon cleanly (SIGTERM) and starts it again on the same data.
    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        self.launch();
    }

    /// Kills the daemon with SIGKILL, as a crash or power cut would, and starts it again.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
        self.launch();
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }

    /// A `hostd` command against this daemon (plain text whatever the
    /// caller's CLICOLOR_FORCE).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(hostd_bin());
        c.arg("--data")
            .arg(self.dir.path())
            .env_remove("CRANEFLEET_SOCKET")
            .env_remove("CRANEFLEET_GATEWAY")
            .env_remove("CLICOLOR_FORCE")
            .env("CRANEFLEET_LOG", "warn");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args), None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run(self.cmd().args(args), Some(stdin))
    }

    /// Runs `args --json`, asserts success, returns the document.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.run(&a).ok().json()
    }

    /// Deploys a fixture; returns the deploy outcome.
    pub fn deploy(&self, app: &str, fixture_name: &str, extra: &[&str]) -> Value {
        let path = fixture(fixture_name);
        let mut a = vec!["deploy", app, path.to_str().expect("utf-8 path")];
        a.extend_from_slice(extra);
        self.json(&a)
    }

    /// The `ps` row of one app.
    pub fn app(&self, app: &str) -> Value {
        let rows = self.json(&["ps"]);
        rows.as_array()
            .and_then(|r| r.iter().find(|r| r["app"] == app))
            .cloned()
            .unwrap_or_else(|| panic!("{app} not in ps: {rows}"))
    }

    /// Waits until `app` runs `n` instances of release `release`.
    pub fn wait_running(&self, app: &str, release: &str, n: u64) {
        wait_for(&format!("{app} to run {n} instances of {release}"), || {
            let rows = self.json(&["ps", app]);
            let running = rows
                .as_array()?
                .iter()
                .filter(|r| r["release"] == release && r["state"] == "running")
                .count() as u64;
            (running == n).then_some(())
        })
    }

    /// Every stored record of `app`, oldest first.
    pub fn logs(&self, app: &str) -> Vec<Value> {
        self.run(&["logs", app, "--since", "0", "--json"])
            .ok()
            .json_lines()
    }

    /// Waits for a record of `app` whose line satisfies `f`.
    pub fn wait_log(&self, app: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(&format!("{app} to log {what}"), || {
            self.logs(app).into_iter().find(|r| f(r))
        })
    }

    /// The `releases` of an app as (version, state) pairs, newest first.
    pub fn releases(&self, app: &str) -> Vec<(String, String)> {
        self.json(&["releases", app])
            .as_array()
            .expect("array")
            .iter()
            .map(|r| {
                (
                    r["version"].as_str().unwrap_or("").to_string(),
                    r["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Hostd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.daemon_log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- hostd log (last 60 lines) ---\n{}",
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}

/// The line of a log record.
pub fn line(r: &Value) -> &str {
    r["line"].as_str().unwrap_or("")
}
