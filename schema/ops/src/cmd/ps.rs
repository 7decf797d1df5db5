//! `ps [APP]`: apps, or one app's instances.

use schema::PsRow;

pub fn text(rows: &[PsRow], instances: bool) -> String {
    schema::render::ps(rows, instances)
}
