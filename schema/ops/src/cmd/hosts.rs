//! `hosts`: the hosts and what they run (a single host lists itself).

use schema::HostRow;

pub fn text(rows: &[HostRow]) -> String {
    schema::render::hosts(rows, schema::time::now_millis())
}
