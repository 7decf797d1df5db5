//! `ssh -p 2222 ops@gw <command>`: one CLI.md command on an SSH exec
//! channel. Output, stderr and exit status are the CLI's: 0 success, 1
//! refused or failed (one line on stderr), 2 usage error.

use std::sync::Arc;

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use schema::command::{Command, CommandLine, LogsArgs, Since, split_command_line};
use schema::tunnel::GatewayMsg;
use schema::LogRecord;
use tokio::sync::{mpsc, watch};

use crate::fleet::{Fleet, FleetError, Progress};
use crate::keys::{KeyEntry, Role};
use crate::tunnel::LogItem;

/// stdout, stderr and exit status of an exec channel.
pub struct Out {
    w: ChannelWriteHalf<Msg>,
}

impl Out {
    pub fn new(w: ChannelWriteHalf<Msg>) -> Out {
        Out { w }
    }

    pub async fn stdout(&self, s: impl Into<Bytes>) -> Result<(), ()> {
        self.w.data_bytes(s.into()).await.map_err(|_| ())
    }

    pub async fn stderr(&self, s: impl Into<Bytes>) -> Result<(), ()> {
        self.w.extended_data_bytes(1, s.into()).await.map_err(|_| ())
    }

    pub async fn exit(&self, code: i32) {
        let _ = self.w.exit_status(code as u32).await;
        let _ = self.w.eof().await;
        let _ = self.w.close().await;
    }
}

/// Runs `command` for `who` on a channel and closes it with the exit status.
pub async fn run(fleet: Arc<Fleet>, who: KeyEntry, read: ChannelReadHalf, out: Out, command: String) {
    let code = execute(&fleet, &who, read, &out, &command).await;
    out.exit(code).await;
}

async fn execute(fleet: &Arc<Fleet>, who: &KeyEntry, mut read: ChannelReadHalf, out: &Out, command: &str) -> i32 {
    let argv = match split_command_line(command) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            let _ = out.stderr("error: no command given; try `ps` or `help`\n").await;
            return 2;
        }
        Err(e) => {
            let _ = out.stderr(format!("error: {e}\n")).await;
            return 2;
        }
    };
    let argv = if argv[0] == "help" { vec!["--help".to_string()] } else { argv };
    let cl = match CommandLine::parse_argv(&argv) {
        Ok(cl) => cl,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = out.stderr(text).await;
                return 2;
            }
            let _ = out.stdout(text).await;
            return 0;
        }
    };
    if who.role == Role::Viewer && !cl.command.is_read_only() {
        let msg = format!(
            "refused: the key {} is a viewer; viewers may run ps, releases, logs, hosts and audit",
            who.name
        );
        fleet.audit(&who.name, cl.command.name(), cl.command.app(), format!("refused: {} is a viewer", who.name)).await;
        let _ = out.stderr(format!("error: {msg}\n")).await;
        return 1;
    }
    // Only deploy reads stdin: `ssh gw ps` from a terminal never sends EOF.
    let stdin = match &cl.command {
        Command::Deploy(d) if d.file.as_deref() == Some("-") => match read_stdin(&mut read, fleet.max_artifact_bytes).await {
            Ok(b) => b,
            Err(e) => {
                let _ = out.stderr(format!("error: {e}\n")).await;
                return 1;
            }
        },
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
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = out.stderr(format!("error: {e}\n")).await;
            1
        }
    }
}

