//! The console's screen arithmetic: how many rows each part gets at a
//! given terminal size. Pure numbers, so the app (scroll bounds, page
//! size) and the drawing code (`ui`) agree without either importing the
//! other.

/// Below this the console only says it needs more room.
pub const MIN_WIDTH: u16 = 32;
pub const MIN_HEIGHT: u16 = 7;

/// Whether the key hints line is drawn (dropped on short terminals).
pub fn has_hints(height: u16) -> bool {
    height >= 12
}

/// Rows between the header and the status line.
pub fn body_height(width: u16, height: u16) -> usize {
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return 0;
    }
    usize::from(height) - 2 - usize::from(has_hints(height))
}

/// Rows the progress panel takes from a body of `body` rows, when an
/// operation over `hosts` hosts is on screen: its two borders (the title in
/// the top one), the note or outcome, one row per host; never more than
/// half the body.
pub fn ops_height(hosts: Option<usize>, body: u16) -> u16 {
    let Some(hosts) = hosts else {
        return 0;
    };
    let want = 3u16.saturating_add(hosts.max(1).min(usize::from(u16::MAX)) as u16);
    want.min(body / 2)
}

/// Rows of log lines the logs view shows at this size (the body minus the
/// progress panel and the title rule).
pub fn logs_rows(width: u16, height: u16, op_hosts: Option<usize>) -> usize {
    let body = body_height(width, height) as u16;
    let ops = ops_height(op_hosts, body);
    usize::from(body.saturating_sub(ops).saturating_sub(1)).max(1)
}

/// How far a list of `lines` lines in a bordered box filling the body can
/// scroll (the `?` key list).
/// The width inside the `?` panel's borders on a `width`-column screen.
pub fn help_inner_width(width: u16) -> u16 {
    width.min(HELP_WIDTH).saturating_sub(2)
}

/// The `?` panel is at most this wide.
pub const HELP_WIDTH: u16 = 90;

pub fn help_max_scroll(lines: usize, width: u16, height: u16) -> u16 {
    let body = body_height(width, height) as u16;
    (lines.min(usize::from(u16::MAX)) as u16).saturating_sub(body.saturating_sub(2))
}
