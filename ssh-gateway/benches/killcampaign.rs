//! The kill -9 campaign: figures, not a test. Real processes on loopback.
//!
//! ```text
//! cargo build --release --workspace
//! cargo bench -p ssh-gateway --bench killcampaign            # 100 + 100 kills
//! cargo bench -p ssh-gateway --bench killcampaign -- 20      # 20 + 20
//! ```
//!
//! A gateway and two hosts run an http app. Each round starts a deploy, a
//! rollback, a scale or a log read, waits a random 0-400 ms, and kills a
//! process with SIGKILL: a host in even rounds, the gateway in odd ones.
//! It starts the process again and, once the fleet is up, checks:
//!
//! - exactly one release of the app is active;
//! - the gateway and every host agree on which (`hostd --local ps`);
//! - no release or audit entry that an acknowledged command (exit 0) made
//!   is lost;
//! - the app answers 200 on every host.
//!
//! It prints each check's failures (0 is what it should print), and the time
//! a round takes.

#[path = "../../fixtures/harness.rs"]
mod harness;
#[path = "fleet/setup.rs"]
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use setup::{bin, keygen};

/// One daemon of the campaign and how to start it again.
struct Node {
    name: String,
    args: Vec<String>,
    proc: Option<Proc>,
}

impl Node {
    fn start(&mut self) {
        let mut c = Command::new(bin(if self.name == "gateway" {
            "ssh-gateway"
        } else {
            "hostd"
        }));
        c.args(&self.args)
            .env("CRANEFLEET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.proc = Some(Proc::spawn(&self.name, &mut c));
    }

    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }
}

/// A small xorshift: the campaign is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Campaign {
    dir: tempfile::TempDir,
    port: u16,
    gateway: Node,
    hosts: Vec<(Node, u16, PathBuf)>,
}

