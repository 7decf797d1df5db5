//! `releases APP`: every release, newest first.

use schema::ReleaseRow;
use schema::render::Style;

pub fn text(rows: &[ReleaseRow], style: Style) -> String {
    schema::render::releases_styled(rows, schema::time::now_millis(), style)
}
