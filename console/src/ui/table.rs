//! Tables that fit the width they get.
//!
//! Each column has a priority; when the columns do not fit, the least
//! important go first (LABELS before LAST SEEN before NAME), and the last
//! shown column takes the room left. Cells too long for their column end in
//! `…` so a cut is visible.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::Theme;
use super::cut::ellipsize;

/// One column: its title, how wide it may get, and how much it matters
/// (0 = always shown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Col {
    pub title: &'static str,
    pub max: u16,
    pub priority: u8,
    /// A free-text column may shrink to this width (cut with `…`) to stay
    /// on screen; 0 means it shows whole or not at all.
    pub min: u16,
}

pub(crate) const fn col(title: &'static str, max: u16, priority: u8) -> Col {
    Col {
        title,
        max,
        priority,
        min: 0,
    }
}

/// A free-text column (detail, labels) that may be cut to `min`.
pub(crate) const fn text_col(title: &'static str, min: u16, max: u16, priority: u8) -> Col {
    Col {
        title,
        max,
        priority,
        min,
    }
}

/// A cell's text and style.
pub(crate) type TCell = (String, Style);

/// A cell in the default style.
pub(crate) fn plain(s: impl Into<String>) -> TCell {
    (s.into(), Style::new())
}

/// What a table draws: rows of cells (one per column), the selected row and
/// whether the keyboard is on this table.
pub(crate) struct Spec<'a> {
    pub block: Block<'a>,
    pub cols: &'a [Col],
    pub rows: Vec<Vec<TCell>>,
    pub selected: Option<usize>,
    pub focused: bool,
    /// Said instead of the table when there are no rows.
    pub empty: &'a str,
}

const SPACING: u16 = 1;
/// Width of the `> ` marker in front of the selected row.
const MARK: u16 = 2;

/// Which columns to show and how wide, for this content and width.
pub(crate) fn fit(cols: &[Col], rows: &[Vec<TCell>], width: u16) -> Vec<(usize, u16)> {
    let natural: Vec<u16> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|(s, _)| s.chars().count())
                .max()
                .unwrap_or(0);
            (widest.max(c.title.len()) as u16).min(c.max).max(1)
        })
        .collect();
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| (cols[i].priority, i));
    let mut shown: Vec<Option<u16>> = vec![None; cols.len()];
    let mut used = MARK;
    for i in order {
        let gap = if used > MARK { SPACING } else { 0 };
        let room = width.saturating_sub(used + gap);
        let w = if natural[i] <= room {
            natural[i]
        } else if cols[i].min > 0 && room >= cols[i].min {
            room
        } else if cols[i].priority == 0 && room >= 3 {
            // Columns that must show get whatever is left, however narrow.
            room
        } else {
            continue;
        };
        shown[i] = Some(w);
        used += gap + w;
    }
    let mut out: Vec<(usize, u16)> = shown
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.map(|w| (i, w)))
        .collect();
    // Squeeze from the right if the must-show columns overflowed, then let
    // the last column take what is left.
    let total = |o: &Vec<(usize, u16)>| {
        o.iter().map(|c| c.1).sum::<u16>() + SPACING * o.len().saturating_sub(1) as u16
    };
    while total(&out) + MARK > width {
        let Some(wide) = out.iter_mut().rev().find(|c| c.1 > 3) else {
            break;
        };
        wide.1 -= 1;
    }
    let spare = width.saturating_sub(total(&out) + MARK);
    if let Some(last) = out.last_mut() {
        last.1 += spare;
    }
    out
}

pub(crate) fn draw(spec: Spec<'_>, t: Theme, f: &mut Frame, area: Rect) {
    let inner = spec.block.inner(area);
    if spec.rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(spec.empty, t.dim()))).block(spec.block),
            area,
        );
        return;
    }
    let fitted = fit(spec.cols, &spec.rows, inner.width);
    let header = Row::new(
        fitted
            .iter()
            .map(|&(i, w)| Cell::from(ellipsize(spec.cols[i].title, w))),
    )
    .style(t.header());
    let rows = spec.rows.into_iter().map(|r| {
        Row::new(fitted.iter().map(|&(i, w)| {
            let (text, style) = r.get(i).cloned().unwrap_or_default();
            Cell::from(Span::styled(ellipsize(&text, w).into_owned(), style))
        }))
    });
    let widths: Vec<Constraint> = fitted.iter().map(|c| Constraint::Length(c.1)).collect();
    // Selection is reversed and marked with `>` where the keyboard is, and
    // bold where it is not: visible on a monochrome terminal either way.
    let (hl, mark) = if spec.focused {
        (t.selected(), "> ")
    } else {
        (
            Style::new().add_modifier(ratatui::style::Modifier::BOLD),
            "  ",
        )
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(spec.block)
        .column_spacing(SPACING)
        .row_highlight_style(hl)
        .highlight_symbol(mark)
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::new().with_selected(spec.selected);
    f.render_stateful_widget(table, area, &mut state);
}
