//! Differential tests: compiled filters and rules (hostd::filter) agree with
//! the reference interpreter (schema::expr) on generated expressions and
//! records.
//!
//! Expressions are generated as source text, well typed by construction, so
//! the parser and checker are exercised too (a generated expression that
//! fails to parse is a test failure). Records mix JSON lines (with the
//! fields filters name, of every JSON type, duplicated keys, escapes) with
//! lines that are not JSON, almost JSON, or JSON the parser must refuse.
//!
//! `FILTER_DIFF_CASES=N` changes how many expressions are generated.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use hostd::filter::{CompiledFilter, CompiledRule};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use schema::LogRecord;
use schema::expr::{Metrics, parse_filter, parse_rule};
use schema::names::Version;
use schema::types::Stream;

fn cases(default: u32) -> u32 {
    std::env::var("FILTER_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- literals

fn quoted(s: &str) -> String {
    // Rust's debug form uses only escapes the language knows.
    format!("{s:?}")
}

fn text_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "api",
            "web",
            "ap",
            "apj",
            "h1",
            "h2",
            "api-1",
            "",
            "2026-05-01",
            "2026-05-01T12:00:00Z",
            "timeout",
            "status",
            "{",
            "err",
            "5",
            "500",
            "upstream timeout",
            "é",
            "a\"b",
            "WARN",
            "warn",
            "x",
        ])
        .prop_map(str::to_string),
        "[a-z0-9 {}:\"é-]{0,8}",
    ]
}

fn regex_literal() -> impl Strategy<Value = String> {
    let pattern = prop::sample::select(vec![
        "a",
        "^api",
        r"\d+",
        "time(d )?out",
        "(?i)error",
        "^$",
        "[a-z]+-[0-9]",
        "é",
        ".",
        "x|y",
        r"^\{",
        "5..",
        r#""status""#,
        "(?i)^warn",
        "^h[12]$",
    ]);
    (pattern, any::<bool>()).prop_map(|(p, slash)| if slash { format!("/{p}/") } else { quoted(p) })
}

fn cmp_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="])
}

fn number_literal(negative: bool) -> impl Strategy<Value = String> {
    let lo = if negative { -1000i64 } else { 0 };
    prop_oneof![
        (lo..1000i64).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            0i64,
            1,
            42,
            200,
            500,
            503,
            9_007_199_254_740_993,
            i64::MAX
        ])
        .prop_map(|n| n.to_string()),
        ((lo * 100)..100_000i64).prop_map(|n| format!("{}.{:02}", n / 100, (n % 100).abs())),
        (0u32..5000, prop::sample::select(vec!["ms", "s", "m"]))
            .prop_map(|(n, u)| format!("{n}{u}")),
        Just("1.5s".to_string()),
        Just("1e3".to_string()),
    ]
}

const LEVEL_WORDS: &[&str] = &[
    "trace", "debug", "info", "warn", "error", "fatal", "warning", "ERR", "Critical", "notice",
    "TRACE", "Info",
];

// ------------------------------------------------------------- comparisons

/// Swaps sides of an ordering comparison now and then (`500 <= status`).
fn maybe_flip(field: String, op: &str, lit: String, flip: bool) -> String {
    if flip {
        format!("{lit} {op} {field}")
    } else {
        format!("{field} {op} {lit}")
    }
}

