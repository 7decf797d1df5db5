//! Who did what, when, from which key: newest first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;

use super::table::{self, Col, Spec, TCell, col, text_col};
use super::{pane, theme};
use crate::app::App;

const COLS: &[Col] = &[
    col("TIME", 19, 0),
    col("KEY", 20, 1),
    col("ACTION", 15, 0),
    col("APP", 20, 0),
    text_col("DETAIL", 8, 80, 2),
];

/// `2026-01-02 10:11:12` from RFC 3339: seconds are enough to read an audit
/// log, and the date stays because audit entries are old.
fn when(t: &str) -> String {
    match (t.get(..10), t.get(11..19)) {
        (Some(d), Some(h)) => format!("{d} {h}"),
        _ => t.to_string(),
    }
}

pub(crate) fn draw(app: &App, f: &mut Frame, area: Rect) {
    let t = theme(app);
    let plain = |s: String| -> TCell { (s, Style::new()) };
    let events: Vec<schema::AuditEntry> = app.events.iter().rev().cloned().collect();
    let source: Option<&Vec<schema::AuditEntry>> = if app.events_only {
        Some(&events)
    } else {
        app.audit.as_ref()
    };
    let rows: Vec<Vec<TCell>> = source
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                plain(when(&e.time)),
                plain(e.key.clone()),
                (e.action.clone(), t.title()),
                plain(e.app.clone().unwrap_or_else(|| "-".into())),
                plain(e.detail.clone()),
            ]
        })
        .collect();
    let n = rows.len();
    table::draw(
        Spec {
            block: pane(
                t,
                if app.events_only {
                    format!("events ({n}, newest first; a: the whole audit log)")
                } else {
                    format!("audit ({n}, newest first)")
                },
                area.width,
            ),
            cols: COLS,
            rows,
            selected: Some(app.audit_sel),
            focused: true,
            empty: if app.events_only {
                "no events: no auto-rollback, crash loop, host down or failed deploy"
            } else if app.audit.is_none() {
                "loading the audit log…"
            } else {
                "nothing has happened yet"
            },
        },
        t,
        f,
        area,
    );
}
