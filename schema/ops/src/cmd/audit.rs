//! `audit [--tail N]`: who did what, when.

use schema::AuditEntry;
use schema::render::Style;

pub fn text(rows: &[AuditEntry], style: Style) -> String {
    schema::render::audit_styled(rows, style)
}
