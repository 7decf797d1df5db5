//! Text cut to the room it gets, always visibly: whatever the console cuts
//! (a table cell, a pane's title, a line of a panel, a log line's field)
//! ends in `…`, so a shortened value is never mistaken for the whole one.

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// `s` cut to `width` characters, ending in `…` when cut (borrowed when it
/// fits: the logs view calls this for every field of every row it draws).
pub(crate) fn ellipsize(s: &str, width: u16) -> Cow<'_, str> {
    let width = usize::from(width);
    match s.char_indices().nth(width) {
        None => Cow::Borrowed(s),
        Some(_) if width == 0 => Cow::Borrowed(""),
        Some(_) => {
            let mut out: String = s.chars().take(width - 1).collect();
            out.push('…');
            Cow::Owned(out)
        }
    }
}

/// `line` cut to `width` columns, ending in `…` (in the style of the span
/// it cuts) when it does not fit.
pub(crate) fn cut_line(line: Line<'static>, width: u16) -> Line<'static> {
    let width = usize::from(width);
    let total: usize = line.spans.iter().map(|s| s.content.chars().count()).sum();
    if total <= width {
        return line;
    }
    if width == 0 {
        return Line::default().style(line.style);
    }
    // The first `width - 1` characters, then `…` styled as what it stands for.
    let mut left = width - 1;
    let mut spans = Vec::new();
    let mut cut_style = Style::new();
    for s in line.spans {
        let n = s.content.chars().count();
        if n <= left {
            left -= n;
            spans.push(s);
            continue;
        }
        cut_style = s.style;
        if left > 0 {
            let kept: String = s.content.chars().take(left).collect();
            spans.push(Span::styled(kept, s.style));
        }
        break;
    }
    spans.push(Span::styled("…", cut_style));
    Line::from(spans).style(line.style)
}

/// `line` wrapped at spaces into at most `rows` rows of `width` columns
/// (a word longer than a row is split); what does not fit is cut with `…`
/// at the end of the last row.
pub(crate) fn wrap_cut(line: Line<'static>, width: u16, rows: u16) -> Vec<Line<'static>> {
    let (width, rows) = (usize::from(width), usize::from(rows));
    if width == 0 || rows == 0 {
        return Vec::new();
    }
    let chars: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let mut out: Vec<Vec<(char, Style)>> = Vec::new();
    let mut row: Vec<(char, Style)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if row.is_empty() && chars[i].0 == ' ' {
            i += 1;
            continue;
        }
        // A space, or a word up to the next space.
        let end = if chars[i].0 == ' ' {
            i + 1
        } else {
            chars[i..]
                .iter()
                .position(|c| c.0 == ' ')
                .map_or(chars.len(), |p| i + p)
        };
        if row.len() + (end - i) <= width {
            row.extend_from_slice(&chars[i..end]);
            i = end;
        } else if row.is_empty() {
            row.extend_from_slice(&chars[i..i + width]);
            i += width;
        } else {
            out.push(std::mem::take(&mut row));
        }
    }
    if !row.is_empty() {
        out.push(row);
    }
    if out.len() > rows {
        out.truncate(rows);
        if let Some(last) = out.last_mut() {
            let style = last.last().map_or(Style::new(), |c| c.1);
            last.truncate(width - 1);
            last.push(('…', style));
        }
    }
    out.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (c, style) in row {
                match spans.last_mut() {
                    Some(s) if s.style == style => s.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), style)),
                }
            }
            Line::from(spans)
        })
        .collect()
}

/// Draws `line` on the one row of `area`, cut with `…` to its width.
pub(crate) fn one_line(f: &mut Frame, line: Line<'static>, area: Rect) {
    f.render_widget(Paragraph::new(cut_line(line, area.width)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_cut_always_ends_in_an_ellipsis_even_between_spans() {
        assert_eq!(ellipsize("hello.req-21", 12), "hello.req-21");
        assert_eq!(ellipsize("hello.req-21", 8), "hello.r…");
        let l = Line::from(vec![Span::raw("abcd"), Span::styled("efgh", Style::new())]);
        assert_eq!(text(&cut_line(l.clone(), 8)), "abcdefgh");
        assert_eq!(text(&cut_line(l.clone(), 7)), "abcdef…");
        // The cut falls where the first span ends: still marked.
        assert_eq!(text(&cut_line(l.clone(), 5)), "abcd…");
        assert_eq!(text(&cut_line(l.clone(), 4)), "abc…");
        assert_eq!(text(&cut_line(l, 1)), "…");
    }

    #[test]
    fn a_wrapped_line_breaks_at_spaces_and_marks_what_did_not_fit() {
        let l = Line::from(vec![
            Span::styled("error: ", Style::new().bold()),
            Span::raw("api has no release v9; releases api lists them"),
        ]);
        let rows: Vec<String> = wrap_cut(l.clone(), 20, 3)
            .iter()
            .map(|r| text(r).trim_end().to_string())
            .collect();
        assert_eq!(
            rows,
            [
                "error: api has no",
                "release v9; releases",
                "api lists them"
            ]
        );
        let rows: Vec<String> = wrap_cut(l, 20, 2).iter().map(text).collect();
        assert_eq!(rows.len(), 2);
        assert!(
            rows[1].ends_with('…') && rows[1].chars().count() <= 20,
            "{rows:?}"
        );
    }
}
