//! What each fuzz target does with one input: the parsers and decoders that
//! take bytes from outside, and the properties that must hold on whatever
//! they accept. A panic (an `assert!` included) is a finding.
//!
//! The afl binaries (`src/bin/fuzz_*.rs`) and the corpus replay test
//! (`replay.rs`) include this file by `#[path]`, so a replay runs exactly
//! what the fuzzer ran. It uses only `schema`, `ops` and `serde_json`.

#![allow(dead_code)]

use schema::Manifest;
use schema::command::{CommandLine, DeployArgs, join_command_line, split_command_line};
use schema::expr::{Metrics, parse_filter, parse_rule};
use schema::frame::{self, ExecMsg, FrameError, MAX_FRAME};
use schema::logbatch::{
    Clock, LogBatch, LogBatchWriter, LogRef, LogSegmentWriter, RawRef, TAG_LOGS, check_segment,
    checked_segment_records, segment_records,
};
use schema::tunnel::{self, GatewayMsg, HostMsg, Incoming, MAX_TUNNEL_FRAME};
use schema::{AppKind, LogRecord, Stream, Version};

/// One harness: what it does with one input.
pub type Harness = fn(&[u8]);

/// The targets by name, as `run.sh` and the replay test know them.
pub const TARGETS: &[(&str, Harness)] = &[
    ("frame", frame),
    ("logbatch", logbatch),
    ("manifest", manifest),
    ("expr", expr),
    ("exec_line", exec_line),
];

// ---------------------------------------------------------------- frames

/// A byte stream as a tunnel or control socket reads it: frames one after
/// another (`schema::frame::decode`), each interpreted as a tunnel frame
/// (`schema::tunnel::decode`, host and gateway side) and as an exec-protocol
/// message (`ExecMsg::from_frame`).
pub fn frame(data: &[u8]) {
    let mut buf = data;
    loop {
        let got = frame::decode(buf, MAX_TUNNEL_FRAME);
        // The same bytes under a small limit: the same frame, or TooLarge.
        match (&got, frame::decode(buf, 64)) {
            (Ok(Some(a)), Ok(Some(b))) => assert_eq!(a, &b),
            (Ok(None), Ok(None)) => {}
            (_, Err(FrameError::TooLarge { len, max })) => assert!(len > max && max == 64),
            (a, b) => assert_eq!(a, &b, "limits 4 MiB and 64 B disagree"),
        }
        let (f, n) = match got {
            Ok(Some(x)) => x,
            Ok(None) => {
                // Only a truncated frame asks for more.
                if buf.len() >= 4 {
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    assert!(buf.len() < 4 + len, "complete frame reported as partial");
                }
                return;
            }
            Err(e) => {
                match &e {
                    FrameError::Empty => assert_eq!(&buf[..4], &[0, 0, 0, 0]),
                    FrameError::TooLarge { len, max } => assert!(len > max),
                    other => panic!("the frame reader returned {other:?}"),
                }
                let _ = e.to_string();
                return;
            }
        };
        assert!(n <= buf.len() && n == 5 + f.body.len(), "consumed {n}");
        let wire = &buf[..n];
        // A frame re-encodes to the bytes it came from.
        let mut again = Vec::new();
        frame::encode(f.tag, &f.body, &mut again);
        assert_eq!(again, wire, "frame does not re-encode to its bytes");
        // Any proper prefix of it is "read more".
        assert_eq!(frame::decode(&wire[..n - 1], MAX_TUNNEL_FRAME), Ok(None));

        tunnel_frame::<HostMsg>(&f, wire);
        tunnel_frame::<GatewayMsg>(&f, wire);
        exec_frame(&f, wire);
        buf = &buf[n..];
    }
}

