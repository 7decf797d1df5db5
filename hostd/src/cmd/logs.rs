//! `logs APP [-f] [--since SEQ|DURATION] [--tail N] [--where EXPR]`.
//!
//! Following subscribes before it reads the store, then skips what it has
//! already printed by sequence number: no record is missed between the two,
//! none is printed twice. A follower that falls behind the live feed reads
//! the gap back from the store instead of dropping it.

use schema::command::{LogsArgs, Since};
use schema::LogRecord;
use tokio::sync::broadcast::error::RecvError;

use super::{CmdError, Ctx};
use crate::host::HostError;

/// Records printed when neither --tail nor --since is given.
pub const DEFAULT_TAIL: u64 = 100;

async fn print(ctx: &mut Ctx<'_>, r: &LogRecord) -> Result<(), CmdError> {
    if ctx.json {
        ctx.json(r).await
    } else {
        let mut line = schema::render::log_line(r);
        line.push('\n');
        ctx.print(line).await
    }
}

pub async fn execute(ctx: &mut Ctx<'_>, args: LogsArgs) -> Result<(), CmdError> {
    if args.filter.is_some() {
        return Err(HostError::Refused(
            "--where: log filter expressions are not available in this hostd yet; use grep (or jq on --json) for now".into(),
        )
        .into());
    }
    ctx.host.check_app(&args.app).await?;
    let mut live = args.follow.then(|| ctx.host.logs.subscribe(&args.app));
    let tail = args.tail.or(if args.since.is_none() { Some(DEFAULT_TAIL) } else { None });
    let records = ctx
        .host
        .logs
        .query(&args.app, args.since, tail)
        .await
        .map_err(HostError::from)?;
    let mut last = match args.since {
        Some(Since::Seq(s)) => s,
        _ => 0,
    };
    for r in &records {
        print(ctx, r).await?;
        last = r.seq;
    }
    let Some(rx) = live.as_mut() else { return Ok(()) };
    let mut hangup = ctx.hangup.clone();
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(rec) => {
                    if rec.seq > last {
                        print(ctx, &rec).await?;
                        last = rec.seq;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let gap = ctx.host.logs.query(&args.app, Some(Since::Seq(last)), None).await.map_err(HostError::from)?;
                    for r in &gap {
                        print(ctx, r).await?;
                        last = r.seq;
                    }
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = hangup.changed() => return Ok(()),
        }
    }
}
