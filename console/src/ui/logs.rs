//! The live tail of one app across hosts.
//!
//! A frame reads only the rows on screen from the buffer and writes them
//! straight into the frame's cells, cut to the width: the cost of a frame
//! depends on the size of the window, not on the million lines behind it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;
use schema::Stream;

use super::cut::ellipsize;
use super::{Theme, pane, theme};
use crate::app::App;
use crate::logs::LogLine;

/// From this width each line shows its time.
const TIME_FROM: u16 = 60;
/// From this width each line also shows its release and instance.
const ORIGIN_FROM: u16 = 120;

fn stream_tag(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
        Stream::System => "sys",
        Stream::Message => "msg",
        Stream::Access => "acc",
    }
}

fn title(app: &App) -> String {
    let logs = app.logs();
    let name = app.logs_app().unwrap_or("-");
    let mut t = format!("logs {name}");
    if let Some(w) = &app.logs_where {
        t.push_str(&format!(" where {w}"));
    }
    if logs.is_paused() {
        t.push_str(" | PAUSED");
        if logs.unseen() > 0 {
            t.push_str(&format!(" +{} new", logs.unseen()));
        }
    } else {
        t.push_str(" | following");
    }
    match logs.filter() {
        Some(f) => t.push_str(&format!(
            " | /{} {} of {}",
            f.describe(),
            logs.len(),
            logs.total()
        )),
        None if logs.total() == 1 => t.push_str(" | 1 line"),
        None => t.push_str(&format!(" | {} lines", logs.total())),
    }
    if logs.h_offset > 0 {
        t.push_str(&format!(" | col +{}", logs.h_offset));
    }
    t
}

pub(crate) fn draw(app: &App, f: &mut Frame, area: Rect) {
    let t = theme(app);
    let block = pane(t, title(app), area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let logs = app.logs();
    if logs.is_empty() {
        let msg = match (logs.filter(), app.logs_app()) {
            (Some(fl), _) if logs.total() > 0 => format!(
                "no line matches /{}  (Esc clears the filter)",
                fl.describe()
            ),
            (_, Some(a)) => format!("waiting for log lines of {a}…"),
            _ => "no app selected".into(),
        };
        f.render_widget(Paragraph::new(Span::styled(msg, t.dim())), inner);
        return;
    }
    let rows = usize::from(inner.height);
    let host_w = logs.host_width;
    for (y, line) in logs.visible(rows).enumerate() {
        draw_line(f, t, inner, inner.y + y as u16, line, host_w, logs.h_offset);
    }
}

fn draw_line(
    f: &mut Frame,
    t: Theme,
    area: Rect,
    y: u16,
    l: &LogLine,
    host_w: usize,
    h_offset: usize,
) {
    let buf = f.buffer_mut();
    let right = area.right();
    let mut x = area.x;
    let mut put = |x: &mut u16, s: &str, width: usize, style: Style| {
        if *x >= right {
            return;
        }
        let room = width.min(usize::from(right - *x));
        let shown = ellipsize(s, u16::try_from(room).unwrap_or(u16::MAX));
        buf.set_stringn(*x, y, shown.as_ref(), room, style);
        *x = (*x as usize + width + 1).min(usize::from(right)) as u16;
    };
    if area.width >= TIME_FROM {
        put(&mut x, l.time_str(), 12, t.dim());
    }
    put(&mut x, &l.host, host_w, Style::new());
    if area.width >= ORIGIN_FROM {
        let release = l
            .release
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        put(&mut x, &release, 4, t.dim());
        put(&mut x, &l.instance, 12, t.dim());
    }
    let (tag, style) = match l.stream {
        Stream::Stdout => (stream_tag(l.stream), Style::new()),
        Stream::Stderr => (stream_tag(l.stream), t.bad()),
        Stream::System => (stream_tag(l.stream), t.warn()),
        Stream::Message | Stream::Access => (stream_tag(l.stream), t.dim()),
    };
    put(&mut x, tag, 3, style);
    let text: &str = match l.text.char_indices().nth(h_offset) {
        Some((b, _)) => &l.text[b..],
        None if h_offset == 0 => &l.text,
        None => "",
    };
    let room = right.saturating_sub(x);
    // Cut at the right edge with `…`; → scrolls to the rest.
    buf.set_stringn(
        x,
        y,
        ellipsize(text, room).as_ref(),
        usize::from(room),
        Style::new(),
    );
    let room = usize::from(room);
    if l.partial && text.chars().count() < room {
        let end = x + text.chars().count() as u16;
        buf.set_stringn(
            end,
            y,
            " …",
            usize::from(right.saturating_sub(end)),
            t.dim(),
        );
    }
}
