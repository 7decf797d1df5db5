//! A one-line editor with a cursor, a history and word completion: the
//! `:` prompt and the `/` filter type into it.

use crate::input::Key;

/// A line being typed, with a cursor and a history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEditor {
    text: String,
    /// Cursor position in chars.
    cursor: usize,
    /// Position while walking the history with ↑/↓ (0 = newest).
    history_pos: Option<usize>,
}

/// What a key did to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Submit(String),
    Cancel,
    /// The text or cursor changed (or the key did nothing visible).
    Changed,
    /// Tab: complete the word under the cursor.
    Complete,
}

impl LineEditor {
    pub fn new() -> LineEditor {
        LineEditor::default()
    }

    pub fn with_text(text: &str) -> LineEditor {
        LineEditor {
            text: text.to_string(),
            cursor: text.chars().count(),
            history_pos: None,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Cursor position in chars from the start of the text.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte_at(&self, char_pos: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_pos)
            .map(|(b, _)| b)
            .unwrap_or(self.text.len())
    }

    /// Applies one key. `history` is newest-last.
    pub fn handle(&mut self, key: Key, history: &[String]) -> Edit {
        let len = self.text.chars().count();
        match key {
            Key::Enter => return Edit::Submit(self.text.clone()),
            Key::Esc | Key::Ctrl('c') | Key::Ctrl('g') => return Edit::Cancel,
            Key::Backspace if self.text.is_empty() => return Edit::Cancel,
            Key::Tab => return Edit::Complete,
            Key::Char(c) => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            Key::Delete | Key::Ctrl('d') if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            Key::Left | Key::Ctrl('b') => self.cursor = self.cursor.saturating_sub(1),
            Key::Right | Key::Ctrl('f') => self.cursor = (self.cursor + 1).min(len),
            Key::Home | Key::Ctrl('a') => self.cursor = 0,
            Key::End | Key::Ctrl('e') => self.cursor = len,
            Key::Ctrl('u') => {
                let at = self.byte_at(self.cursor);
                self.text.drain(..at);
                self.cursor = 0;
            }
            Key::Ctrl('w') => {
                let at = self.byte_at(self.cursor);
                let before = self.text[..at].trim_end();
                let start = before.rfind(' ').map(|i| i + 1).unwrap_or(0);
                self.cursor = self.text[..start].chars().count();
                self.text.drain(start..at);
            }
            Key::Up | Key::Down if !history.is_empty() => {
                let pos = match (key, self.history_pos) {
                    (Key::Up, None) => Some(0),
                    (Key::Up, Some(p)) => Some((p + 1).min(history.len() - 1)),
                    (_, Some(0)) | (_, None) => None,
                    (_, Some(p)) => Some(p - 1),
                };
                self.history_pos = pos;
                self.text = pos
                    .map(|p| history[history.len() - 1 - p].clone())
                    .unwrap_or_default();
                self.cursor = self.text.chars().count();
            }
            _ => {}
        }
        Edit::Changed
    }

    /// Which word the cursor ends (0 = the command) and its text so far.
    pub fn current_word(&self) -> (usize, &str) {
        let before = &self.text[..self.byte_at(self.cursor)];
        let start = before.rfind(' ').map(|i| i + 1).unwrap_or(0);
        (before[..start].split_whitespace().count(), &before[start..])
    }

    /// Completes the word under the cursor from `candidates`: fully when one
    /// matches, to the longest common prefix otherwise. Returns the matches.
    pub fn complete<'a>(&mut self, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let (_, word) = self.current_word();
        let word = word.to_string();
        let found: Vec<&str> = candidates
            .into_iter()
            .filter(|c| c.starts_with(&word))
            .collect();
        let Some(first) = found.first() else {
            return found;
        };
        let mut common = first.to_string();
        for c in &found[1..] {
            let n = common
                .chars()
                .zip(c.chars())
                .take_while(|(a, b)| a == b)
                .count();
            common = common.chars().take(n).collect();
        }
        if found.len() == 1 {
            common.push(' ');
        }
        let rest: String = common.chars().skip(word.chars().count()).collect();
        for c in rest.chars() {
            self.handle(Key::Char(c), &[]);
        }
        found
    }
}