fn tunnel_frame<M>(f: &frame::Frame, wire: &[u8])
where
    M: serde::Serialize + for<'de> serde::Deserialize<'de> + std::fmt::Debug,
{
    match tunnel::decode::<M>(f.clone()) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(Incoming::Msg(m)) => {
            // A message re-encodes to one that decodes to the same message
            // (floats compared to the last bit serde_json keeps).
            let mut out = Vec::new();
            tunnel::encode_msg(&m, &mut out);
            let (f2, n2) = frame::decode(&out, usize::MAX).unwrap().unwrap();
            assert_eq!(n2, out.len());
            let m2 = match tunnel::decode::<M>(f2) {
                Ok(Incoming::Msg(m2)) => m2,
                other => panic!("{m:?} re-encoded decodes as {other:?}"),
            };
            let (a, b) = (
                serde_json::to_value(&m).unwrap(),
                serde_json::to_value(&m2).unwrap(),
            );
            assert!(same_json(&a, &b), "{a} came back as {b}");
        }
        Ok(Incoming::Chunk(c)) => {
            assert_eq!(c.digest.len(), 64);
            let mut out = Vec::new();
            tunnel::encode_chunk(&c, &mut out);
            assert_eq!(out, wire, "chunk does not re-encode to its bytes");
        }
        Ok(Incoming::Logs(b)) => {
            assert_eq!(f.tag, TAG_LOGS);
            check_batch(&b);
        }
    }
}

fn exec_frame(f: &frame::Frame, wire: &[u8]) {
    let m = match ExecMsg::from_frame(f.clone()) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    match &m {
        ExecMsg::Hello(_) | ExecMsg::Exec(_) => {
            let out = m.to_bytes();
            let (f2, _) = frame::decode(&out, MAX_FRAME).unwrap().unwrap();
            assert_eq!(ExecMsg::from_frame(f2).unwrap(), m);
        }
        // `StdinEnd` ignores its body: only an empty one re-encodes exactly.
        ExecMsg::StdinEnd if !f.body.is_empty() => {}
        _ => assert_eq!(m.to_bytes(), wire, "{m:?} does not re-encode to its bytes"),
    }
}

/// JSON equality, numbers that are floats on either side compared within
/// two units in the last place (serde_json's default float parsing is not
/// always correctly rounded, and that is serde_json's, not ours).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

// ----------------------------------------------------------- log batches

/// A log batch body (`LogBatch::decode`) when the first byte is below 0x80;
/// otherwise a stored segment (`check_segment`): two bytes of record count
/// (BE), then the body.
pub fn logbatch(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode < 0x80 {
        match LogBatch::decode(rest) {
            Ok(b) => {
                check_batch(&b);
                check_skip(&b, mode as usize);
            }
            Err(e) => {
                assert!(matches!(
                    e,
                    FrameError::Malformed {
                        what: "log batch",
                        ..
                    }
                ));
                let _ = e.to_string();
            }
        }
    } else if rest.len() >= 2 {
        let count = u16::from_be_bytes([rest[0], rest[1]]) as u32;
        check_segment_body(&rest[2..], count);
    }
}

/// What must hold of any batch the decoder accepted.
pub fn check_batch(b: &LogBatch) {
    let recs: Vec<RawRef<'_>> = b.iter().collect();
    assert_eq!(recs.len(), b.len(), "a checked batch reads short");
    assert_eq!(b.remaining(&b.cursor()), b.len());
    assert_eq!(b.last_seq(), recs.last().map(|r| r.seq));
    // The decoder checked every string: reading them as text never fails.
    let refs: Vec<LogRef<'_>> = recs.iter().map(log_ref).collect();

    // The records re-encode into a batch that decodes to the same records.
    let mut w = LogBatchWriter::new(b.id, &b.app);
    for r in &refs {
        w.push(r);
    }
    assert_eq!(w.len(), refs.len());
    let wire = w.finish();
    let (f, n) = frame::decode(&wire, usize::MAX).unwrap().unwrap();
    assert_eq!((f.tag, n), (TAG_LOGS, wire.len()));
    let b2 = LogBatch::decode(&f.body).expect("a re-encoded batch decodes");
    assert_eq!((b2.id, &b2.app), (b.id, &b.app));
    let recs2: Vec<RawRef<'_>> = b2.iter().collect();
    assert_eq!(recs2, recs, "records change through a re-encode");

    // Rendering straight from the bytes is byte for byte what rendering
    // the record types gives (`logs` text and `logs --json`).
    let mut clock = Clock::default();
    for r in &recs {
        let rec = r.to_record("h1", &b.app);
        let mut text = Vec::new();
        r.write_text("h1", &b.app, &mut clock, &mut text);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            schema::render::log_line(&rec) + "\n",
            "text of {r:?}"
        );
        let mut json = Vec::new();
        r.write_json("h1", &b.app, &mut clock, &mut json);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            serde_json::to_string(&rec).unwrap() + "\n",
            "JSON of {r:?}"
        );
        let mut filled = LogRecord {
            seq: 0,
            time: String::new(),
            host: String::new(),
            app: String::new(),
            release: None,
            instance: String::new(),
            stream: Stream::Stdout,
            line: String::new(),
            partial: false,
        };
        log_ref(r).fill_record("h1", &b.app, &mut clock, &mut filled);
        assert_eq!(filled, rec);
    }
}

