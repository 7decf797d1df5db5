//! Length-prefixed frames, and the exec protocol spoken over them.
//!
//! A frame is `u32 length (big endian) | u8 tag | body`, where `length` counts
//! the tag and the body. Frames carry both the control socket of a host
//! (`hostd <command> --local`) and, later, the tunnel between a host and the
//! gateway. A decoder refuses a frame longer than its limit before buffering
//! it, so a hostile or broken peer can cost at most one limit of memory.

use serde::{Deserialize, Serialize};

/// Default limit of one frame: enough for a 1 MiB artifact chunk and headers.
pub const MAX_FRAME: usize = 4 << 20;

/// Size of artifact chunks sent as stdin.
pub const CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame (no tag)")]
    Empty,
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    #[error("malformed {what} frame: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// One frame: a tag and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub body: Vec<u8>,
}

/// Appends the encoding of a frame to `out`.
pub fn encode(tag: u8, body: &[u8], out: &mut Vec<u8>) {
    let len = (body.len() + 1) as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(tag);
    out.extend_from_slice(body);
}

/// Decodes the first frame of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a frame (read more), and
/// `Ok(Some((frame, consumed)))` otherwise. Errors are final for the stream:
/// the peer is not speaking this protocol.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let frame = Frame {
        tag: buf[4],
        body: buf[5..4 + len].to_vec(),
    };
    Ok(Some((frame, 4 + len)))
}

/// Version of the exec protocol; bumped on any incompatible change.
pub const EXEC_PROTOCOL_VERSION: u32 = 1;

/// The exec protocol: run one command, with stdin in and stdout, stderr and an
/// exit status out — the shape of an SSH exec channel, so the same command
/// runs the same way over a host's Unix socket and through the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecMsg {
    /// Client → server, first: who speaks which version.
    Hello(Hello),
    /// Client → server: the command line (as after `hostd`).
    Exec(ExecRequest),
    /// Client → server: a piece of stdin (an artifact for `deploy APP -`).
    Stdin(Vec<u8>),
    /// Client → server: stdin is complete.
    StdinEnd,
    /// Server → client.
    Stdout(Vec<u8>),
    /// Server → client.
    Stderr(Vec<u8>),
    /// Server → client, last: the command's exit status.
    Exit(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: String,
    pub version: u32,
}

impl Hello {
    pub fn exec() -> Hello {
        Hello {
            protocol: "cranefleet-exec".into(),
            version: EXEC_PROTOCOL_VERSION,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// The user named this host explicitly (`hostd … --local`): the
    /// break-glass way to change an app a gateway manages.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
}

mod tag {
    pub const HELLO: u8 = 1;
    pub const EXEC: u8 = 2;
    pub const STDIN: u8 = 3;
    pub const STDIN_END: u8 = 4;
    pub const STDOUT: u8 = 5;
    pub const STDERR: u8 = 6;
    pub const EXIT: u8 = 7;
}

impl ExecMsg {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ExecMsg::Hello(h) => encode(tag::HELLO, &json(h), out),
            ExecMsg::Exec(e) => encode(tag::EXEC, &json(e), out),
            ExecMsg::Stdin(b) => encode(tag::STDIN, b, out),
            ExecMsg::StdinEnd => encode(tag::STDIN_END, &[], out),
            ExecMsg::Stdout(b) => encode(tag::STDOUT, b, out),
            ExecMsg::Stderr(b) => encode(tag::STDERR, b, out),
            ExecMsg::Exit(code) => encode(tag::EXIT, &code.to_be_bytes(), out),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    pub fn from_frame(frame: Frame) -> Result<ExecMsg, FrameError> {
        Ok(match frame.tag {
            tag::HELLO => ExecMsg::Hello(from_json("hello", &frame.body)?),
            tag::EXEC => ExecMsg::Exec(from_json("exec", &frame.body)?),
            tag::STDIN => ExecMsg::Stdin(frame.body),
            tag::STDIN_END => ExecMsg::StdinEnd,
            tag::STDOUT => ExecMsg::Stdout(frame.body),
            tag::STDERR => ExecMsg::Stderr(frame.body),
            tag::EXIT => {
                let b: [u8; 4] =
                    frame
                        .body
                        .as_slice()
                        .try_into()
                        .map_err(|_| FrameError::Malformed {
                            what: "exit",
                            reason: format!("expected 4 bytes, got {}", frame.body.len()),
                        })?;
                ExecMsg::Exit(i32::from_be_bytes(b))
            }
            t => return Err(FrameError::UnknownTag(t)),
        })
    }
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn from_json<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    body: &[u8],
) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed {
        what,
        reason: e.to_string(),
    })
}

