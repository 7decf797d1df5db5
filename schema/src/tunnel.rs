//! The tunnel between a host (`hostd agent`) and the gateway.
//!
//! The host dials the gateway over SSH, authenticates with its host key and
//! opens the SSH subsystem [`SUBSYSTEM`]. Over that channel both sides send
//! frames (`schema::frame`): tag [`TAG_JSON`] carries one [`HostMsg`] or
//! [`GatewayMsg`] as JSON; tag [`TAG_CHUNK`] carries a piece of an artifact
//! as raw bytes; tag [`TAG_LOGS`] carries a binary batch of log records
//! ([`crate::logbatch`]). The first frame each way is the handshake (`HostMsg::Hello`,
//! answered by `GatewayMsg::Welcome` or `GatewayMsg::Refused`), which carries
//! the protocol version; a peer that speaks another version is refused
//! there, with a message that says which versions meet.
//!
//! A malformed or oversized frame closes that tunnel with an error; the
//! process on either side goes on (see the decoder's fuzz test below).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Version;
use crate::frame::{self, Frame, FrameError};
use crate::manifest::Manifest;
use crate::types::{AuditEntry, PsRow};

/// The SSH subsystem a host opens for its tunnel.
pub const SUBSYSTEM: &str = "cranefleet-tunnel";
/// Bumped on any incompatible change to the messages below
/// (2: log records travel as binary batches).
pub const TUNNEL_PROTOCOL_VERSION: u32 = 3;
/// Whether this CPU does AES and carry-less multiplication in hardware,
/// where AES-GCM costs several times less per byte than ChaCha20-Poly1305.
/// hostd's SSH clients then prefer AES-256-GCM (and the fleet bench's peers
/// do the same, so its ratios compare paths, not ciphers).
pub fn hardware_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Log batches a host sends for one logs request ahead of the gateway's
/// [`GatewayMsg::LogsCredit`]: a client that reads slowly holds its
/// request's records on the host (in its store), not in gateway memory.
/// At most ~2 MiB of batches per request are in flight.
pub const LOGS_WINDOW: u32 = 16;
/// Largest tunnel frame: a 1 MiB chunk and its header, or a big status.
pub const MAX_TUNNEL_FRAME: usize = 4 << 20;
/// How often a host reports its state.
pub const HEARTBEAT_SECS: u64 = 2;
/// A host not heard from for this long is `down`.
pub const DOWN_AFTER_SECS: u64 = 10;

pub const TAG_JSON: u8 = 1;
pub const TAG_CHUNK: u8 = 2;
pub use crate::logbatch::{LogBatch, LogBatchWriter, TAG_LOGS};

/// What a host is and runs, sent first on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub name: String,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    /// The host engine's compatibility hash (hosts with equal hashes run the same compiled code).
    pub engine: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub labels: BTreeMap<String, String>,
    /// What the host runs now, by its own record.
    pub apps: Vec<HostApp>,
    /// Actions taken on the host while it was away from the gateway
    /// (`hostd rollback --local`), oldest first.
    pub local_actions: Vec<AuditEntry>,
}

/// One app as a host runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostApp {
    pub app: String,
    pub active: Option<Version>,
    pub replicas: u32,
    /// Releases whose compiled code the host keeps (rollback needs no fetch).
    pub kept: Vec<Version>,
}

/// A host's periodic report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub apps: Vec<HostApp>,
    /// `ps` of every app on the host.
    pub ps: Vec<PsRow>,
    /// `ps APP` of every app: one row per instance.
    #[serde(default)]
    pub instance_rows: Vec<PsRow>,
    pub instances: u32,
    pub memory_bytes: u64,
}

/// Host → gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMsg {
    Hello(Hello),
    Heartbeat(Heartbeat),
    /// The answer to the request `id`.
    Reply {
        id: u64,
        ok: bool,
        message: String,
        compile_ms: Option<u64>,
    },
    /// How a request is going (`fetching 3.2 MiB`, `compiled in 120 ms`).
    Progress {
        id: u64,
        /// The step as text, for a gateway of the first release.
        line: String,
        /// The typed step; a host of the first release leaves it out and its
        /// line is read as a note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<crate::progress::Step>,
    },
    /// Asks for artifact bytes from `offset` (a resumed fetch starts past 0).
    Fetch {
        digest: String,
        offset: u64,
    },
    /// The logs request `id` has no more records (not following).
    LogsEnd {
        id: u64,
    },
    /// Something the host did by itself.
    Event(HostEvent),
}

