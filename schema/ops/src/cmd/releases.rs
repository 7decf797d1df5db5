//! `releases APP`: every release, newest first.

use schema::ReleaseRow;

pub fn text(rows: &[ReleaseRow]) -> String {
    schema::render::releases(rows, schema::time::now_millis())
}
