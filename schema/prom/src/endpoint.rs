//! The `--metrics` endpoint: `GET /metrics` (and `HEAD`) answer the
//! daemon's figures; any other request is answered 404.
//!
//! Nobody authenticates here, so every connection costs a bounded slice:
//! at most [`Limits::max_connections`] are open at once; a request head
//! must arrive within [`Limits::header_timeout`] and hold at most
//! [`Limits::max_head_bytes`] (hyper answers a larger one 431 and closes);
//! a connection serves one request and lives at most [`Limits::deadline`].
//! When every slot is taken, the oldest connection still waiting for its
//! request head is closed to make room, so a crowd of idle connections
//! never keeps a scraper out; only when every open connection is being
//! answered is a new one refused (503, then closed).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::Exposition;

/// What `/metrics` answers with: the text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the figures come from: each daemon implements it over its state.
/// Called once per scrape, on the async runtime: it reads atomics and takes
/// short locks, never waits for I/O.
pub trait Source: Send + Sync + 'static {
    fn render(&self, out: &mut Exposition);
}

/// What one client may cost the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Bytes of a request's head (request line and headers); at least 8192
    /// (hyper's smallest read buffer).
    pub max_head_bytes: usize,
    /// Headers in a request.
    pub max_headers: usize,
    /// Time to send the request head.
    pub header_timeout: Duration,
    /// Time for the whole exchange, the answer's writing included.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            max_head_bytes: 8192,
            max_headers: 32,
            header_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
        }
    }
}

/// Why the endpoint cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "cannot serve metrics on {addr}: the address is in use; pick another --metrics address, or stop what listens there"
    )]
    InUse { addr: SocketAddr },
    #[error("cannot serve metrics on {addr}: {error}; pick another --metrics address")]
    Other {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Listens on `addr` (exactly there: nothing else is bound).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse { addr }
        } else {
            BindError::Other { addr, error }
        }
    })
}

/// Serves `source` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    source: Arc<dyn Source>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let table = Arc::new(Table::default());
    loop {
        let (sock, peer) = tokio::select! {
            c = net::accept(&listener, "the metrics port") => c,
            _ = net::until_true(&mut shutdown) => return,
        };
        let Some(slot) = table.admit(limits.max_connections) else {
            tracing::debug!(%peer, "metrics: every connection is being answered; refused one");
            refuse_busy(&sock);
            continue;
        };
        let (source, shutdown) = (source.clone(), shutdown.clone());
        tokio::spawn(serve_connection(sock, slot, source, limits, shutdown));
    }
}

/// Past the cap with nobody to evict: a 503 if the socket takes it at once
/// (no waiting on a client that does not read), then close.
fn refuse_busy(sock: &TcpStream) {
    let _ = sock.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 24\r\nconnection: close\r\nretry-after: 1\r\n\r\ntoo many scrapes; retry\n",
    );
}

async fn serve_connection(
    sock: TcpStream,
    slot: Slot,
    source: Arc<dyn Source>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = sock.set_nodelay(true);
    let slot = Arc::new(slot);
    let evict = slot.evict.clone();
    let svc = {
        let slot = slot.clone();
        service_fn(move |req: Request<Incoming>| {
            // The head has arrived: this connection is no longer idle.
            slot.serving();
            let resp = respond(&req, source.as_ref());
            async move { Ok::<_, Infallible>(resp) }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_header_size(limits.max_head_bytes)
        .max_headers(limits.max_headers);
    let conn = builder.serve_connection(TokioIo::new(sock), svc);
    tokio::select! {
        r = tokio::time::timeout(limits.deadline, conn) => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection ended with an error"),
            Err(_) => tracing::debug!("metrics connection closed at its deadline"),
        },
        _ = evict.notified() => tracing::debug!("closed an idle metrics connection to make room"),
        _ = net::until_true(&mut shutdown) => {}
    }
}

fn respond(req: &Request<Incoming>, source: &dyn Source) -> Response<Full<Bytes>> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let (status, content_type, body) = if get && req.uri().path() == "/metrics" {
        let mut e = Exposition::new();
        source.render(&mut e);
        (StatusCode::OK, CONTENT_TYPE, e.finish())
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 Not Found: this port serves GET /metrics only\n".to_string(),
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// The open connections, oldest first, and which are still waiting for
/// their request head (those may be closed to make room).
#[derive(Default)]
struct Table {
    inner: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next: u64,
    by_age: BTreeMap<u64, Entry>,
}

struct Entry {
    waiting: bool,
    evict: Arc<Notify>,
}

/// One admitted connection's place in the table; dropping it frees it.
struct Slot {
    table: Arc<Table>,
    id: u64,
    evict: Arc<Notify>,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection: free, or taken from the oldest
    /// connection still waiting for its request head (which is told to
    /// close). `None` when every open connection is being answered.
    fn admit(self: &Arc<Self>, max: usize) -> Option<Slot> {
        let mut t = self.lock();
        if t.by_age.len() >= max.max(1) {
            let oldest = t
                .by_age
                .iter()
                .find(|(_, e)| e.waiting)
                .map(|(id, _)| *id)?;
            if let Some(e) = t.by_age.remove(&oldest) {
                // notify_one keeps the permit if the task is not waiting yet.
                e.evict.notify_one();
            }
        }
        let id = t.next;
        t.next += 1;
        let evict = Arc::new(Notify::new());
        t.by_age.insert(
            id,
            Entry {
                waiting: true,
                evict: evict.clone(),
            },
        );
        Some(Slot {
            table: self.clone(),
            id,
            evict,
        })
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().by_age.len()
    }
}

impl Slot {
    fn serving(&self) {
        if let Some(e) = self.table.lock().by_age.get_mut(&self.id) {
            e.waiting = false;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.lock().by_age.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_makes_room_by_closing_the_oldest_idle_connection() {
        let t = Arc::new(Table::default());
        let a = t.admit(2).unwrap();
        let b = t.admit(2).unwrap();
        a.serving();
        // a is being answered, b waits: b makes room for c.
        let c = t.admit(2).unwrap();
        assert_eq!(t.open(), 2);
        assert!(!t.lock().by_age.contains_key(&b.id));
        c.serving();
        // Everybody is being answered: a new one is refused.
        assert!(t.admit(2).is_none());
        drop(a);
        assert_eq!(t.open(), 1);
        let d = t.admit(2).unwrap();
        assert_eq!(t.open(), 2);
        drop((b, c, d));
        assert_eq!(t.open(), 0);
    }
}
