//! Raw terminal bytes (what an SSH channel carries) to keys, and keys to
//! the same behaviour whichever front door they came through.

mod common;

use common::*;
use console::{Event, Key, KeyParser, Mode};

fn parse(bytes: &[u8]) -> Vec<Key> {
    KeyParser::new().feed(bytes)
}

#[test]
fn control_bytes_parse_to_enter_backspace_tab_and_ctrl_keys() {
    assert_eq!(parse(b"\r"), vec![Key::Enter]);
    assert_eq!(parse(b"\n"), vec![Key::Enter]);
    assert_eq!(parse(b"\r\n"), vec![Key::Enter], "CRLF is one Enter");
    assert_eq!(parse(b"\x7f\x08"), vec![Key::Backspace, Key::Backspace]);
    assert_eq!(parse(b"\t"), vec![Key::Tab]);
    assert_eq!(parse(b"\x03"), vec![Key::Ctrl('c')]);
    assert_eq!(parse(b"\x15\x17"), vec![Key::Ctrl('u'), Key::Ctrl('w')]);
    assert_eq!(
        parse(b"q:r+-?"),
        "q:r+-?".chars().map(Key::Char).collect::<Vec<_>>()
    );
}

#[test]
fn arrow_keys_parse_in_normal_and_application_cursor_mode() {
    let want = vec![Key::Up, Key::Down, Key::Right, Key::Left];
    assert_eq!(parse(b"\x1b[A\x1b[B\x1b[C\x1b[D"), want);
    assert_eq!(parse(b"\x1bOA\x1bOB\x1bOC\x1bOD"), want);
    assert_eq!(
        parse(b"\x1b[1;5A\x1b[1;2B"),
        vec![Key::Up, Key::Down],
        "modifiers are ignored"
    );
    assert_eq!(parse(b"\x1b[Z"), vec![Key::BackTab]);
}

#[test]
fn page_and_home_end_keys_parse_in_every_common_encoding() {
    assert_eq!(parse(b"\x1b[5~\x1b[6~"), vec![Key::PageUp, Key::PageDown]);
    let home_end = [
        &b"\x1b[H\x1b[F"[..],
        b"\x1bOH\x1bOF",
        b"\x1b[1~\x1b[4~",
        b"\x1b[7~\x1b[8~",
    ];
    for bytes in home_end {
        assert_eq!(parse(bytes), vec![Key::Home, Key::End], "{bytes:?}");
    }
    assert_eq!(parse(b"\x1b[3~\x1b[2~"), vec![Key::Delete, Key::Insert]);
}

#[test]
fn a_lone_escape_at_the_end_of_a_read_is_the_esc_key() {
    assert_eq!(parse(b"\x1b"), vec![Key::Esc]);
    assert_eq!(parse(b"\x1b\x1b"), vec![Key::Esc, Key::Esc]);
    assert_eq!(parse(b"\x1bq"), vec![Key::Alt('q')]);
}

#[test]
fn a_sequence_split_across_reads_completes_on_the_next_read() {
    let mut p = KeyParser::new();
    assert_eq!(p.feed(b"j\x1b["), vec![Key::Char('j')]);
    assert_eq!(p.feed(b"5"), vec![]);
    assert_eq!(p.feed(b"~k"), vec![Key::PageUp, Key::Char('k')]);
    assert_eq!(p.feed(b"\x1bO"), vec![]);
    assert_eq!(p.feed(b"B"), vec![Key::Down]);
    // Giving up on a pending sequence.
    assert_eq!(p.feed(b"\x1b["), vec![]);
    assert_eq!(p.flush(), vec![Key::Esc]);
    assert_eq!(p.feed(b"x"), vec![Key::Char('x')]);
}

#[test]
fn utf8_text_parses_whole_even_when_split() {
    assert_eq!(parse("é→".as_bytes()), vec![Key::Char('é'), Key::Char('→')]);
    let bytes = "→".as_bytes();
    let mut p = KeyParser::new();
    assert_eq!(p.feed(&bytes[..1]), vec![]);
    assert_eq!(p.feed(&bytes[1..]), vec![Key::Char('→')]);
    assert_eq!(
        parse(b"\xffa"),
        vec![Key::Char('a')],
        "invalid bytes are skipped"
    );
}

#[test]
fn crossterm_key_events_convert_to_the_same_keys() {
    use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
    let k = |code, m| Key::from_crossterm(KeyEvent::new(code, m));
    assert_eq!(
        k(KeyCode::Char('c'), KeyModifiers::CONTROL),
        Some(Key::Ctrl('c'))
    );
    assert_eq!(
        k(KeyCode::Char('G'), KeyModifiers::SHIFT),
        Some(Key::Char('G'))
    );
    assert_eq!(
        k(KeyCode::PageDown, KeyModifiers::NONE),
        Some(Key::PageDown)
    );
    assert_eq!(k(KeyCode::Esc, KeyModifiers::NONE), Some(Key::Esc));
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(Key::from_crossterm(release), None);
}

#[test]
fn bytes_from_an_ssh_channel_drive_the_console_like_local_keys() {
    let mut app = operator();
    let mut p = KeyParser::new();
    for key in p.feed(b":scale api 4\r") {
        app.update(Event::Key(key));
    }
    assert!(matches!(app.mode(), Mode::Confirm(_)), "{:?}", app.mode());
    let actions: Vec<_> = p
        .feed(b"y")
        .into_iter()
        .flat_map(|k| app.update(Event::Key(k)))
        .collect();
    assert_eq!(actions.len(), 1);
    for key in p.feed(b"\x1b[B\x1b[B\r") {
        app.update(Event::Key(key));
    }
    assert_eq!(app.detail().map(|d| d.app.as_str()), Some("ticker"));
}
