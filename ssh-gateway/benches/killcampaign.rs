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
#[allow(dead_code)]
#[path = "fleet/setup.rs"]
mod setup;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use setup::{Fleet, bin};

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

/// The fleet of the campaign: a gateway (process 0) and two hosts.
struct Campaign(Fleet);

impl Campaign {
    fn ops(&self, args: &[&str]) -> Run {
        self.0.ops(args)
    }

    fn ops_cmd(&self) -> Command {
        self.0.ops_cmd()
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
        // At least 2 replicas: both hosts run it, so both must answer.
        2 => cmd.args(["scale", "web", &(2 + rng.below(3)).to_string()]),
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
    let mut c = Campaign(Fleet::start(2));
    let hello = fixture("http-hello.wasm");
    c.ops(&["deploy", "web", hello.to_str().unwrap(), "--replicas", "2"])
        .ok();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut not_one_active, mut disagree, mut lost, mut not_serving) = (0, 0, 0, 0);
    let (mut host_kills, mut gateway_kills) = (0, 0);
    let mut acknowledged_releases = c.active().2;
    let mut acknowledged_audit = c
        .json(&["audit", "--tail", "100000"])
        .as_array()
        .map_or(0, Vec::len);
    let mut round_secs = Vec::new();
    println!(
        "# kill -9 campaign: {} rounds ({} host kills, {} gateway kills)",
        rounds,
        rounds / 2,
        rounds / 2
    );
    for round in 0..rounds {
        let started = Instant::now();
        let mut op = operation(&c, &mut rng, round);
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        if round % 2 == 0 {
            let i = 1 + rng.below(2) as usize;
            c.0.kill9(i);
            host_kills += 1;
            let status = op.wait().ok();
            c.0.restart(i);
            if status.is_some_and(|s| s.success()) {
                acknowledged_releases = acknowledged_releases.max(c.active().2);
            }
        } else {
            c.0.kill9(0);
            gateway_kills += 1;
            let _ = op.wait();
            c.0.restart(0);
        }
        c.wait_up();
        // Let the fleet converge (a killed host restarts its apps; the
        // gateway reconciles) before judging it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let agreed = loop {
            let (active, n, _) = c.active();
            let hosts: Vec<Option<String>> =
                c.0.agents.iter().map(|(_, _, d)| c.host_runs(d)).collect();
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
        let deadline = Instant::now() + Duration::from_secs(30);
        let serving = loop {
            let all = c.0.agents.iter().all(|(_, port, _)| {
                http(
                    &format!("127.0.0.1:{port}"),
                    "GET",
                    "web.localhost",
                    "/",
                    b"",
                )
                .is_ok_and(|r| r.status == 200)
            });
            if all || Instant::now() > deadline {
                break all;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
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
