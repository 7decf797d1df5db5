//! The driver both front doors share: it carries out the console's
//! [`Action`]s by running CLI.md commands and turns their output into
//! [`Event`]s.
//!
//! How a command runs is the only thing that differs between the doors, so
//! it sits behind [`Executor`]: the local `console` opens an SSH exec channel
//! to the gateway per command ([`crate::ssh::SshExecutor`]); the gateway runs
//! the command in its own process. Either way a command is an argv (always
//! with `--json` where the output is read) and its output is what `ssh gw
//! <command>` would print, which is what keeps the two doors identical:
//!
//! - `watch --json` runs for the whole session; each line is an
//!   [`Event::Snapshot`]. When it ends (the link broke) the console is told
//!   [`Event::Disconnected`] and the watch is restarted with a backoff.
//! - [`Action::Run`]: stderr lines become [`Event::CommandProgress`] (the
//!   JSON progress objects of `--json` as `host: state`), the end becomes
//!   [`Event::CommandDone`] with the stdout the app parses.
//! - [`Action::Follow`]: `logs APP -f --json --tail 500 [--where EXPR]`,
//!   whose lines arrive as [`Event::LogRecords`] batches.
//! - `LoadReleases`, `LoadInstances`, `LoadAudit`: one `--json` command each.

use std::sync::Arc;
use std::time::Duration;

use schema::command::{Command, CommandLine};
use schema::{AuditEntry, LogRecord, PsRow, ReleaseRow, WatchSnapshot};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event::{Action, CommandId, Event};

/// Output of a command started by an [`Executor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command ended with this status (CLI.md: 0, 1 refused or failed,
    /// 2 usage). The last item of a stream.
    Exit(i32),
    /// The command could not run or its link broke before it ended (the
    /// gateway is unreachable, the SSH session dropped). The last item.
    Failed(String),
}

/// Runs CLI.md commands somewhere: on the gateway over SSH, or in the
/// gateway's own process.
pub trait Executor: Send + Sync + 'static {
    /// Starts `argv` (as typed after `hostd`) with `stdin` as its standard
    /// input (the artifact of `deploy APP -`). Output arrives on the
    /// receiver and ends with exactly one [`Output::Exit`] or
    /// [`Output::Failed`]. Dropping the receiver stops the command (a
    /// `logs -f`, a `watch`). Never blocks: the work happens on a task.
    fn start(&self, argv: Vec<String>, stdin: Option<Vec<u8>>) -> mpsc::Receiver<Output>;
}

/// How the driver behaves at one front door.
#[derive(Debug, Clone)]
pub struct Options {
    /// `deploy APP FILE` reads FILE here and sends it as stdin (the local
    /// console). The gateway's console has no files of the operator's.
    pub local_files: bool,
    /// Shown in the header once the fleet answers (`ops@gw:2222`).
    pub gateway: String,
}