async fn read_stdin(read: &mut ChannelReadHalf, max: u64) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(m) = read.wait().await {
        match m {
            ChannelMsg::Data { data } => {
                buf.extend_from_slice(&data);
                if buf.len() as u64 > max {
                    return Err(format!("stdin is larger than the gateway's artifact limit of {} MiB", max >> 20));
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
    out.stdout(s).await.map_err(|_| FleetError::Io("client gone".into()))
}

async fn print(out: &Out, s: String) -> Result<(), FleetError> {
    out.stdout(s).await.map_err(|_| FleetError::Io("client gone".into()))
}

/// Runs `op` while printing its progress on stderr (JSON lines with --json).
async fn with_progress<T>(out: &Out, json: bool, op: impl std::future::Future<Output = T>, rx: &mut mpsc::UnboundedReceiver<Progress>) -> T {
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

async fn dispatch(fleet: &Arc<Fleet>, who: &KeyEntry, out: &Out, cl: CommandLine, stdin: Vec<u8>, hangup: watch::Receiver<bool>) -> Result<(), FleetError> {
    let json = cl.json;
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let now = schema::time::now_millis();
    match cl.command {
        Command::Deploy(args) => {
            let r = with_progress(out, json, fleet.deploy(&who.name, &args, stdin, &ptx), &mut prx).await?;
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
            let r = with_progress(out, json, fleet.rollback(&who.name, &a.app, a.to, &ptx), &mut prx).await?;
            if json {
                return print_json(out, &r).await;
            }
            let from = r.from.map(|v| v.to_string()).unwrap_or_else(|| "none".into());
            print(out, format!("rolled back {} {from} -> {} in {} ms\n", r.app, r.to, r.switch_ms)).await
        }
        Command::Scale(a) => {
            let r = with_progress(out, json, fleet.scale(&who.name, &a.app, a.replicas, &ptx), &mut prx).await?;
            if json {
                return print_json(out, &r).await;
            }
            print(out, format!("scaled {} {} -> {}\n", r.app, r.from, r.replicas)).await
        }
        Command::Rm(a) => {
            with_progress(out, json, fleet.rm(&who.name, &a.app, &ptx), &mut prx).await?;
            if json {
                return print_json(out, &serde_json::json!({ "app": a.app, "removed": true })).await;
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
    }
}

async fn print_record(out: &Out, r: &LogRecord, json: bool) -> Result<(), FleetError> {
    if json {
        print_json(out, r).await
    } else {
        print(out, format!("{}\n", schema::render::log_line(r))).await
    }
}

/// Fan-in of an app's logs from every host that runs it. Following, a cut
/// tunnel resumes from the last sequence number seen from that host.
async fn logs(fleet: &Arc<Fleet>, out: &Out, a: LogsArgs, json: bool, mut hangup: watch::Receiver<bool>) -> Result<(), FleetError> {
    if a.filter.is_some() {
        return Err(FleetError::Refused(
            "--where: log filter expressions are not available in this gateway yet; use grep (or jq on --json) for now".into(),
        ));
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
            let Some(conn) = fleet.conn_of(h) else { continue };
            let app = a.app.clone();
            let Ok((_, mut rx)) = conn
                .logs(|id| GatewayMsg::Logs { id, app, since: since_seq, tail, follow: false, filter: None, ago_ms })
                .await
            else {
                continue;
            };
            while let Some(item) = rx.recv().await {
                match item {
                    LogItem::Records(r) => all.extend(r),
                    LogItem::End => break,
                    LogItem::Error(e) => {
                        tracing::debug!(host = %h, error = %e, "logs request failed");
                        break;
                    }
                }
            }
        }
        all.sort_by(|x, y| (&x.time, &x.host, x.seq).cmp(&(&y.time, &y.host, y.seq)));
        if let Some(t) = tail {
            let skip = all.len().saturating_sub(t as usize);
            all.drain(..skip);
        }
        for r in &all {
            print_record(out, r, json).await?;
        }
        return Ok(());
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<LogRecord>();
    let mut tasks = tokio::task::JoinSet::new();
    for h in hosts {
        let (fleet, app, tx) = (fleet.clone(), a.app.clone(), tx.clone());
        tasks.spawn(follow_host(fleet, h, app, since_seq, tail, ago_ms, tx));
    }
    drop(tx);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => print_record(out, &r, json).await?,
                None => return Ok(()),
            },
            _ = hangup.changed() => return Ok(()),
        }
    }
}

/// Follows one host's records of `app`, across tunnel cuts.
async fn follow_host(fleet: Arc<Fleet>, host: String, app: String, since: Option<u64>, tail: Option<u64>, ago_ms: Option<u64>, tx: mpsc::UnboundedSender<LogRecord>) {
    let mut last: Option<u64> = since;
    let mut first = true;
    let mut connects = fleet.subscribe_connects();
    loop {
        if let Some(conn) = fleet.conn_of(&host) {
            let (since, tail, ago) = if first { (last, tail, ago_ms) } else { (last, None, None) };
            let app2 = app.clone();
            if let Ok((id, mut rx)) = conn
                .logs(|id| GatewayMsg::Logs { id, app: app2, since, tail, follow: true, filter: None, ago_ms: ago })
                .await
            {
                first = false;
                loop {
                    tokio::select! {
                        item = rx.recv() => match item {
                            Some(LogItem::Records(rs)) => {
                                for r in rs {
                                    if last.is_some_and(|l| r.seq <= l) {
                                        continue;
                                    }
                                    last = Some(r.seq);
                                    if tx.send(r).is_err() {
                                        conn.cancel_logs(id).await;
                                        return;
                                    }
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
