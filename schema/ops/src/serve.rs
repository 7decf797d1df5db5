//! The one dispatcher: a parsed command, run against a host or the fleet,
//! its replies handed to a sink.

use std::future::Future;

use schema::canary::Outcome as CanaryOutcome;
use schema::command::{
    AuditArgs, CanaryArgs, Command, CommandLine, ConfigArgs, DeployArgs, EventsArgs, KvArgs,
    LogsArgs, PsArgs, ReleasesArgs, RestartArgs, RmArgs, RollbackArgs, ScaleArgs,
};
use schema::{
    AppInfo, AuditEntry, ConfigOutcome, ConfigRow, DeployOutcome, HostRow, KvOutcome, PsRow,
    ReleaseRow, RestartOutcome, RollbackOutcome, ScaleOutcome,
};
use tokio::sync::{mpsc, watch};

use crate::error::OpError;
use crate::progress::{Progress, ProgressTx};
use crate::reply::{Reply, RmOutcome, Sink};

/// Becomes `true` (or closes) when the client hangs up: ends `logs -f` and
/// `watch`.
pub type Hangup = watch::Receiver<bool>;

/// The operations of CLI.md, as a single host (`hostd`) or the fleet (the
/// gateway) carries them out. Each returns its typed outcome; [`serve`]
/// renders nothing itself either, it hands the outcome to the sink.
pub trait Operations: Send + Sync {
    /// Who asks: the local user on a host's control socket, an enrolled key
    /// at the gateway.
    type Caller: Send + Sync;

    /// Refuses (and audits) a command the caller may not run. Called before
    /// anything else, on every command.
    fn authorize(
        &self,
        who: &Self::Caller,
        command: &Command,
    ) -> impl Future<Output = Result<(), OpError>> + Send;

