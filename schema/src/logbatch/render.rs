//! A record as `logs` prints it: text lines and JSON lines written straight
//! from a record's bytes (byte for byte what rendering a [`LogRecord`]
//! gives), and conversions between [`LogRef`], [`RawRef`] and
//! [`LogRecord`].

use super::{LogRef, RawRef};
use crate::Version;
use crate::time::UnixMillis;
use crate::types::LogRecord;

impl RawRef<'_> {
    pub fn to_record(&self, host: &str, app: &str) -> LogRecord {
        // The decoder checked the text: nothing is replaced here.
        let text = |b| std::str::from_utf8(b).unwrap_or("");
        LogRef {
            seq: self.seq,
            time: self.time,
            release: self.release,
            instance: text(self.instance),
            stream: self.stream,
            line: text(self.line),
            partial: self.partial,
        }
        .to_record(host, app)
    }

    /// Appends the record as `logs` prints it (see [`crate::render::log_line`]),
    /// with a newline.
    pub fn write_text(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        out.reserve(48 + host.len() + app.len() + self.instance.len() + self.line.len());
        use crate::render::escape_into;
        clock.write(self.time, out);
        out.push(b' ');
        escape_into(host.as_bytes(), out);
        out.push(b' ');
        escape_into(app.as_bytes(), out);
        out.push(b'[');
        match self.release {
            Some(v) => {
                out.push(b'v');
                write_u64(v as u64, out);
            }
            None => out.push(b'-'),
        }
        out.push(b' ');
        escape_into(self.instance, out);
        out.extend_from_slice(b"] ");
        out.extend_from_slice(self.stream.as_str().as_bytes());
        out.extend_from_slice(b": ");
        escape_into(self.line, out);
        if self.partial {
            out.extend_from_slice(" …".as_bytes());
        }
        out.push(b'\n');
    }

    /// Appends the record as `logs --json` prints it: the JSON of the
    /// matching [`LogRecord`], byte for byte, and a newline.
    pub fn write_json(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"seq\":");
        write_u64(self.seq, out);
        out.extend_from_slice(b",\"time\":\"");
        clock.write(self.time, out);
        out.extend_from_slice(b"\",\"host\":");
        json_str(host.as_bytes(), out);
        out.extend_from_slice(b",\"app\":");
        json_str(app.as_bytes(), out);
        out.extend_from_slice(b",\"release\":");
        match self.release {
            Some(v) => {
                out.extend_from_slice(b"\"v");
                write_u64(v as u64, out);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"instance\":");
        json_str(self.instance, out);
        out.extend_from_slice(b",\"stream\":\"");
        out.extend_from_slice(self.stream.as_str().as_bytes());
        out.extend_from_slice(b"\",\"line\":");
        json_str(self.line, out);
        if self.partial {
            out.extend_from_slice(b",\"partial\":true");
        }
        if self.stream == crate::types::Stream::Access
            && let Ok(line) = std::str::from_utf8(self.line)
            && let Some(members) = crate::types::Access::json_members(line)
        {
            out.extend_from_slice(members.as_bytes());
        }
        out.extend_from_slice(b"}\n");
    }
}

impl<'a> LogRef<'a> {
    /// A record's fields as a [`LogRef`] (the time parsed from RFC 3339).
    pub fn of(r: &'a LogRecord) -> LogRef<'a> {
        LogRef::of_at(r, crate::time::parse_rfc3339(&r.time).unwrap_or(0))
    }

    /// A record's fields, its time already known in Unix milliseconds.
    pub fn of_at(r: &'a LogRecord, time: UnixMillis) -> LogRef<'a> {
        LogRef {
            seq: r.seq,
            time,
            release: r.release.map(|v| v.0),
            instance: &r.instance,
            stream: r.stream,
            line: &r.line,
            partial: r.partial,
        }
    }

    pub fn to_record(&self, host: &str, app: &str) -> LogRecord {
        LogRecord {
            seq: self.seq,
            time: crate::time::rfc3339(self.time),
            host: host.to_string(),
            app: app.to_string(),
            release: self.release.map(Version),
            instance: self.instance.to_string(),
            stream: self.stream,
            line: self.line.to_string(),
            partial: self.partial,
        }
    }

    /// Makes `out` this record of `host` (like [`to_record`](Self::to_record)),
    /// reusing its strings' memory: a page of records refilled for each
    /// page costs no allocation per record.
    pub fn fill_record(&self, host: &str, app: &str, clock: &mut Clock, out: &mut LogRecord) {
        fn set(s: &mut String, v: &str) {
            s.clear();
            s.push_str(v);
        }
        out.seq = self.seq;
        out.time.clear();
        clock.write_string(self.time, &mut out.time);
        set(&mut out.host, host);
        set(&mut out.app, app);
        out.release = self.release.map(Version);
        set(&mut out.instance, self.instance);
        out.stream = self.stream;
        set(&mut out.line, self.line);
        out.partial = self.partial;
    }

    /// The record as a [`RawRef`], to render.
    pub fn raw(&self) -> RawRef<'a> {
        RawRef {
            seq: self.seq,
            time: self.time,
            release: self.release,
            instance: self.instance.as_bytes(),
            stream: self.stream,
            line: self.line.as_bytes(),
            partial: self.partial,
        }
    }

    /// See [`RawRef::write_text`].
    pub fn write_text(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        self.raw().write_text(host, app, clock, out);
    }

    /// See [`RawRef::write_json`].
    pub fn write_json(&self, host: &str, app: &str, clock: &mut Clock, out: &mut Vec<u8>) {
        self.raw().write_json(host, app, clock, out);
    }
}

/// RFC 3339 text of millisecond timestamps, the date and time of day
/// computed once per second.
#[derive(Debug, Default)]
pub struct Clock {
    second: Option<i64>,
    /// `2026-11-24T10:16:29.` for `second`.
    prefix: String,
}

impl Clock {
    /// The date and time of day up to the second, and the milliseconds.
    fn parts(&mut self, ms: UnixMillis) -> (&str, [u8; 4]) {
        // Past year 9999 (a peer's time): the same clamped time as rfc3339.
        let ms = crate::time::clamp_ms(ms);
        let sec = ms.div_euclid(1000);
        if self.second != Some(sec) {
            let mut full = crate::time::rfc3339(ms);
            full.truncate(full.len() - 4);
            self.prefix = full;
            self.second = Some(sec);
        }
        let m = ms.rem_euclid(1000) as u32;
        let tail = [
            b'0' + (m / 100) as u8,
            b'0' + (m / 10 % 10) as u8,
            b'0' + (m % 10) as u8,
            b'Z',
        ];
        (&self.prefix, tail)
    }

    pub fn write(&mut self, ms: UnixMillis, out: &mut Vec<u8>) {
        let (prefix, tail) = self.parts(ms);
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&tail);
    }

    /// Like [`write`](Self::write), into a string.
    pub fn write_string(&mut self, ms: UnixMillis, out: &mut String) {
        let (prefix, tail) = self.parts(ms);
        out.push_str(prefix);
        out.extend(tail.iter().map(|b| *b as char));
    }
}

fn write_u64(mut v: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, control
/// characters as `\n`-style or `\u00XX` escapes, everything else as is.
fn json_str(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(esc);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}