/// What a host reports without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HostEvent {
    /// A release's instances kept failing; the host stopped restarting them.
    Crashloop {
        app: String,
        version: Version,
        detail: String,
    },
    /// An http release failed its health check and the host rolled back.
    HealthFailed {
        app: String,
        version: Version,
        detail: String,
        to: Option<Version>,
    },
    /// An operator acted on the host directly (break-glass), as audited there.
    LocalAction(AuditEntry),
    /// A canary's gate tripped on this host; its share here is already 0.
    CanaryTripped {
        app: String,
        version: Version,
        detail: String,
    },
}

/// Gateway → host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayMsg {
    Welcome {
        version: u32,
        gateway: String,
    },
    Refused {
        reason: String,
    },
    /// Fetch (if needed), check and compile a release; do not run it yet.
    Stage {
        id: u64,
        app: String,
        version: Version,
        digest: String,
        size: u64,
        manifest: Manifest,
        by: String,
    },
    /// Run a staged or kept release with `replicas`.
    Activate {
        id: u64,
        app: String,
        version: Version,
        replicas: u32,
        by: String,
    },
    Scale {
        id: u64,
        app: String,
        replicas: u32,
        by: String,
    },
    /// Run the staged `version` as a canary beside the active release,
    /// taking `share` percent of requests here and watching `gate`; a
    /// share of 0 ends it here (`failed`: it was aborted, and why).
    Canary {
        id: u64,
        app: String,
        version: Version,
        share: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sticky: Option<String>,
        gate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<String>,
        by: String,
    },
    /// Restart the active release's instances (clears a crash loop).
    Restart {
        id: u64,
        app: String,
        by: String,
    },
    /// Stop and forget an app on this host.
    Remove {
        id: u64,
        app: String,
        by: String,
    },
    /// `kv …` on this host's own store of an app: the command's words (the
    /// host parses them as it parses any command). Answered by a `Reply`
    /// whose message is the `KvOutcome` as JSON.
    Kv {
        id: u64,
        by: String,
        argv: Vec<String>,
    },
    /// Send records of `app` after `since` (a host-local seq), the last
    /// `tail`, and keep sending new ones if `follow`.
    Logs {
        id: u64,
        app: String,
        since: Option<u64>,
        tail: Option<u64>,
        follow: bool,
        filter: Option<String>,
        /// Only records from the last this many milliseconds (`--since 5m`).
        #[serde(default)]
        ago_ms: Option<u64>,
    },
    /// Stop the logs request `id`.
    Cancel {
        id: u64,
    },
    /// The gateway took `batches` log batches of request `id` off the
    /// tunnel: the host may send that many more (see [`LOGS_WINDOW`]).
    LogsCredit {
        id: u64,
        batches: u32,
    },
    /// The artifact `digest` ends at `total` bytes (after its chunks).
    ChunkEnd {
        digest: String,
        total: u64,
    },
    /// The artifact cannot be sent.
    FetchFailed {
        digest: String,
        reason: String,
    },
}

/// A piece of an artifact: `digest` (64 hex bytes) | offset (u64 BE) | data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub digest: String,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// A decoded tunnel frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<M> {
    Msg(M),
    Chunk(Chunk),
    Logs(LogBatch),
}

pub fn encode_msg<M: Serialize>(msg: &M, out: &mut Vec<u8>) {
    // These types always serialize.
    let body = serde_json::to_vec(msg).unwrap_or_default();
    frame::encode(TAG_JSON, &body, out);
}

pub fn encode_chunk(c: &Chunk, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(72 + c.data.len());
    body.extend_from_slice(c.digest.as_bytes());
    body.extend_from_slice(&c.offset.to_be_bytes());
    body.extend_from_slice(&c.data);
    frame::encode(TAG_CHUNK, &body, out);
}