/// Log records kept from before the follow started.
const FOLLOW_TAIL: &str = "500";
/// Longest wait between two attempts to restart a broken watch or follow.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Carries out `actions` until [`Action::Quit`], or until either channel
/// closes. `watch` is a `watch --json` the caller already started (to learn
/// the session's role before drawing); `None` starts one.
pub async fn drive(
    exec: Arc<dyn Executor>,
    opts: Options,
    events: mpsc::Sender<Event>,
    mut actions: mpsc::Receiver<Action>,
    watch: Option<mpsc::Receiver<Output>>,
) {
    let watcher = tokio::spawn(watch_loop(
        exec.clone(),
        opts.gateway.clone(),
        events.clone(),
        watch,
    ));
    let mut follow: Option<JoinHandle<()>> = None;
    while let Some(action) = actions.recv().await {
        let (exec, events) = (exec.clone(), events.clone());
        match action {
            Action::Quit => break,
            Action::Run { id, argv } => {
                tokio::spawn(run_command(exec, id, argv, opts.local_files, events));
            }
            Action::Follow { app, filter } => {
                if let Some(f) = follow.take() {
                    f.abort();
                }
                follow = Some(tokio::spawn(follow_logs(exec, app, filter, events)));
            }
            Action::Unfollow => {
                if let Some(f) = follow.take() {
                    f.abort();
                }
            }
            Action::LoadReleases(app) => {
                let argv = words(&["releases", &app, "--json"]);
                tokio::spawn(load(exec, argv, events, move |rows: Vec<ReleaseRow>| {
                    Event::Releases { app, rows }
                }));
            }
            Action::LoadInstances(app) => {
                let argv = words(&["ps", &app, "--json"]);
                tokio::spawn(load(exec, argv, events, move |rows: Vec<PsRow>| {
                    Event::Instances { app, rows }
                }));
            }
            Action::LoadAudit => {
                let argv = words(&["audit", "--json"]);
                tokio::spawn(load(exec, argv, events, |rows: Vec<AuditEntry>| {
                    Event::Audit(rows)
                }));
            }
        }
    }
    watcher.abort();
    if let Some(f) = follow {
        f.abort();
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// Splits a byte stream into lines; keeps an unfinished last line for later.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let Some(end) = self.buf.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let done: Vec<u8> = self.buf.drain(..=end).collect();
        String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rest(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.is_empty()).then(|| String::from_utf8_lossy(&rest).into_owned())
    }
}

