//! The driver both front doors share: it carries out the console's
//! [`Action`]s by running CLI.md commands and turns their replies into
//! [`Event`]s.
//!
//! How a command runs is the only thing that differs between the doors, so
//! it sits behind [`Executor`]: the local `console` opens an SSH exec channel
//! to the gateway per command ([`crate::ssh::SshExecutor`], which sends the
//! typed command as words and reads the `--json` answer back into replies);
//! the gateway runs the typed command in its own process, and its replies
//! reach the console as values. Either way:
//!
//! - `watch` runs for the whole session; each snapshot is an
//!   [`Event::Snapshot`]. When it ends (the link broke) the console is told
//!   [`Event::Disconnected`] and the watch is restarted with a backoff.
//! - [`Action::Run`]: progress becomes [`Event::CommandProgress`], the end
//!   [`Event::CommandDone`] with the typed outcome.
//! - [`Action::Follow`]: `logs APP -f --tail 500 [--where EXPR]`, whose
//!   records arrive as [`Event::LogRecords`] batches.
//! - `LoadReleases`, `LoadInstances`, `LoadAudit`: one command each.

use std::sync::Arc;
use std::time::Duration;

use ops::{Command, CommandLine, ErrorKind, LogChunk, OpError, Reply};
use schema::WatchSnapshot;
use schema::command::{AuditArgs, LogsArgs, PsArgs, ReleasesArgs};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event::{Action, CommandId, Event};

/// What a command started by an [`Executor`] hands back.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A reply: progress, log records, a snapshot, the outcome.
    Reply(Reply),
    /// The command ended: `Ok`, or why not (refused, failed, a usage error,
    /// or the link broke before it ended: [`ErrorKind::Gone`]). The last item.
    Done(Result<(), OpError>),
}

/// Runs CLI.md commands somewhere: on the gateway over SSH, or in the
/// gateway's own process.
pub trait Executor: Send + Sync + 'static {
    /// Starts `request` with `artifact` as the artifact of `deploy APP -`.
    /// Replies arrive on the receiver, which ends with exactly one
    /// [`Output::Done`]. Dropping the receiver stops a `logs -f` or a
    /// `watch` (a change runs to its end). Never blocks: the work happens on
    /// a task.
    fn start(&self, request: CommandLine, artifact: Option<Vec<u8>>) -> mpsc::Receiver<Output>;
}

/// How the driver behaves at one front door.
#[derive(Debug, Clone)]
pub struct Options {
    /// `deploy APP FILE` reads FILE here and sends it as the artifact (the
    /// local console). The gateway's console has no files of the operator's.
    pub local_files: bool,
    /// Shown in the header once the fleet answers (`ops@gw:2222`).
    pub gateway: String,
}

/// Log records kept from before the follow started.
const FOLLOW_TAIL: u64 = 500;
/// Longest wait between two attempts to restart a broken watch or follow.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A command as the console runs it.
pub fn request(command: Command) -> CommandLine {
    CommandLine {
        json: false,
        command,
    }
}

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
            Action::Run { id, request } => {
                tokio::spawn(run_command(exec, id, *request, opts.local_files, events));
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
                let r = request(Command::Releases(ReleasesArgs { app: app.clone() }));
                tokio::spawn(load(exec, r, events, move |reply| match reply {
                    Reply::Releases(rows) => Some(Event::Releases { app, rows }),
                    _ => None,
                }));
            }
            Action::LoadInstances(app) => {
                let r = request(Command::Ps(PsArgs {
                    app: Some(app.clone()),
                }));
                tokio::spawn(load(exec, r, events, move |reply| match reply {
                    Reply::Ps { rows, .. } => Some(Event::Instances { app, rows }),
                    _ => None,
                }));
            }
            Action::LoadAudit => {
                let r = request(Command::Audit(AuditArgs {
                    // `audit`'s own default.
                    tail: 100,
                }));
                tokio::spawn(load(exec, r, events, |reply| match reply {
                    Reply::Audit(rows) => Some(Event::Audit(rows)),
                    _ => None,
                }));
            }
        }
    }
    watcher.abort();
    if let Some(f) = follow {
        f.abort();
    }
}

