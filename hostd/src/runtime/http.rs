//! wasi:http apps: one fresh instance per request, from a `ProxyPre`
//! prepared once per release, instantiated by the pooling allocator.
//!
//! An app that opts in (`[http] reuse = N`) keeps its instances warm: one
//! serves up to N requests one after another before it is dropped, and is
//! dropped at once after a trap or a deadline, after [`REUSE_IDLE`] without
//! a request, and when the release switches (a request never meets an
//! instance of another release than the one it was routed to). Warm
//! instances are bounded by `replicas`, like running ones.
//!
//! A request takes the release that is active when it arrives and keeps it
//! to its end, so a deploy or rollback switches new requests at once while
//! requests in flight finish on the code they started on: a switch fails no
//! request. `replicas` bounds the instances running at once on this host;
//! further requests wait in a bounded queue, and past it get 503.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::{Request, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::component::Resource;
use wasmtime::{Store, Trap};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use super::instance::{configure_store, wasi_builder};
use super::state::{Limits, P2State};
use super::{Code, ReleaseRun, Runtime};

/// Requests that may wait for a free instance, per replica.
pub const QUEUE_PER_REPLICA: usize = 32;

/// A warm instance not used for this long is dropped.
pub const REUSE_IDLE: Duration = Duration::from_secs(30);

/// A canary next to the route's release: the share of requests it takes,
/// how a request is assigned (a header's hash, or the request's number),
/// and each release's figures since the split was set (the gate's inputs).
pub struct CanarySplit {
    pub rel: Arc<ReleaseRun>,
    /// Percent of requests, 0..=100 (0: the canary takes nothing).
    share: std::sync::atomic::AtomicU8,
    sticky: Option<hyper::header::HeaderName>,
    pub canary: super::metrics::Window,
    pub stable: super::metrics::Window,
    /// Requests the canary served.
    pub served: AtomicU64,
}

impl CanarySplit {
    pub fn new(rel: Arc<ReleaseRun>, share: u8, sticky: Option<&str>) -> Arc<CanarySplit> {
        Arc::new(CanarySplit {
            rel,
            share: std::sync::atomic::AtomicU8::new(share.min(100)),
            sticky: sticky.and_then(|h| hyper::header::HeaderName::from_bytes(h.as_bytes()).ok()),
            canary: super::metrics::Window::default(),
            stable: super::metrics::Window::default(),
            served: AtomicU64::new(0),
        })
    }

    pub fn share(&self) -> u8 {
        self.share.load(Ordering::SeqCst)
    }

    pub fn set_share(&self, share: u8) {
        self.share.store(share.min(100), Ordering::SeqCst);
    }