/// Keeps the fleet on screen: one `watch --json` for the session,
/// restarted with a backoff whenever it ends.
async fn watch_loop(
    exec: Arc<dyn Executor>,
    gateway: String,
    events: mpsc::Sender<Event>,
    mut first: Option<mpsc::Receiver<Output>>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut rx = first
            .take()
            .unwrap_or_else(|| exec.start(words(&["watch", "--json"]), None));
        let mut lines = Lines::default();
        let mut stderr = Lines::default();
        let mut connected = false;
        let why = loop {
            match rx.recv().await {
                Some(Output::Stdout(b)) => {
                    for line in lines.push(&b) {
                        let Ok(s) = serde_json::from_str::<WatchSnapshot>(&line) else {
                            continue;
                        };
                        if !connected {
                            connected = true;
                            backoff = Duration::from_millis(250);
                            let gateway = if gateway.is_empty() {
                                s.gateway.clone().unwrap_or_default()
                            } else {
                                gateway.clone()
                            };
                            if events.send(Event::Connected { gateway }).await.is_err() {
                                return;
                            }
                        }
                        for ev in snapshot_events(s) {
                            if events.send(ev).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(Output::Stderr(b)) => {
                    stderr.push(&b);
                }
                Some(Output::Exit(code)) => {
                    let said = stderr
                        .push(b"\n")
                        .into_iter()
                        .find(|l| !l.trim().is_empty());
                    break said.unwrap_or_else(|| format!("the fleet watch ended (exit {code})"));
                }
                Some(Output::Failed(why)) => break why,
                None => break "the fleet watch stopped".to_string(),
            }
        };
        if events.send(Event::Disconnected(why)).await.is_err() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The events one `watch` line makes: the snapshot, and the request rates
/// of the http apps that report them (`ps`'s `rps`).
pub fn snapshot_events(s: WatchSnapshot) -> Vec<Event> {
    let rates = s
        .apps
        .iter()
        .filter_map(|a| a.rps.map(|r| (a.app.clone(), r)))
        .collect();
    vec![
        Event::RequestRates(rates),
        Event::Snapshot {
            hosts: s.hosts,
            apps: s.apps,
        },
    ]
}

/// Formats a progress line of a `--json` command (`{"host","line"}`) the
/// way the console reads progress: `host: state`. Other lines pass as they are.
fn progress_line(line: &str) -> String {
    #[derive(serde::Deserialize)]
    struct P {
        host: String,
        line: String,
    }
    match serde_json::from_str::<P>(line) {
        Ok(p) => format!("{}: {}", p.host, p.line),
        Err(_) => line.to_string(),
    }
}

/// A `deploy` of a file on this machine becomes `deploy … -` with the file's
/// bytes as stdin (and a manifest's fields as flags), as `hostd --gateway`
/// does it. Other commands pass unchanged.
fn prepare(argv: Vec<String>, local_files: bool) -> Result<(Vec<String>, Option<Vec<u8>>), String> {
    if argv.first().map(String::as_str) != Some("deploy") {
        return Ok((argv, None));
    }
    if !local_files {
        return Err("deploy reads a file, and this console has no files: use `ssh GATEWAY deploy APP - < app.wasm`".into());
    }
    let cl = CommandLine::parse_argv(&argv).map_err(|e| e.to_string())?;
    let Command::Deploy(mut d) = cl.command else {
        return Ok((argv, None));
    };
    if let Some(path) = d.manifest.clone() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read manifest {path}: {e}"))?;
        let m = schema::Manifest::from_toml(&text).map_err(|e| format!("manifest {path}: {e}"))?;
        if d.file.is_none()
            && d.app
                .as_deref()
                .is_some_and(|a| a.ends_with(".wasm") || a == "-")
        {
            d.file = d.app.take();
        }
        if d.file.is_none()
            && let Some(a) = &m.artifact
        {
            let base = std::path::Path::new(&path)
                .parent()
                .unwrap_or(std::path::Path::new("."));
            d.file = Some(base.join(a).display().to_string());
        }
        d.overlay_manifest(&m);
    }
    let file = d
        .file
        .clone()
        .ok_or("deploy needs a FILE, or a manifest with `artifact`")?;
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let mut argv = d.to_argv("-");
    argv.push("--json".into());
    Ok((argv, Some(bytes)))
}

/// Runs one command the operator confirmed, reporting progress and the end.
async fn run_command(
    exec: Arc<dyn Executor>,
    id: CommandId,
    argv: Vec<String>,
    local_files: bool,
    events: mpsc::Sender<Event>,
) {
    let (argv, stdin) = match prepare(argv, local_files) {
        Ok(p) => p,
        Err(e) => {
            let done = Event::CommandDone {
                id,
                code: 2,
                stdout: String::new(),
                stderr: e,
            };
            let _ = events.send(done).await;
            return;
        }
    };
    let mut rx = exec.start(argv, stdin);
    let (mut stdout, mut stderr, mut lines) = (Vec::new(), String::new(), Lines::default());
    let code = loop {
        match rx.recv().await {
            Some(Output::Stdout(b)) => stdout.extend_from_slice(&b),
            Some(Output::Stderr(b)) => {
                for line in lines.push(&b) {
                    let line = progress_line(&line);
                    stderr.push_str(&line);
                    stderr.push('\n');
                    if events
                        .send(Event::CommandProgress { id, line })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Some(Output::Exit(code)) => break code,
            Some(Output::Failed(why)) => {
                stderr.push_str(&why);
                break 1;
            }
            None => {
                stderr.push_str("the command stopped without an exit status");
                break 1;
            }
        }
    };
    if let Some(rest) = lines.rest() {
        stderr.push_str(&rest);
    }
    let done = Event::CommandDone {
        id,
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    };
    let _ = events.send(done).await;
}

/// Runs a command to its end: (exit status, stdout, stderr). A command
/// that could not run reports status 1 and why.
pub async fn collect(mut rx: mpsc::Receiver<Output>) -> (i32, Vec<u8>, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        match rx.recv().await {
            Some(Output::Stdout(b)) => out.extend_from_slice(&b),
            Some(Output::Stderr(b)) => err.extend_from_slice(&b),
            Some(Output::Exit(code)) => return (code, out, String::from_utf8_lossy(&err).into()),
            Some(Output::Failed(why)) => return (1, out, why),
            None => return (1, out, "the command stopped without an exit status".into()),
        }
    }
}

/// The first non-empty line of a command's stderr, without `error: `.
fn reason(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .trim_start_matches("error: ")
        .to_string()
}

/// Runs a one-shot `--json` command and sends its parsed answer.
async fn load<T: DeserializeOwned>(
    exec: Arc<dyn Executor>,
    argv: Vec<String>,
    events: mpsc::Sender<Event>,
    to_event: impl FnOnce(T) -> Event,
) {
    let what = argv[..argv.len() - 1].join(" ");
    let (code, out, err) = collect(exec.start(argv, None)).await;
    let ev = if code != 0 {
        Event::Error(format!("{what}: {}", reason(&err)))
    } else {
        match serde_json::from_slice::<T>(&out) {
            Ok(v) => to_event(v),
            Err(e) => Event::Error(format!("{what}: unreadable answer from the gateway: {e}")),
        }
    };
    let _ = events.send(ev).await;
}

/// Streams one app's logs into the console until aborted. A broken link
/// restarts the follow (the app drops records it has seen); a refusal
/// (unknown app, bad `--where`) is shown and ends it.
async fn follow_logs(
    exec: Arc<dyn Executor>,
    app: String,
    filter: Option<String>,
    events: mpsc::Sender<Event>,
) {
    let mut argv = words(&["logs", &app, "-f", "--json", "--tail", FOLLOW_TAIL]);
    if let Some(f) = filter {
        argv.extend(["--where".to_string(), f]);
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut rx = exec.start(argv.clone(), None);
        let (mut lines, mut stderr) = (Lines::default(), String::new());
        loop {
            match rx.recv().await {
                Some(Output::Stdout(b)) => {
                    let batch: Vec<LogRecord> = lines
                        .push(&b)
                        .iter()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    if !batch.is_empty() {
                        backoff = Duration::from_millis(250);
                        if events.send(Event::LogRecords(batch)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Output::Stderr(b)) => stderr.push_str(&String::from_utf8_lossy(&b)),
                Some(Output::Exit(0)) | Some(Output::Failed(_)) | None => break,
                Some(Output::Exit(_)) => {
                    let _ = events
                        .send(Event::Error(format!("logs {app}: {}", reason(&stderr))))
                        .await;
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_for_their_newline() {
        let mut l = Lines::default();
        assert!(l.push(b"{\"a\":").is_empty());
        assert_eq!(l.push(b"1}\n{\"b\""), vec!["{\"a\":1}".to_string()]);
        assert_eq!(l.rest().as_deref(), Some("{\"b\""));
    }

    #[test]
    fn json_progress_reads_as_host_and_state() {
        assert_eq!(
            progress_line(r#"{"host":"web-1","line":"staging"}"#),
            "web-1: staging"
        );
        assert_eq!(progress_line("switching"), "switching");
    }

    #[test]
    fn a_local_deploy_sends_the_file_as_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.wasm");
        std::fs::write(&f, b"\0asm").unwrap();
        let argv = words(&[
            "deploy",
            "api",
            f.to_str().unwrap(),
            "--replicas",
            "2",
            "--json",
        ]);
        let (argv, stdin) = prepare(argv, true).unwrap();
        assert_eq!(stdin.as_deref(), Some(&b"\0asm"[..]));
        assert_eq!(argv[..3], words(&["deploy", "api", "-"])[..]);
        assert!(argv.contains(&"--replicas".to_string()) && argv.ends_with(&["--json".into()]));
        assert!(prepare(words(&["deploy", "api", "/nonexistent.wasm"]), true).is_err());
        assert!(prepare(words(&["deploy", "api", "x.wasm"]), false).is_err());
        let (same, none) = prepare(words(&["rollback", "api", "--json"]), false).unwrap();
        assert_eq!((same, none), (words(&["rollback", "api", "--json"]), None));
    }
}
