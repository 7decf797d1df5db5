//! Writes the binary seed inputs of `frame` and `logbatch` with the crate's
//! own encoders: `cargo run --bin seeds -- DIR` (DIR/frame/, DIR/logbatch/).
//! The text targets' seeds (manifests, expressions, command lines) are
//! committed as they were taken from README.md, docs/CLI.md and the tests.

use std::collections::BTreeMap;
use std::path::Path;

use schema::frame::{ExecMsg, ExecRequest, Hello as ExecHello};
use schema::logbatch::{LogBatchWriter, LogRef, LogSegmentWriter};
use schema::progress::Step;
use schema::tunnel::{
    self, Chunk, GatewayMsg, Heartbeat, Hello, HostApp, HostEvent, HostMsg, TUNNEL_PROTOCOL_VERSION,
};
use schema::{AppKind, AuditEntry, Manifest, PsRow, Stream, Version};

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let dir = Path::new(&dir);
    let frames = frame_seeds();
    write(&dir.join("frame"), "seed", &frames);
    write(&dir.join("logbatch"), "seed", &logbatch_seeds());
    eprintln!(
        "wrote {} frame seeds and the log batch seeds to {}",
        frames.len(),
        dir.display()
    );
}

fn write(dir: &Path, prefix: &str, items: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, b) in items.iter().enumerate() {
        std::fs::write(dir.join(format!("{prefix}-{i:03}")), b).unwrap();
    }
}

fn records() -> Vec<LogRef<'static>> {
    let r = |seq, time, release, instance, stream, line, partial| LogRef {
        seq,
        time,
        release,
        instance,
        stream,
        line,
        partial,
    };
    vec![
        r(
            7,
            1_764_000_000_123,
            Some(3),
            "web.1",
            Stream::Stdout,
            "GET / 200",
            false,
        ),
        r(
            8,
            1_764_000_000_999,
            Some(3),
            "web.1",
            Stream::Stderr,
            "tab\there \"q\" \\ \u{1} é …",
            true,
        ),
        r(
            9,
            1_764_000_001_000,
            None,
            "web.2",
            Stream::System,
            "",
            false,
        ),
        r(
            10,
            1_763_999_999_000,
            Some(4),
            "web.2",
            Stream::Stdout,
            r#"{"level":"warn","status":503}"#,
            false,
        ),
        r(
            300,
            -1,
            Some(u32::MAX),
            "x",
            Stream::Stdout,
            "before 1970",
            false,
        ),
    ]
}

fn logbatch_seeds() -> Vec<Vec<u8>> {
    let rs = records();
    let mut out = Vec::new();
    // Batches: mode byte 0, then the frame's body (after length and tag).
    let body = |w: LogBatchWriter| {
        let mut v = vec![0u8];
        v.extend_from_slice(&w.finish()[5..]);
        v
    };
    out.push(body(LogBatchWriter::new(9, "api")));
    let mut w = LogBatchWriter::new(42, "web");
    rs.iter().for_each(|r| w.push(r));
    out.push(body(w));
    let mut w = LogBatchWriter::new(u64::MAX, "a");
    w.push(&rs[0]);
    out.push(body(w));
    // Segments: mode byte 0x80, u16 count, then the body.
    let seg = |rs: &[LogRef<'_>]| {
        let mut w = LogSegmentWriter::new();
        rs.iter().for_each(|r| w.push(r));
        let s = w.finish();
        let mut v = vec![0x80u8];
        v.extend_from_slice(&(s.count as u16).to_be_bytes());
        v.extend_from_slice(&s.body);
        (v, s)
    };
    out.push(seg(&rs).0);
    out.push(seg(&rs[..1]).0);
    out.push(vec![0x80, 0, 0]);
    // A batch holding a segment copied in between records.
    let (_, s) = seg(&rs[1..3]);
    let mut w = LogBatchWriter::new(5, "web");
    w.push(&rs[0]);
    w.push_segment(&s.body, s.count);
    w.push(&rs[3]);
    out.push(body(w));
    out
}

