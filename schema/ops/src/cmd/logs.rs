//! `logs APP [-f] [--since SEQ|DURATION] [--tail N] [--where EXPR]`: what
//! a host and the fleet agree on, and the one renderer of records.

use bytes::Bytes;
use schema::LogRecord;
use schema::command::LogsArgs;
use schema::expr::Filter;
use schema::logbatch::{Clock, RawRef};

use crate::error::OpError;
use crate::reply::{Gone, LogChunk, LogFormat, Reply, Sink};

/// Records printed when neither `--tail` nor `--since` is given.
pub use schema::command::DEFAULT_TAIL;

/// The last N records wanted: `--tail`, or [`DEFAULT_TAIL`] when neither
/// `--tail` nor `--since` says where to start.
pub fn effective_tail(a: &LogsArgs) -> Option<u64> {
    a.tail.or(a.since.is_none().then_some(DEFAULT_TAIL))
}

/// Parses `--where`, refusing a bad expression (with its position and a
/// caret) before any record is read.
pub fn check_filter(filter: Option<&str>) -> Result<Option<Filter>, OpError> {
    filter
        .map(|src| {
            schema::expr::parse_filter(src)
                // A bad argument, like a bad --since: a usage error (exit 2).
                .map_err(|e| {
                    OpError::new(
                        crate::error::ErrorKind::Usage,
                        format!("invalid --where expression at {e}"),
                    )
                })
        })
        .transpose()
}

/// Appends `r` as CLI.md's line or a JSON object, and a newline.
fn write_record(r: &LogRecord, format: LogFormat, buf: &mut Vec<u8>) {
    match format {
        LogFormat::Json => {
            if let Ok(j) = serde_json::to_vec(r) {
                buf.extend_from_slice(&j);
                buf.push(b'\n');
            }
        }
        _ => {
            buf.extend_from_slice(schema::render::log_line(r).as_bytes());
            buf.push(b'\n');
        }
    }
}

/// `records` as a printing door shows them.
pub fn render(records: &[LogRecord], format: LogFormat) -> Vec<u8> {
    let mut buf = Vec::with_capacity(records.len() * 128);
    for r in records {
        write_record(r, format, &mut buf);
    }
    buf
}

/// Output goes out in pieces of about this size, not a write per record.
const CHUNK: usize = 64 * 1024;
/// Records handed on as values at most at once.
const RECORDS: usize = 1024;

/// Gathers records in a sink's [`LogFormat`] and hands them on in pieces:
/// CLI.md's line or a JSON object each for a printing door, values for the
/// console.
pub struct LogWriter {
    format: LogFormat,
    clock: Clock,
    buf: Vec<u8>,
    records: Vec<LogRecord>,
}

impl LogWriter {
    pub fn new(format: LogFormat) -> LogWriter {
        LogWriter {
            format,
            clock: Clock::default(),
            buf: Vec::new(),
            records: Vec::new(),
        }
    }

    /// A record straight from a host's binary batch.
    pub fn push_raw(&mut self, host: &str, app: &str, r: &RawRef<'_>) {
        match self.format {
            LogFormat::Text => r.write_text(host, app, &mut self.clock, &mut self.buf),
            LogFormat::Json => r.write_json(host, app, &mut self.clock, &mut self.buf),
            LogFormat::Records => self.records.push(r.to_record(host, app)),
        }
    }

    pub fn push_record(&mut self, r: &LogRecord) {
        match self.format {
            LogFormat::Records => self.records.push(r.clone()),
            text => write_record(r, text, &mut self.buf),
        }
    }

    /// Whether a piece is ready to go.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= CHUNK || self.records.len() >= RECORDS
    }

    /// Hands on what is gathered.
    pub async fn flush<S: Sink>(&mut self, out: &mut S) -> Result<(), Gone> {
        if !self.buf.is_empty() {
            let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
            out.send(Reply::Logs(LogChunk::Rendered(Bytes::from(piece))))
                .await?;
        }
        if !self.records.is_empty() {
            let records = std::mem::take(&mut self.records);
            out.send(Reply::Logs(LogChunk::Records(records))).await?;
        }
        Ok(())
    }

    /// Pushes each record, handing on a piece whenever one is full.
    pub async fn write_all<S: Sink>(
        &mut self,
        out: &mut S,
        records: &[LogRecord],
    ) -> Result<(), Gone> {
        for r in records {
            self.push_record(r);
            if self.is_full() {
                self.flush(out).await?;
            }
        }
        self.flush(out).await
    }
}
