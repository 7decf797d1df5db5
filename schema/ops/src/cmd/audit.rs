//! `audit [--tail N]`: who did what, when.

use schema::AuditEntry;

pub fn text(rows: &[AuditEntry]) -> String {
    schema::render::audit(rows)
}