fn text_comparison(fields: &'static [&'static str]) -> impl Strategy<Value = String> {
    let field = prop::sample::select(fields);
    prop_oneof![
        (field.clone(), cmp_op(), text_literal(), any::<bool>())
            .prop_map(|(f, op, lit, flip)| maybe_flip(f.to_string(), op, quoted(&lit), flip)),
        (field.clone(), text_literal())
            .prop_map(|(f, lit)| format!("{f} contains {}", quoted(&lit))),
        (
            field,
            prop::sample::select(vec!["~", "!~"]),
            regex_literal()
        )
            .prop_map(|(f, op, re)| format!("{f} {op} {re}")),
    ]
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => text_comparison(&["host", "app", "instance", "time", "line"]),
        1 => (cmp_op(), number_literal(false), any::<bool>()).prop_map(|(op, n, flip)| {
            // seq takes no durations.
            let n = if n.ends_with('s') || n.ends_with('m') { "41".to_string() } else { n };
            maybe_flip("seq".into(), op, n, flip)
        }),
        1 => (cmp_op(), 0u32..12, any::<bool>()).prop_map(|(op, v, quote)| {
            if quote { format!("release {op} \"v{}\"", v.max(1)) } else { format!("release {op} {v}") }
        }),
        1 => (prop::sample::select(vec!["==", "!="]), prop::sample::select(vec!["stdout", "stderr", "system"]), any::<bool>())
            .prop_map(|(op, s, quote)| if quote { format!("stream {op} \"{s}\"") } else { format!("stream {op} {s}") }),
        3 => (prop::sample::select(vec!["status", "latency_ms", "level", "msg", "user", "ok"]), cmp_op(), number_literal(true), any::<bool>())
            .prop_map(|(f, op, n, flip)| maybe_flip(f.into(), op, n, flip)),
        3 => text_comparison(&["msg", "status", "user", "host_name"]),
        1 => prop_oneof![
            text_literal().prop_map(|l| format!("level contains {}", quoted(&l))),
            regex_literal().prop_map(|re| format!("level ~ {re}")),
            prop::sample::select(vec!["==", "!="]).prop_map(|op| format!("level {op} \"loud\"")),
        ],
        1 => (prop::sample::select(vec!["ok", "status", "msg"]), prop::sample::select(vec!["==", "!="]), any::<bool>())
            .prop_map(|(f, op, b)| format!("{f} {op} {b}")),
        3 => (cmp_op(), prop::sample::select(LEVEL_WORDS), any::<bool>())
            .prop_map(|(op, l, quote)| if quote { format!("level {op} \"{l}\"") } else { format!("level {op} {l}") }),
        1 => prop::sample::select(vec!["true", "false"]).prop_map(str::to_string),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            inner.clone().prop_map(|e| format!("({e})")),
            (
                prop::collection::vec(inner.clone(), 2..4),
                prop::collection::vec(any::<bool>(), 3)
            )
                .prop_map(|(terms, ors)| {
                    let mut s = terms[0].clone();
                    for (t, or) in terms[1..].iter().zip(ors) {
                        s.push_str(if or { " || " } else { " && " });
                        s.push_str(t);
                    }
                    s
                }),
        ]
    })
}

