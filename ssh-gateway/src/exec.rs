//! `ssh -p 2222 ops@gw <command>`: one CLI.md command on an SSH exec
//! channel. Output, stderr and exit status are the CLI's: 0 success, 1
//! refused or failed (one line on stderr), 2 usage error.
//!
//! The same [`run_argv`] serves the console the gateway draws into an SSH
//! session: there the output goes to memory ([`Out::memory`]) and becomes the
//! console's events, so a command means exactly the same in both places.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use schema::command::{Command, CommandLine, split_command_line};
use tokio::sync::{mpsc, watch};

use crate::fleet::{Fleet, FleetError, Progress};
use crate::keys::KeyEntry;

/// A piece of a command's output, as an in-memory [`Out`] passes it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// Where a command's stdout and stderr go.
pub enum Out {
    /// An SSH exec channel: stdout data, stderr extended data, exit status.
    Channel(ChannelWriteHalf<Msg>),
    /// A bounded queue read in the same process (the gateway's console). A
    /// full queue slows the command down rather than growing without bound;
    /// a dropped receiver is a client gone.
    Memory(mpsc::Sender<Output>),
}

impl Out {
    pub fn new(w: ChannelWriteHalf<Msg>) -> Out {
        Out::Channel(w)
    }

    /// An `Out` whose output arrives on the returned receiver.
    pub fn memory(capacity: usize) -> (Out, mpsc::Receiver<Output>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Out::Memory(tx), rx)
    }

    pub async fn stdout(&self, s: impl Into<Bytes>) -> Result<(), ()> {
        match self {
            Out::Channel(w) => w.data_bytes(s.into()).await.map_err(|_| ()),
            Out::Memory(tx) => tx.send(Output::Stdout(s.into())).await.map_err(|_| ()),
        }
    }

    pub async fn stderr(&self, s: impl Into<Bytes>) -> Result<(), ()> {
        match self {
            Out::Channel(w) => w.extended_data_bytes(1, s.into()).await.map_err(|_| ()),
            Out::Memory(tx) => tx.send(Output::Stderr(s.into())).await.map_err(|_| ()),
        }
    }

    /// Ends a channel with the exit status; in memory the caller has the
    /// status already, and dropping the `Out` ends the stream.
    pub async fn exit(&self, code: i32) {
        if let Out::Channel(w) = self {
            let _ = w.exit_status(code as u32).await;
            let _ = w.eof().await;
            let _ = w.close().await;
        }
    }

    /// Resolves when nobody reads the output any more (memory only; a
    /// channel's hangup is seen on its read half).
    async fn gone(&self) {
        match self {
            Out::Memory(tx) => tx.closed().await,
            Out::Channel(_) => std::future::pending().await,
        }
    }
}

/// Runs `command` for `who` on a channel and closes it with the exit status.
pub async fn run(
    fleet: Arc<Fleet>,
    who: KeyEntry,
    read: ChannelReadHalf,
    out: Out,
    command: String,
) {
    let code = execute(&fleet, &who, read, &out, &command).await;
    out.exit(code).await;
}

/// Parses `argv` (as typed after `hostd`), or prints the usage error (or the
/// help) and returns the exit status.
async fn parse(out: &Out, argv: &[String]) -> Result<CommandLine, i32> {
    let argv: Vec<String> = if argv.first().map(String::as_str) == Some("help") {
        vec!["--help".to_string()]
    } else {
        argv.to_vec()
    };
    match CommandLine::parse_argv(&argv) {
        Ok(cl) => Ok(cl),
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = out.stderr(text).await;
                return Err(2);
            }
            let _ = out.stdout(text).await;
            Err(0)
        }
    }
}

/// Refuses (and audits) a command the key's role does not allow.
async fn authorize(
    fleet: &Arc<Fleet>,
    who: &KeyEntry,
    out: &Out,
    cl: &CommandLine,
) -> Result<(), i32> {
    if !who.role.may_change() && !cl.command.is_read_only() {
        let msg = format!(
            "refused: the key {} is a viewer; viewers may run ps, releases, logs, hosts, audit and watch",
            who.name
        );
        fleet
            .audit(
                &who.name,
                cl.command.name(),
                cl.command.app(),
                format!("refused: {} is a viewer", who.name),
            )
            .await;
        let _ = out.stderr(format!("error: {msg}\n")).await;
        return Err(1);
    }
    Ok(())
}

