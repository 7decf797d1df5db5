//! Round trips, rendering against the record types, and malformed input,
//! for batches and segments.

use proptest::prelude::*;

use super::*;
use crate::Version;
use crate::frame;
use crate::types::LogRecord;

fn record(seq: u64, time: i64, inst: &str, line: &str) -> LogRecord {
    LogRecord {
        seq,
        time: crate::time::rfc3339(time),
        host: "h1".into(),
        app: "web".into(),
        release: Some(Version(3)),
        instance: inst.into(),
        stream: Stream::Stdout,
        line: line.into(),
        partial: false,
    }
}

fn batch_of(id: u64, app: &str, rs: &[LogRecord]) -> Vec<u8> {
    let mut w = LogBatchWriter::new(id, app);
    for r in rs {
        w.push(&LogRef::of(r));
    }
    w.finish()
}

fn decode_frame(wire: &[u8]) -> LogBatch {
    let (f, n) = frame::decode(wire, crate::tunnel::MAX_TUNNEL_FRAME)
        .unwrap()
        .unwrap();
    assert_eq!(n, wire.len());
    assert_eq!(f.tag, TAG_LOGS);
    LogBatch::decode(&f.body).unwrap()
}

#[test]
fn a_batch_round_trips_and_renders_like_the_record_types() {
    let mut rs = vec![
        record(7, 1_764_000_000_123, "web.1", "GET / 200"),
        record(
            8,
            1_764_000_000_999,
            "web.1",
            "tab\there \"quoted\" \\ \u{1} é …",
        ),
        record(9, 1_764_000_001_000, "web.2", ""),
        record(
            10,
            1_764_000_001_001,
            "web.req-4",
            r#"{"method":"GET","path":"/a \"b\"","status":503,"latency_ms":1.25,"bytes":17}"#,
        ),
    ];
    rs[1].stream = Stream::Stderr;
    rs[1].partial = true;
    rs[2].release = None;
    rs[2].stream = Stream::System;
    rs[3].stream = Stream::Access;
    let b = decode_frame(&batch_of(42, "web", &rs));
    assert_eq!((b.id, b.app.as_str(), b.len()), (42, "web", 4));
    // An access record's JSON carries its request's fields.
    let v: serde_json::Value = serde_json::to_value(&rs[3]).unwrap();
    assert_eq!(
        (
            &v["method"],
            &v["path"],
            &v["status"],
            &v["latency_ms"],
            &v["bytes"]
        ),
        (
            &serde_json::json!("GET"),
            &serde_json::json!("/a \"b\""),
            &serde_json::json!(503),
            &serde_json::json!(1.25),
            &serde_json::json!(17)
        )
    );
    assert_eq!(b.to_records("h1"), rs);
    let mut clock = Clock::default();
    for (r, want) in b.iter().zip(&rs) {
        let mut text = Vec::new();
        r.write_text("h1", "web", &mut clock, &mut text);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            crate::render::log_line(want) + "\n"
        );
        let mut json = Vec::new();
        r.write_json("h1", "web", &mut clock, &mut json);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            serde_json::to_string(want).unwrap() + "\n"
        );
    }
}

#[test]
fn skipping_resumes_after_a_sequence_number() {
    let rs: Vec<_> = (1..=5)
        .map(|s| record(s, 1_000 * s as i64, "a.1", "x"))
        .collect();
    let mut b = decode_frame(&batch_of(1, "a", &rs));
    b.skip_through(3);
    assert_eq!(b.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(b.last_seq(), Some(5));
    b.skip_through(9);
    assert!(b.is_empty());
    assert_eq!(b.last_seq(), None);
}

#[test]
fn malformed_batches_are_errors_that_say_what_is_wrong() {
    let rs = vec![record(1, 5, "a.1", "hello")];
    let wire = batch_of(1, "a", &rs);
    let body = &wire[5..];
    // Truncated anywhere: an error, never a panic.
    for cut in 0..body.len() {
        assert!(LogBatch::decode(&body[..cut]).is_err(), "cut at {cut}");
    }
    // Trailing garbage.
    let mut long = body.to_vec();
    long.push(0);
    let e = LogBatch::decode(&long).unwrap_err().to_string();
    assert!(e.contains("after the last record"), "{e}");
    // Not UTF-8.
    let mut bad = body.to_vec();
    let at = bad.len() - 1;
    bad[at] = 0xff;
    let e = LogBatch::decode(&bad).unwrap_err().to_string();
    assert!(e.contains("not UTF-8"), "{e}");
    // A count no body could hold.
    let mut lie = body.to_vec();
    lie[11..15].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = LogBatch::decode(&lie).unwrap_err().to_string();
    assert!(e.contains("cannot fit"), "{e}");
}

fn segment_of(rs: &[LogRecord]) -> LogSegment {
    let mut w = LogSegmentWriter::new();
    for r in rs {
        w.push(&LogRef::of(r));
    }
    w.finish()
}

/// Records pushed one at a time and segments copied in, in turn, at
/// the given cut points (a cut at an odd index starts a segment).
fn mixed_batch(rs: &[LogRecord], cuts: &[usize]) -> Vec<u8> {
    let mut w = LogBatchWriter::new(5, "web");
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (rs.len() + 1)).collect();
    bounds.push(0);
    bounds.push(rs.len());
    bounds.sort_unstable();
    bounds.dedup();
    for (i, pair) in bounds.windows(2).enumerate() {
        let part = &rs[pair[0]..pair[1]];
        if i % 2 == 1 {
            let s = segment_of(part);
            check_segment(&s.body, s.count).unwrap();
            w.push_segment(&s.body, s.count);
        } else {
            for r in part {
                w.push(&LogRef::of(r));
            }
        }
    }
    w.finish()
}

