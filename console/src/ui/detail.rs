//! One app: a summary line, its releases, and its instances per host.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::table::{self, Col, Spec, TCell, col, text_col};
use super::{ago, pane, state_style, theme};
use crate::app::App;

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

fn plain(s: impl Into<String>) -> TCell {
    (s.into(), Style::new())
}

/// `sha256:0123456789ab`: enough of a digest to tell releases apart.
fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", hex.get(..12).unwrap_or(hex))
}

pub(crate) fn draw(app: &App, f: &mut Frame, area: Rect) {
    let t = theme(app);
    let Some(d) = app.detail() else { return };
    let row = app.apps.iter().find(|r| r.app == d.app);
    let [summary, rel_area, inst_area] = {
        let n = d.releases.as_ref().map_or(1, Vec::len) as u16;
        let rel_h = (n + 2).min((area.height.saturating_sub(1)) / 2).max(3);
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(rel_h),
            Constraint::Fill(1),
        ])
        .areas(area)
    };

    let line = match row {
        Some(r) => {
            let release = r
                .release
                .map(|v| format!("{v} active"))
                .unwrap_or_else(|| "no active release".into());
            let mut spans = vec![
                Span::styled(r.app.clone(), t.title()),
                Span::raw(format!(
                    "  {}  {release}  {}/{} replicas running  state ",
                    r.kind, r.running, r.replicas
                )),
                Span::styled(r.state.clone(), state_style(t, &r.state)),
            ];
            if let Some(detail) = &r.detail {
                spans.push(Span::raw(format!(": {detail}")));
            }
            Line::from(spans)
        }
        None => Line::from(vec![
            Span::styled(d.app.clone(), t.title()),
            Span::raw("  (not in the last snapshot)"),
        ]),
    };
    f.render_widget(Paragraph::new(line), summary);

    let releases: Vec<Vec<TCell>> = d
        .releases
        .iter()
        .flatten()
        .map(|r| {
            vec![
                plain(r.version.to_string()),
                (r.state.to_string(), state_style(t, r.state.as_str())),
                plain(short_digest(&r.digest)),
                plain(ago(app, &r.created)),
                plain(&r.by),
                plain(if r.kept { "yes" } else { "no" }),
                plain(r.detail.clone().unwrap_or_default()),
            ]
        })
        .collect();
    table::draw(
        Spec {
            block: pane(t, format!("releases of {}", d.app)),
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
        rel_area,
    );

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
            vec![
                plain(host),
                plain(r.instance.clone().unwrap_or_else(|| "-".into())),
                plain(
                    r.release
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                (r.state.clone(), state_style(t, &r.state)),
                plain(r.restarts.to_string()),
                plain(
                    r.started
                        .as_deref()
                        .map(|s| ago(app, s))
                        .unwrap_or_else(|| "-".into()),
                ),
                plain(
                    r.next_run
                        .clone()
                        .or_else(|| r.detail.clone())
                        .unwrap_or_default(),
                ),
            ]
        })
        .collect();
    let n = d.instances.as_ref().map_or(0, Vec::len);
    table::draw(
        Spec {
            block: pane(t, format!("instances per host ({n})")),
            cols: INSTANCE_COLS,
            rows: instances,
            selected: Some(d.instance_sel),
            focused: d.instances_focused,
            empty: if d.instances.is_none() {
                "loading instances…"
            } else {
                "no instances running"
            },
        },
        t,
        f,
        inst_area,
    );
}
