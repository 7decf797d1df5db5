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
use schema::LogRecord;
use schema::command::{Command, CommandLine, LogsArgs, Since, split_command_line};
use schema::tunnel::GatewayMsg;
use tokio::sync::{mpsc, watch};

use crate::fleet::{Fleet, FleetError, Progress};
use crate::keys::{KeyEntry, Role};
use crate::tunnel::LogItem;

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
    if who.role == Role::Viewer && !cl.command.is_read_only() {
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
        Command::Logs(a) => logs(fleet, out, a, json, hangup).await,
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
            role: first.then(|| who.role.to_string()),
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

/// Renders records and sends them in pieces of about 64 KiB: one SSH
/// packet per record would cost more than the records.
async fn print_records(out: &Out, records: &[LogRecord], json: bool) -> Result<(), FleetError> {
    const CHUNK: usize = 64 * 1024;
    let mut buf = String::new();
    for r in records {
        if json {
            buf.push_str(&serde_json::to_string(r).map_err(|e| FleetError::Io(e.to_string()))?);
        } else {
            buf.push_str(&schema::render::log_line(r));
        }
        buf.push('\n');
        if buf.len() >= CHUNK {
            print(out, std::mem::take(&mut buf)).await?;
        }
    }
    if !buf.is_empty() {
        print(out, buf).await?;
    }
    Ok(())
}

/// Fan-in of an app's logs from every host that runs it. A `--where`
/// filter travels to each host and runs there, so only matching records
/// cross the tunnels. Following, a cut tunnel resumes from the last
/// sequence number seen from that host.
async fn logs(
    fleet: &Arc<Fleet>,
    out: &Out,
    a: LogsArgs,
    json: bool,
    mut hangup: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    // Refuse a bad expression here, with its position, before any host sees it.
    if let Some(src) = &a.filter {
        schema::expr::parse_filter(src)
            .map_err(|e| FleetError::Refused(format!("invalid --where expression at {e}")))?;
    }
    let placement = fleet.check_app(&a.app).await?;
    let hosts = fleet.hosts_with(&a.app, &placement);
    let (since_seq, ago_ms) = match a.since {
        Some(Since::Seq(s)) => (Some(s), None),
        Some(Since::Ago(d)) => (None, Some(d.as_millis() as u64)),
        None => (None, None),
    };
    let tail = a.tail.or(if a.since.is_none() { Some(100) } else { None });
    if !a.follow {
        let mut all: Vec<LogRecord> = Vec::new();
        for h in &hosts {
            let Some(conn) = fleet.conn_of(h) else {
                continue;
            };
            let (app, filter) = (a.app.clone(), a.filter.clone());
            let Ok((id, mut rx)) = conn
                .logs(|id| GatewayMsg::Logs {
                    id,
                    app,
                    since: since_seq,
                    tail,
                    follow: false,
                    filter,
                    ago_ms,
                })
                .await
            else {
                continue;
            };
            let mut n = 0usize;
            while let Some(item) = rx.recv().await {
                match item {
                    LogItem::Records(r) => {
                        n += r.len();
                        all.extend(r);
                    }
                    LogItem::End => break,
                    LogItem::Error(e) => {
                        let _ = out.stderr(format!("{h}: {e}\n")).await;
                        break;
                    }
                }
            }
            tracing::debug!(host = %h, id, records = n, filter = a.filter.as_deref().unwrap_or(""), "logs received");
        }
        all.sort_by(|x, y| (&x.time, &x.host, x.seq).cmp(&(&y.time, &y.host, y.seq)));
        if let Some(t) = tail {
            let skip = all.len().saturating_sub(t as usize);
            all.drain(..skip);
        }
        return print_records(out, &all, json).await;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<LogRecord>>();
    let mut tasks = tokio::task::JoinSet::new();
    for h in hosts {
        let (fleet, app, tx, filter) = (fleet.clone(), a.app.clone(), tx.clone(), a.filter.clone());
        tasks.spawn(follow_host(
            fleet, h, app, since_seq, tail, ago_ms, filter, tx,
        ));
    }
    drop(tx);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(mut batch) => {
                    while batch.len() < 4096 {
                        match rx.try_recv() {
                            Ok(more) => batch.extend(more),
                            Err(_) => break,
                        }
                    }
                    print_records(out, &batch, json).await?;
                }
                None => return Ok(()),
            },
            _ = hangup.changed() => return Ok(()),
        }
    }
}

/// Follows one host's records of `app`, across tunnel cuts.
#[allow(clippy::too_many_arguments)]
async fn follow_host(
    fleet: Arc<Fleet>,
    host: String,
    app: String,
    since: Option<u64>,
    tail: Option<u64>,
    ago_ms: Option<u64>,
    filter: Option<String>,
    tx: mpsc::UnboundedSender<Vec<LogRecord>>,
) {
    let mut last: Option<u64> = since;
    let mut first = true;
    let mut connects = fleet.subscribe_connects();
    loop {
        if let Some(conn) = fleet.conn_of(&host) {
            let (since, tail, ago) = if first {
                (last, tail, ago_ms)
            } else {
                (last, None, None)
            };
            let (app2, filter2) = (app.clone(), filter.clone());
            if let Ok((id, mut rx)) = conn
                .logs(|id| GatewayMsg::Logs {
                    id,
                    app: app2,
                    since,
                    tail,
                    follow: true,
                    filter: filter2,
                    ago_ms: ago,
                })
                .await
            {
                first = false;
                loop {
                    tokio::select! {
                        item = rx.recv() => match item {
                            Some(LogItem::Records(mut rs)) => {
                                rs.retain(|r| last.is_none_or(|l| r.seq > l));
                                let Some(newest) = rs.last().map(|r| r.seq) else { continue };
                                last = Some(newest);
                                if tx.send(rs).is_err() {
                                    conn.cancel_logs(id).await;
                                    return;
                                }
                            }
                            Some(LogItem::End) | Some(LogItem::Error(_)) | None => break,
                        },
                        _ = tx.closed() => {
                            conn.cancel_logs(id).await;
                            return;
                        }
                    }
                }
            }
        }
        // Wait for this host to come back, then resume after `last`.
        loop {
            tokio::select! {
                r = connects.recv() => match r {
                    Ok(h) if h == host => break,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            }
        }
    }
}
