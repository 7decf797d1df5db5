//! One host: a summary line, and the apps and instances placed on it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use super::cut::one_line;
use super::detail::instance_row;
use super::overview::{mem, row_detail};
use super::table::{self, Col, Spec, TCell, col, plain, text_col};
use super::{Tone, ago, pane, theme, toned};
use crate::app::App;

const COLS: &[Col] = &[
    col("APP", 20, 0),
    col("KIND", 7, 3),
    col("INSTANCE", 16, 1),
    col("RELEASE", 7, 0),
    col("STATE", 9, 0),
    col("RESTARTS", 8, 2),
    col("STARTED", 10, 3),
    text_col("DETAIL", 10, 60, 4),
];

pub(crate) fn draw(app: &App, f: &mut Frame, area: Rect) {
    let t = theme(app);
    let Some(h) = app.host_view.as_ref() else {
        return;
    };
    let [summary, rest] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let line = match app.hosts.iter().find(|r| r.name == h.name) {
        Some(r) => {
            let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Line::from(vec![
                Span::styled(r.name.clone(), t.title()),
                Span::raw("  "),
                Span::styled(r.state.to_string(), r.state.tone(t)),
                Span::raw(format!(
                    "  {}  last seen {}  {} apps  {} instances  {} in use{}",
                    r.arch,
                    ago(app, &r.last_seen),
                    r.apps,
                    r.instances,
                    mem(r.memory_bytes),
                    if labels.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", labels.join(","))
                    }
                )),
            ])
        }
        None => Line::from(vec![
            Span::styled(h.name.clone(), t.title()),
            Span::raw("  (not in the last snapshot)"),
        ]),
    };
    one_line(f, line, summary);
    let mut last_app = "";
    let rows: Vec<Vec<TCell>> = h
        .rows(&app.apps)
        .into_iter()
        .map(|(a, inst)| {
            // Group by app: name the app on its first row only.
            let (name, kind) = if a.app == last_app {
                (String::new(), "")
            } else {
                (a.app.clone(), a.kind.as_str())
            };
            last_app = &a.app;
            match inst {
                // The app view's instance row, the app in place of the host.
                Some(i) => [plain(name), plain(kind)]
                    .into_iter()
                    .chain(instance_row(app, t, String::new(), i).into_iter().skip(1))
                    .collect(),
                None => {
                    let why = if !h.instances.contains_key(&a.app) {
                        "loading instances…".to_string()
                    } else if a.kind == schema::AppKind::Http {
                        "none in flight now".to_string()
                    } else {
                        row_detail(app, a).unwrap_or_else(|| "no instance here now".into())
                    };
                    vec![
                        plain(name),
                        plain(kind),
                        plain("-"),
                        plain(a.release.map_or_else(|| "-".into(), |v| v.to_string())),
                        toned(t, a.state),
                        plain(a.restarts.to_string()),
                        plain("-"),
                        plain(why),
                    ]
                }
            }
        })
        .collect();
    let n: usize = h.instances.values().map(Vec::len).sum();
    table::draw(
        Spec {
            block: pane(
                t,
                format!("apps ({}) and instances ({n}) on {}", h.apps.len(), h.name),
                rest.width,
            ),
            cols: COLS,
            rows,
            selected: Some(h.sel),
            focused: true,
            empty: "no apps placed on this host",
        },
        t,
        f,
        rest,
    );
}
