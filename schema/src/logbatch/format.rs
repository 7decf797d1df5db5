//! The record encoding shared by batches and segments (see the module
//! header for the layout): [`encode`] appends one record, delta-coded
//! against a [`Context`]; [`walk`] reads records back through a [`Reader`],
//! checking every length, varint and UTF-8 string before it hands a record
//! on.

use super::LogRef;
use crate::types::Stream;

pub(super) const PARTIAL: u8 = 1 << 2;
pub(super) const HAS_RELEASE: u8 = 1 << 3;
pub(super) const SAME_INSTANCE: u8 = 1 << 4;
pub(super) const RESET: u8 = 1 << 5;
/// The stream code's third bit (codes 4 and up: `access`).
pub(super) const STREAM_HIGH: u8 = 1 << 6;
const KNOWN_FLAGS: u8 = 0b11 | PARTIAL | HAS_RELEASE | SAME_INSTANCE | RESET | STREAM_HIGH;

/// A stream's code in a record's flags.
fn stream_flags(s: Stream) -> u8 {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::System => 2,
        Stream::Message => 3,
        Stream::Access => STREAM_HIGH,
    }
}

/// The stream a record's flags name; `None` for a code no writer uses.
pub(super) fn stream_of(flags: u8) -> Option<Stream> {
    Some(match (flags & STREAM_HIGH != 0, flags & 0b11) {
        (false, 0) => Stream::Stdout,
        (false, 1) => Stream::Stderr,
        (false, 2) => Stream::System,
        (false, _) => Stream::Message,
        (true, 0) => Stream::Access,
        (true, _) => return None,
    })
}

/// What the next record is delta-coded against.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context {
    /// The previous record's time; `None` codes the next record RESET.
    last_time: Option<i64>,
    /// Where the previous record's instance is in the buffer.
    last_instance: Option<(usize, usize)>,
}

/// Appends one record to `buf`.
pub(super) fn encode(buf: &mut Vec<u8>, ctx: &mut Context, r: &LogRef<'_>) {
    put_varint(buf, r.seq);
    let reset = ctx.last_time.is_none();
    put_varint(buf, zigzag(r.time.wrapping_sub(ctx.last_time.unwrap_or(0))));
    ctx.last_time = Some(r.time);
    let same = !reset
        && ctx
            .last_instance
            .is_some_and(|(a, b)| &buf[a..b] == r.instance.as_bytes());
    let mut flags = stream_flags(r.stream);
    if r.partial {
        flags |= PARTIAL;
    }
    if r.release.is_some() {
        flags |= HAS_RELEASE;
    }
    if same {
        flags |= SAME_INSTANCE;
    }
    if reset {
        flags |= RESET;
    }
    buf.push(flags);
    if let Some(v) = r.release {
        put_varint(buf, v as u64);
    }
    if !same {
        put_varint(buf, r.instance.len() as u64);
        let at = buf.len();
        buf.extend_from_slice(r.instance.as_bytes());
        ctx.last_instance = Some((at, buf.len()));
    }
    put_varint(buf, r.line.len() as u64);
    buf.extend_from_slice(r.line.as_bytes());
}

/// Every record takes at least 4 bytes: a claimed count beyond that is a lie.
pub(super) fn check_count(len: usize, count: usize) -> Result<(), String> {
    if count > len / 4 {
        return Err(format!("{count} records cannot fit in {len} bytes"));
    }
    Ok(())
}

/// Reads `count` records from `r`, each checked before `f` sees it.
pub(super) fn walk<'a>(
    r: &mut Reader<'a>,
    count: usize,
    mut f: impl FnMut(LogRef<'a>),
) -> Result<(), String> {
    let mut time = 0i64;
    let mut instance: Option<&'a str> = None;
    for i in 0..count {
        let at = |e: String| format!("record {i}: {e}");
        let seq = r.varint().map_err(at)?;
        let delta = unzigzag(r.varint().map_err(at)?);
        let flags = r.byte().map_err(at)?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(at(format!("unknown flags {flags:#04x}")));
        }
        time = if flags & RESET != 0 { 0 } else { time }.wrapping_add(delta);
        let Some(stream) = stream_of(flags) else {
            return Err(at(format!("unknown stream in flags {flags:#04x}")));
        };
        let release = if flags & HAS_RELEASE != 0 {
            let v = r.varint().map_err(at)?;
            Some(u32::try_from(v).map_err(|_| at(format!("release {v} is out of range")))?)
        } else {
            None
        };
        let inst = if flags & SAME_INSTANCE != 0 {
            instance.ok_or_else(|| at("repeats an instance before naming one".into()))?
        } else {
            let n = r.len().map_err(at)?;
            let s = r.str(n).map_err(at)?;
            instance = Some(s);
            s
        };
        let n = r.len().map_err(at)?;
        let line = r.str(n).map_err(at)?;
        f(LogRef {
            seq,
            time,
            release,
            instance: inst,
            stream,
            line,
            partial: flags & PARTIAL != 0,
        });
    }
    Ok(())
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a batch or segment body; every read is checked.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .buf
            .get(self.at)
            .ok_or_else(|| "ends in the middle of a record".to_string())?;
        self.at += 1;
        Ok(b)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self
            .buf
            .get(self.at..self.at + N)
            .ok_or_else(|| format!("ends within its {N}-byte header field"))?;
        self.at += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub(super) fn varint(&mut self) -> Result<u64, String> {
        // Most numbers of a batch (time deltas, lengths) fit in one byte.
        if let Some(&b) = self.buf.get(self.at)
            && b < 0x80
        {
            self.at += 1;
            return Ok(b as u64);
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err("a number longer than 64 bits".into())
    }

    pub(super) fn len(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.at) as u64 {
            return Err(format!(
                "a length of {n} bytes runs past the end of the batch"
            ));
        }
        Ok(n as usize)
    }

    pub(super) fn str(&mut self, n: usize) -> Result<&'a str, String> {
        let s = self
            .buf
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("a {n}-byte string runs past the end of the batch"))?;
        self.at += n;
        std::str::from_utf8(s).map_err(|e| format!("text that is not UTF-8 ({e})"))
    }
}
