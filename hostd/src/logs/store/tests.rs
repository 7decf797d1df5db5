//! The store against real `logs.db` files: reads from any start, the cap,
//! damaged segments, the bulk read and moving an old store into segments.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, params};
use schema::command::Since;
use schema::logbatch::LogBatch;
use schema::{LogRecord, Stream, Version};

use super::read::Start;
use super::write::{Usage, remove, write_batch};
use super::*;
use crate::logs::Entry;

fn entry(app: &str, i: usize) -> Entry {
    Entry {
        app: app.into(),
        release: Some(1 + (i / 1000) as u32),
        instance: format!("{app}.{}", i % 3).into(),
        stream: if i.is_multiple_of(5) {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        time: 1_764_000_000_000 + i as i64,
        line: format!("{app} line {i}"),
        partial: false,
    }
}

struct Store {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    c: Connection,
    usage: HashMap<Arc<str>, Usage>,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let c = open_writer(&path).unwrap();
        Store {
            _dir: dir,
            path,
            c,
            usage: HashMap::new(),
        }
    }

    /// Writes `n` records of `a` interleaved with `n / 2` of `b`, in
    /// commits of at most `per_commit` lines.
    fn fill(&mut self, n: usize, per_commit: usize, cap: u64) {
        let lines: Vec<Entry> = (0..n)
            .flat_map(|i| {
                let mut v = vec![entry("a", i)];
                if i % 2 == 0 {
                    v.push(entry("b", i));
                }
                v
            })
            .collect();
        let mut it = lines.into_iter().peekable();
        while it.peek().is_some() {
            let batch: Vec<Entry> = it.by_ref().take(per_commit).collect();
            write_batch(&mut self.c, &mut self.usage, "h1", batch, cap).unwrap();
        }
    }

    fn all(&mut self, app: &str) -> Vec<LogRecord> {
        query(&mut self.c, "h1", app, None, None).unwrap()
    }

    fn seqs(&mut self, app: &str, since: Option<Since>, tail: Option<u64>) -> Vec<u64> {
        query(&mut self.c, "h1", app, since, tail)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    /// What a bulk read through the tunnel sends, decoded.
    fn scanned(&self, app: &str, since: Option<Since>, tail: Option<u64>) -> Vec<LogRecord> {
        let c = open_reader(&self.path).unwrap();
        let Some(s) = start(&c, app, since, tail).unwrap() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let sent = scan(&c, "h1", app, s, None, 7, &mut |f: Vec<u8>| {
            assert!(f.len() <= 2 * schema::logbatch::BATCH_BYTES, "{}", f.len());
            let b = LogBatch::decode(&f[5..]).unwrap();
            assert_eq!((b.id, b.app.as_str()), (7, app));
            out.extend(b.to_records("h1"));
            true
        })
        .unwrap();
        assert_eq!(sent.records as usize, out.len());
        out
    }
}

#[test]
fn records_read_back_whole_from_any_sequence_number_or_tail() {
    let mut s = Store::new();
    s.fill(6000, 1500, DEFAULT_CAP_BYTES);
    let a = s.all("a");
    assert_eq!(a.len(), 6000);
    for (i, r) in a.iter().enumerate() {
        let want = entry("a", i);
        assert_eq!((r.seq, r.line.as_str()), (i as u64 + 1, want.line.as_str()));
        assert_eq!(
            (&*r.instance, r.stream, r.release),
            (&*want.instance, want.stream, want.release.map(Version))
        );
    }
    assert_eq!(s.all("b").len(), 3000);
    let segments: i64 =
        s.c.query_row("SELECT COUNT(*) FROM log_segments", [], |r| r.get(0))
            .unwrap();
    assert!(segments > 4, "{segments}");
    // Inside a segment, on its edges, before the first and past the last.
    for k in [
        0u64, 1, 1499, 1500, 1501, 2047, 2048, 4444, 5999, 6000, 9000,
    ] {
        let want: Vec<u64> = (k + 1..=6000).collect();
        assert_eq!(s.seqs("a", Some(Since::Seq(k)), None), want, "since {k}");
        let tail = 6000u64.saturating_sub(k);
        if tail > 0 {
            assert_eq!(s.seqs("a", None, Some(tail)), want, "tail {tail}");
        }
    }
    assert_eq!(
        s.seqs("a", Some(Since::Seq(5990)), Some(3)),
        vec![5998, 5999, 6000]
    );
    assert!(s.seqs("a", None, Some(0)).is_empty());
    assert!(s.seqs("nope", None, None).is_empty());
    // The tunnel's bulk read sends the same records.
    assert_eq!(s.scanned("a", None, None), a);
    assert_eq!(s.scanned("a", Some(Since::Seq(1777)), None), a[1777..]);
    assert_eq!(s.scanned("a", None, Some(10)), a[5990..]);
}

#[test]
fn a_tail_of_matching_records_reads_back_from_the_newest() {
    let mut s = Store::new();
    // Small commits: many segments, several pages of them.
    s.fill(20_000, 500, DEFAULT_CAP_BYTES);
    let keep = |p: &mut Vec<LogRecord>| p.retain(|r| r.line.ends_with("77"));
    let got = query_matching(&mut s.c, "h1", "a", None, Some(4), &keep).unwrap();
    let lines: Vec<&str> = got.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "a line 19677",
            "a line 19777",
            "a line 19877",
            "a line 19977"
        ]
    );
    let every = query_matching(&mut s.c, "h1", "a", None, None, &keep).unwrap();
    assert_eq!(every.len(), 200);
    let since = query_matching(&mut s.c, "h1", "a", Some(Since::Seq(4900)), Some(9), &keep);
    assert_eq!(since.unwrap().len(), 9);
    // The tunnel's read with a compiled filter sends the same records,
    // across pages whose records are refilled in place.
    let m = crate::logs::follow::matcher(Some(r#"line ~ /77$/"#))
        .unwrap()
        .unwrap();
    let c = open_reader(&s.path).unwrap();
    let mut sent = Vec::new();
    let n = scan(
        &c,
        "h1",
        "a",
        Start::new(None),
        Some(&m),
        3,
        &mut |f: Vec<u8>| {
            sent.extend(LogBatch::decode(&f[5..]).unwrap().to_records("h1"));
            true
        },
    )
    .unwrap();
    assert_eq!((n.records, n.last_read), (200, Some(20_000)));
    assert_eq!(sent, every);
}

#[test]
fn the_cap_drops_whole_old_segments_and_numbering_goes_on() {
    let mut s = Store::new();
    s.fill(20_000, 4096, 200_000);
    let a = s.all("a");
    let bytes: i64 =
        s.c.query_row(
            "SELECT SUM(bytes) FROM log_segments WHERE app = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(bytes <= 200_000, "{bytes}");
    assert!(!a.is_empty() && a.len() < 20_000, "{}", a.len());
    // What is left is the newest records, without a gap.
    assert_eq!(a.last().unwrap().seq, 20_000);
    assert!(a.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(last_seq(&mut s.c, "a").unwrap(), 20_000);
    remove(&mut s.c, "a").unwrap();
    assert!(s.all("a").is_empty());
    assert_eq!(last_seq(&mut s.c, "a").unwrap(), 20_000);
}

#[test]
fn a_damaged_segment_is_one_system_record_and_the_rest_reads() {
    let mut s = Store::new();
    s.fill(3000, 1000, DEFAULT_CAP_BYTES);
    let (first, last): (i64, i64) = s
        .c
        .query_row(
            "SELECT first_seq, last_seq FROM log_segments WHERE app = 'a' ORDER BY first_seq LIMIT 1 OFFSET 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    s.c.execute(
        "UPDATE log_segments SET body = substr(body, 1, 100) WHERE app = 'a' AND first_seq = ?1",
        [first],
    )
    .unwrap();
    for got in [s.all("a"), s.scanned("a", None, None)] {
        let lost: Vec<&LogRecord> = got.iter().filter(|r| r.stream == Stream::System).collect();
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].seq, last as u64);
        assert!(
            lost[0].line.contains(&format!("records {first}-{last}"))
                && lost[0].line.contains("could not be read"),
            "{}",
            lost[0].line
        );
        assert_eq!(got.len() as i64, 3000 - (last - first + 1) + 1);
        assert_eq!(got.last().unwrap().seq, 3000);
    }
}

#[test]
fn a_store_of_a_record_per_row_is_moved_into_segments_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let mut c = open_connection(&path, Durability::Normal).unwrap();
        migrate(&mut c, &path, schema::migrations::LOGS.up_to(1)).unwrap();
        for (app, n) in [("a", 3000), ("b", 2)] {
            for seq in 1..=n {
                c.execute(
                    "INSERT INTO log_records (app, seq, time, release, instance, stream, line, partial, bytes)
                     VALUES (?1, ?2, 1000 + ?2, 1, ?1 || '.1', 'stdout', 'line ' || ?2, 0, 70)",
                    params![app, seq],
                )
                .unwrap();
            }
            c.execute(
                "INSERT INTO log_apps (app, next_seq, bytes) VALUES (?1, ?2, ?3)",
                params![app, n + 1, n * 70],
            )
            .unwrap();
        }
        // Clustered by version 2, still a row per record.
        migrate(&mut c, &path, schema::migrations::LOGS.up_to(2)).unwrap();
    }
    let mut c = open_writer(&path).unwrap();
    let gone: bool = c
        .query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'log_records')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(gone);
    let a = query(&mut c, "h1", "a", None, None).unwrap();
    assert_eq!(a.len(), 3000);
    assert_eq!(
        (a[0].seq, a[0].line.as_str(), a[0].instance.as_str()),
        (1, "line 1", "a.1")
    );
    assert_eq!(a[2999].time, schema::time::rfc3339(4000));
    assert_eq!(query(&mut c, "h1", "b", None, None).unwrap().len(), 2);
    let bytes: i64 = c
        .query_row("SELECT bytes FROM log_apps WHERE app = 'a'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let stored: i64 = c
        .query_row(
            "SELECT SUM(bytes) FROM log_segments WHERE app = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bytes, stored);
    // Numbering goes on where it was.
    let mut usage = HashMap::new();
    let out = write_batch(
        &mut c,
        &mut usage,
        "h1",
        vec![entry("a", 1)],
        DEFAULT_CAP_BYTES,
    )
    .unwrap();
    assert_eq!(out[0].seq, 3001);
    drop(c);
    // Opening again has nothing to move.
    let mut c = open_writer(&path).unwrap();
    assert_eq!(query(&mut c, "h1", "a", None, None).unwrap().len(), 3001);
}
