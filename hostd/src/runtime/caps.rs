//! What a release may reach besides computing: outbound network by grant,
//! its key-value store, its config. Built once per release (a Redis store
//! is connected, secrets are opened) and shared by every instance.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema::Version;
use schema::grant::{Grant, Scheme};
use schema::manifest::KeyValue;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

use crate::kv::KvCtx;
use crate::logs::LogHub;
use kv::KvStore;

/// How often one denied destination is named in the app's logs.
pub const DENIAL_EVERY: Duration = Duration::from_secs(60);
/// Most destinations remembered per release for that purpose.
const MAX_DENIALS: usize = 256;

/// A release's capabilities.
pub struct Capabilities {
    pub grants: Arc<[Grant]>,
    /// Connect and first-byte timeout of an outbound call: the app's own
    /// deadline (`--timeout-ms`), or 30 s for an app without one.
    pub call_timeout: Duration,
    pub kv_store: Option<KvStore>,
    pub kv_settings: Arc<KeyValue>,
    pub config: Arc<WasiConfigVariables>,
    /// Config keys (for `info`: names only).
    pub config_keys: Vec<String>,
    denials: Denials,
}

impl Capabilities {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: &str,
        version: Version,
        grants: Vec<Grant>,
        timeout_ms: Option<u64>,
        kv_store: Option<KvStore>,
        kv_settings: KeyValue,
        config: Vec<(String, String)>,
        logs: LogHub,
    ) -> Arc<Capabilities> {
        let config_keys = config.iter().map(|(k, _)| k.clone()).collect();
        Arc::new(Capabilities {
            grants: grants.into(),
            call_timeout: Duration::from_millis(timeout_ms.unwrap_or(30_000)),
            kv_store,
            kv_settings: Arc::new(kv_settings),
            config: Arc::new(config.into_iter().collect()),
            config_keys,
            denials: Denials {
                logs,
                app: app.into(),
                version: std::sync::atomic::AtomicU32::new(version.0),
                seen: Mutex::new(HashMap::new()),
            },
        })
    }

    /// None of anything: what a release gets in tests of other features.
    pub fn none(app: &str, version: Version, logs: LogHub) -> Arc<Capabilities> {
        Capabilities::new(
            app,
            version,
            Vec::new(),
            None,
            None,
            KeyValue::default(),
            Vec::new(),
            logs,
        )
    }

    /// The release these are the capabilities of.
    pub fn bind(&self, version: Version) {
        self.denials
            .version
            .store(version.0, std::sync::atomic::Ordering::Relaxed);
    }

    /// The `wasi:keyvalue` state of one instance.
    pub fn kv_ctx(&self) -> KvCtx {
        KvCtx {
            store: self.kv_store.clone(),
            settings: self.kv_settings.clone(),
        }
    }

    /// Whether a `tcp://` grant lets the app connect to `addr`. A grant
    /// naming a host is resolved now, so it follows DNS.
    pub async fn allows_tcp(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_string();
        for g in self.grants.iter().filter(|g| g.scheme == Scheme::Tcp) {
            if g.port != addr.port() {
                continue;
            }
            if g.allows(Scheme::Tcp, &ip, addr.port()) {
                return true;
            }
            if g.host.parse::<std::net::IpAddr>().is_err()
                && !g.host.starts_with("*.")
                && let Ok(mut addrs) = tokio::net::lookup_host((g.host.as_str(), g.port)).await
                && addrs.any(|a| a.ip() == addr.ip())
            {
                return true;
            }
        }
        false
    }

    /// Whether any tcp grant names a host (then name lookup is allowed).
    pub fn needs_name_lookup(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.scheme == Scheme::Tcp && g.host.parse::<std::net::IpAddr>().is_err())
    }

    /// Names a denied destination in the app's logs, once a minute.
    pub fn denied(&self, instance: &str, what: &str, hint: &str) {
        self.denials.note(instance, what, hint)
    }
}