impl Campaign {
    fn start() -> Campaign {
        let dir = tempfile::Builder::new().prefix("kill9").tempdir().unwrap();
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
        let mut gateway = Node {
            name: "gateway".into(),
            args: vec![
                "serve".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--data".into(),
                gw.display().to_string(),
            ],
            proc: None,
        };
        gateway.start();
        let mut hosts = Vec::new();
        for i in 0..2 {
            let name = format!("h{i}");
            let key = keygen(dir.path(), &format!("{name}-key"));
            enroll("host", &key, &name);
            let http = free_port();
            let data = dir.path().join(&name);
            let mut n = Node {
                name: name.clone(),
                args: [
                    "agent",
                    "--gateway",
                    &format!("127.0.0.1:{port}"),
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
                .to_vec(),
                proc: None,
            };
            n.start();
            hosts.push((n, http, data));
        }
        let c = Campaign {
            dir,
            port,
            gateway,
            hosts,
        };
        c.wait_up();
        c
    }

    fn ops_cmd(&self) -> Command {
        let mut c = Command::new(bin("hostd"));
        c.args([
            "--gateway",
            &format!("ops@127.0.0.1:{}", self.port),
            "--accept-new-host-key",
        ])
        .env("HOME", self.dir.path().join("home"))
        .env("CRANEFLEET_LOG", "off");
        c
    }

    fn ops(&self, args: &[&str]) -> Run {
        run(self.ops_cmd().args(args), None)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.ops(&a);
        if r.code == 0 {
            serde_json::from_str(&r.stdout).unwrap_or_default()
        } else {
            serde_json::Value::Null
        }
    }

    fn wait_up(&self) {
        wait_for("every host up", || {
            let h = self.json(&["hosts"]);
            (h.as_array()?.iter().filter(|h| h["state"] == "up").count() == 2).then_some(())
        });
    }

    /// The active release as the gateway has it, and how many are active.
    fn active(&self) -> (Option<String>, usize, usize) {
        let r = self.json(&["releases", "web"]);
        let rows = r.as_array().cloned().unwrap_or_default();
        let active: Vec<String> = rows
            .iter()
            .filter(|r| r["state"] == "active")
            .filter_map(|r| r["version"].as_str().map(String::from))
            .collect();
        (active.first().cloned(), active.len(), rows.len())
    }

    /// What a host itself runs of the app (`hostd --local ps`).
    fn host_runs(&self, data: &Path) -> Option<String> {
        let r = run(
            Command::new(bin("hostd"))
                .args(["--local", "--data"])
                .arg(data)
                .args(["ps", "--json"])
                .env("CRANEFLEET_LOG", "off"),
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
        v.as_array()?
            .iter()
            .find(|a| a["app"] == "web")
            .and_then(|a| a["release"].as_str().map(String::from))
    }
}

/// Starts one operation in the background; `None` for a log read that is
/// waited for in place.
fn operation(c: &Campaign, rng: &mut Rng, round: usize) -> Child {
    let hello = fixture("http-hello.wasm");
    let mut cmd = c.ops_cmd();
    match rng.below(4) {
        0 => cmd.args([
            "deploy",
            "web",
            hello.to_str().unwrap(),
            "--env",
            &format!("GREETING=round{round}"),
        ]),
        1 => cmd.args(["rollback", "web"]),
        2 => cmd.args(["scale", "web", &(1 + rng.below(3)).to_string()]),
        _ => cmd.args(["logs", "web", "--tail", "200"]),
    };
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100)
        * 2;
    let mut c = Campaign::start();
    let hello = fixture("http-hello.wasm");
    c.ops(&["deploy", "web", hello.to_str().unwrap(), "--replicas", "2"])
        .ok();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut not_one_active, mut disagree, mut lost, mut not_serving) = (0, 0, 0, 0);
    let (mut host_kills, mut gateway_kills) = (0, 0);
    let mut acknowledged_releases = c.active().2;
    let mut acknowledged_audit = c.json(&["audit", "--tail", "100000"])
        .as_array()
        .map_or(0, Vec::len);
    let mut round_secs = Vec::new();
    println!("# kill -9 campaign: {} rounds ({} host kills, {} gateway kills)", rounds, rounds / 2, rounds / 2);
    for round in 0..rounds {
        let started = Instant::now();
        let mut op = operation(&c, &mut rng, round);
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        if round % 2 == 0 {
            let i = rng.below(2) as usize;
            c.hosts[i].0.kill9();
            host_kills += 1;
            let status = op.wait().ok();
            c.hosts[i].0.start();
            if status.is_some_and(|s| s.success()) {
                acknowledged_releases = acknowledged_releases.max(c.active().2);
            }
        } else {
            c.gateway.kill9();
            gateway_kills += 1;
            let _ = op.wait();
            c.gateway.start();
        }
        c.wait_up();
        // Let the fleet converge (a killed host restarts its apps; the
        // gateway reconciles) before judging it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let agreed = loop {
            let (active, n, _) = c.active();
            let hosts: Vec<Option<String>> =
                c.hosts.iter().map(|(_, _, d)| c.host_runs(d)).collect();
            let ok = n == 1 && hosts.iter().all(|h| h.is_some() && *h == active);
            if ok || Instant::now() > deadline {
                break (n, ok);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if agreed.0 != 1 {
            not_one_active += 1;
        }
        if !agreed.1 {
            disagree += 1;
        }
        let (_, _, releases) = c.active();
        let audit = c
            .json(&["audit", "--tail", "100000"])
            .as_array()
            .map_or(0, Vec::len);
        if releases < acknowledged_releases || audit < acknowledged_audit {
            lost += 1;
        }
        acknowledged_releases = acknowledged_releases.max(releases);
        acknowledged_audit = acknowledged_audit.max(audit);
        let serving = wait_for_or(
            "web to answer on every host",
            || {
                c.hosts
                    .iter()
                    .all(|(_, port, _)| {
                        http(&format!("127.0.0.1:{port}"), "GET", "web.localhost", "/", b"")
                            .is_ok_and(|r| r.status == 200)
                    })
                    .then_some(true)
            },
            || "web does not answer".into(),
        );
        if !serving {
            not_serving += 1;
        }
        round_secs.push(started.elapsed().as_secs_f64());
        if (round + 1) % 20 == 0 {
            println!(
                "  round {:>3}: host kills {host_kills}, gateway kills {gateway_kills}; failures so far: \
                 not one active {not_one_active}, disagree {disagree}, lost {lost}, not serving {not_serving}",
                round + 1
            );
        }
    }
    round_secs.sort_by(f64::total_cmp);
    println!(
        "\nkills: {host_kills} of a host, {gateway_kills} of the gateway\n\
         rounds where not exactly one release was active: {not_one_active}\n\
         rounds where the gateway and a host disagreed: {disagree}\n\
         rounds that lost an acknowledged release or audit entry: {lost}\n\
         rounds where the app did not answer 200 on every host: {not_serving}\n\
         releases: {acknowledged_releases}, audit entries: {acknowledged_audit}\n\
         round time: median {:.1} s, max {:.1} s",
        round_secs[round_secs.len() / 2],
        round_secs[round_secs.len() - 1]
    );
}