// ----------------------------------------------------------------- records

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        text_literal().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just(r#""WARN""#.to_string()),
        Just(r#""upstream timeout""#.to_string()),
        Just(r#""\u0065rror""#.to_string()),
        Just(r#""a\"b""#.to_string()),
        Just(r#""caf\u00e9""#.to_string()),
    ]
}

fn json_value(key: &'static str) -> BoxedStrategy<String> {
    let level = prop_oneof![
        (prop::sample::select(LEVEL_WORDS), any::<bool>()).prop_map(|(l, up)| format!(
            "\"{}\"",
            if up { l.to_uppercase() } else { l.to_string() }
        )),
        prop::sample::select(vec![
            "10", "20", "30", "40", "50", "60", "35", "30.0", "\"loud\"", "\"\""
        ])
        .prop_map(str::to_string),
    ];
    let number = prop_oneof![
        (-1000i64..1000).prop_map(|n| n.to_string()),
        (100i64..600).prop_map(|n| n.to_string()),
        (-100_000i64..100_000).prop_map(|n| format!("{}.{}", n / 100, (n % 100).abs())),
        prop::sample::select(vec![
            "503",
            "500",
            "42",
            "-0",
            "0.0",
            "1e3",
            "18446744073709551616",
            "9007199254740993"
        ])
        .prop_map(str::to_string),
    ];
    let other = prop::sample::select(vec![
        "true",
        "false",
        "null",
        "[1, 2]",
        r#"{"a": {"b": [1]}}"#,
        "[]",
    ])
    .prop_map(str::to_string);
    match key {
        "level" => prop_oneof![4 => level, 1 => json_string(), 1 => other].boxed(),
        "msg" | "user" => prop_oneof![4 => json_string(), 1 => number, 1 => other].boxed(),
        _ => prop_oneof![4 => number, 1 => json_string(), 1 => other].boxed(),
    }
}

fn json_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "status",
        "latency_ms",
        "level",
        "msg",
        "user",
        "ok",
        "host",
        "extra",
    ]);
    let pair = key.prop_flat_map(|k| {
        let escaped_key = prop::sample::select(vec![
            format!("\"{k}\""),
            format!("\"{k}\""),
            format!("\"\\u00{:02x}{}\"", k.as_bytes()[0], &k[1..]),
        ]);
        (escaped_key, json_value(k)).prop_map(|(k, v)| format!("{k}: {v}"))
    });
    (
        prop::collection::vec(pair, 0..6),
        prop::sample::select(vec!["", " ", "\n"]),
    )
        .prop_map(|(pairs, ws)| format!("{ws}{{{}}}{ws}", pairs.join(", ")))
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => json_line(),
        // Almost JSON: cut short, trailing garbage, refused numbers, too deep.
        1 => (json_line(), 0usize..40).prop_map(|(l, n)| l.chars().take(n).collect()),
        1 => json_line().prop_map(|l| format!("{l} trailing")),
        1 => Just(r#"{"status": 500, "x": 1e400}"#.to_string()),
        1 => Just(format!(r#"{{"status": 500, "x": {}{}}}"#, "[".repeat(130), "]".repeat(130))),
        1 => prop::sample::select(vec![r#"[{"status": 500}]"#, r#""status""#, "500", "null"]).prop_map(str::to_string),
        3 => "[a-zA-Z0-9 :{}\"é-]{0,30}",
    ]
}

fn record() -> impl Strategy<Value = LogRecord> {
    (
        prop::sample::select(vec!["h1", "h2", "host-3", ""]),
        prop::sample::select(vec!["api", "web", "ap", "apj"]),
        prop::sample::select(vec!["api-1", "web-2", "x"]),
        prop::sample::select(vec![
            "2026-05-01T12:00:00Z",
            "2026-04-30T23:59:59Z",
            "2026-05-02T00:00:00.5Z",
        ]),
        prop_oneof![
            0u64..100,
            Just(u64::MAX),
            Just((1u64 << 53) + 1),
            any::<u64>()
        ],
        prop::option::of(1u32..12),
        prop::sample::select(vec![
            Stream::Stdout,
            Stream::Stderr,
            Stream::System,
            Stream::Message,
        ]),
        line(),
    )
        .prop_map(
            |(host, app, instance, time, seq, release, stream, line)| LogRecord {
                seq,
                time: time.into(),
                host: host.into(),
                app: app.into(),
                release: release.map(Version),
                instance: instance.into(),
                stream,
                line,
                partial: false,
            },
        )
}

// ------------------------------------------------------------------- tests

#[test]
fn compiled_filters_agree_with_the_interpreter() {
    let mut runner = TestRunner::new(Config {
        cases: cases(2500),
        ..Config::default()
    });
    let strategy = (expression(), prop::collection::vec(record(), 1..24));
    // How often records matched, and how many batches had both outcomes: a
    // generator whose expressions were always true or always false would
    // make agreement meaningless.
    let (evaluated, matched, mixed) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    runner
        .run(&strategy, |(src, records)| {
            let filter = parse_filter(&src)
                .map_err(|e| TestCaseError::fail(format!("generated {src:?}: {e}")))?;
            let compiled = CompiledFilter::compile(&filter)
                .map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            let want: Vec<bool> = records.iter().map(|r| filter.matches(r)).collect();
            let mut got = Vec::new();
            compiled.matches_batch(&records, &mut got);
            for (i, r) in records.iter().enumerate() {
                prop_assert_eq!(got[i], want[i], "batch: {} on {:?}", src, r);
                prop_assert_eq!(compiled.matches(r), want[i], "single: {} on {:?}", src, r);
            }
            let mut flags = vec![false; records.len()];
            compiled.matches_into(&records, &mut flags);
            prop_assert_eq!(&flags, &want, "into: {}", src);
            let hits = want.iter().filter(|&&b| b).count();
            evaluated.fetch_add(want.len(), Relaxed);
            matched.fetch_add(hits, Relaxed);
            if hits > 0 && hits < want.len() {
                mixed.fetch_add(1, Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (evaluated, matched, mixed) = (
        evaluated.into_inner(),
        matched.into_inner(),
        mixed.into_inner(),
    );
    println!("{evaluated} evaluations, {matched} matched, {mixed} batches with both outcomes");
    let rate = matched as f64 / evaluated as f64;
    assert!(
        (0.1..0.9).contains(&rate),
        "generator degenerate: {rate:.2} of records match"
    );
    assert!(
        mixed * 5 >= cases(2500) as usize,
        "too few batches with both outcomes: {mixed}"
    );
}

fn rule() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (
            prop::sample::select(vec!["requests", "errors", "restarts"]),
            cmp_op(),
            prop_oneof![
                (0u64..300).prop_map(|n| n.to_string()),
                Just("9007199254740993".to_string()),
                (0u32..3000).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
            ]
        )
            .prop_map(|(m, op, n)| format!("{m} {op} {n}")),
        (
            prop::sample::select(vec!["error_rate", "p50_ms", "p99_ms"]),
            cmp_op(),
            prop_oneof![
                (0u32..1000).prop_map(|n| format!("0.{n:03}")),
                (0u32..2000).prop_map(|n| n.to_string()),
            ]
        )
            .prop_map(|(m, op, n)| format!("{m} {op} {n}")),
        (
            prop::sample::select(vec!["p50_ms", "p99_ms"]),
            cmp_op(),
            (0u32..3000).prop_map(|n| format!("{n}ms"))
        )
            .prop_map(|(m, op, n)| format!("{m} {op} {n}")),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} && {b}")),
        ]
    })
}

fn metrics() -> impl Strategy<Value = Metrics> {
    let count = prop_oneof![0u64..300, Just(u64::MAX), Just((1u64 << 53) + 1)];
    let float = prop::option::of(prop_oneof![
        (0u32..1000).prop_map(|n| f64::from(n) / 1000.0),
        (0u32..3000).prop_map(f64::from),
        Just(f64::NAN),
        Just(-0.0),
    ]);
    (
        count.clone(),
        count.clone(),
        float.clone(),
        float.clone(),
        float,
        count,
    )
        .prop_map(
            |(requests, errors, error_rate, p50_ms, p99_ms, restarts)| Metrics {
                requests,
                errors,
                error_rate,
                p50_ms,
                p99_ms,
                restarts,
            },
        )
}

#[test]
fn compiled_rules_agree_with_the_interpreter() {
    let mut runner = TestRunner::new(Config {
        cases: cases(2500) / 4,
        ..Config::default()
    });
    let strategy = (rule(), prop::collection::vec(metrics(), 1..16));
    runner
        .run(&strategy, |(src, ms)| {
            let rule = parse_rule(&src)
                .map_err(|e| TestCaseError::fail(format!("generated {src:?}: {e}")))?;
            let compiled = CompiledRule::compile(&rule)
                .map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            for m in &ms {
                prop_assert_eq!(compiled.eval(m), rule.eval(m), "{} on {:?}", src, m);
                prop_assert_eq!(compiled.explain(m).tripped, rule.eval(m));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ------------------------------------------------------------------- gates

const METRICS: &[&str] = &[
    "requests",
    "errors",
    "restarts",
    "error_rate",
    "p50_ms",
    "p99_ms",
];

/// A metric, unprefixed or of either release.
fn metric_atom() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "canary.", "stable."]),
        prop::sample::select(METRICS),
    )
        .prop_map(|(p, m)| format!("{p}{m}"))
}

/// A literal that is valid alone against any metric: not negative, no unit.
fn safe_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..300).prop_map(|n| n.to_string()),
        (0u32..1000).prop_map(|n| format!("0.{n:03}")),
        Just("0".to_string()),
        Just("9007199254740993".to_string()),
    ]
}