/// `skip_through` leaves exactly the records after the first one numbered
/// above `seq`, for a `seq` taken from the batch (or past its end).
fn check_skip(b: &LogBatch, pick: usize) {
    let recs: Vec<RawRef<'_>> = b.iter().collect();
    let seq = match recs.get(pick % (recs.len() + 1)) {
        Some(r) => r.seq,
        None => u64::MAX,
    };
    let mut b2 = b.clone();
    b2.skip_through(seq);
    let keep = recs.iter().position(|r| r.seq > seq).unwrap_or(recs.len());
    let rest: Vec<RawRef<'_>> = b2.iter().collect();
    assert_eq!(rest, recs[keep..], "skip_through({seq})");
    assert_eq!(b2.len(), recs.len() - keep);
}

fn log_ref<'a>(r: &RawRef<'a>) -> LogRef<'a> {
    LogRef {
        seq: r.seq,
        time: r.time,
        release: r.release,
        instance: std::str::from_utf8(r.instance).expect("checked instance is UTF-8"),
        stream: r.stream,
        line: std::str::from_utf8(r.line).expect("checked line is UTF-8"),
        partial: r.partial,
    }
}

/// A stored segment: checked whole or refused whole; an accepted one reads
/// the same every way, re-encodes, and copies into a batch as it is.
pub fn check_segment_body(body: &[u8], count: u32) {
    let checked = check_segment(body, count);
    let mut seen = Vec::new();
    let walked = segment_records(body, count, |r| seen.push(r));
    assert_eq!(checked.is_ok(), walked.is_ok());
    if let Err(e) = checked {
        assert!(seen.is_empty(), "records handed out of a refused segment");
        assert!(matches!(
            e,
            FrameError::Malformed {
                what: "log segment",
                ..
            }
        ));
        return;
    }
    assert_eq!(seen.len(), count as usize);
    let mut again = Vec::new();
    checked_segment_records(body, count, |r| again.push(r));
    assert_eq!(again, seen);

    // Re-encoded by the store's writer: a segment with the same records.
    let mut w = LogSegmentWriter::new();
    for r in &seen {
        w.push(r);
    }
    let seg = w.finish();
    assert_eq!(seg.count, count);
    check_segment(&seg.body, seg.count).expect("a re-encoded segment checks");
    let mut back = Vec::new();
    segment_records(&seg.body, seg.count, |r| back.push(r)).unwrap();
    assert_eq!(back, seen);
    if let (Some(first), Some(last)) = (seen.first(), seen.last()) {
        assert_eq!((seg.first_seq, seg.last_seq), (first.seq, last.seq));
        assert_eq!(seg.min_time, seen.iter().map(|r| r.time).min().unwrap());
        assert_eq!(seg.max_time, seen.iter().map(|r| r.time).max().unwrap());
    }

    // Copied into a batch between two records as it is (a bulk read): the
    // batch decodes to those records around the segment's.
    let before = LogRef {
        seq: 1,
        time: 1_764_000_000_000,
        release: Some(1),
        instance: "x.1",
        stream: Stream::Stdout,
        line: "before",
        partial: false,
    };
    let after = LogRef {
        line: "after",
        ..before
    };
    let mut w = LogBatchWriter::new(7, "app");
    w.push(&before);
    w.push_segment(body, count);
    w.push(&after);
    let wire = w.finish();
    let (f, _) = frame::decode(&wire, usize::MAX).unwrap().unwrap();
    let b = LogBatch::decode(&f.body).expect("a checked segment copied into a batch decodes");
    let got: Vec<RawRef<'_>> = b.iter().collect();
    let want: Vec<RawRef<'_>> = std::iter::once(before.raw())
        .chain(seen.iter().map(|r| r.raw()))
        .chain(std::iter::once(after.raw()))
        .collect();
    assert_eq!(got, want, "a segment reads differently inside a batch");
}