#[test]
fn segments_copied_into_a_batch_read_like_records_pushed_one_at_a_time() {
    let rs: Vec<_> = (1..=9)
        .map(|s| {
            record(
                s,
                1_000_000 + 7 * s as i64,
                ["a.1", "a.2"][s as usize % 3 / 2],
                "x",
            )
        })
        .collect();
    let b = decode_frame(&mixed_batch(&rs, &[2, 3, 7]));
    assert_eq!(b.to_records("h1"), rs);
    let s = segment_of(&rs[2..6]);
    assert_eq!((s.first_seq, s.last_seq, s.count), (3, 6, 4));
    assert_eq!((s.min_time, s.max_time), (1_000_021, 1_000_042));
    let mut seen = Vec::new();
    segment_records(&s.body, s.count, |r| seen.push(r.to_record("h1", "web"))).unwrap();
    assert_eq!(seen, rs[2..6]);
}

#[test]
fn malformed_segments_are_refused_whole() {
    let rs = vec![record(1, 5, "a.1", "hello"), record(2, 6, "a.2", "world")];
    let s = segment_of(&rs);
    for cut in 0..s.body.len() {
        assert!(
            check_segment(&s.body[..cut], s.count).is_err(),
            "cut at {cut}"
        );
    }
    let e = check_segment(&s.body, 3).unwrap_err().to_string();
    assert!(e.contains("log segment"), "{e}");
    let mut long = s.body.clone();
    long.push(0);
    let e = check_segment(&long, 2).unwrap_err().to_string();
    assert!(e.contains("after the last record"), "{e}");
    // The second record alone depends on the first: not a segment.
    let first = segment_of(&rs[..1]).body.len();
    let e = check_segment(&s.body[first..], 1).unwrap_err().to_string();
    assert!(e.contains("does not start afresh"), "{e}");
    let mut called = false;
    assert!(segment_records(&s.body[..s.body.len() - 1], 2, |_| called = true).is_err());
    assert!(!called, "nothing is read from a malformed segment");
}

fn arb_record() -> impl Strategy<Value = LogRecord> {
    (
        any::<u64>(),
        0i64..253_402_300_799_999,
        proptest::option::of(any::<u32>()),
        "[a-z0-9.]{0,12}",
        0u8..5,
        any::<String>(),
        any::<bool>(),
    )
        .prop_map(
            |(seq, time, release, instance, s, line, partial)| LogRecord {
                seq,
                time: crate::time::rfc3339(time),
                host: "host-1".into(),
                app: "app".into(),
                release: release.map(Version),
                instance,
                stream: [
                    Stream::Stdout,
                    Stream::Stderr,
                    Stream::System,
                    Stream::Message,
                    Stream::Access,
                ][s as usize],
                line,
                partial,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_records_round_trip_and_render_exactly(rs in proptest::collection::vec(arb_record(), 0..40)) {
        let b = decode_frame(&batch_of(9, "app", &rs));
        prop_assert_eq!(&b.to_records("host-1"), &rs);
        let mut clock = Clock::default();
        // One record refilled with each in turn.
        let mut reused = record(0, 0, "x", "y");
        for want in &rs {
            LogRef::of(want).fill_record("host-1", "app", &mut clock, &mut reused);
            prop_assert_eq!(&reused, want);
        }
        for (r, want) in b.iter().zip(&rs) {
            let mut json = Vec::new();
            r.write_json("host-1", "app", &mut clock, &mut json);
            prop_assert_eq!(String::from_utf8(json).unwrap(), serde_json::to_string(want).unwrap() + "\n");
            let mut text = Vec::new();
            r.write_text("host-1", "app", &mut clock, &mut text);
            prop_assert_eq!(String::from_utf8(text).unwrap(), crate::render::log_line(want) + "\n");
        }
    }

    #[test]
    fn any_segments_copied_into_a_batch_round_trip(
        rs in proptest::collection::vec(arb_record(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let b = decode_frame(&mixed_batch(&rs, &cuts));
        let want: Vec<LogRecord> = rs.iter().map(|r| LogRecord { app: "web".into(), ..r.clone() }).collect();
        prop_assert_eq!(&b.to_records("host-1"), &want);
    }

    #[test]
    fn the_segment_checker_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), count in 0u32..200) {
        let _ = check_segment(&body, count);
    }

    #[test]
    fn the_decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = LogBatch::decode(&body);
    }
}

#[test]
fn a_time_past_year_9999_renders_the_same_on_both_paths() {
    let mut clock = Clock::default();
    for ms in [i64::MAX, 253_402_300_800_123, i64::MIN, -62_167_219_200_001] {
        let mut fast = String::new();
        clock.write_string(ms, &mut fast);
        assert_eq!(fast, crate::time::rfc3339(ms), "{ms}");
    }
}
