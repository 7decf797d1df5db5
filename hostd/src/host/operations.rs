//! The operations of CLI.md on this one host: the adapter between the
//! shared dispatcher (`ops::serve`) and [`Host`]'s methods.

use std::sync::Arc;

use ops::cmd::logs::{LogWriter, effective_tail};
use ops::{Hangup, OpError, Operations, ProgressTx, RmOutcome, Sink};
use schema::Actor;
use schema::command::{
    AuditArgs, CanaryArgs, Command, ConfigArgs, DeployArgs, KvArgs, LogsArgs, PsArgs, ReleasesArgs,
    RestartArgs, RmArgs, RollbackArgs, ScaleArgs, Since,
};
use schema::{
    AuditEntry, ConfigOutcome, ConfigRow, DeployOutcome, HostRow, KvOutcome, LogRecord, PsRow,
    ReleaseRow, RestartOutcome, RollbackOutcome, ScaleOutcome,
};

use super::{Host, HostError};
use crate::filter::Matcher;
use crate::logs::follow::{self, RecordSink};
use crate::logs::{LogHub, Sent};

impl From<HostError> for OpError {
    fn from(e: HostError) -> OpError {
        match e {
            HostError::Op(e) => e,
            e => OpError::failed(e.to_string()),
        }
    }
}

/// A host as the dispatcher sees it. The caller is the local user the
/// control socket's peer credentials name.
#[derive(Clone)]
pub struct HostOps(pub Arc<Host>);

impl Operations for HostOps {
    type Caller = Actor;

    /// Whoever may open the control socket (its file mode says who) may run
    /// every command.
    async fn authorize(&self, _who: &Actor, _command: &Command) -> Result<(), OpError> {
        Ok(())
    }

    async fn deploy(
        &self,
        who: &Actor,
        args: &DeployArgs,
        artifact: Vec<u8>,
        _progress: &ProgressTx,
    ) -> Result<DeployOutcome, OpError> {
        Ok(self.0.deploy(who, args, artifact).await?)
    }

    async fn rollback(
        &self,
        who: &Actor,
        args: &RollbackArgs,
        _progress: &ProgressTx,
    ) -> Result<RollbackOutcome, OpError> {
        Ok(self.0.rollback(who, &args.app, args.to).await?)
    }

    async fn scale(
        &self,
        who: &Actor,
        args: &ScaleArgs,
        _progress: &ProgressTx,
    ) -> Result<ScaleOutcome, OpError> {
        Ok(self.0.scale(who, &args.app, args.replicas).await?)
    }

    async fn restart(
        &self,
        who: &Actor,
        args: &RestartArgs,
        _progress: &ProgressTx,
    ) -> Result<RestartOutcome, OpError> {
        Ok(self.0.restart(who, &args.app).await?)
    }

    async fn promote(
        &self,
        who: &Actor,
        args: &CanaryArgs,
        _progress: &ProgressTx,
    ) -> Result<schema::canary::Outcome, OpError> {
        Ok(self.0.promote(who, &args.app).await?)
    }

    async fn abort(
        &self,
        who: &Actor,
        args: &CanaryArgs,
        _progress: &ProgressTx,
    ) -> Result<schema::canary::Outcome, OpError> {
        Ok(self.0.abort(who, &args.app, None).await?)
    }

    async fn rm(
        &self,
        who: &Actor,
        args: &RmArgs,
        _progress: &ProgressTx,
    ) -> Result<RmOutcome, OpError> {
        self.0.rm(who, &args.app).await?;
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

    async fn info(&self, app: &str) -> Result<schema::AppInfo, OpError> {
        Ok(self.0.info(app).await?)
    }

    async fn config(&self, app: &str) -> Result<Vec<ConfigRow>, OpError> {
        Ok(self.0.config_rows(app).await?)
    }

    async fn config_change(
        &self,
        who: &Actor,
        args: &ConfigArgs,
        _progress: &ProgressTx,
    ) -> Result<ConfigOutcome, OpError> {
        Ok(self.0.config_change(who, args).await?)
    }

    async fn kv(&self, who: &Actor, args: &KvArgs) -> Result<KvOutcome, OpError> {
        if args.host.is_some() {
            return Err(OpError::usage(
                "--host picks a host through the gateway; here the command runs on this host",
            ));
        }
        Ok(self.0.kv(who, args).await?)
    }

    async fn logs<S: Sink>(
        &self,
        _who: &Actor,
        args: &LogsArgs,
        out: &mut S,
        mut hangup: Hangup,
    ) -> Result<(), OpError> {
        let matcher = follow::matcher(args.filter.as_deref())?;
        self.0.check_app(&args.app).await?;
        let mut sink = LocalSink {
            hub: self.0.logs.clone(),
            app: &args.app,
            w: LogWriter::new(out.log_format()),
            out,
        };
        let req = follow::Request {
            app: &args.app,
            since: args.since,
            tail: effective_tail(args),
            follow: args.follow,
            matcher,
        };
        let stop = async move {
            let _ = hangup.changed().await;
        };
        follow::run(&self.0.logs, req, &mut sink, stop).await?;
        Ok(())
    }
}

/// A local `hostd logs`: records read from the store in one piece, rendered
/// by the door's sink.
struct LocalSink<'a, S> {
    hub: LogHub,
    app: &'a str,
    w: LogWriter,
    out: &'a mut S,
}

impl<S: Sink> RecordSink for LocalSink<'_, S> {
    async fn stored(
        &mut self,
        since: Option<Since>,
        tail: Option<u64>,
        matcher: Option<Arc<Matcher>>,
    ) -> Result<Sent, OpError> {
        let read = match matcher {
            Some(m) => self.hub.query_where(self.app, since, tail, m).await,
            None => self.hub.query(self.app, since, tail).await,
        };
        let records = read.map_err(HostError::from)?;
        self.w.write_all(self.out, &records).await?;
        Ok(Sent {
            last_read: records.last().map(|r| r.seq),
            records: records.len() as u64,
        })
    }

    async fn live(&mut self, records: &[LogRecord]) -> Result<(), OpError> {
        Ok(self.w.write_all(self.out, records).await?)
    }
}
