//! The ingress: HTTP/1.1 with keep-alive on `--http`, routing each request
//! to an http app by the first label of `Host` (`api.localhost:8080`) or by
//! a `/APP/` path prefix, which is stripped before the app sees the path.
//!
//! What a client may cost is bounded, as nginx bounds it: a request's
//! headers must arrive within [`HEADER_TIMEOUT`], a keep-alive connection
//! idle for [`IDLE_TIMEOUT`] is closed, and past [`Limits::max_connections`]
//! a new connection is answered `503` at once and closed. The cap stays
//! well under the open-file limit, so the control socket (`hostd ps`) keeps
//! working whatever the ingress is sent. A request with two `Host` headers
//! is answered `400`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use net::until_true;

pub use crate::config::{DEFAULT_MAX_BODY, HEADER_TIMEOUT, IDLE_TIMEOUT};
use crate::runtime::Runtime;
use crate::runtime::http::{self, CappedBody, HttpRoute, text};

/// Connections served at once unless the open-file limit says fewer.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// What the ingress lets clients cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: u64,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// The configured limits; the connection cap defaults to half the
    /// open-file limit `nofile` (the other half is the daemon's own: its
    /// databases, its control socket, its apps), at most 4096.
    pub fn new(cfg: &crate::config::IngressConfig, nofile: u64) -> Limits {
        let half = usize::try_from(nofile / 2).unwrap_or(usize::MAX).max(16);
        Limits {
            max_body: cfg.max_body,
            max_connections: cfg
                .max_connections
                .unwrap_or(DEFAULT_MAX_CONNECTIONS.min(half)),
            header_timeout: cfg.header_timeout,
            idle_timeout: cfg.idle_timeout,
        }
    }
}

/// Serves connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    rt: Arc<Runtime>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (sock, peer) = tokio::select! {
            c = net::accept(&listener, "the http port") => c,
            _ = until_true(&mut shutdown) => return,
        };
        let _ = sock.set_nodelay(true);
        if open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            tokio::spawn(refuse_busy(sock));
            continue;
        }
        let (rt, open) = (rt.clone(), open.clone());
        tokio::spawn(async move {
            serve_connection(rt, sock, limits).await;
            open.fetch_sub(1, Ordering::AcqRel);
            tracing::trace!(%peer, "http connection closed");
        });
    }
}

/// Past the connection cap: a plain 503, then close.
async fn refuse_busy(mut sock: TcpStream) {
    let body =
        "503 Service Unavailable: this host serves as many http connections as it may; try again\n";
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
        body.len()
    );
    let write = async {
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(body.as_bytes()).await?;
        sock.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// One keep-alive connection: requests in turn, headers within the header
/// timeout, closed once idle (no request in flight) for the idle timeout.
async fn serve_connection(rt: Arc<Runtime>, sock: TcpStream, limits: Limits) {
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let svc = {
        let (last, in_flight) = (last.clone(), in_flight.clone());
        service_fn(move |req| {
            let (rt, last, in_flight) = (rt.clone(), last.clone(), in_flight.clone());
            in_flight.fetch_add(1, Ordering::AcqRel);
            async move {
                let resp = route(&rt, req, limits.max_body).await;
                in_flight.fetch_sub(1, Ordering::AcqRel);
                last.store(started.elapsed().as_millis() as u64, Ordering::Release);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(sock), svc);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(limits.idle_timeout / 4);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "http connection ended with an error");
                }
                return;
            }
            _ = tick.tick(), if !closing => {
                let idle_ms = (started.elapsed().as_millis() as u64)
                    .saturating_sub(last.load(Ordering::Acquire));
                if in_flight.load(Ordering::Acquire) == 0
                    && idle_ms >= limits.idle_timeout.as_millis() as u64
                {
                    // Closes at once when no request is being read.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The app a request is for, and the path it should see.
fn find(rt: &Runtime, req: &Request<Incoming>) -> Result<(Arc<HttpRoute>, Option<Uri>), String> {
    let host = req
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    // Unprintable bytes of a client's Host never reach a log or an answer.
    let host: String = host.chars().take(255).filter(|c| !c.is_control()).collect();
    let label = host
        .split(['.', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if let Some(r) = rt.routes.get(&label) {
        return Ok((r, None));
    }
    let path = req.uri().path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if !first.is_empty()
        && let Some(r) = rt.routes.get(first)
    {
        let rest = &path[1 + first.len()..];
        let rest = if rest.is_empty() { "/" } else { rest };
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        let uri = Uri::builder()
            .path_and_query(pq)
            .build()
            .map_err(|e| format!("bad path: {e}"))?;
        return Ok((r, Some(uri)));
    }
    Err(format!(
        "no http app matches Host {host:?} or path {path:?} on this host"
    ))
}

async fn route(
    rt: &Arc<Runtime>,
    mut req: Request<Incoming>,
    max_body: u64,
) -> Response<HyperOutgoingBody> {
    // RFC 9112 §3.2: a request with more than one Host is answered 400.
    if req.headers().get_all(hyper::header::HOST).iter().count() > 1 {
        return text(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: more than one Host header\n".to_string(),
        );
    }
    let (route, uri) = match find(rt, &req) {
        Ok(found) => found,
        Err(why) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("404 Not Found: {why} (route with Host: APP.<domain> or a /APP/ path)\n"),
            );
        }
    };
    if let Some(uri) = uri {
        *req.uri_mut() = uri;
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("413 Payload Too Large: request bodies are limited to {max_body} bytes\n"),
        );
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let req = req.map(|b| CappedBody::new(b, max_body, exceeded.clone()));
    http::serve(rt, &route, req, exceeded).await
}
