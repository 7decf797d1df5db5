//! `watch`: the fleet as it changes.

use schema::WatchSnapshot;

/// A snapshot without `--json`: the hosts table, then the apps table.
pub fn text(s: &WatchSnapshot) -> String {
    let now = schema::time::now_millis();
    format!(
        "{}\n{}\n",
        schema::render::hosts(&s.hosts, now),
        schema::render::ps(&s.apps, false)
    )
}
