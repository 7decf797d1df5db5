//! One app: a summary line, its releases, and its instances per host.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use super::cut::one_line;
use super::table::{self, Col, Spec, TCell, col, plain, text_col};
use super::{Theme, Tone, ago, pane, theme, toned};
use crate::app::{App, Detail};
use schema::PsRow;

const RELEASE_COLS: &[Col] = &[
    col("VERSION", 7, 0),
    col("STATE", 10, 0),
    col("DIGEST", 19, 2),
    col("CREATED", 10, 1),
    col("BY", 20, 1),
    col("KEPT", 4, 3),
    text_col("DETAIL", 10, 60, 4),
];

const INSTANCE_COLS: &[Col] = &[
    col("HOST", 20, 0),
    col("INSTANCE", 16, 1),
    col("RELEASE", 7, 0),
    col("STATE", 9, 0),
    col("RESTARTS", 8, 2),
    col("STARTED", 10, 3),
    text_col("DETAIL", 10, 60, 4),
];

/// `sha256:0123456789ab`: enough of a digest to tell releases apart.
fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", hex.get(..12).unwrap_or(hex))
}

pub(crate) fn draw(app: &App, f: &mut Frame, area: Rect) {
    let t = theme(app);
    let Some(d) = app.detail() else { return };
    // An app that serves requests (or messages) gets a line of sparklines.
    let serves = app
        .apps
        .iter()
        .any(|r| r.app == d.app && r.requests.is_some());
    let [summary, trend, rel_area, inst_area] = {
        let n = d.releases.as_ref().map_or(1, Vec::len) as u16;
        let rel_h = (n + 2).min((area.height.saturating_sub(2)) / 2).max(3);
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(u16::from(serves)),
            Constraint::Length(rel_h),
            Constraint::Fill(1),
        ])
        .areas(area)
    };
    one_line(f, summary_line(app, d, t), summary);
    if serves {
        one_line(f, trend_line(app, &d.app, t, trend.width), trend);
    }
    draw_releases(app, d, t, f, rel_area);
    draw_instances(app, d, t, f, inst_area);
}

/// The app's row of the last snapshot, in one line.
fn summary_line(app: &App, d: &Detail, t: Theme) -> Line<'static> {
    let Some(r) = app.apps.iter().find(|r| r.app == d.app) else {
        return Line::from(vec![
            Span::styled(d.app.clone(), t.title()),
            Span::raw("  (not in the last snapshot)"),
        ]);
    };
    let release = r
        .release
        .map(|v| format!("{v} active"))
        .unwrap_or_else(|| "no active release".into());
    let mut spans = vec![
        Span::styled(r.app.clone(), t.title()),
        Span::raw(format!(
            "  {}  {release}  {}  state ",
            r.kind,
            match r.kind {
                // Instances per request (or message): what runs now of
                // what may, not a shortfall.
                schema::AppKind::Http => format!(
                    "{}/{} in flight (an instance per request)",
                    r.running, r.replicas
                ),
                schema::AppKind::Message => format!(
                    "{}/{} handlers busy (an instance per message)",
                    r.running, r.replicas
                ),
                _ => format!("{}/{} replicas running", r.running, r.replicas),
            }
        )),
        Span::styled(r.state.to_string(), r.state.tone(t)),
    ];
    let detail = r
        .detail
        .clone()
        .or_else(|| r.messages.as_ref().map(schema::MessageStats::summary));
    if let Some(detail) = detail {
        spans.push(Span::raw(format!(": {detail}")));
    }
    Line::from(spans)
}