    /// Whether request number `n` (or its sticky header) goes to the canary.
    fn takes<B>(&self, req: &Request<B>, n: u64) -> bool {
        let key = match self.sticky.as_ref().and_then(|h| req.headers().get(h)) {
            Some(v) => hash(v.as_bytes()),
            // A request without the header (or no sticky header): spread by
            // its number, mixed so that neighbours do not alternate.
            None => n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29),
        };
        self.takes_hash(key)
    }

    /// Whether the message with this id goes to the canary.
    pub fn takes_key(&self, id: &str) -> bool {
        self.takes_hash(hash(id.as_bytes()))
    }

    fn takes_hash(&self, key: u64) -> bool {
        key % 100 < u64::from(self.share())
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// An instance kept between requests: its store, the app instantiated in
/// it, and the release it is an instance of.
struct Warm {
    store: Store<P2State>,
    proxy: Proxy,
    rel: Arc<ReleaseRun>,
    name: Arc<str>,
    /// Requests it has served.
    served: u32,
    idle_since: Instant,
}

/// The serving state of one http app on this host.
pub struct HttpRoute {
    pub app: Arc<str>,
    release: RwLock<Option<Arc<ReleaseRun>>>,
    slots: RwLock<Arc<Semaphore>>,
    replicas: AtomicU32,
    queued: AtomicUsize,
    /// Instances running now.
    pub in_flight: AtomicU32,
    pub requests: AtomicU64,
    /// Responses with a 5xx status, ours or the app's.
    pub errors: AtomicU64,
    /// Requests, errors and latency over a sliding window (health rules, req/s).
    pub metrics: super::metrics::Window,
    /// The same since the route was made, for `--metrics`.
    pub totals: super::metrics::Totals,
    next_id: AtomicU64,
    /// Instances waiting for their next request (reuse on), hottest last.
    warm: Mutex<Vec<Warm>>,
    /// Whether a task drops idle warm instances now.
    reaping: AtomicBool,
    /// Instances made for this route, fresh ones (reuse or not).
    pub instantiated: AtomicU64,
    /// A live canary beside the release, if any.
    canary: RwLock<Option<Arc<CanarySplit>>>,
}

impl HttpRoute {
    fn new(app: Arc<str>) -> HttpRoute {
        HttpRoute {
            app,
            release: RwLock::new(None),
            slots: RwLock::new(Arc::new(Semaphore::new(0))),
            replicas: AtomicU32::new(0),
            queued: AtomicUsize::new(0),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            metrics: super::metrics::Window::default(),
            totals: super::metrics::Totals::default(),
            next_id: AtomicU64::new(0),
            warm: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
            instantiated: AtomicU64::new(0),
            canary: RwLock::new(None),
        }
    }

    /// The release new requests go to.
    pub fn current(&self) -> Option<Arc<ReleaseRun>> {
        self.release
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches new requests to `rel`; requests in flight keep theirs.
    /// Warm instances are dropped (a restart sets the same release again
    /// to get fresh ones), and one that finishes a request of the old
    /// release afterwards is not kept.
    pub fn set_release(&self, rel: Arc<ReleaseRun>) {
        *self.release.write().unwrap_or_else(|p| p.into_inner()) = Some(rel);
        // A switch ends any canary: promoted, it is the release now.
        *self.canary.write().unwrap_or_else(|p| p.into_inner()) = None;
        let gone = std::mem::take(&mut *self.warm_lock());
        drop(gone); // outside the lock
    }

    /// Sets (or, `None`, ends) the canary beside the release. Warm
    /// instances of an ended canary are not kept.
    pub fn set_canary(&self, split: Option<Arc<CanarySplit>>) {
        *self.canary.write().unwrap_or_else(|p| p.into_inner()) = split;
    }

    pub fn canary(&self) -> Option<Arc<CanarySplit>> {
        self.canary
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets how many instances may run at once. Requests holding a slot of
    /// the old bound finish under it. Warm instances beyond it are dropped.
    pub fn set_replicas(&self, n: u32) {
        if self.replicas.swap(n, Ordering::SeqCst) != n {
            *self.slots.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(Semaphore::new(n as usize));
        }
        let gone: Vec<Warm> = {
            let mut w = self.warm_lock();
            let cut = w.len().saturating_sub(n as usize);
            // The coldest go first.
            w.drain(..cut).collect()
        };
        drop(gone);
    }

    fn warm_lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.warm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Warm instances now, and the linear memory they hold.
    pub fn warm(&self) -> (u32, u64) {
        let w = self.warm_lock();
        let memory = w
            .iter()
            .map(|i| i.store.data().limits.memory_used.load(Ordering::Relaxed))
            .sum();
        (w.len() as u32, memory)
    }

    /// The hottest warm instance of `rel`, if one is there and not idle
    /// too long; instances of other releases met on the way are dropped.
    fn take_warm(&self, rel: &Arc<ReleaseRun>) -> Option<Warm> {
        let mut gone = Vec::new();
        let found = {
            let mut w = self.warm_lock();
            loop {
                match w.pop() {
                    Some(i) if Arc::ptr_eq(&i.rel, rel) && i.idle_since.elapsed() < REUSE_IDLE => {
                        break Some(i);
                    }
                    Some(i) => gone.push(i),
                    None => break None,
                }
            }
        };
        drop(gone);
        found
    }

    /// Keeps `inst` for a next request, unless its release is no longer
    /// the route's, it has served its share, or `replicas` are warm already.
    fn put_warm(self: &Arc<Self>, inst: Warm) {
        let current = self.current();
        let canary = self.canary();
        let live = current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &inst.rel))
            || canary
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(&c.rel, &inst.rel));
        let keep = live && inst.served < inst.rel.manifest.http.reuse();
        if !keep {
            return;
        }
        let refused = {
            let mut w = self.warm_lock();
            if w.len() >= self.replicas() as usize {
                Some(inst)
            } else {
                w.push(inst);
                None
            }
        };
        drop(refused);
        if !self.reaping.swap(true, Ordering::SeqCst) {
            tokio::spawn(reap_idle(Arc::downgrade(self)));
        }
    }

    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::SeqCst)
    }

    /// A slot to run an instance in, waiting in the queue up to `wait`.
    async fn acquire(&self, wait: Duration) -> Result<OwnedSemaphorePermit, &'static str> {
        let replicas = self.replicas();
        if replicas == 0 {
            return Err("the app is scaled to 0 replicas");
        }
        let sem = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        let limit = QUEUE_PER_REPLICA * replicas as usize;
        if self.queued.fetch_add(1, Ordering::SeqCst) >= limit {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err("too many requests are waiting for a free instance");
        }
        let r = tokio::time::timeout(wait, sem.acquire_owned()).await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        match r {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err("the app was rescaled while this request waited"),
            Err(_) => Err("no instance became free before the request's deadline"),
        }
    }
}

