//! `watch`: the fleet as it changes.

use schema::WatchSnapshot;
use schema::render::Style;

/// A snapshot without `--json`: the hosts table, then the apps table.
pub fn text(s: &WatchSnapshot, style: Style) -> String {
    let now = schema::time::now_millis();
    format!(
        "{}\n{}\n",
        schema::render::hosts_styled(&s.hosts, now, style),
        schema::render::ps_styled(&s.apps, false, style)
    )
}
