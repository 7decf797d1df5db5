//! `hostd demo`: a working host with the sample apps, no setup.
//!
//! The sample apps are built into the binary, the state goes to a fresh
//! temp directory (or `--data`), and everything stops with Ctrl-C.

use std::path::PathBuf;

use clap::Args;
use schema::AppKind;
use schema::command::DeployArgs;

use super::serve::{Daemon, parse_http, wait_for_signal};
use crate::config::HostConfig;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Ingress address for the demo's http app.
    #[arg(long, value_name = "ADDR", default_value = crate::config::DEFAULT_HTTP)]
    pub http: String,
}

/// The sample apps, as built in `fixtures/`.
const HELLO: &[u8] = include_bytes!("../../../fixtures/wasm/http-hello.wasm");
const TICKER: &[u8] = include_bytes!("../../../fixtures/wasm/ticker.wasm");
const JOB: &[u8] = include_bytes!("../../../fixtures/wasm/job.wasm");

pub async fn execute(args: DemoArgs, data: Option<PathBuf>) -> anyhow::Result<()> {
    let (dir, _temp) = match data {
        Some(d) => (d, None),
        None => {
            let t = tempfile_dir()?;
            (t.clone(), Some(TempDir(t)))
        }
    };
    let cfg = HostConfig::new(dir.clone(), parse_http(&args.http)?, Some("demo".into()))?;
    let daemon = Daemon::start(cfg, None).await?;
    let apps: [(&str, AppKind, &[u8], &[(&str, &str)], Option<&str>, u32); 3] = [
        (
            "hello",
            AppKind::Http,
            HELLO,
            &[("GREETING", "cranefleet")],
            None,
            8,
        ),
        (
            "ticker",
            AppKind::Worker,
            TICKER,
            &[("TICK_MS", "2000"), ("GREETING", "demo")],
            None,
            2,
        ),
        (
            "nightly",
            AppKind::Job,
            JOB,
            &[("JOB_MS", "500")],
            Some("@every 15s"),
            1,
        ),
    ];
    for (name, kind, bytes, env, schedule, replicas) in apps {
        let args = DeployArgs {
            app: Some(name.into()),
            kind: Some(kind),
            replicas: Some(replicas),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            schedule: schedule.map(String::from),
            ..Default::default()
        };
        daemon
            .host
            .deploy(&schema::Actor::local("demo"), &args, bytes.to_vec())
            .await?;
    }
    let http = daemon
        .http
        .map(|a| a.to_string())
        .unwrap_or_else(|| "(no ingress)".into());
    let port = daemon.http.map(|a| a.port()).unwrap_or(8080);
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "hostd".into());
    println!(
        "cranefleet demo host is running (data in {dir}, ingress on {http}).

  curl http://hello.localhost:{port}/anything         # the http app
  curl http://127.0.0.1:{port}/hello/anything         # the same, by path
  {me} --data {dir} ps
  {me} --data {dir} logs ticker -f
  {me} --data {dir} deploy hello fixtures/wasm/http-version-v2.wasm
  {me} --data {dir} rollback hello               # back to v1, from kept compiled code

Ctrl-C stops it.",
        dir = dir.display()
    );
    wait_for_signal().await?;
    daemon.stop().await;
    Ok(())
}

/// A fresh directory under the system temp dir, short enough for a Unix socket path.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let p = base.join(format!("cranefleet-demo-{}-{i}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(p);
        }
    }
    anyhow::bail!("cannot create a demo directory under {}", base.display())
}

/// Removes the demo's directory when the demo ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