/// Drops the route's warm instances that idled [`REUSE_IDLE`]; ends when
/// none is left (the next one kept starts it again) or the route is gone.
async fn reap_idle(route: Weak<HttpRoute>) {
    loop {
        tokio::time::sleep(REUSE_IDLE / 4).await;
        let Some(route) = route.upgrade() else { return };
        let gone: Vec<Warm> = {
            let mut w = route.warm_lock();
            let (old, keep): (Vec<Warm>, Vec<Warm>) = std::mem::take(&mut *w)
                .into_iter()
                .partition(|i| i.idle_since.elapsed() >= REUSE_IDLE);
            *w = keep;
            if w.is_empty() {
                route.reaping.store(false, Ordering::SeqCst);
                drop(w);
                drop(old);
                return;
            }
            old
        };
        drop(gone);
    }
}

/// The http apps of a host, by name: what the ingress routes to.
#[derive(Default)]
pub struct Routes {
    map: RwLock<HashMap<Arc<str>, Arc<HttpRoute>>>,
}

impl Routes {
    pub fn get(&self, app: &str) -> Option<Arc<HttpRoute>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            .cloned()
    }

    pub fn get_or_create(&self, app: &Arc<str>) -> Arc<HttpRoute> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(app.clone())
            .or_insert_with(|| Arc::new(HttpRoute::new(app.clone())))
            .clone()
    }

    pub fn remove(&self, app: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app);
    }
}

/// A response the platform makes itself (404, 503…): short plain text.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<HyperOutgoingBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.into()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A request body that refuses to grow past `limit` bytes.
pub struct CappedBody<B> {
    inner: B,
    seen: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> CappedBody<B> {
    pub fn new(inner: B, limit: u64, exceeded: Arc<AtomicBool>) -> Self {
        CappedBody {
            inner,
            seen: 0,
            limit,
            exceeded,
        }
    }
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.seen += d.len() as u64;
                    if self.seen > self.limit {
                        self.exceeded.store(true, Ordering::SeqCst);
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(self.seen)),
                        )));
                    }
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// How a request's instance ended.
#[derive(Debug)]
enum Done {
    Returned,
    Trap(String),
    Deadline,
}

/// Counts a running instance for as long as it lives.
struct InFlight(Arc<HttpRoute>);

