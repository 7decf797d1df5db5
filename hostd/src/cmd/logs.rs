//! `logs APP [-f] [--since SEQ|DURATION] [--tail N] [--where EXPR]`.
//!
//! Following subscribes before it reads the store, then skips what it has
//! already printed by sequence number: no record is missed between the two,
//! none is printed twice. A follower that falls behind the live feed reads
//! the gap back from the store instead of dropping it. `--where` compiles the
//! expression once (cranelift-jit) and keeps only matching records; `--tail
//! N` then means the last N *matching* records.

use std::sync::Arc;

use schema::LogRecord;
use schema::command::{LogsArgs, Since};
use tokio::sync::broadcast::error::RecvError;

use super::{CmdError, Ctx};
use crate::filter::Matcher;
use crate::host::HostError;

/// Records printed when neither --tail nor --since is given.
pub use schema::command::DEFAULT_TAIL;
/// Output is sent in pieces of about this size, not a frame per record.
const OUT_CHUNK: usize = 64 * 1024;
/// Live records gathered into one write at most.
const LIVE_BATCH: usize = 1024;

/// Renders records (a line or a JSON object each) and sends them in chunks.
async fn print(ctx: &mut Ctx<'_>, records: &[LogRecord]) -> Result<(), CmdError> {
    let mut buf = String::with_capacity(OUT_CHUNK.min(records.len() * 128 + 16));
    for r in records {
        if ctx.json {
            let json =
                serde_json::to_string(r).map_err(|e| std::io::Error::other(e.to_string()))?;
            buf.push_str(&json);
        } else {
            buf.push_str(&schema::render::log_line(r));
        }
        buf.push('\n');
        if buf.len() >= OUT_CHUNK {
            ctx.print(std::mem::take(&mut buf)).await?;
        }
    }
    if !buf.is_empty() {
        ctx.print(buf).await?;
    }
    Ok(())
}

/// Parses `--where`, refusing a bad expression before anything runs.
pub fn matcher(filter: Option<&str>) -> Result<Option<Arc<Matcher>>, HostError> {
    filter
        .map(|src| {
            schema::expr::parse_filter(src)
                .map(|f| Arc::new(Matcher::new(f)))
                .map_err(|err| HostError::Expr {
                    what: "--where",
                    err,
                })
        })
        .transpose()
}

pub async fn execute(ctx: &mut Ctx<'_>, args: LogsArgs) -> Result<(), CmdError> {
    let matcher = matcher(args.filter.as_deref())?;
    ctx.host.check_app(&args.app).await?;
    let mut live = args.follow.then(|| ctx.host.logs.subscribe(&args.app));
    let tail = args.tail.or(if args.since.is_none() {
        Some(DEFAULT_TAIL)
    } else {
        None
    });
    let query = |since: Option<Since>, tail: Option<u64>| {
        let (logs, app, m) = (ctx.host.logs.clone(), args.app.clone(), matcher.clone());
        async move {
            match m {
                Some(m) => logs.query_where(&app, since, tail, m).await,
                None => logs.query(&app, since, tail).await,
            }
        }
    };
    let records = query(args.since, tail).await.map_err(HostError::from)?;
    let mut last = match args.since {
        Some(Since::Seq(s)) => s,
        _ => 0,
    };
    if let Some(r) = records.last() {
        last = last.max(r.seq);
    }
    print(ctx, &records).await?;
    let Some(rx) = live.as_mut() else {
        return Ok(());
    };
    let mut hangup = ctx.hangup.clone();
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            r = rx.recv() => match r {
                Ok(rec) => batch.push((*rec).clone()),
                Err(RecvError::Lagged(_)) => {
                    batch = query(Some(Since::Seq(last)), None).await.map_err(HostError::from)?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = hangup.changed() => return Ok(()),
        }
        while batch.len() < LIVE_BATCH {
            match rx.try_recv() {
                Ok(rec) => batch.push((*rec).clone()),
                Err(_) => break,
            }
        }
        batch.retain(|r| r.seq > last);
        let Some(newest) = batch.last().map(|r| r.seq) else {
            continue;
        };
        last = newest;
        if let Some(m) = &matcher {
            m.retain(&mut batch);
        }
        print(ctx, &batch).await?;
    }
}
