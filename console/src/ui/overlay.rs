//! What is drawn over or under a view: the y/n confirmation, the `?` key
//! list, and the progress of the last command per host.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::cut::cut_line;
use super::{Theme, pane, state_style};
use crate::app::App;
use crate::keys::HelpLine;
use crate::ops::{Operation, Pending};

/// The progress panel of `op`. `said_below`: the status line shows its
/// outcome now, so a failure's reason is not said twice on one screen.
pub(crate) fn ops(op: &Operation, said_below: bool, t: Theme, f: &mut Frame, area: Rect) {
    let state = match &op.outcome {
        None => Span::styled("running", t.warn()),
        Some(o) if o.ok => Span::styled("done", t.good()),
        Some(o) => Span::styled(format!("FAILED (exit {})", o.code), t.bad()),
    };
    let block = pane(t, op.title.clone(), area.width);
    let inner = block.inner(area);
    f.render_widget(Clear, area);
    f.render_widget(block, area);
    let host_w = op
        .hosts
        .iter()
        .map(|h| h.host.chars().count())
        .max()
        .unwrap_or(4) as u16;
    let mut lines: Vec<Line> = op
        .hosts
        .iter()
        .map(|h| {
            // A failure is shouted in words, not only in red.
            let (text, style) = match (h.failed, h.state.strip_prefix("failed")) {
                (true, Some(rest)) => (format!("FAILED{rest}"), t.bad()),
                (true, None) => (format!("FAILED: {}", h.state), t.bad()),
                (false, _) => (h.state.clone(), state_style(t, &h.state)),
            };
            Line::from(vec![
                Span::raw(format!("  {:w$}  ", h.host, w = usize::from(host_w))),
                Span::styled(text, style),
            ])
        })
        .collect();
    if op.hosts.is_empty() && op.outcome.is_none() {
        lines.push(Line::from(Span::styled(
            "  waiting for the first host…",
            t.dim(),
        )));
    }
    let last = match (&op.outcome, op.notes.last()) {
        (Some(o), _) if !o.ok && said_below => Line::from(state),
        (Some(o), _) => Line::from(vec![state, Span::raw(": "), Span::raw(o.summary.clone())]),
        (None, Some(n)) => Line::from(vec![state, Span::raw(": "), Span::raw(n.clone())]),
        (None, None) => Line::from(state),
    };
    // The outcome goes first when rows are short: it is what matters most.
    let room = usize::from(inner.height);
    let mut shown = vec![last];
    shown.extend(lines.into_iter().take(room.saturating_sub(1)));
    let shown: Vec<Line> = shown
        .into_iter()
        .map(|l| cut_line(l, inner.width))
        .collect();
    f.render_widget(Paragraph::new(shown), inner);
}

/// A rectangle of at most `w`×`h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(r);
    r
}

pub(crate) fn confirm(p: &Pending, t: Theme, f: &mut Frame, body: Rect) {
    let w = body.width.saturating_sub(4).min(70);
    let question = p.question();
    let inner_w = usize::from(w.saturating_sub(2)).max(1);
    let text_rows = question.chars().count().div_ceil(inner_w) as u16;
    let area = centered(body, w, text_rows + 4);
    let mut keys = vec![
        Span::styled("y", t.key()),
        Span::raw(" yes   "),
        Span::styled("n", t.key()),
        Span::raw(" no"),
    ];
    if matches!(p, Pending::Scale { .. }) {
        keys.extend([
            Span::raw("   "),
            Span::styled("+/-", t.key()),
            Span::raw(" adjust"),
        ]);
    }
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        format!(" confirm {} ", p.command()),
        t.title(),
    ));
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(vec![
            Line::from(question),
            Line::default(),
            Line::from(keys),
        ])
        .wrap(Wrap { trim: true })
        .block(block),
        area,
    );
}

fn help_lines(app: &App, t: Theme) -> Vec<Line<'static>> {
    crate::keys::help_lines(!app.role.may_change(), app.notes(), app.size.0)
        .into_iter()
        .map(|l| match l {
            HelpLine::Note(text) => Line::from(Span::styled(text, t.warn())),
            HelpLine::Text(text) => Line::from(format!("  {text}")),
            HelpLine::Title(text) => Line::from(Span::styled(text, t.header())),
            HelpLine::Entry { key, help } => Line::from(vec![
                Span::styled(format!("  {key}  "), t.key()),
                Span::raw(help),
            ]),
        })
        .collect()
}

pub(crate) fn help(app: &App, scroll: u16, t: Theme, f: &mut Frame, body: Rect) {
    // Clear the whole body: a view peeking out at the sides reads as noise.
    f.render_widget(Clear, body);
    let area = centered(body, body.width.min(crate::layout::HELP_WIDTH), body.height);
    let lines = help_lines(app, t);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" keys (Esc closes) ", t.title()));
    let inner_w = block.inner(area).width;
    // Cut rather than wrap, so scrolling moves by whole entries.
    let lines: Vec<Line> = lines.into_iter().map(|l| cut_line(l, inner_w)).collect();
    let max_scroll = (lines.len() as u16).saturating_sub(block.inner(area).height);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(max_scroll), 0)),
        area,
    );
}