// -------------------------------------------------------------- manifest

/// `APP.toml` text (`Manifest::from_toml`). An accepted manifest is valid,
/// survives TOML and JSON (it travels in `GatewayMsg::Stage`), and says the
/// same as `deploy` flags as it does as a file.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = match Manifest::from_toml(text) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    m.validate().expect("an accepted manifest validates");
    let _ = (
        m.memory_bytes(),
        m.timeout_ms(),
        m.stop_grace_ms(),
        m.health_window_s(),
    );
    let toml = m.to_toml();
    assert_eq!(
        Manifest::from_toml(&toml),
        Ok(m.clone()),
        "TOML round trip of\n{toml}"
    );
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        serde_json::from_str::<Manifest>(&json).unwrap(),
        m,
        "JSON round trip"
    );

    // As flags: the manifest overlaid on an empty deploy gives it back (less
    // `artifact`, which only the client reads), and so do the words a
    // client forwards.
    let mut want = m.clone();
    want.artifact = None;
    let mut d = DeployArgs::default();
    d.overlay_manifest(&m);
    assert_eq!(d.to_manifest(AppKind::Worker), Ok(want.clone()), "overlay");
    let argv = d.to_argv("-");
    let parsed = CommandLine::parse_argv(&argv)
        .unwrap_or_else(|e| panic!("the flags of a valid manifest do not parse: {argv:?}: {e}"));
    match parsed.command {
        schema::command::Command::Deploy(d2) => {
            assert_eq!(d2.to_manifest(AppKind::Worker), Ok(want), "flags {argv:?}")
        }
        other => panic!("{argv:?} parsed as {other:?}"),
    }
}

// ----------------------------------------------------------- expressions

/// Text as a log filter (`parse_filter`) and as a health rule
/// (`parse_rule`): never a panic; errors render; accepted expressions
/// evaluate, explain themselves and travel as their source text.
pub fn expr(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match parse_filter(src) {
        Err(e) => check_error(src, &e),
        Ok(f) => {
            assert_eq!(f.source(), src);
            let fields = f.json_fields();
            for (i, a) in fields.iter().enumerate() {
                assert!(!fields[..i].contains(a), "json_fields repeats {a}");
            }
            for r in sample_records() {
                let _ = f.matches(&r);
            }
            let json = serde_json::to_string(&f).unwrap();
            let f2: schema::expr::Filter = serde_json::from_str(&json).expect("filter travels");
            assert_eq!(f2, f);
            assert_eq!(
                format!("{:?}", f2.expr()),
                format!("{:?}", f.expr()),
                "a filter parses differently twice"
            );
        }
    }
    match parse_rule(src) {
        Err(e) => check_error(src, &e),
        Ok(rule) => {
            assert_eq!(rule.source(), src);
            let used = rule.metrics();
            for m in sample_metrics() {
                let tripped = rule.eval(&m);
                let ex = rule.explain(&m);
                assert_eq!(ex.tripped, tripped);
                for o in &ex.observations {
                    assert!(used.contains(&o.metric));
                }
                let _ = ex.to_string();
            }
            let json = serde_json::to_string(&rule).unwrap();
            let r2: schema::expr::Rule = serde_json::from_str(&json).expect("rule travels");
            assert_eq!(r2, rule);
        }
    }
}

