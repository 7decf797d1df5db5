//! Keys, from either front door.
//!
//! Locally crossterm decodes the terminal's input; over SSH there is no
//! crossterm event source, only the bytes the client's terminal sent down the
//! channel. [`KeyParser`] turns those bytes into the same [`Key`]s, so the
//! app never knows which door a key came through.

/// A key press, reduced to what the console binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A printable character (shifted letters arrive as upper case).
    Char(char),
    /// Ctrl with a letter, lower case: `Ctrl('c')`.
    Ctrl(char),
    /// Alt (Meta) with a character: terminals send ESC then the character.
    Alt(char),
    Enter,
    Esc,
    Backspace,
    Delete,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    /// A function key, F1 to F12.
    F(u8),
}

impl Key {
    /// Converts a crossterm key event (the local front door). Releases and
    /// repeats-as-release on terminals with the kitty protocol are dropped,
    /// as are keys the console never binds.
    pub fn from_crossterm(ev: crossterm::event::KeyEvent) -> Option<Key> {
        use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        Some(match ev.code {
            KeyCode::Char(c) if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
            KeyCode::Char(c) if alt => Key::Alt(c),
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Esc,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Delete => Key::Delete,
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            KeyCode::Insert => Key::Insert,
            KeyCode::F(n) => Key::F(n),
            _ => return None,
        })
    }
}

const ESC: u8 = 0x1b;

/// Turns raw terminal input (what an SSH client sends for a pty session) into
/// [`Key`]s.
///
/// Understands UTF-8 text, control characters (CR or LF or CRLF as Enter,
/// DEL and BS as Backspace, Ctrl-letter), CSI sequences (`ESC [ A` arrows,
/// `ESC [ 5 ~` PgUp, `ESC [ 1 ; 5 A` with modifiers, which are ignored),
/// SS3 sequences (`ESC O A`, sent in application cursor mode) and ESC+char
/// as Alt. Mouse reports and bracketed-paste markers are consumed and
/// dropped; unknown sequences are dropped whole rather than leaking their
/// bytes as typed characters.
///
/// A sequence cut between two reads is kept and completed by the next
/// [`feed`](Self::feed). A lone ESC at the end of a read is the Esc key:
/// terminals write a whole escape sequence at once and SSH carries one write
/// in one packet, so a split right after ESC is rare, while waiting for more
/// bytes would make Esc feel slow. [`flush`](Self::flush) gives up on any
/// pending bytes (call it after a short silence if that matters).
#[derive(Debug, Default)]
pub struct KeyParser {
    pending: Vec<u8>,
}

/// The outcome of trying to read one key at the start of a byte slice.
enum Step {
    /// A key (or nothing, for consumed noise) and how many bytes it used.
    Key(Option<Key>, usize),
    /// The slice ends inside a sequence; wait for more bytes.
    Incomplete,
}

impl KeyParser {
    pub fn new() -> KeyParser {
        KeyParser::default()
    }

    /// Parses `bytes` (continuing any sequence left from the previous call)
    /// and returns the keys they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        self.pending.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let rest = &self.pending[i..];
            match step(rest) {
                Step::Key(k, n) => {
                    keys.extend(k);
                    i += n;
                }
                // A lone trailing ESC is the Esc key (see the type's docs).
                Step::Incomplete if rest == [ESC] => {
                    keys.push(Key::Esc);
                    i += 1;
                }
                Step::Incomplete => break,
            }
        }
        self.pending.drain(..i);
        // Bound what a misbehaving client can make us hold.
        if self.pending.len() > 64 {
            self.pending.clear();
        }
        keys
    }

    /// Gives up waiting for the rest of a sequence: a pending ESC becomes
    /// Esc, anything else pending is dropped.
    pub fn flush(&mut self) -> Vec<Key> {
        let keys = if self.pending.first() == Some(&ESC) {
            vec![Key::Esc]
        } else {
            Vec::new()
        };
        self.pending.clear();
        keys
    }
}

fn step(b: &[u8]) -> Step {
    match b[0] {
        ESC => escape(b),
        b'\r' => Step::Key(
            Some(Key::Enter),
            if b.get(1) == Some(&b'\n') { 2 } else { 1 },
        ),
        b'\n' => Step::Key(Some(Key::Enter), 1),
        b'\t' => Step::Key(Some(Key::Tab), 1),
        0x7f | 0x08 => Step::Key(Some(Key::Backspace), 1),
        0x00 => Step::Key(Some(Key::Ctrl(' ')), 1),
        c @ 0x01..=0x1a => Step::Key(Some(Key::Ctrl((b'a' + c - 1) as char)), 1),
        0x1c..=0x1f => Step::Key(None, 1),
        _ => utf8(b),
    }
}