/// Bytes read from a stream, and the whole frames at their front: the one
/// buffer every frame reader (a tunnel's, a control socket's) reads into.
/// Frames are taken from the front without moving what follows them; the
/// buffer is compacted only once most of it has been taken. Reading into
/// it is cancel-safe: a frame half read stays for the next read.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameBuf {
    /// The next whole frame, if the buffer holds one; a frame longer than
    /// `max` is refused.
    pub fn next_frame(&mut self, max: usize) -> Result<Option<Frame>, FrameError> {
        let Some((f, n)) = decode(&self.buf[self.pos..], max)? else {
            return Ok(None);
        };
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(Some(f))
    }

    /// Where the next read goes (appended to the returned buffer), with at
    /// least `room` bytes of capacity.
    pub fn spare(&mut self, room: usize) -> &mut Vec<u8> {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(room);
        &mut self.buf
    }

    /// Whether bytes of an unfinished frame are waiting.
    pub fn has_partial(&self) -> bool {
        self.pos < self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_buffer_gives_whole_frames_whatever_the_reads_cut() {
        let mut wire = Vec::new();
        for i in 0..50u8 {
            encode(1, &vec![i; usize::from(i) * 7], &mut wire);
        }
        for cut in [1, 3, 64, 1000] {
            let mut fb = FrameBuf::default();
            let mut got = Vec::new();
            for piece in wire.chunks(cut) {
                fb.spare(cut).extend_from_slice(piece);
                while let Some(f) = fb.next_frame(MAX_FRAME).unwrap() {
                    got.push(f.body);
                }
            }
            assert!(!fb.has_partial());
            assert_eq!(got.len(), 50);
            assert!(got.iter().enumerate().all(|(i, b)| b.len() == i * 7));
        }
        let mut fb = FrameBuf::default();
        fb.spare(8).extend_from_slice(&[0, 0, 0, 9, 1]);
        assert_eq!(fb.next_frame(MAX_FRAME), Ok(None));
        assert!(fb.has_partial());
    }

    #[test]
    fn frames_round_trip_in_pieces() {
        let msgs = vec![
            ExecMsg::Hello(Hello::exec()),
            ExecMsg::Exec(ExecRequest {
                argv: vec!["ps".into(), "--json".into()],
                local: true,
            }),
            ExecMsg::Stdin(vec![0, 97, 115, 109]),
            ExecMsg::StdinEnd,
            ExecMsg::Stdout(b"hello\n".to_vec()),
            ExecMsg::Stderr(vec![]),
            ExecMsg::Exit(-2),
        ];
        let mut wire = Vec::new();
        for m in &msgs {
            m.encode(&mut wire);
        }
        // Feed one byte at a time: every prefix is either incomplete or a frame.
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for b in wire {
            buf.push(b);
            while let Some((f, n)) = decode(&buf, MAX_FRAME).unwrap() {
                buf.drain(..n);
                got.push(ExecMsg::from_frame(f).unwrap());
            }
        }
        assert_eq!(got, msgs);
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused() {
        let mut wire = Vec::new();
        encode(tag::STDIN, &[0; 100], &mut wire);
        assert_eq!(
            decode(&wire, 50).unwrap_err(),
            FrameError::TooLarge { len: 101, max: 50 }
        );
        assert_eq!(decode(&[0, 0, 0, 0], 50).unwrap_err(), FrameError::Empty);
        let (f, _) = decode(&[0, 0, 0, 1, 99], 50).unwrap().unwrap();
        assert_eq!(
            ExecMsg::from_frame(f).unwrap_err(),
            FrameError::UnknownTag(99)
        );
        let mut wire = Vec::new();
        encode(tag::EXEC, b"{not json", &mut wire);
        let (f, _) = decode(&wire, 50).unwrap().unwrap();
        assert!(matches!(
            ExecMsg::from_frame(f).unwrap_err(),
            FrameError::Malformed { what: "exec", .. }
        ));
    }
}