impl InFlight {
    fn new(route: Arc<HttpRoute>) -> InFlight {
        route.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(route)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Aborts the request's instance if the client goes away before a response.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Serves one request with a fresh instance of the app's current release.
pub async fn serve<B>(
    rt: &Arc<Runtime>,
    route: &Arc<HttpRoute>,
    req: Request<B>,
    body_exceeded: Arc<AtomicBool>,
) -> Response<HyperOutgoingBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let started = Instant::now();
    route.requests.fetch_add(1, Ordering::Relaxed);
    let n = route.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let fresh_name: Arc<str> = format!("{}.req-{n}", route.app).into();
    // The release is taken once: the one that serves the request is the
    // one its access record names, even across a switch. A live canary
    // takes its share.
    let split = route.canary();
    let to_canary = split.as_ref().filter(|s| s.takes(&req, n));
    let rel = match to_canary {
        Some(s) => {
            s.served.fetch_add(1, Ordering::Relaxed);
            Some(s.rel.clone())
        }
        None => route.current(),
    };
    // What the access record says, taken before the request is consumed.
    let access = rel
        .as_ref()
        .filter(|r| r.manifest.http.access_log())
        .map(|rel| AccessRecord {
            logs: rt.logs.clone(),
            app: route.app.clone(),
            release: Some(rel.version.0),
            instance: fresh_name.clone(),
            method: req.method().to_string(),
            path: schema::render::clean(req.uri().path()).into_owned(),
            status: 0,
            started,
            bytes: 0,
        });
    let (resp, instance) = serve_inner(rt, route, rel, req, body_exceeded, fresh_name).await;
    if resp.status().is_server_error() {
        route.errors.fetch_add(1, Ordering::Relaxed);
    }
    let (status, took) = (resp.status().as_u16(), started.elapsed());
    route.metrics.record(status, took);
    route.totals.record(status, took);
    if let Some(s) = &split {
        if to_canary.is_some() {
            s.canary.record(status, took);
        } else {
            s.stable.record(status, took);
        }
    }
    match access {
        // Recorded when the body's last byte has gone (or the client left).
        Some(mut a) => {
            a.status = status;
            a.instance = instance;
            resp.map(|body| {
                Recorded {
                    inner: body,
                    record: a,
                }
                .boxed_unsync()
            })
        }
        None => resp,
    }
}

/// The access record of one request, written when its response ends.
struct AccessRecord {
    logs: crate::logs::LogHub,
    app: Arc<str>,
    release: Option<u32>,
    instance: Arc<str>,
    method: String,
    path: String,
    status: u16,
    started: Instant,
    bytes: u64,
}

impl Drop for AccessRecord {
    fn drop(&mut self) {
        let a = schema::Access {
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            status: self.status,
            latency_ms: (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            bytes: self.bytes,
        };
        // Bounded like the app's own lines: a flood of requests may drop
        // access records (counted), never slow the ingress.
        self.logs.push(crate::logs::Entry {
            app: self.app.clone(),
            release: self.release,
            instance: self.instance.clone(),
            stream: schema::Stream::Access,
            time: schema::time::now_millis(),
            line: a.line(),
            partial: false,
        });
    }
}

/// A response body counting its bytes; its access record is written when
/// it is dropped (sent in full, or the client went away).
struct Recorded {
    inner: HyperOutgoingBody,
    record: AccessRecord,
}

impl Body for Recorded {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r
            && let Some(d) = f.data_ref()
        {
            self.record.bytes += d.len() as u64;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one request: waits for a slot, takes a warm instance of the
/// request's release or makes a fresh one, runs it on a task of its own
/// (aborted if the client goes away first) and answers with its response,
/// or with why there is none. Also says which instance served it.
async fn serve_inner<B>(
    rt: &Arc<Runtime>,
    route: &Arc<HttpRoute>,
    rel: Option<Arc<ReleaseRun>>,
    req: Request<B>,
    body_exceeded: Arc<AtomicBool>,
    fresh_name: Arc<str>,
) -> (Response<HyperOutgoingBody>, Arc<str>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let Some(rel) = rel else {
        let resp = text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} has no active release on this host\n", route.app),
        );
        return (resp, fresh_name);
    };
    let timeout = Duration::from_millis(
        rel.manifest
            .timeout_ms()
            .unwrap_or(schema::manifest::DEFAULT_HTTP_TIMEOUT_MS),
    );
    let started = Instant::now();
    let permit = match route.acquire(timeout).await {
        Ok(p) => p,
        Err(why) => return (busy(why), fresh_name),
    };
    let Code::Http(pre) = &*rel.code else {
        let resp = text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this release is not an http app\n",
        );
        return (resp, fresh_name);
    };
    let pre = pre.clone();
    let cap = rel.manifest.memory_bytes();
    let reuse = rel.manifest.http.reuse() > 1;
    let mut inst = match reuse.then(|| route.take_warm(&rel)).flatten() {
        Some(w) => Serving {
            store: w.store,
            proxy: Some(w.proxy),
            name: w.name,
            served: w.served,
        },
        None => {
            route.instantiated.fetch_add(1, Ordering::Relaxed);
            Serving {
                store: request_store(rt, &rel, &fresh_name, cap),
                proxy: None,
                name: fresh_name,
                served: 0,
            }
        }
    };
    inst.store.data_mut().limits.memory_denied = false;
    let name = inst.name.clone();
    let log = RequestLog {
        logs: rt.logs.clone(),
        app: rel.app.clone(),
        version: rel.version,
        instance: name.to_string(),
        what: format!("{} {}", req.method(), req.uri().path()),
        timeout,
    };
    let (resp_tx, resp_rx) = oneshot::channel();
    let (incoming, out) = match request_resources(&mut inst.store, req, resp_tx) {
        Ok(r) => r,
        Err(resp) => return (*resp, name),
    };
    let (done_tx, done_rx) = oneshot::channel::<Done>();
    let in_flight = InFlight::new(route.clone());
    let home = route.clone();
    let task = tokio::spawn(async move {
        // Both are released however the task ends, aborted included; the
        // slot only after the instance is back among the warm ones, so the
        // request that gets the slot next finds it there.
        let _permit = permit;
        let _in_flight = in_flight;
        let (done, back) = run_request(inst, &pre, incoming, out, timeout, cap).await;
        log.ended(&done);
        if let (true, Some((back, proxy))) = (reuse, back) {
            home.put_warm(Warm {
                store: back.store,
                proxy,
                rel, // the release's code lives as long as its instances
                name: back.name,
                served: back.served,
                idle_since: Instant::now(),
            });
        }
        let _ = done_tx.send(done);
    });
    let mut guard = AbortOnDrop(Some(task.abort_handle()));
    let resp = match resp_rx.await {
        Ok(Ok(resp)) => resp,
        Ok(Err(code)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("500 Internal Server Error: the app failed the request: {code:?}\n"),
        ),
        Err(_) => no_response(done_rx.await, timeout, &body_exceeded),
    };
    guard.disarm();
    if body_exceeded.load(Ordering::SeqCst) && !resp.status().is_success() {
        return (
            text(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n"),
            name,
        );
    }
    tracing::debug!(app = %route.app, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    (resp, name)
}

/// The instance a request runs in: a warm one (its proxy already there)
/// or a fresh store to instantiate the app in.
struct Serving {
    store: Store<P2State>,
    proxy: Option<Proxy>,
    name: Arc<str>,
    served: u32,
}

/// 503 with `Retry-After`: no instance slot for the request.
fn busy(why: &str) -> Response<HyperOutgoingBody> {
    let mut r = text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("503 Service Unavailable: {why}\n"),
    );
    r.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("1"),
    );
    r
}

/// A fresh store for one request's instance, its memory capped at `cap`.
fn request_store(rt: &Arc<Runtime>, rel: &ReleaseRun, instance: &str, cap: u64) -> Store<P2State> {
    let memory = Arc::new(AtomicU64::new(0));
    let state = P2State::new(
        wasi_builder(rt, rel, instance).build(),
        &rel.caps,
        instance,
        Limits::new(cap, memory),
    );
    let mut store = Store::new(&rt.engine, state);
    // The deadline drops the call; interruption is for ticks, never set here.
    configure_store(&mut store, Arc::new(AtomicBool::new(false)), |s| {
        &mut s.limits
    });
    store
}

/// Where the app's handler sends its response (or its error).
type ResponseTx = oneshot::Sender<Result<Response<HyperOutgoingBody>, ErrorCode>>;

/// A request and its response outparam, as resources of the request's store.
type RequestResources = (
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
);

/// The request and the response outparam as resources of `store`; a
/// response to send at once when either cannot be made (boxed: a response
/// is large next to the two handles).
fn request_resources<B>(
    store: &mut Store<P2State>,
    req: Request<B>,
    resp_tx: ResponseTx,
) -> Result<RequestResources, Box<Response<HyperOutgoingBody>>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let incoming = match store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)
    {
        Ok(r) => r,
        Err(e) => {
            return Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("400 Bad Request: {e}\n"),
            )));
        }
    };
    match store.data_mut().http().new_response_outparam(resp_tx) {
        Ok(out) => Ok((incoming, out)),
        Err(e) => Err(Box::new(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("500 Internal Server Error: {e}\n"),
        ))),
    }
}