fn utf8(b: &[u8]) -> Step {
    let len = match b[0] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        // A stray continuation byte or an invalid lead: skip it.
        _ => return Step::Key(None, 1),
    };
    if b.len() < len {
        return Step::Incomplete;
    }
    match std::str::from_utf8(&b[..len]) {
        Ok(s) => Step::Key(s.chars().next().map(Key::Char), len),
        Err(_) => Step::Key(None, 1),
    }
}

fn escape(b: &[u8]) -> Step {
    match b.get(1) {
        None => Step::Incomplete,
        Some(b'[') => csi(b),
        Some(b'O') => match b.get(2) {
            None => Step::Incomplete,
            Some(&c) => Step::Key(final_key(c), 3),
        },
        // ESC ESC: the first is a plain Esc; the second starts afresh.
        Some(&ESC) => Step::Key(Some(Key::Esc), 1),
        Some(_) => match utf8(&b[1..]) {
            Step::Incomplete => Step::Incomplete,
            Step::Key(Some(Key::Char(c)), n) => Step::Key(Some(Key::Alt(c)), 1 + n),
            Step::Key(_, n) => Step::Key(None, 1 + n),
        },
    }
}

/// The letter that ends `ESC [ A` or `ESC O A` style sequences.
fn final_key(c: u8) -> Option<Key> {
    Some(match c {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        b'Z' => Key::BackTab,
        b'P' => Key::F(1),
        b'Q' => Key::F(2),
        b'R' => Key::F(3),
        b'S' => Key::F(4),
        _ => return None,
    })
}

/// `ESC [ params final`: parameters are digits, `;` and a few private
/// markers; the final byte is in 0x40..=0x7e.
fn csi(b: &[u8]) -> Step {
    let Some(end) = b[2..].iter().position(|c| (0x40..=0x7e).contains(c)) else {
        return Step::Incomplete;
    };
    let end = 2 + end;
    let params = &b[2..end];
    let used = end + 1;
    // Mouse reports (`ESC [ < … M`, `ESC [ M b x y`) are consumed whole.
    if params.first() == Some(&b'<') {
        return Step::Key(None, used);
    }
    if params.is_empty() && b[end] == b'M' {
        return if b.len() < end + 4 {
            Step::Incomplete
        } else {
            Step::Key(None, end + 4)
        };
    }
    if b[end] != b'~' {
        return Step::Key(final_key(b[end]), used);
    }
    let first = params.split(|&c| c == b';').next().unwrap_or_default();
    let code: u32 = std::str::from_utf8(first)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let key = match code {
        1 | 7 => Key::Home,
        2 => Key::Insert,
        3 => Key::Delete,
        4 | 8 => Key::End,
        5 => Key::PageUp,
        6 => Key::PageDown,
        11..=15 => Key::F((code - 10) as u8),
        17..=21 => Key::F((code - 11) as u8),
        23 | 24 => Key::F((code - 12) as u8),
        // 200/201 bracket a paste; the pasted text arrives as plain keys.
        _ => return Step::Key(None, used),
    };
    Step::Key(Some(key), used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: &[u8]) -> Vec<Key> {
        KeyParser::new().feed(b)
    }

    #[test]
    fn function_keys_and_unknown_sequences_do_not_leak_characters() {
        assert_eq!(
            keys(b"\x1b[15~\x1b[24~\x1bOP"),
            vec![Key::F(5), Key::F(12), Key::F(1)]
        );
        assert_eq!(keys(b"\x1b[99~x"), vec![Key::Char('x')]);
        assert_eq!(keys(b"\x1b[<0;10;5M"), vec![]);
    }

    #[test]
    fn a_runaway_sequence_is_dropped_rather_than_held_forever() {
        let mut p = KeyParser::new();
        let mut junk = b"\x1b[".to_vec();
        junk.extend(std::iter::repeat_n(b'1', 100));
        assert_eq!(p.feed(&junk), vec![]);
        assert_eq!(p.feed(b"q"), vec![Key::Char('q')]);
    }
}