    fn deploy(
        &self,
        who: &Self::Caller,
        args: &DeployArgs,
        artifact: Vec<u8>,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<DeployOutcome, OpError>> + Send;

    fn rollback(
        &self,
        who: &Self::Caller,
        args: &RollbackArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<RollbackOutcome, OpError>> + Send;

    fn scale(
        &self,
        who: &Self::Caller,
        args: &ScaleArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<ScaleOutcome, OpError>> + Send;

    fn restart(
        &self,
        who: &Self::Caller,
        args: &RestartArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<RestartOutcome, OpError>> + Send;

    /// `promote APP`: the live canary becomes active everywhere.
    fn promote(
        &self,
        who: &Self::Caller,
        args: &CanaryArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<CanaryOutcome, OpError>> + Send;

    /// `abort APP`: the live canary is dropped and marked failed.
    fn abort(
        &self,
        who: &Self::Caller,
        args: &CanaryArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<CanaryOutcome, OpError>> + Send;

    fn rm(
        &self,
        who: &Self::Caller,
        args: &RmArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<RmOutcome, OpError>> + Send;

    fn ps(&self, args: &PsArgs) -> impl Future<Output = Result<Vec<PsRow>, OpError>> + Send;

    fn releases(
        &self,
        args: &ReleasesArgs,
    ) -> impl Future<Output = Result<Vec<ReleaseRow>, OpError>> + Send;

    fn hosts(&self) -> impl Future<Output = Result<Vec<HostRow>, OpError>> + Send;

    /// `info APP`.
    fn info(&self, app: &str) -> impl Future<Output = Result<AppInfo, OpError>> + Send;

    /// `config APP`: the active release's config (secrets as names).
    fn config(&self, app: &str) -> impl Future<Output = Result<Vec<ConfigRow>, OpError>> + Send;

    /// `config set` / `config unset`: a new release of the same code.
    fn config_change(
        &self,
        who: &Self::Caller,
        args: &ConfigArgs,
        progress: &ProgressTx,
    ) -> impl Future<Output = Result<ConfigOutcome, OpError>> + Send;

    /// `kv`: the app's buckets.
    fn kv(
        &self,
        who: &Self::Caller,
        args: &KvArgs,
    ) -> impl Future<Output = Result<KvOutcome, OpError>> + Send;

    fn audit(
        &self,
        args: &AuditArgs,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, OpError>> + Send;

    /// Streams records to `out` ([`Reply::Logs`]) until done, or with `-f`
    /// until `hangup`.
    fn logs<S: Sink>(
        &self,
        who: &Self::Caller,
        args: &LogsArgs,
        out: &mut S,
        hangup: Hangup,
    ) -> impl Future<Output = Result<(), OpError>> + Send;

    /// Streams [`Reply::Snapshot`]s until `hangup`. A single host has no
    /// fleet to watch: the default refuses with the way to the gateway.
    fn watch<S: Sink>(
        &self,
        _who: &Self::Caller,
        _out: &mut S,
        _hangup: Hangup,
    ) -> impl Future<Output = Result<(), OpError>> + Send {
        async {
            Err(OpError::usage(
                "watch needs a gateway: `hostd --gateway GW watch` or `ssh -p 2222 GW watch`",
            ))
        }
    }
}

/// Runs `cl` for `who` against `ops`, handing every reply to `out`.
/// `artifact` reads what the client sends for `deploy APP -`; it runs only
/// for a deploy the caller may make, so a refused upload is never read. The
/// caller turns the result into an exit status ([`OpError::exit_code`]) and
/// prints the error where its door prints errors.
pub async fn serve<O: Operations, S: Sink>(
    ops: &O,
    who: &O::Caller,
    cl: CommandLine,
    artifact: impl Future<Output = Result<Vec<u8>, OpError>> + Send,
    out: &mut S,
    hangup: Hangup,
) -> Result<(), OpError> {
    ops.authorize(who, &cl.command).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reply = match cl.command {
        Command::Deploy(a) => {
            let artifact = artifact.await?;
            Reply::Deployed(with_progress(out, ops.deploy(who, &a, artifact, &tx), &mut rx).await?)
        }
        Command::Rollback(a) => {
            Reply::RolledBack(with_progress(out, ops.rollback(who, &a, &tx), &mut rx).await?)
        }
        Command::Scale(a) => {
            Reply::Scaled(with_progress(out, ops.scale(who, &a, &tx), &mut rx).await?)
        }
        Command::Restart(a) => {
            Reply::Restarted(with_progress(out, ops.restart(who, &a, &tx), &mut rx).await?)
        }
        Command::Promote(a) => {
            Reply::CanaryEnded(with_progress(out, ops.promote(who, &a, &tx), &mut rx).await?)
        }
        Command::Abort(a) => {
            Reply::CanaryEnded(with_progress(out, ops.abort(who, &a, &tx), &mut rx).await?)
        }
        Command::Rm(a) => {
            crate::cmd::rm::check(&a)?;
            Reply::Removed(with_progress(out, ops.rm(who, &a, &tx), &mut rx).await?)
        }
        Command::Ps(a) => Reply::Ps {
            rows: ops.ps(&a).await?,
            instances: a.app.is_some(),
        },
        Command::Releases(a) => Reply::Releases(ops.releases(&a).await?),
        Command::Hosts => Reply::Hosts(ops.hosts().await?),
        Command::Audit(a) => Reply::Audit(ops.audit(&a).await?),
        Command::Info(a) => Reply::Info(Box::new(ops.info(&a.app).await?)),
        Command::Config(a) if a.changes() => Reply::ConfigChanged(
            with_progress(out, ops.config_change(who, &a, &tx), &mut rx).await?,
        ),
        Command::Config(a) => Reply::Config {
            rows: ops.config(&a.app).await?,
            app: a.app,
        },
        Command::Kv(a) => Reply::Kv(ops.kv(who, &a).await?),
        Command::Logs(a) => return ops.logs(who, &a, out, hangup).await,
        Command::Events(a) => return events(ops, &a, out, hangup).await,
        Command::Watch => return ops.watch(who, out, hangup).await,
    };
    out.send(reply).await?;
    Ok(())
}

/// Runs `op`, handing its progress to `out` as it comes. A change runs to
/// its end even when the client goes away meanwhile: a deploy cut off
/// between staging and switching would leave the fleet half-way.
/// Audit entries scanned for events (newest last).
const EVENTS_SCAN: u64 = 2000;

/// `events [-f]`: the audit log's events (see `AuditEntry::is_event`), the
/// last `tail`, then, following, the new ones every second until the client
/// hangs up. Built on `audit`, so it means the same at every door.
async fn events<O: Operations, S: Sink>(
    ops: &O,
    a: &EventsArgs,
    out: &mut S,
    mut hangup: Hangup,
) -> Result<(), OpError> {
    let scan = AuditArgs { tail: EVENTS_SCAN };
    let only = |rows: Vec<AuditEntry>| -> Vec<AuditEntry> {
        rows.into_iter().filter(AuditEntry::is_event).collect()
    };
    let mut seen = only(ops.audit(&scan).await?);
    let tail = usize::try_from(a.tail).unwrap_or(usize::MAX);
    let first = seen[seen.len().saturating_sub(tail)..].to_vec();
    out.send(Reply::Events(first)).await?;
    if !a.follow {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = hangup.changed() => return Ok(()),
        }
        let now = only(ops.audit(&scan).await?);
        // What came after the last one printed (all of it if that one was
        // pruned away meanwhile).
        let new = match seen.last().and_then(|l| now.iter().rposition(|e| e == l)) {
            Some(i) => now[i + 1..].to_vec(),
            None => now.clone(),
        };
        if !new.is_empty() {
            out.send(Reply::Events(new)).await?;
        }
        seen = now;
    }
}

async fn with_progress<S: Sink, T>(
    out: &mut S,
    op: impl Future<Output = Result<T, OpError>>,
    rx: &mut mpsc::UnboundedReceiver<Progress>,
) -> Result<T, OpError> {
    tokio::pin!(op);
    let mut listening = true;
    loop {
        tokio::select! {
            r = &mut op => {
                while let Ok(p) = rx.try_recv() {
                    if listening && out.send(Reply::Progress(p)).await.is_err() {
                        listening = false;
                    }
                }
                return r;
            }
            Some(p) = rx.recv() => {
                if listening && out.send(Reply::Progress(p)).await.is_err() {
                    listening = false;
                }
            }
        }
    }
}