fn check_error(src: &str, e: &schema::expr::ExprError) {
    assert!(
        e.span.start <= e.span.end && e.span.end <= src.len(),
        "{e:?}"
    );
    assert!(src.is_char_boundary(e.span.start) && src.is_char_boundary(e.span.end));
    assert!(e.line >= 1 && e.column >= 1 && e.width >= 1);
    assert!(!e.message.is_empty());
    let _ = (e.to_string(), e.summary(), e.diagram());
}

fn sample_records() -> Vec<LogRecord> {
    let rec = |line: &str, release: Option<u32>, stream: Stream| LogRecord {
        seq: 42,
        time: "2026-05-01T12:00:00.000Z".into(),
        host: "h1".into(),
        app: "api".into(),
        release: release.map(Version),
        instance: "api-1".into(),
        stream,
        line: line.into(),
        partial: false,
    };
    vec![
        rec(
            r#"{"status": 503, "latency_ms": 312.5, "level": "WARNING", "msg": "upstream timeout", "ok": false, "n": null, "a": [1], "big": 1e308, "neg": -9223372036854775808}"#,
            Some(3),
            Stream::Stderr,
        ),
        rec("plain text line", None, Stream::Stdout),
        rec(
            r#"{"level": 50, "status": "503", "latency_ms": "5s"}"#,
            Some(u32::MAX),
            Stream::System,
        ),
        rec("", Some(0), Stream::Stdout),
    ]
}

fn sample_metrics() -> Vec<Metrics> {
    vec![
        Metrics::default(),
        Metrics {
            requests: 100,
            errors: 12,
            error_rate: Some(0.12),
            p50_ms: Some(20.0),
            p99_ms: Some(512.5),
            restarts: 4,
        },
        Metrics {
            requests: u64::MAX,
            errors: u64::MAX,
            error_rate: Some(f64::NAN),
            p50_ms: Some(f64::INFINITY),
            p99_ms: Some(-0.0),
            restarts: u64::MAX,
        },
    ]
}

// ------------------------------------------------------- SSH exec lines

/// An SSH exec line or `:` prompt line (`ops::parse_line`): split into
/// words and parsed once. Errors carry CLI.md's exit status; an accepted
/// line parses back from the words a client would forward.
pub fn exec_line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // Quoting round trip: the words of a line, joined, split back the same.
    if let Ok(words) = split_command_line(line) {
        let joined = join_command_line(&words);
        assert_eq!(
            split_command_line(&joined),
            Ok(words.clone()),
            "joined as {joined:?}"
        );
    }
    let cl = match ops::parse_line(line) {
        Ok(cl) => cl,
        Err(e) => {
            use ops::ErrorKind::*;
            match e.kind {
                Help => assert_eq!(e.exit_code(), 0),
                Syntax => {
                    assert_eq!(e.exit_code(), 2);
                    assert!(e.message.starts_with("error:"), "{:?}", e.message);
                }
                Usage => assert_eq!(e.exit_code(), 2),
                other => panic!("parsing answered {other:?}: {}", e.message),
            }
            return;
        }
    };
    let _ = (
        cl.command.name(),
        cl.command.is_read_only(),
        cl.command.app(),
    );
    let argv = cl.to_argv();
    match ops::parse_argv(&argv) {
        Ok(back) => assert_eq!(back, cl, "{line:?} → {argv:?}"),
        Err(e) => panic!("{line:?} parsed, its words {argv:?} do not: {}", e.message),
    }
    let forwarded = join_command_line(&argv);
    match ops::parse_line(&forwarded) {
        Ok(back) => assert_eq!(back, cl, "{line:?} forwarded as {forwarded:?}"),
        Err(e) => panic!(
            "{line:?} forwarded as {forwarded:?} does not parse: {}",
            e.message
        ),
    }
}
