//! `ps [APP]`: apps, or one app's instances.

use schema::PsRow;
use schema::render::Style;

pub fn text(rows: &[PsRow], instances: bool, style: Style) -> String {
    schema::render::ps_styled(rows, instances, style)
}
