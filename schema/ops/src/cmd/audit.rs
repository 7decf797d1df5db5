//! `audit [--tail N]`: who did what, when.

use schema::AuditEntry;
use schema::render::Style;

pub fn text(rows: &[AuditEntry], style: Style) -> String {
    schema::render::audit_styled(rows, style)
}

/// `events`: one line per event, no header (a follow appends to it):
/// `2026-11-30T10:00:00.000Z  auto-rollback  api  v7 -> v6: …`.
pub fn event_lines(rows: &[AuditEntry]) -> String {
    rows.iter()
        .map(|e| {
            format!(
                "{}  {}  {}  {}\n",
                schema::render::cell(&e.time),
                schema::render::cell(&e.action),
                schema::render::cell(e.app.as_deref().unwrap_or("-")),
                schema::render::cell(&e.detail)
            )
        })
        .collect()
}
