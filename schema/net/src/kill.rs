//! A stream that can be cut off from outside the task that owns it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Throws [`Killable`] streams' I/O into errors. Clone to share.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    killed: AtomicBool,
    /// The tasks parked on the stream's read and write sides.
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl KillSwitch {
    pub fn new() -> KillSwitch {
        KillSwitch::default()
    }

    /// Makes every read and write of the stream fail from now on, waking a
    /// task that waits on either. The owner then drops the stream, which
    /// closes the connection.
    pub fn kill(&self) {
        self.inner.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers());
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    pub fn is_killed(&self) -> bool {
        self.inner.killed.load(Ordering::SeqCst)
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, [Option<Waker>; 2]> {
        self.inner.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the waker of a side that is about to return `Pending`;
    /// false if the switch was thrown meanwhile (the caller fails instead).
    fn park(&self, side: usize, cx: &Context<'_>) -> bool {
        let mut w = self.wakers();
        if self.is_killed() {
            return false;
        }
        match &mut w[side] {
            Some(old) if old.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        true
    }
}

/// A stream whose I/O fails once its [`KillSwitch`] is thrown.
#[derive(Debug)]
pub struct Killable<S> {
    inner: S,
    switch: KillSwitch,
}

impl<S> Killable<S> {
    pub fn new(inner: S, switch: KillSwitch) -> Killable<S> {
        Killable { inner, switch }
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the connection was cut off",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending if !self.switch.park(0, cx) => Poll::Ready(Err(killed())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending if !self.switch.park(1, cx) => Poll::Ready(Err(killed())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending if !self.switch.park(1, cx) => Poll::Ready(Err(killed())),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves once the watched flag is true (or its sender is gone): the
/// shutdown signal every long-lived task selects on.
pub async fn until_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_parked_reader_fails_when_the_switch_is_thrown() {
        let (a, mut b) = tokio::io::duplex(64);
        let switch = KillSwitch::new();
        let mut k = Killable::new(a, switch.clone());
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let first = k.read(&mut buf).await.map(|n| buf[..n].to_vec());
            let second = k.read(&mut buf).await;
            (first, second.map_err(|e| e.kind()))
        });
        b.write_all(b"hi").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        switch.kill();
        let (first, second) = reader.await.unwrap();
        assert_eq!(first.unwrap(), b"hi");
        assert_eq!(second.unwrap_err(), io::ErrorKind::ConnectionAborted);
    }
}
