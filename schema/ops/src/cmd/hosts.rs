//! `hosts`: the hosts and what they run (a single host lists itself).

use schema::HostRow;
use schema::render::Style;

pub fn text(rows: &[HostRow], style: Style) -> String {
    schema::render::hosts_styled(rows, schema::time::now_millis(), style)
}