/// Interprets one frame of the tunnel.
pub fn decode<M: for<'de> Deserialize<'de>>(f: Frame) -> Result<Incoming<M>, FrameError> {
    match f.tag {
        TAG_JSON => serde_json::from_slice(&f.body)
            .map(Incoming::Msg)
            .map_err(|e| FrameError::Malformed {
                what: "tunnel message",
                reason: e.to_string(),
            }),
        TAG_CHUNK => {
            if f.body.len() < 72 {
                return Err(FrameError::Malformed {
                    what: "chunk",
                    reason: format!("{} bytes is shorter than its 72-byte header", f.body.len()),
                });
            }
            let digest = std::str::from_utf8(&f.body[..64])
                .ok()
                .filter(|d| crate::artifact::is_digest(d))
                .ok_or_else(|| FrameError::Malformed {
                    what: "chunk",
                    reason: "the digest is not 64 lowercase hex digits".into(),
                })?
                .to_string();
            let mut off = [0u8; 8];
            off.copy_from_slice(&f.body[64..72]);
            Ok(Incoming::Chunk(Chunk {
                digest,
                offset: u64::from_be_bytes(off),
                data: f.body[72..].to_vec(),
            }))
        }
        TAG_LOGS => LogBatch::decode_owned(f.body).map(Incoming::Logs),
        t => Err(FrameError::UnknownTag(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip<M: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(m: M) {
        let mut wire = Vec::new();
        encode_msg(&m, &mut wire);
        let (f, n) = frame::decode(&wire, MAX_TUNNEL_FRAME).unwrap().unwrap();
        assert_eq!(n, wire.len());
        assert_eq!(decode::<M>(f).unwrap(), Incoming::Msg(m));
    }

    #[test]
    fn messages_round_trip() {
        let wire = LogBatchWriter::new(9, "api").finish();
        let (f, _) = frame::decode(&wire, MAX_TUNNEL_FRAME).unwrap().unwrap();
        match decode::<HostMsg>(f).unwrap() {
            Incoming::Logs(b) => assert_eq!((b.id, b.app.as_str(), b.len()), (9, "api", 0)),
            other => panic!("{other:?}"),
        }
        roundtrip(HostMsg::Fetch {
            digest: "ab".repeat(32),
            offset: 7,
        });
        roundtrip(GatewayMsg::Activate {
            id: 3,
            app: "api".into(),
            version: Version(4),
            replicas: 2,
            by: "alice".into(),
        });
        roundtrip(HostMsg::Event(HostEvent::Crashloop {
            app: "w".into(),
            version: Version(1),
            detail: "5 failed starts".into(),
        }));
        let c = Chunk {
            digest: "0f".repeat(32),
            offset: 1 << 40,
            data: vec![1, 2, 3],
        };
        let mut wire = Vec::new();
        encode_chunk(&c, &mut wire);
        let (f, _) = frame::decode(&wire, MAX_TUNNEL_FRAME).unwrap().unwrap();
        assert_eq!(decode::<HostMsg>(f).unwrap(), Incoming::Chunk(c));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let bad = |tag: u8, body: &[u8]| {
            decode::<GatewayMsg>(Frame {
                tag,
                body: body.to_vec(),
            })
            .unwrap_err()
        };
        assert!(matches!(
            bad(TAG_JSON, b"{\"type\":\"nope\"}"),
            FrameError::Malformed { .. }
        ));
        assert!(matches!(
            bad(TAG_CHUNK, b"short"),
            FrameError::Malformed { .. }
        ));
        assert!(matches!(
            bad(TAG_CHUNK, &[b'X'; 80]),
            FrameError::Malformed { .. }
        ));
        assert_eq!(bad(9, b""), FrameError::UnknownTag(9));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Whatever bytes arrive, the decoder returns a frame, asks for more,
        /// or says what is wrong: it never panics and never reads past a limit.
        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut buf = bytes.as_slice();
            while let Ok(Some((f, n))) = frame::decode(buf, 512) {
                prop_assert!(n <= buf.len());
                let _ = decode::<HostMsg>(f.clone());
                let _ = decode::<GatewayMsg>(f);
                buf = &buf[n..];
            }
        }

        #[test]
        fn json_frames_with_garbage_bodies_are_refused_not_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<HostMsg>(Frame { tag: TAG_JSON, body: body.clone() });
            let _ = decode::<GatewayMsg>(Frame { tag: TAG_CHUNK, body });
        }
    }
}
