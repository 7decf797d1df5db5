//! What `hostd serve|agent --metrics ADDR` serves: this host's apps in the
//! Prometheus text format, read from the supervisors, the ingress's routes,
//! the message consumers and the log hub at each scrape (nothing is kept
//! for it but the totals those already count).
//!
//! Every per-app sample carries `app` and `host` (this host's name), so a
//! fleet's hosts add up whatever addresses Prometheus scrapes them by.

use std::sync::Arc;

use prom::{Exposition, Kind};
use schema::AppKind;

use crate::agent::TunnelState;
use crate::host::Host;
use crate::runtime::metrics::{CLASSES, MessageMetrics};
use crate::runtime::status::AppStatus;

/// A host's figures, and its tunnel's when it is an agent.
pub struct HostMetrics {
    pub host: Arc<Host>,
    pub tunnel: Option<Arc<TunnelState>>,
}

/// Reads one total of a message app.
type Count = fn(&MessageMetrics) -> u64;

struct App {
    name: Arc<str>,
    status: AppStatus,
    restarts: u64,
}

impl prom::Source for HostMetrics {
    fn render(&self, out: &mut Exposition) {
        let host = self.host.config.name.as_str();
        let rt = self.host.runtime();
        let apps: Vec<App> = self
            .host
            .supervisors()
            .into_iter()
            .map(|s| App {
                status: s.status(),
                restarts: s.restarts_total(),
                name: s.name.clone(),
            })
            .collect();

        out.family(
            "cranefleet_app_info",
            "An app on this host, its kind and its active release (always 1).",
            Kind::Gauge,
        );
        for a in &apps {
            let release = a.status.release.map(|v| v.to_string());
            out.sample(
                &[
                    ("app", &a.name),
                    ("host", host),
                    ("kind", a.status.kind.as_str()),
                    ("release", release.as_deref().unwrap_or("")),
                ],
                1u64,
            );
        }
        let per_app =
            |out: &mut Exposition, name: &str, help: &str, kind: Kind, f: &dyn Fn(&App) -> u64| {
                out.family(name, help, kind);
                for a in &apps {
                    out.sample(&[("app", &a.name), ("host", host)], f(a));
                }
            };
        per_app(
            out,
            "cranefleet_instances_running",
            "Instances of the app running now (http: requests being served; message: handlers running).",
            Kind::Gauge,
            &|a| u64::from(a.status.running),
        );
        per_app(
            out,
            "cranefleet_instance_restarts_total",
            "Restarts of the app's worker instances after they exited.",
            Kind::Counter,
            &|a| a.restarts,
        );
        per_app(
            out,
            "cranefleet_app_memory_bytes",
            "Linear memory of the app's running worker instances.",
            Kind::Gauge,
            &|a| a.status.memory,
        );
        per_app(
            out,
            "cranefleet_log_lines_dropped_total",
            "Log lines of the app dropped because the host's log writer was behind.",
            Kind::Counter,
            &|a| self.host.logs.dropped_of(&a.name),
        );

        let http: Vec<_> = apps
            .iter()
            .filter(|a| a.status.kind == AppKind::Http)
            .filter_map(|a| rt.routes.get(&a.name).map(|r| (a, r)))
            .collect();
        out.family(
            "cranefleet_http_requests_total",
            "Requests to the app answered by this host's ingress, by status class.",
            Kind::Counter,
        );
        for (a, route) in &http {
            for (code, n) in CLASSES.iter().zip(route.totals.classes()) {
                out.sample(&[("app", &a.name), ("host", host), ("code", code)], n);
            }
        }
        out.family(
            "cranefleet_http_request_duration_seconds",
            "Time from a request's arrival to its response's head, per app.",
            Kind::Histogram,
        );
        for (a, route) in &http {
            out.histogram(
                &[("app", &a.name), ("host", host)],
                &route.totals.latency.snapshot(),
            );
        }

        out.family(
            "cranefleet_http_instances_created_total",
            "Instances this host made to serve the app's requests (one per request unless reuse is on).",
            Kind::Counter,
        );
        for (a, route) in &http {
            let n = route
                .instantiated
                .load(std::sync::atomic::Ordering::Relaxed);
            out.sample(&[("app", &a.name), ("host", host)], n);
        }
        out.family(
            "cranefleet_http_warm_instances",
            "Instances of the app kept warm for a next request (reuse on).",
            Kind::Gauge,
        );
        for (a, route) in &http {
            out.sample(
                &[("app", &a.name), ("host", host)],
                u64::from(route.warm().0),
            );
        }

        let messages: Vec<_> = apps
            .iter()
            .filter(|a| a.status.kind == AppKind::Message)
            .map(|a| (a, rt.message_metrics_of(&a.name)))
            .collect();
        let counters: [(&str, &str, Count); 3] = [
            (
                "cranefleet_messages_handled_total",
                "Messages the app handled successfully on this host.",
                |m| m.handled.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "cranefleet_messages_failed_total",
                "Failed attempts to handle a message on this host (each retry counts).",
                |m| m.failed.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "cranefleet_messages_dead_lettered_total",
                "Messages this host moved to STREAM:dead after their last attempt.",
                |m| m.dead_lettered.load(std::sync::atomic::Ordering::Relaxed),
            ),
        ];
        for (name, help, get) in counters {
            out.family(name, help, Kind::Counter);
            for (a, m) in &messages {
                let n = m.as_deref().map(get).unwrap_or(0);
                out.sample(&[("app", &a.name), ("host", host)], n);
            }
        }
        out.family(
            "cranefleet_messages_pending",
            "Messages of the app's stream its group has not handled (never delivered, or not acknowledged), as last asked; absent while unknown.",
            Kind::Gauge,
        );
        for (a, _) in &messages {
            if let Some(p) = a.status.messages.as_ref().and_then(|m| m.pending) {
                out.sample(&[("app", &a.name), ("host", host)], p);
            }
        }

        if let Some(t) = &self.tunnel {
            let labels = [("host", host), ("gateway", t.gateway.as_str())];
            out.family(
                "cranefleet_gateway_tunnel_up",
                "1 while this host's tunnel to its gateway is open and joined, 0 otherwise.",
                Kind::Gauge,
            )
            .sample(&labels, t.is_up());
            out.family(
                "cranefleet_gateway_tunnel_joins_total",
                "Times the gateway welcomed this host since the agent started (reconnects included).",
                Kind::Counter,
            )
            .sample(&labels, t.joins());
        }
    }
}