struct Denials {
    logs: LogHub,
    app: Arc<str>,
    /// Set by `ReleaseRun::new` (a deploy builds capabilities before its
    /// version number exists, so that a refusal writes nothing).
    version: std::sync::atomic::AtomicU32,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Denials {
    fn note(&self, instance: &str, what: &str, hint: &str) {
        let now = Instant::now();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen
                .get(what)
                .is_some_and(|t| now.duration_since(*t) < DENIAL_EVERY)
            {
                return;
            }
            if seen.len() >= MAX_DENIALS {
                seen.retain(|_, t| now.duration_since(*t) < DENIAL_EVERY);
                if seen.len() >= MAX_DENIALS {
                    return;
                }
            }
            seen.insert(what.to_string(), now);
        }
        self.logs.system(
            &self.app,
            Some(Version(
                self.version.load(std::sync::atomic::Ordering::Relaxed),
            )),
            instance,
            format!(
                "outbound {} denied: not granted to this app; grant it with `--allow-outbound {hint}` (or [allow] outbound in the manifest)",
                schema::render::clean(what)
            ),
        );
    }
}

/// Outgoing HTTP of one instance: a granted destination goes out through
/// the real client, bounded by the app's deadline; anything else gets the
/// WASI `HTTP-request-denied` error and a line in the app's logs.
pub struct Outbound {
    pub caps: Arc<Capabilities>,
    pub instance: Arc<str>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some("http") => Some(Scheme::Http),
            Some("https") => Some(Scheme::Https),
            _ => None,
        };
        let host = uri.host().unwrap_or("").to_string();
        let port = uri
            .port_u16()
            .or_else(|| scheme.and_then(Scheme::default_port));
        let allowed = match (scheme, port) {
            (Some(s), Some(p)) => schema::grant::allowed(&self.caps.grants, s, &host, p),
            _ => false,
        };
        if !allowed {
            let dest = format!(
                "{}://{host}{}",
                uri.scheme_str().unwrap_or("?"),
                port.map(|p| format!(":{p}")).unwrap_or_default()
            );
            self.caps.denied(&self.instance, &dest, &dest);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let limit = self.caps.call_timeout;
        let bound = |d: Option<Duration>| Some(d.map_or(limit, |d| d.min(limit)));
        let opts = wasmtime_wasi_http::RequestOptions {
            connect_timeout: bound(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: bound(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: bound(options.and_then(|o| o.between_bytes_timeout)),
        };
        Box::new(super::outbound::send(request, opts))
    }
}

/// The `wasi:sockets` check of one instance: TCP connects to granted
/// `tcp://` destinations; nothing else (no listening, no UDP).
pub fn socket_check(
    caps: Arc<Capabilities>,
    instance: Arc<str>,
) -> impl Fn(SocketAddr, SocketAddrUse) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    move |addr, usage| {
        let (caps, instance) = (caps.clone(), instance.clone());
        Box::pin(async move {
            match usage {
                SocketAddrUse::TcpConnect => {}
                // The implicit bind of a connect (the wildcard address, an
                // ephemeral port) is checked before the connect; a bind to
                // anything else, listening and UDP stay denied.
                SocketAddrUse::TcpBind => {
                    return addr.ip().is_unspecified() && addr.port() == 0;
                }
                _ => return false,
            }
            let ok = caps.allows_tcp(addr).await;
            if !ok {
                let dest = format!("tcp://{addr}");
                caps.denied(&instance, &dest, &dest);
            }
            ok
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest calling a new denied host on every request costs at most
    /// [`MAX_DENIALS`] remembered destinations and as many log lines per
    /// minute, however many it tries.
    #[tokio::test]
    async fn denied_destinations_remembered_and_logged_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogHub::open(dir.path(), "h", 64 << 20).expect("log hub");
        let caps = Capabilities::none("app", Version(1), logs.clone());
        for i in 0..10_000 {
            let host = format!("http://h{i}.example:80");
            caps.denied("app.1", &host, &host);
            // The same destination again within the minute: not logged.
            caps.denied("app.1", &host, &host);
        }
        let seen = caps.denials.seen.lock().map(|s| s.len()).unwrap_or(0);
        assert_eq!(seen, MAX_DENIALS, "the map stops at its ceiling");
        logs.flush().await;
        let records = logs.query("app", None, None).await.expect("query");
        let denied = records
            .iter()
            .filter(|r| r.line.contains(" denied: not granted"))
            .count();
        assert_eq!(denied, MAX_DENIALS, "one line per remembered destination");
    }
}
