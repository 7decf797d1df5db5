//! Compiled filters vs the interpreter vs hand-written Rust: figures, not
//! tests. Run in release:
//!
//! ```text
//! cargo bench -p hostd --bench filter
//! ```
//!
//! For five representative expressions it prints ns per record at batch
//! sizes 1, 64 and 1024 for:
//! - `jit`: `CompiledFilter::matches_batch` over `&[LogRecord]` (one call
//!   of compiled code per batch, reading the records in place);
//! - `interp`: `Filter::matches`, the reference interpreter, per record;
//! - `closure`: the same condition written by hand in Rust, with serde
//!   derive for JSON lines (the fastest ordinary way to read two fields);
//!
//! and the parse and compile time of each expression. Every variant is
//! checked to select the same records before it is timed.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use hostd::filter::CompiledFilter;
use regex::Regex;
use schema::LogRecord;
use schema::expr::{Filter, Level, parse_filter};
use schema::names::Version;
use schema::types::Stream;
use serde::Deserialize;

const BATCHES: [usize; 3] = [1, 64, 1024];
const RECORDS: usize = 1024;
const SAMPLES: usize = 25;
const SAMPLE: Duration = Duration::from_millis(10);

/// A realistic mix: 60% JSON access/app logs, 40% plain text.
fn records() -> Vec<LogRecord> {
    let levels = [
        "info", "info", "info", "debug", "warn", "error", "INFO", "warning",
    ];
    let statuses = [200, 200, 200, 201, 304, 404, 500, 503];
    let msgs = [
        "GET /api/users",
        "POST /api/orders",
        "upstream timeout",
        "cache miss",
        "connection refused",
    ];
    (0..RECORDS)
        .map(|i| {
            let line = if i % 5 < 3 {
                format!(
                    r#"{{"time":"2026-05-01T12:00:{:02}Z","level":"{}","msg":"{}","status":{},"latency_ms":{}.{},"path":"/api/v1/items/{}","user":"u{}"}}"#,
                    i % 60,
                    levels[i % levels.len()],
                    msgs[i % msgs.len()],
                    statuses[(i / 3) % statuses.len()],
                    (i * 37) % 900,
                    i % 10,
                    i,
                    i % 97
                )
            } else {
                let tail = if i % 7 == 0 { "timed out after 30s" } else { "ok" };
                format!("worker {} processed job {} in {}ms: {tail}", i % 4, i, (i * 13) % 500)
            };
            LogRecord {
                seq: i as u64,
                time: format!("2026-05-01T12:00:{:02}Z", i % 60),
                host: if i % 3 == 0 { "h1" } else { "h2" }.into(),
                app: if i % 2 == 0 { "api" } else { "web" }.into(),
                release: Some(Version(1 + (i % 4) as u32)),
                instance: format!("api-{}", i % 3),
                stream: [Stream::Stdout, Stream::Stderr, Stream::Stdout, Stream::System][(i / 2) % 4],
                line,
                partial: false,
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct Access<'a> {
    status: Option<f64>,
    latency_ms: Option<f64>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
}

fn access(line: &str) -> Option<Access<'_>> {
    serde_json::from_str(line).ok()
}

type Closure = Box<dyn Fn(&LogRecord) -> bool>;

fn cases() -> Vec<(&'static str, Closure)> {
    let re = Regex::new("time(d )?out|refused").expect("valid regex");
    vec![
        (
            r#"app == "api" && stream == stderr"#,
            Box::new(|r: &LogRecord| r.app == "api" && r.stream == Stream::Stderr),
        ),
        (
            "status >= 500",
            Box::new(|r: &LogRecord| {
                access(&r.line)
                    .and_then(|a| a.status)
                    .is_some_and(|s| s >= 500.0)
            }),
        ),
        (
            r#"level >= warn && msg contains "timeout""#,
            Box::new(|r: &LogRecord| {
                access(&r.line).is_some_and(|a| {
                    a.level
                        .as_deref()
                        .and_then(Level::from_name)
                        .is_some_and(|l| l >= Level::Warn)
                        && a.msg.as_deref().is_some_and(|m| m.contains("timeout"))
                })
            }),
        ),
        (
            "line ~ /time(d )?out|refused/",
            Box::new(move |r: &LogRecord| re.is_match(&r.line)),
        ),
        (
            r#"seq > 100 && (host == "h1" || release >= "v3") && !(latency_ms < 250ms)"#,
            Box::new(|r: &LogRecord| {
                r.seq > 100
                    && (r.host == "h1" || r.release.is_some_and(|v| v.0 >= 3))
                    && !access(&r.line)
                        .and_then(|a| a.latency_ms)
                        .is_some_and(|l| l < 250.0)
            }),
        ),
    ]
}

/// Runs `f` (which handles `RECORDS` records) in `SAMPLES` samples of at
/// least `SAMPLE` each; returns the fastest sample's ns per record. The
/// minimum, not the mean: on a shared machine the slow samples measure the
/// neighbours, not the code.
fn ns_per_record(mut f: impl FnMut()) -> f64 {
    f();
    (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let mut rounds = 0u64;
            while start.elapsed() < SAMPLE {
                f();
                rounds += 1;
            }
            start.elapsed().as_nanos() as f64 / (rounds * RECORDS as u64) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// (fastest, median) of `xs`.
fn min_median(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2])
}

fn main() {
    // `cargo bench` passes `--bench`; accept a substring to run one case.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let records = records();
    println!(
        "records: {RECORDS} (60% JSON lines, 40% plain text); ns per record, lower is better\n"
    );
    println!(
        "| expression | batch | jit | interp | closure | interp/jit | jit/closure | matches |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut compile_rows = Vec::new();
    for (src, closure) in cases() {
        if only.as_deref().is_some_and(|o| !src.contains(o)) {
            continue;
        }
        let filter: Filter = parse_filter(src).expect("bench expressions parse");
        let compiled = CompiledFilter::compile(&filter).expect("bench expressions compile");

        // Same answers from all three before timing anything.
        let want: Vec<bool> = records.iter().map(|r| filter.matches(r)).collect();
        let mut got = Vec::new();
        compiled.matches_batch(&records, &mut got);
        assert_eq!(got, want, "jit disagrees on {src}");
        let by_hand: Vec<bool> = records.iter().map(&closure).collect();
        assert_eq!(by_hand, want, "closure disagrees on {src}");
        let hits = want.iter().filter(|&&b| b).count();

        for batch in BATCHES {
            let mut out = Vec::with_capacity(batch);
            let jit = ns_per_record(|| {
                for chunk in records.chunks(batch) {
                    compiled.matches_batch(black_box(chunk), &mut out);
                    black_box(&out);
                }
            });
            let interp = ns_per_record(|| {
                for chunk in records.chunks(batch) {
                    out.clear();
                    out.extend(black_box(chunk).iter().map(|r| filter.matches(r)));
                    black_box(&out);
                }
            });
            let hand = ns_per_record(|| {
                for chunk in records.chunks(batch) {
                    out.clear();
                    out.extend(black_box(chunk).iter().map(&closure));
                    black_box(&out);
                }
            });
            println!(
                "| `{src}` | {batch} | {jit:.1} | {interp:.1} | {hand:.1} | {:.1}x | {:.2}x | {hits} |",
                interp / jit,
                jit / hand
            );
        }

        let parse_us = min_median(
            (0..100)
                .map(|_| {
                    let t = Instant::now();
                    black_box(parse_filter(black_box(src)).expect("parses"));
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect(),
        );
        let compile_us = min_median(
            (0..100)
                .map(|_| {
                    let t = Instant::now();
                    black_box(CompiledFilter::compile(black_box(&filter)).expect("compiles"));
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect(),
        );
        compile_rows.push((src, parse_us, compile_us));
    }
    println!(
        "\n| expression | parse + check µs (min / median) | compile + free µs (min / median) |"
    );
    println!("| --- | ---: | ---: |");
    for (src, (p_min, p_med), (c_min, c_med)) in compile_rows {
        println!("| `{src}` | {p_min:.1} / {p_med:.1} | {c_min:.1} / {c_med:.1} |");
    }
}