/// Runs one command line in this process, for the gateway's console:
/// `stdin` is the artifact of `deploy APP -`; the command stops early (a
/// `logs -f`, a `watch`) when `out`'s receiver is dropped. Returns the exit
/// status, as the exec channel would report it.
pub async fn run_argv(
    fleet: &Arc<Fleet>,
    who: &KeyEntry,
    out: &Out,
    argv: &[String],
    stdin: Vec<u8>,
) -> i32 {
    let cl = match parse(out, argv).await {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    if let Err(code) = authorize(fleet, who, out, &cl).await {
        return code;
    }
    let (hangup_tx, hangup) = watch::channel(false);
    let result = tokio::select! {
        r = dispatch(fleet, who, out, cl, stdin, hangup) => r,
        _ = out.gone() => Ok(()),
    };
    drop(hangup_tx);
    finish(out, result).await
}

async fn finish(out: &Out, result: Result<(), FleetError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = out.stderr(format!("error: {e}\n")).await;
            1
        }
    }
}

async fn execute(
    fleet: &Arc<Fleet>,
    who: &KeyEntry,
    mut read: ChannelReadHalf,
    out: &Out,
    command: &str,
) -> i32 {
    let argv = match split_command_line(command) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            let _ = out
                .stderr("error: no command given; try `ps` or `help`\n")
                .await;
            return 2;
        }
        Err(e) => {
            let _ = out.stderr(format!("error: {e}\n")).await;
            return 2;
        }
    };
    let cl = match parse(out, &argv).await {
        Ok(cl) => cl,
        Err(code) => return code,
    };
    if let Err(code) = authorize(fleet, who, out, &cl).await {
        return code;
    }
    // Only deploy reads stdin: `ssh gw ps` from a terminal never sends EOF.
    let stdin = match &cl.command {
        Command::Deploy(d) if d.file.as_deref() == Some("-") => {
            match read_stdin(&mut read, fleet.max_artifact_bytes).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = out.stderr(format!("error: {e}\n")).await;
                    return 1;
                }
            }
        }
        Command::Deploy(_) => {
            let _ = out
                .stderr("error: through the gateway the artifact comes on stdin: `ssh gw deploy APP - < app.wasm` (or `hostd deploy APP FILE --gateway …`)\n")
                .await;
            return 2;
        }
        _ => Vec::new(),
    };
    // The rest of the channel's input is drained (so the session never
    // waits on us); its end means the client went away, which ends `logs -f`.
    let (hangup_tx, hangup) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        while let Some(m) = read.wait().await {
            if matches!(m, ChannelMsg::Close) {
                break;
            }
        }
        let _ = hangup_tx.send(true);
    });
    let result = dispatch(fleet, who, out, cl, stdin, hangup).await;
    watcher.abort();
    finish(out, result).await
}