fn frame_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let msg = |m: &dyn Fn(&mut Vec<u8>)| {
        let mut v = Vec::new();
        m(&mut v);
        v
    };
    let app = HostApp {
        app: "api".into(),
        active: Some(Version(3)),
        replicas: 2,
        kept: vec![Version(1), Version(2), Version(3)],
    };
    let audit = AuditEntry {
        time: "2026-11-24T10:16:29.123Z".into(),
        key: "local:root".into(),
        action: "rollback".into(),
        app: Some("api".into()),
        detail: "v3 → v2".into(),
        refused: false,
    };
    let hello = HostMsg::Hello(Hello {
        version: TUNNEL_PROTOCOL_VERSION,
        name: "web-1".into(),
        arch: "x86_64".into(),
        engine: "0123456789abcdef".into(),
        cpus: 2,
        memory_bytes: 24 << 30,
        labels: BTreeMap::from([("region".into(), "eu".into())]),
        apps: vec![app.clone()],
        local_actions: vec![audit.clone()],
    });
    let row = PsRow {
        app: "api".into(),
        kind: AppKind::Http,
        release: Some(Version(3)),
        replicas: 2,
        running: 2,
        host: "web-1".into(),
        state: schema::RunState::Running,
        restarts: 0,
        instance: Some("api.1".into()),
        started: Some("2026-11-24T10:16:29.123Z".into()),
        next_run: None,
        detail: None,
        rps: Some(12.5),
        messages: None,
        requests: None,
        hosts: Vec::new(),
        canary: None,
    };
    let host_msgs = vec![
        hello,
        HostMsg::Heartbeat(Heartbeat {
            apps: vec![app],
            ps: vec![row.clone()],
            instance_rows: vec![row],
            instances: 2,
            memory_bytes: 1 << 27,
        }),
        HostMsg::Reply {
            id: 3,
            ok: false,
            message: "compile failed".into(),
            compile_ms: Some(120),
        },
        HostMsg::Progress {
            id: 3,
            line: "fetching 3.2 MiB".into(),
            step: Some(Step::Fetching {
                offset: 0,
                size: 3 << 20,
            }),
        },
        HostMsg::Fetch {
            digest: "ab".repeat(32),
            offset: 7,
        },
        HostMsg::LogsEnd { id: 9 },
        HostMsg::Event(HostEvent::HealthFailed {
            app: "api".into(),
            version: Version(4),
            detail: "error_rate=0.12 > 0.05".into(),
            to: Some(Version(3)),
        }),
        HostMsg::Event(HostEvent::LocalAction(audit)),
    ];
    let mut m = Manifest::new("api", AppKind::Http);
    m.replicas = Some(2);
    m.env.insert("GREETING".into(), "hi".into());
    m.health.rule = Some("error_rate > 0.05".into());
    let gateway_msgs = vec![
        GatewayMsg::Welcome {
            version: TUNNEL_PROTOCOL_VERSION,
            gateway: "gw".into(),
        },
        GatewayMsg::Refused {
            reason: "protocol 2 is not 3".into(),
        },
        GatewayMsg::Stage {
            id: 1,
            app: "api".into(),
            version: Version(4),
            digest: "0f".repeat(32),
            size: 12 << 20,
            manifest: m,
            by: "alice".into(),
        },
        GatewayMsg::Activate {
            id: 2,
            app: "api".into(),
            version: Version(4),
            replicas: 2,
            by: "alice".into(),
        },
        GatewayMsg::Logs {
            id: 5,
            app: "api".into(),
            since: Some(10),
            tail: None,
            follow: true,
            filter: Some("stream == stderr".into()),
            ago_ms: Some(300_000),
        },
        GatewayMsg::LogsCredit { id: 5, batches: 16 },
        GatewayMsg::ChunkEnd {
            digest: "0f".repeat(32),
            total: 3,
        },
    ];
    for h in &host_msgs {
        out.push(msg(&|v| tunnel::encode_msg(h, v)));
    }
    for g in &gateway_msgs {
        out.push(msg(&|v| tunnel::encode_msg(g, v)));
    }
    let chunk = Chunk {
        digest: "0f".repeat(32),
        offset: 1 << 20,
        data: b"\0asm\x01\0\0\0".to_vec(),
    };
    out.push(msg(&|v| tunnel::encode_chunk(&chunk, v)));
    let rs = records();
    let mut w = LogBatchWriter::new(5, "api");
    rs.iter().for_each(|r| w.push(r));
    out.push(w.finish());
    // The exec protocol, one stream.
    let exec = [
        ExecMsg::Hello(ExecHello::exec()),
        ExecMsg::Exec(ExecRequest {
            argv: vec!["deploy".into(), "api".into(), "-".into()],
            local: false,
        }),
        ExecMsg::Stdin(b"\0asm".to_vec()),
        ExecMsg::StdinEnd,
        ExecMsg::Stdout(b"v4 active\n".to_vec()),
        ExecMsg::Stderr(b"error: no\n".to_vec()),
        ExecMsg::Exit(-2),
    ];
    out.push(exec.iter().flat_map(ExecMsg::to_bytes).collect());
    // A tunnel session's start: hello, heartbeat, a reply, in one read.
    out.push(
        out[0]
            .iter()
            .chain(&out[1])
            .chain(&out[2])
            .copied()
            .collect(),
    );
    out
}