/// Keeps the fleet on screen: one `watch` for the session, restarted with
/// a backoff whenever it ends.
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
            .unwrap_or_else(|| exec.start(request(Command::Watch), None));
        let mut connected = false;
        let why = loop {
            match rx.recv().await {
                Some(Output::Reply(Reply::Snapshot(s))) => {
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
                Some(Output::Reply(_)) => {}
                Some(Output::Done(Err(e))) => break e.reason(),
                Some(Output::Done(Ok(()))) => break "the fleet watch ended".to_string(),
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

/// The events one `watch` snapshot makes: the snapshot, and the request
/// rates of the http apps that report them (`ps`'s `rps`).
pub fn snapshot_events(s: WatchSnapshot) -> Vec<Event> {
    let rates = s
        .apps
        .iter()
        .filter_map(|a| a.rps.map(|r| (a.app.clone(), r)))
        .collect();
    vec![
        Event::RequestRates(rates),
        Event::Events(s.events),
        Event::Snapshot {
            hosts: s.hosts,
            apps: s.apps,
        },
    ]
}

/// A `deploy` of a file on this machine: the file's bytes become the
/// artifact (and a manifest's fields flags), as `hostd --gateway` does it.
/// Other commands pass unchanged.
fn prepare(
    request: CommandLine,
    local_files: bool,
) -> Result<(CommandLine, Option<Vec<u8>>), OpError> {
    let CommandLine {
        json,
        command: Command::Deploy(d),
    } = request
    else {
        return Ok((request, None));
    };
    if !local_files {
        return Err(OpError::usage(
            "deploy reads a file, and this console has no files: use `ssh GATEWAY deploy APP - < app.wasm`",
        ));
    }
    let read = |file: &str| {
        if file == "-" {
            Err(std::io::Error::other(
                "the console has no stdin to deploy from",
            ))
        } else {
            std::fs::read(file)
        }
    };
    let (d, bytes) = ops::cmd::deploy::prepare_local(*d, read)?;
    let command = Command::Deploy(Box::new(d));
    Ok((CommandLine { json, command }, Some(bytes)))
}

/// Runs one command the operator confirmed, reporting progress and the end.
async fn run_command(
    exec: Arc<dyn Executor>,
    id: CommandId,
    request: CommandLine,
    local_files: bool,
    events: mpsc::Sender<Event>,
) {
    let (request, artifact) = match prepare(request, local_files) {
        Ok(p) => p,
        Err(e) => {
            let _ = events.send(Event::CommandDone { id, result: Err(e) }).await;
            return;
        }
    };
    let mut rx = exec.start(request, artifact);
    let mut outcome = None;
    let result = loop {
        match rx.recv().await {
            Some(Output::Reply(Reply::Progress(progress))) => {
                if events
                    .send(Event::CommandProgress { id, progress })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(Output::Reply(Reply::Warning(_))) => {}
            Some(Output::Reply(r)) => outcome = Some(r),
            Some(Output::Done(r)) => break r.map(|()| outcome),
            None => break Err(stopped()),
        }
    };
    let _ = events.send(Event::CommandDone { id, result }).await;
}

fn stopped() -> OpError {
    OpError::new(
        ErrorKind::Gone,
        "the command stopped without an exit status",
    )
}

/// Runs a command to its end: its replies (progress aside), or why it failed.
pub async fn collect(mut rx: mpsc::Receiver<Output>) -> Result<Vec<Reply>, OpError> {
    let mut replies = Vec::new();
    loop {
        match rx.recv().await {
            Some(Output::Reply(Reply::Progress(_) | Reply::Warning(_))) => {}
            Some(Output::Reply(r)) => replies.push(r),
            Some(Output::Done(r)) => return r.map(|()| replies),
            None => return Err(stopped()),
        }
    }
}

/// Runs a one-shot command and sends the event its answer makes.
async fn load(
    exec: Arc<dyn Executor>,
    request: CommandLine,
    events: mpsc::Sender<Event>,
    to_event: impl FnOnce(Reply) -> Option<Event>,
) {
    let what = request.command.name();
    let what = match request.command.app() {
        Some(app) => format!("{what} {app}"),
        None => what.to_string(),
    };
    let ev = match collect(exec.start(request, None)).await {
        Err(e) => Event::Error(format!("{what}: {}", e.reason())),
        Ok(replies) => replies
            .into_iter()
            .last()
            .and_then(to_event)
            .unwrap_or_else(|| Event::Error(format!("{what}: no answer from the gateway"))),
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
    let follow = request(Command::Logs(LogsArgs {
        app: app.clone(),
        follow: true,
        since: None,
        tail: Some(FOLLOW_TAIL),
        filter,
    }));
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut rx = exec.start(follow.clone(), None);
        loop {
            match rx.recv().await {
                Some(Output::Reply(Reply::Logs(LogChunk::Records(batch)))) => {
                    if !batch.is_empty() {
                        backoff = Duration::from_millis(250);
                        if events.send(Event::LogRecords(batch)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Output::Reply(_)) => {}
                Some(Output::Done(Ok(()))) | None => break,
                Some(Output::Done(Err(e))) if e.kind == ErrorKind::Gone => break,
                Some(Output::Done(Err(e))) => {
                    let _ = events
                        .send(Event::Error(format!("logs {app}: {}", e.reason())))
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
    fn a_local_deploy_sends_the_file_as_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.wasm");
        std::fs::write(&f, b"\0asm").unwrap();
        let typed = ops::parse_line(&format!("deploy api {} --replicas 2", f.display())).unwrap();
        let (sent, artifact) = prepare(typed, true).unwrap();
        assert_eq!(artifact.as_deref(), Some(&b"\0asm"[..]));
        let Command::Deploy(d) = &sent.command else {
            panic!("{sent:?}")
        };
        assert_eq!((d.file.as_deref(), d.replicas), (Some("-"), Some(2)));
        let missing = ops::parse_line("deploy api /nonexistent.wasm").unwrap();
        assert_eq!(prepare(missing, true).unwrap_err().exit_code(), 1);
        let remote = ops::parse_line("deploy api x.wasm").unwrap();
        assert_eq!(prepare(remote, false).unwrap_err().exit_code(), 2);
        let same = ops::parse_line("rollback api").unwrap();
        assert_eq!(prepare(same.clone(), false).unwrap(), (same, None));
    }
}