/// Calls the handler of `inst` (instantiating the app first in a fresh
/// store), up to `timeout`; how the request ended, and the instance back
/// if it may serve another request (it returned: no trap, no deadline).
async fn run_request(
    inst: Serving,
    pre: &ProxyPre<P2State>,
    incoming: Resource<HostIncomingRequest>,
    out: Resource<HostResponseOutparam>,
    timeout: Duration,
    cap: u64,
) -> (Done, Option<(Serving, Proxy)>) {
    let Serving {
        mut store,
        proxy,
        name,
        served,
    } = inst;
    let call = async {
        let p = match proxy {
            Some(p) => p,
            None => pre.instantiate_async(&mut store).await?,
        };
        p.wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, out)
            .await?;
        wasmtime::Result::Ok(p)
    };
    let result: Result<wasmtime::Result<Proxy>, _> = tokio::time::timeout(timeout, call).await;
    let denied = store.data().limits.memory_denied;
    match result {
        Ok(Ok(p)) => {
            let back = Serving {
                store,
                proxy: None,
                name,
                served: served + 1,
            };
            (Done::Returned, Some((back, p)))
        }
        // A trapped or interrupted instance is never entered again.
        Ok(Err(e)) if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => (Done::Deadline, None),
        Ok(Err(e)) => {
            let mut msg = super::instance::one_line(&format!("{e:#}"));
            if denied {
                msg.push_str(&format!(
                    " (memory.grow was refused at the cap of {} MiB)",
                    cap >> 20
                ));
            }
            (Done::Trap(msg), None)
        }
        Err(_) => (Done::Deadline, None),
    }
}