/// Any number an arithmetic operand may be: negatives (`-3`, and `- 3`
/// apart), decimals, durations.
fn any_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => safe_literal(),
        1 => (1u32..100).prop_map(|n| format!("-{n}")),
        1 => (0u32..100).prop_map(|n| format!("- {n}.5")),
        1 => (0u32..3000, prop::sample::select(vec!["ms", "s"])).prop_map(|(n, u)| format!("{n}{u}")),
        1 => Just("1.5s".to_string()),
        1 => Just("1e3".to_string()),
    ]
}

fn arith_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["+", "-", "*", "/"])
}

/// Arithmetic with at least one operator; operands are metrics and literals,
/// sometimes parenthesized, sometimes written without spaces.
fn bin_num() -> impl Strategy<Value = String> {
    let atom = prop_oneof![3 => metric_atom(), 2 => any_literal()];
    let bin = |(a, op, b, parens, spaced): (String, &str, String, bool, bool)| {
        let s = if spaced {
            format!("{a} {op} {b}")
        } else {
            format!("{a}{op}{b}")
        };
        if parens { format!("({s})") } else { s }
    };
    (atom.clone(), arith_op(), atom, any::<bool>(), any::<bool>())
        .prop_map(bin)
        .prop_recursive(3, 12, 2, move |inner| {
            let side = prop_oneof![inner.clone(), metric_atom(), any_literal()];
            (
                side.clone(),
                arith_op(),
                side,
                any::<bool>(),
                prop::bool::weighted(0.8),
            )
                .prop_map(bin)
        })
}

