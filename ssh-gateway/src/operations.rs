//! The operations of CLI.md on the whole fleet: the adapter between the
//! shared dispatcher (`ops::serve`) and [`Fleet`]. Every front door of the
//! gateway (`ssh gw <command>`, the `ssh -t` console) runs commands through
//! [`FleetOps`], so a command means the same and is refused the same at each.

use schema::audit::Action;
use std::sync::Arc;
use std::time::Duration;

use ops::{Hangup, OpError, Operations, ProgressTx, Reply, RmOutcome, Sink};
use schema::command::{
    AuditArgs, CanaryArgs, Command, ConfigArgs, DeployArgs, KvArgs, LogsArgs, PsArgs, ReleasesArgs,
    RestartArgs, RmArgs, RollbackArgs, ScaleArgs,
};
use schema::{
    AuditEntry, ConfigOutcome, ConfigRow, DeployOutcome, HostRow, KvOutcome, PsRow, ReleaseRow,
    RestartOutcome, RollbackOutcome, ScaleOutcome,
};

use crate::fleet::{Fleet, FleetError};
use crate::keys::KeyEntry;

impl From<FleetError> for OpError {
    fn from(e: FleetError) -> OpError {
        match e {
            FleetError::Op(e) => e,
            e => OpError::failed(e.to_string()),
        }
    }
}

/// The fleet as the dispatcher sees it; the caller is an enrolled key.
#[derive(Clone)]
pub struct FleetOps(pub Arc<Fleet>);

/// At most this often a change is pushed to `watch`: a burst of changes
/// (a deploy touches every host) becomes one snapshot.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(250);
/// At least this often a snapshot is sent, so "last seen" ages on screen.
const WATCH_REFRESH: Duration = Duration::from_secs(2);
/// Events each snapshot carries (the console's feed).
const WATCH_EVENTS: usize = 50;

impl Operations for FleetOps {
    type Caller = KeyEntry;

    /// A viewer may read, never change; a refusal is audited.
    async fn authorize(&self, who: &KeyEntry, command: &Command) -> Result<(), OpError> {
        if who.role.may_change() || command.is_read_only() {
            return Ok(());
        }
        self.0
            .audit_refused(
                &who.name,
                Action::of_verb(command.name()).unwrap_or(Action::Exec),
                command.app(),
                format!("{} is a viewer", who.name),
            )
            .await;
        Err(OpError::failed(format!(
            "refused: the key {} is a viewer; viewers may run ps, releases, logs, hosts, audit, watch, info, config APP and kv list/get",
            who.name
        )))
    }

    async fn info(&self, app: &str) -> Result<schema::AppInfo, OpError> {
        Ok(self.0.info(app).await?)
    }

    async fn config(&self, app: &str) -> Result<Vec<ConfigRow>, OpError> {
        Ok(self.0.config_rows(app).await?)
    }

    async fn config_change(
        &self,
        who: &KeyEntry,
        args: &ConfigArgs,
        progress: &ProgressTx,
    ) -> Result<ConfigOutcome, OpError> {
        Ok(self.0.config_change(&who.name, args, progress).await?)
    }

    async fn kv(&self, who: &KeyEntry, args: &KvArgs) -> Result<KvOutcome, OpError> {
        Ok(self.0.kv(&who.name, args).await?)
    }

    async fn deploy(
        &self,
        who: &KeyEntry,
        args: &DeployArgs,
        artifact: Vec<u8>,
        progress: &ProgressTx,
    ) -> Result<DeployOutcome, OpError> {
        Ok(self.0.deploy(&who.name, args, artifact, progress).await?)
    }

    async fn rollback(
        &self,
        who: &KeyEntry,
        args: &RollbackArgs,
        progress: &ProgressTx,
    ) -> Result<RollbackOutcome, OpError> {
        Ok(self
            .0
            .rollback(&who.name, &args.app, args.to, progress)
            .await?)
    }

    async fn scale(
        &self,
        who: &KeyEntry,
        args: &ScaleArgs,
        progress: &ProgressTx,
    ) -> Result<ScaleOutcome, OpError> {
        Ok(self
            .0
            .scale(&who.name, &args.app, args.replicas, progress)
            .await?)
    }

    async fn restart(
        &self,
        who: &KeyEntry,
        args: &RestartArgs,
        progress: &ProgressTx,
    ) -> Result<RestartOutcome, OpError> {
        Ok(self.0.restart(&who.name, &args.app, progress).await?)
    }

    async fn promote(
        &self,
        who: &KeyEntry,
        args: &CanaryArgs,
        progress: &ProgressTx,
    ) -> Result<schema::canary::Outcome, OpError> {
        Ok(self.0.promote(&who.name, &args.app, progress).await?)
    }

    async fn abort(
        &self,
        who: &KeyEntry,
        args: &CanaryArgs,
        progress: &ProgressTx,
    ) -> Result<schema::canary::Outcome, OpError> {
        Ok(self.0.abort(&who.name, &args.app, None, progress).await?)
    }

    async fn rm(
        &self,
        who: &KeyEntry,
        args: &RmArgs,
        progress: &ProgressTx,
    ) -> Result<RmOutcome, OpError> {
        self.0.rm(&who.name, &args.app, progress).await?;
        Ok(ops::cmd::rm::outcome(&args.app))
    }

    async fn ps(&self, args: &PsArgs) -> Result<Vec<PsRow>, OpError> {
        Ok(self.0.ps(args.app.as_deref()).await?)
    }

    async fn releases(&self, args: &ReleasesArgs) -> Result<Vec<ReleaseRow>, OpError> {
        Ok(self.0.releases(&args.app).await?)
    }

    async fn hosts(&self) -> Result<Vec<HostRow>, OpError> {
        Ok(self.0.hosts().await?)
    }

    async fn audit(&self, args: &AuditArgs) -> Result<Vec<AuditEntry>, OpError> {
        Ok(self.0.audit_tail(args.tail).await?)
    }

    async fn logs<S: Sink>(
        &self,
        _who: &KeyEntry,
        args: &LogsArgs,
        out: &mut S,
        hangup: Hangup,
    ) -> Result<(), OpError> {
        crate::logs::logs(&self.0, out, args, hangup).await
    }

    /// The fleet now, then again after every change (debounced) and every
    /// [`WATCH_REFRESH`], until the client hangs up. Pushed from
    /// `Fleet::changed`, so a console never polls.
    async fn watch<S: Sink>(
        &self,
        who: &KeyEntry,
        out: &mut S,
        mut hangup: Hangup,
    ) -> Result<(), OpError> {
        let fleet = &self.0;
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
                events: fleet.events(WATCH_EVENTS).await?,
            };
            first = false;
            out.send(Reply::Snapshot(snapshot)).await?;
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
}