/// `▁▂▃▅▇`: `values` scaled to their own maximum, the last `width` of them.
pub(crate) fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().copied().fold(0.0f64, f64::max);
    shown
        .iter()
        .map(|v| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// `req/s ▁▂▅▇ 12.3  p99 ▁▁▂ 4.1ms  errors ▁▁▅ 2 (1.5%)`: the app's
/// requests over the snapshots since the console opened, now at the right.
fn trend_line(app: &App, name: &str, t: Theme, width: u16) -> Line<'static> {
    let samples = app.trend(name);
    let row = app.apps.iter().find(|r| r.app == name);
    let now_rps = row.and_then(|r| r.rps).unwrap_or(0.0);
    let q = row.and_then(|r| r.requests.clone()).unwrap_or_default();
    // Three sparklines share the width left by the labels and figures.
    let room = usize::from(width).saturating_sub(48) / 3;
    let room = room.clamp(4, 40);
    let rps: Vec<f64> = samples.iter().map(|s| s.rps).collect();
    let p99: Vec<f64> = samples.iter().map(|s| s.p99_ms).collect();
    let errs: Vec<f64> = samples.iter().map(|s| s.errors_per_s).collect();
    let now_errs = samples.last().map_or(0.0, |s| s.errors_per_s);
    let err_style = if now_errs > 0.0 { t.bad() } else { t.dim() };
    Line::from(vec![
        Span::styled("req/s ", t.dim()),
        Span::styled(sparkline(&rps, room), t.good()),
        Span::raw(format!(" {now_rps:.1}  ")),
        Span::styled("p99 ", t.dim()),
        Span::styled(sparkline(&p99, room), t.warn()),
        Span::raw(format!(" {:.1}ms  ", q.p99_ms)),
        Span::styled("errors/s ", t.dim()),
        Span::styled(sparkline(&errs, room), err_style),
        Span::raw(format!(
            " {now_errs:.1}  ({} in the last min, {:.1}%)",
            q.errors,
            q.error_rate * 100.0
        )),
    ])
}

/// A release's detail and, when it has any, the network it may reach.
fn release_detail(r: &schema::ReleaseRow) -> String {
    let grants = (!r.grants.is_empty()).then(|| format!("grants {}", r.grants.join(" ")));
    [r.detail.clone(), grants]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

fn draw_releases(app: &App, d: &Detail, t: Theme, f: &mut Frame, area: Rect) {
    let releases: Vec<Vec<TCell>> = d
        .releases
        .iter()
        .flatten()
        .map(|r| {
            vec![
                plain(r.version.to_string()),
                toned(t, r.state),
                plain(short_digest(&r.digest)),
                plain(ago(app, &r.created)),
                plain(&r.by),
                plain(if r.kept { "yes" } else { "no" }),
                plain(release_detail(r)),
            ]
        })
        .collect();
    table::draw(
        Spec {
            block: pane(t, format!("releases of {}", d.app), area.width),
            cols: RELEASE_COLS,
            rows: releases,
            selected: Some(d.release_sel),
            focused: !d.instances_focused,
            empty: if d.releases.is_none() {
                "loading releases…"
            } else {
                "no releases"
            },
        },
        t,
        f,
        area,
    );
}

fn draw_instances(app: &App, d: &Detail, t: Theme, f: &mut Frame, area: Rect) {
    let mut last_host = "";
    let instances: Vec<Vec<TCell>> = d
        .instances
        .iter()
        .flatten()
        .map(|r| {
            // Group by host: name the host on its first row only.
            let host = if r.host == last_host {
                String::new()
            } else {
                r.host.clone()
            };
            last_host = &r.host;
            instance_row(app, t, host, r)
        })
        .collect();
    let n = d.instances.as_ref().map_or(0, Vec::len);
    table::draw(
        Spec {
            block: pane(t, format!("instances per host ({n})"), area.width),
            cols: INSTANCE_COLS,
            rows: instances,
            selected: Some(d.instance_sel),
            focused: d.instances_focused,
            empty: if d.instances.is_none() {
                "loading instances…"
            } else if app
                .apps
                .iter()
                .any(|r| r.app == d.app && r.kind == schema::AppKind::Http)
            {
                "none in flight now: an http app's instances start per request"
            } else {
                "no instances running"
            },
        },
        t,
        f,
        area,
    );
}

/// One instance's cells; `host` is empty below the host's first row.
pub(crate) fn instance_row(app: &App, t: Theme, host: String, r: &PsRow) -> Vec<TCell> {
    let or_dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    vec![
        plain(host),
        plain(or_dash(r.instance.clone())),
        plain(or_dash(r.release.map(|v| v.to_string()))),
        toned(t, r.state),
        plain(r.restarts.to_string()),
        plain(or_dash(r.started.as_deref().map(|s| ago(app, s)))),
        plain(super::overview::row_detail(app, r).unwrap_or_default()),
    ]
}
