//! The ingress: HTTP/1.1 with keep-alive on `--http`, routing each request
//! to an http app by the first label of `Host` (`api.localhost:8080`) or by
//! a `/APP/` path prefix, which is stripped before the app sees the path.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::control::until_true;
use crate::runtime::Runtime;
use crate::runtime::http::{self, CappedBody, HttpRoute, text};

/// Default bound of a request body.
pub const DEFAULT_MAX_BODY: u64 = 64 << 20;

/// Serves connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    rt: Arc<Runtime>,
    max_body: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let rt = rt.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let rt = rt.clone();
                            async move { Ok::<_, Infallible>(route(&rt, req, max_body).await) }
                        });
                        if let Err(e) = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(sock), svc).await {
                            tracing::debug!(%peer, error = %e, "http connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = until_true(&mut shutdown) => return,
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
