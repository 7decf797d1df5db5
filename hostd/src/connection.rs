//! Framing over a byte stream, and nothing else (mini-redis's `Connection`).
//!
//! The same reader and writer carry the exec protocol over a host's Unix
//! socket and over an SSH channel, so both front doors behave alike.

use schema::frame::{self, ExecMsg, Frame, FrameError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Frame(#[from] FrameError),
    #[error("protocol error: the peer closed the connection in the middle of a frame")]
    Truncated,
}

/// Reads frames from a stream (see [`frame::FrameBuf`]), refusing any
/// longer than `max`.
pub struct FrameReader<R> {
    inner: R,
    buf: frame::FrameBuf,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            buf: frame::FrameBuf::default(),
            max,
        }
    }

    /// The next frame, or `None` at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            if let Some(f) = self.buf.next_frame(self.max)? {
                return Ok(Some(f));
            }
            let n = self.inner.read_buf(self.buf.spare(64 * 1024)).await?;
            if n == 0 {
                return if self.buf.has_partial() {
                    Err(ConnError::Truncated)
                } else {
                    Ok(None)
                };
            }
        }
    }

    /// The next exec-protocol message.
    pub async fn next_exec(&mut self) -> Result<Option<ExecMsg>, ConnError> {
        match self.next().await? {
            Some(f) => Ok(Some(ExecMsg::from_frame(f)?)),
            None => Ok(None),
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Writes exec-protocol messages to a stream.
pub struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, msg: &ExecMsg) -> std::io::Result<()> {
        self.buf.clear();
        msg.encode(&mut self.buf);
        self.inner.write_all(&self.buf).await?;
        self.inner.flush().await
    }

    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.inner.shutdown().await
    }
}