/// What a request's `system` records name: its app, instance and request.
struct RequestLog {
    logs: crate::logs::LogHub,
    app: Arc<str>,
    version: schema::Version,
    instance: String,
    /// `METHOD /path`.
    what: String,
    timeout: Duration,
}

impl RequestLog {
    /// Says in the app's logs how an instance that did not return ended.
    fn ended(&self, done: &Done) {
        let line = match done {
            Done::Trap(msg) => format!("request {} trapped: {msg}", self.what),
            Done::Deadline => format!(
                "request {} ran past its deadline of {} ms; instance interrupted",
                self.what,
                self.timeout.as_millis()
            ),
            Done::Returned => return,
        };
        self.logs
            .system(&self.app, Some(self.version), &self.instance, line);
    }
}

/// The answer to a request whose instance ended without a response.
fn no_response(
    done: Result<Done, oneshot::error::RecvError>,
    timeout: Duration,
    body_exceeded: &AtomicBool,
) -> Response<HyperOutgoingBody> {
    match done {
        Ok(Done::Deadline) => text(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "504 Gateway Timeout: the app did not answer within {} ms\n",
                timeout.as_millis()
            ),
        ),
        Ok(Done::Trap(_)) if body_exceeded.load(Ordering::SeqCst) => {
            text(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n")
        }
        Ok(Done::Trap(_)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error: the app trapped; see its logs\n",
        ),
        Ok(Done::Returned) | Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error: the app returned without a response\n",
        ),
    }
}

/// Requests `path` from `rel` in-process, as a health check does; returns
/// the status, or why there was none.
pub async fn probe(rt: &Arc<Runtime>, rel: Arc<ReleaseRun>, path: &str) -> Result<u16, String> {
    let route = Arc::new(HttpRoute::new(rel.app.clone()));
    route.set_release(rel.clone());
    route.set_replicas(1);
    let req = Request::builder()
        .method("GET")
        .uri(path)
        .header(hyper::header::HOST, format!("{}.localhost", rel.app))
        .header(hyper::header::USER_AGENT, "cranefleet-health/1")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad health path {path:?}: {e}"))?;
    let resp = serve(rt, &route, req, Arc::new(AtomicBool::new(false))).await;
    let status = resp.status().as_u16();
    // Drain the body so the instance finishes.
    let _ = resp.into_body().collect().await;
    Ok(status)
}