/// A comparison with arithmetic, two metrics or a prefixed metric; a metric
/// on one side at least.
fn arith_comparison() -> impl Strategy<Value = String> {
    let with_metric = prop_oneof![
        2 => metric_atom(),
        2 => (metric_atom(), arith_op(), bin_num()).prop_map(|(m, op, t)| format!("{m} {op} {t}")),
        1 => (bin_num(), arith_op(), metric_atom()).prop_map(|(t, op, m)| format!("({t}) {op} {m}")),
    ];
    let other = prop_oneof![
        2 => safe_literal(),
        3 => bin_num(),
        2 => metric_atom(),
    ];
    (with_metric, cmp_op(), other, any::<bool>())
        .prop_map(|(m, op, o, flip)| maybe_flip(m, op, o, flip))
}

fn gate_rule() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        1 => rule(),
        3 => arith_comparison(),
    ];
    leaf.prop_recursive(3, 10, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} && {b}")),
        ]
    })
}

/// Metrics with more zeros and missing values (division by zero, NaN) than
/// `metrics()`.
fn gate_metrics() -> impl Strategy<Value = Metrics> {
    prop_oneof![
        2 => metrics(),
        1 => Just(Metrics::default()),
        1 => (0u64..4, 0u64..4, prop::option::of(prop_oneof![Just(0.0), Just(0.5), Just(f64::NAN)]))
            .prop_map(|(requests, errors, x)| Metrics {
                requests,
                errors,
                error_rate: x,
                p50_ms: x.map(|x| x * 100.0),
                p99_ms: Some(0.0),
                restarts: errors,
            }),
    ]
}

#[test]
fn compiled_gates_agree_with_the_interpreter() {
    let mut runner = TestRunner::new(Config {
        cases: cases(2500) / 2,
        ..Config::default()
    });
    let strategy = (
        gate_rule(),
        prop::collection::vec((gate_metrics(), gate_metrics()), 1..16),
    );
    let (evaluated, tripped) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner
        .run(&strategy, |(src, pairs)| {
            let rule = parse_rule(&src)
                .map_err(|e| TestCaseError::fail(format!("generated {src:?}: {e}")))?;
            let compiled = CompiledRule::compile(&rule)
                .map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            for (canary, stable) in &pairs {
                let want = rule.eval_gate(canary, stable);
                prop_assert_eq!(
                    compiled.eval_gate(canary, stable),
                    want,
                    "gate: {} on {:?} / {:?}",
                    src,
                    canary,
                    stable
                );
                prop_assert_eq!(
                    compiled.eval(canary),
                    rule.eval(canary),
                    "plain: {} on {:?}",
                    src,
                    canary
                );
                let ex = compiled.explain_gate(canary, stable);
                prop_assert_eq!(ex.tripped, want);
                let _ = ex.to_string();
                evaluated.fetch_add(1, Relaxed);
                tripped.fetch_add(usize::from(want), Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (evaluated, tripped) = (evaluated.into_inner(), tripped.into_inner());
    println!("{evaluated} gate evaluations, {tripped} tripped");
    let rate = tripped as f64 / evaluated as f64;
    assert!(
        (0.1..0.9).contains(&rate),
        "generator degenerate: {rate:.2} of evaluations trip"
    );
}
