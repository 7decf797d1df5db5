//! Turning an instance's stdout and stderr into log lines.
//!
//! The guest's writes land in a [`LineSplitter`], which holds at most one
//! unfinished line: a partial line waits for its newline (or for the instance
//! to end), and a line longer than [`MAX_LINE`] is cut into pieces marked
//! `partial`. Every write returns at once; the guest never waits for a disk
//! or a slow follower.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use schema::Stream;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::{Entry, LogHub};

/// Longest piece of a line kept in one record.
pub const MAX_LINE: usize = 16 * 1024;

/// Who wrote a line.
#[derive(Debug, Clone)]
pub struct Origin {
    pub app: Arc<str>,
    pub release: Option<u32>,
    pub instance: Arc<str>,
}

/// Cuts a byte stream into log lines.
pub struct LineSplitter {
    hub: LogHub,
    origin: Origin,
    stream: Stream,
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn new(hub: LogHub, origin: Origin, stream: Stream) -> LineSplitter {
        LineSplitter {
            hub,
            origin,
            stream,
            buf: Vec::new(),
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            self.buf.extend_from_slice(&bytes[..nl]);
            self.emit_line();
            bytes = &bytes[nl + 1..];
        }
        self.buf.extend_from_slice(bytes);
        while self.buf.len() >= MAX_LINE {
            self.emit_piece();
        }
    }

    /// Sends what is buffered as a finished line (at the end of the stream).
    pub fn finish(&mut self) {
        if !self.buf.is_empty() {
            self.emit_line();
        }
    }

    fn emit_line(&mut self) {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        self.send(line, false);
    }

    /// Sends the first MAX_LINE bytes (cut at a character boundary) as a
    /// piece of a longer line.
    fn emit_piece(&mut self) {
        let mut cut = MAX_LINE;
        if let Err(e) = std::str::from_utf8(&self.buf[..cut]) {
            // Cut before an incomplete character rather than through it.
            if e.error_len().is_none() && e.valid_up_to() > 0 {
                cut = e.valid_up_to();
            }
        }
        let rest = self.buf.split_off(cut);
        let piece = std::mem::replace(&mut self.buf, rest);
        self.send(String::from_utf8_lossy(&piece).into_owned(), true);
    }

    fn send(&self, line: String, partial: bool) {
        self.hub.push(Entry {
            app: self.origin.app.clone(),
            release: self.origin.release,
            instance: self.origin.instance.clone(),
            stream: self.stream,
            time: schema::time::now_millis(),
            line,
            partial,
        });
    }
}

impl Drop for LineSplitter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A WASI stdout or stderr that feeds a [`LineSplitter`].
///
/// wasmtime asks a `StdoutStream` for a fresh stream object for each use
/// (preview 1 and preview 2 each take one); all of them share the splitter,
/// so a line is never split between them and the last partial line is sent
/// when the instance's store is dropped.
#[derive(Clone)]
pub struct LogSink {
    splitter: Arc<Mutex<LineSplitter>>,
}

impl LogSink {
    pub fn new(hub: LogHub, origin: Origin, stream: Stream) -> LogSink {
        LogSink {
            splitter: Arc::new(Mutex::new(LineSplitter::new(hub, origin, stream))),
        }
    }

    fn write(&self, bytes: &[u8]) {
        self.splitter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(bytes);
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogSink::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}