async fn read_stdin(read: &mut ChannelReadHalf, max: u64) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(m) = read.wait().await {
        match m {
            ChannelMsg::Data { data } => {
                buf.extend_from_slice(&data);
                if buf.len() as u64 > max {
                    return Err(format!(
                        "stdin is larger than the gateway's artifact limit of {} MiB",
                        max >> 20
                    ));
                }
            }
            ChannelMsg::Eof | ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok(buf)
}

async fn print_json<T: serde::Serialize>(out: &Out, v: &T) -> Result<(), FleetError> {
    let mut s = serde_json::to_string(v).map_err(|e| FleetError::Io(e.to_string()))?;
    s.push('\n');
    out.stdout(s)
        .await
        .map_err(|_| FleetError::Io("client gone".into()))
}

async fn print(out: &Out, s: String) -> Result<(), FleetError> {
    out.stdout(s)
        .await
        .map_err(|_| FleetError::Io("client gone".into()))
}

/// Runs `op` while printing its progress on stderr (JSON lines with --json).
async fn with_progress<T>(
    out: &Out,
    json: bool,
    op: impl std::future::Future<Output = T>,
    rx: &mut mpsc::UnboundedReceiver<Progress>,
) -> T {
    tokio::pin!(op);
    loop {
        tokio::select! {
            r = &mut op => {
                while let Ok(p) = rx.try_recv() {
                    let _ = out.stderr(progress_line(&p, json)).await;
                }
                return r;
            }
            Some(p) = rx.recv() => {
                let _ = out.stderr(progress_line(&p, json)).await;
            }
        }
    }
}

fn progress_line(p: &Progress, json: bool) -> String {
    if json {
        format!("{}\n", serde_json::to_string(p).unwrap_or_default())
    } else {
        format!("{}: {}\n", p.host, p.line)
    }
}

async fn dispatch(
    fleet: &Arc<Fleet>,
    who: &KeyEntry,
    out: &Out,
    cl: CommandLine,
    stdin: Vec<u8>,
    hangup: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    let json = cl.json;
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let now = schema::time::now_millis();
    match cl.command {
        Command::Deploy(args) => {
            let r = with_progress(
                out,
                json,
                fleet.deploy(&who.name, &args, stdin, &ptx),
                &mut prx,
            )
            .await?;
            if json {
                return print_json(out, &r).await;
            }
            print(
                out,
                format!(
                    "deployed {} {} ({}…, {}, {} replica{})\n",
                    r.app,
                    r.version,
                    &r.digest[..r.digest.len().min(19)],
                    r.kind,
                    r.replicas,
                    if r.replicas == 1 { "" } else { "s" }
                ),
            )
            .await
        }
        Command::Rollback(a) => {
            let r = with_progress(
                out,
                json,
                fleet.rollback(&who.name, &a.app, a.to, &ptx),
                &mut prx,
            )
            .await?;
            if json {
                return print_json(out, &r).await;
            }
            let from = r
                .from
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none".into());
            print(
                out,
                format!(
                    "rolled back {} {from} -> {} in {} ms\n",
                    r.app, r.to, r.switch_ms
                ),
            )
            .await
        }
        Command::Scale(a) => {
            let r = with_progress(
                out,
                json,
                fleet.scale(&who.name, &a.app, a.replicas, &ptx),
                &mut prx,
            )
            .await?;
            if json {
                return print_json(out, &r).await;
            }
            print(
                out,
                format!("scaled {} {} -> {}\n", r.app, r.from, r.replicas),
            )
            .await
        }
        Command::Rm(a) => {
            with_progress(out, json, fleet.rm(&who.name, &a.app, &ptx), &mut prx).await?;
            if json {
                return print_json(out, &serde_json::json!({ "app": a.app, "removed": true }))
                    .await;
            }
            print(out, format!("removed {}\n", a.app)).await
        }
        Command::Ps(a) => {
            let rows = fleet.ps(a.app.as_deref()).await?;
            if json {
                return print_json(out, &rows).await;
            }
            print(out, schema::render::ps(&rows, a.app.is_some())).await
        }
        Command::Releases(a) => {
            let rows = fleet.releases(&a.app).await?;
            if json {
                return print_json(out, &rows).await;
            }
            print(out, schema::render::releases(&rows, now)).await
        }
        Command::Hosts => {
            let rows = fleet.hosts().await?;
            if json {
                return print_json(out, &rows).await;
            }
            print(out, schema::render::hosts(&rows, now)).await
        }
        Command::Audit(a) => {
            let rows = fleet.audit_tail(a.tail).await?;
            if json {
                return print_json(out, &rows).await;
            }
            print(out, schema::render::audit(&rows)).await
        }
        Command::Logs(a) => crate::logs::logs(fleet, out, a, json, hangup).await,
        Command::Watch => watch_fleet(fleet, who, out, json, hangup).await,
    }
}

/// At most this often a change is pushed to `watch`: a burst of changes
/// (a deploy touches every host) becomes one line.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(250);
/// At least this often a snapshot is sent, so "last seen" ages on screen.
const WATCH_REFRESH: Duration = Duration::from_secs(2);

/// `watch`: the fleet now, then again after every change (debounced) and
/// every [`WATCH_REFRESH`], until the client hangs up. Pushed from
/// `Fleet::changed`, so a console never polls.
async fn watch_fleet(
    fleet: &Arc<Fleet>,
    who: &KeyEntry,
    out: &Out,
    json: bool,
    mut hangup: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    let mut changed = fleet.changed.subscribe();
    let mut first = true;
    loop {
        changed.borrow_and_update();
        let sent = tokio::time::Instant::now();
        let snapshot = schema::WatchSnapshot {
            hosts: fleet.hosts().await?,
            apps: fleet.ps(None).await?,
            role: first.then_some(who.role),
            key: first.then(|| who.name.clone()),
            gateway: first.then(|| fleet.name.clone()),
        };
        first = false;
        if json {
            print_json(out, &snapshot).await?;
        } else {
            let now = schema::time::now_millis();
            let text = format!(
                "{}\n{}\n",
                schema::render::hosts(&snapshot.hosts, now),
                schema::render::ps(&snapshot.apps, false)
            );
            print(out, text).await?;
        }
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(sent + WATCH_DEBOUNCE) => {}
                    _ = hangup.changed() => return Ok(()),
                }
            }
            _ = tokio::time::sleep_until(sent + WATCH_REFRESH) => {}
            _ = hangup.changed() => return Ok(()),
        }
    }
}
