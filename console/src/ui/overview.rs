//! The first screen: hosts and apps at a glance.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::cut::one_line;
use super::table::{self, Col, Spec, TCell, col, plain, text_col};
use super::{ago, pane, theme, toned};
use crate::app::App;

const HOST_COLS: &[Col] = &[
    col("NAME", 20, 0),
    col("STATE", 5, 0),
    col("ARCH", 7, 3),
    col("LAST SEEN", 10, 1),
    col("APPS", 4, 4),
    col("INSTANCES", 9, 2),
    col("MEMORY", 8, 2),
    text_col("LABELS", 10, 40, 5),
];

const APP_COLS: &[Col] = &[
    col("APP", 20, 0),
    col("KIND", 7, 2),
    col("RELEASE", 7, 0),
    col("RUN/WANT", 8, 0),
    col("STATE", 9, 1),
    col("RESTARTS", 8, 3),
    col("REQ/S", 7, 3),
    col("ERR%", 6, 4),
    col("P99", 8, 5),
    col("HOSTS", 24, 5),
    text_col("DETAIL", 10, 60, 4),
];

/// A row's DETAIL: for a job, when it runs next, relative, and how the
/// last run ended (the ISO time is in `ps --json`); otherwise its detail.
pub(crate) fn row_detail(app: &App, r: &schema::PsRow) -> Option<String> {
    let Some(n) = &r.next_run else {
        return r.detail.clone();
    };
    let when = schema::time::parse_rfc3339(n)
        .map(|t| schema::time::until(t, app.now_ms))
        .unwrap_or_else(|| n.clone());
    Some(match &r.detail {
        Some(last) => format!("next run {when}; last: {last}"),
        None => format!("next run {when}"),
    })
}

/// Memory as people read it in a narrow column: `512Mi`, `3.2Gi`.
pub(crate) fn mem(bytes: u64) -> String {
    let mi = bytes as f64 / (1024.0 * 1024.0);
    if mi >= 1024.0 {
        format!("{:.1}Gi", mi / 1024.0)
    } else {
        format!("{}Mi", mi.round() as u64)
    }
}

pub(crate) fn draw(app: &App, f: &mut Frame, area: Rect) {
    // Hosts get what they need up to a third of the screen; apps the rest.
    // When short, hosts shrink to one summary line: the apps are what the
    // single keys act on.
    let want = app.hosts.len().max(1) as u16 + 2;
    let short = area.height < 10;
    let hosts_h = if short {
        1
    } else {
        want.min((area.height / 3).max(3))
    };
    let [hosts_area, apps_area] =
        Layout::vertical([Constraint::Length(hosts_h), Constraint::Fill(1)]).areas(area);
    if short {
        hosts_summary(app, f, hosts_area);
    } else {
        hosts_table(app, f, hosts_area);
    }
    apps_table(app, f, apps_area);
}

/// `hosts 1/2 up; down: host-b`, for windows too short for the table.
fn hosts_summary(app: &App, f: &mut Frame, area: Rect) {
    let t = theme(app);
    let down: Vec<&str> = app
        .hosts
        .iter()
        .filter(|h| h.state != schema::HostState::Up)
        .map(|h| h.name.as_str())
        .collect();
    let mut spans = vec![Span::styled(
        format!(
            " hosts {}/{} up",
            app.hosts.len() - down.len(),
            app.hosts.len()
        ),
        t.title(),
    )];
    if !down.is_empty() {
        spans.push(Span::styled(
            format!("; down: {}", down.join(", ")),
            t.bad(),
        ));
    }
    one_line(f, Line::from(spans), area);
}

fn hosts_table(app: &App, f: &mut Frame, hosts_area: Rect) {
    let t = theme(app);
    let hosts_h = hosts_area.height;

    let host_rows: Vec<Vec<TCell>> = app
        .hosts
        .iter()
        .map(|h| {
            let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                plain(&h.name),
                toned(t, h.state),
                plain(&h.arch),
                plain(ago(app, &h.last_seen)),
                plain(h.apps.to_string()),
                plain(h.instances.to_string()),
                plain(mem(h.memory_bytes)),
                plain(labels.join(",")),
            ]
        })
        .collect();
    let shown = usize::from(hosts_h.saturating_sub(2));
    let more = app.hosts.len().saturating_sub(shown);
    let title = if more > 0 && !app.overview.hosts_focused {
        format!("hosts ({}, {more} more: Tab)", app.hosts.len())
    } else {
        format!("hosts ({})", app.hosts.len())
    };
    table::draw(
        Spec {
            block: pane(t, title, hosts_area.width),
            cols: HOST_COLS,
            rows: host_rows,
            selected: app.overview.hosts_focused.then_some(app.overview.host_sel),
            focused: app.overview.hosts_focused,
            empty: "no hosts have joined yet",
        },
        t,
        f,
        hosts_area,
    );
}

fn apps_table(app: &App, f: &mut Frame, apps_area: Rect) {
    let t = theme(app);
    let app_rows: Vec<Vec<TCell>> = app
        .apps
        .iter()
        .map(|r| {
            // Only a worker runs a fixed number of instances: an http or
            // message app's are per request, up to its replicas.
            let short = r.kind == schema::AppKind::Worker && r.running < r.replicas;
            let rate = app
                .rates
                .get(&r.app)
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into());
            let detail = row_detail(app, r)
                .or_else(|| r.messages.as_ref().map(schema::MessageStats::summary));
            vec![
                plain(&r.app),
                plain(r.kind.as_str()),
                plain(
                    r.release
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                (
                    format!("{}/{}", r.running, r.replicas),
                    if short { t.warn() } else { Style::new() },
                ),
                toned(t, r.state),
                plain(r.restarts.to_string()),
                plain(rate),
                match &r.requests {
                    Some(q) if q.requests > 0 => (
                        format!("{:.1}%", q.error_rate * 100.0),
                        if q.errors > 0 { t.bad() } else { Style::new() },
                    ),
                    _ => plain("-"),
                },
                match &r.requests {
                    Some(q) if q.requests > 0 => plain(format!("{:.1}ms", q.p99_ms)),
                    _ => plain("-"),
                },
                plain(if r.host.is_empty() {
                    "-".to_string()
                } else {
                    r.host.clone()
                }),
                plain(detail.unwrap_or_default()),
            ]
        })
        .collect();
    table::draw(
        Spec {
            block: pane(t, format!("apps ({})", app.apps.len()), apps_area.width),
            cols: APP_COLS,
            rows: app_rows,
            selected: (!app.apps.is_empty()).then_some(app.overview.app_sel),
            focused: !app.overview.hosts_focused,
            empty: "no apps yet: hostd deploy APP FILE.wasm",
        },
        t,
        f,
        apps_area,
    );
}
