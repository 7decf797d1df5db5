//! Log levels, ordered by severity, as apps spell them.

use std::fmt;

/// A severity. `level` in a filter compares by this order when it is compared
/// with a level name: `trace < debug < info < warn < error < fatal`.
///
/// Apps spell levels many ways; [`Level::from_name`] accepts, ignoring case:
///
/// | level | spellings |
/// | --- | --- |
/// | trace | `trace`, `trc` |
/// | debug | `debug`, `dbg` |
/// | info | `info`, `information`, `notice` |
/// | warn | `warn`, `warning` |
/// | error | `error`, `err` |
/// | fatal | `fatal`, `critical`, `crit`, `panic`, `alert`, `emerg`, `emergency` |
///
/// and [`Level::from_number`] the numbers of pino and bunyan (10 … 60).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Fatal = 5,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The level a spelling names (see the table above), or `None`.
    pub fn from_name(name: &str) -> Option<Level> {
        // Lower-case into a small buffer: no allocation on the per-record path.
        let mut buf = [0u8; 12];
        let bytes = name.as_bytes();
        if bytes.len() > buf.len() {
            return None;
        }
        for (b, c) in buf.iter_mut().zip(bytes) {
            *b = c.to_ascii_lowercase();
        }
        Some(match &buf[..bytes.len()] {
            b"trace" | b"trc" => Level::Trace,
            b"debug" | b"dbg" => Level::Debug,
            b"info" | b"information" | b"notice" => Level::Info,
            b"warn" | b"warning" => Level::Warn,
            b"error" | b"err" => Level::Error,
            b"fatal" | b"critical" | b"crit" | b"panic" | b"alert" | b"emerg" | b"emergency" => {
                Level::Fatal
            }
            _ => return None,
        })
    }

    /// The level of a numeric JSON `level` as pino and bunyan write it:
    /// 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal; other
    /// numbers are not levels.
    pub fn from_number(n: f64) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|&l| n == f64::from(10 * (l as u8 + 1)))
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
