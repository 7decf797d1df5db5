use schema::LogRecord;
use schema::expr::{DEFAULT_GATE, Filter, Metrics, Rule, parse_filter, parse_rule};
use schema::names::Version;
use schema::types::Stream;

use super::*;

fn rec(line: &str) -> LogRecord {
    LogRecord {
        seq: 42,
        time: "2026-05-01T12:00:00Z".into(),
        host: "h1".into(),
        app: "api".into(),
        release: Some(Version(3)),
        instance: "api-1".into(),
        stream: Stream::Stderr,
        line: line.into(),
        partial: false,
    }
}

/// Compiles `src` and checks the compiled filter against the interpreter on
/// `line`, returning the (agreed) answer.
fn check(src: &str, line: &str) -> bool {
    let filter = parse_filter(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let compiled = CompiledFilter::compile(&filter).unwrap_or_else(|e| panic!("{src}: {e}"));
    let r = rec(line);
    let want = filter.matches(&r);
    assert_eq!(compiled.matches(&r), want, "{src} on {line:?}");
    want
}

const JSON: &str = r#"{"status": 503, "latency_ms": 312.5, "level": "WARNING", "msg": "upstream timeout", "ok": false}"#;

#[test]
fn record_fields_compile_for_every_operator() {
    for (src, want) in [
        (r#"app == "api""#, true),
        (r#"app != "api""#, false),
        (r#"app == "ap""#, false),
        (r#"app == "apj""#, false),
        (r#"app == """#, false),
        (r#"host < "h2""#, true),
        (r#"host >= "h1""#, true),
        (r#"host > "h1""#, false),
        (r#"instance contains "-1""#, true),
        (r#"instance contains "-2""#, false),
        (r#"instance ~ /^api-\d$/"#, true),
        (r#"instance !~ /^api-\d$/"#, false),
        (r#"time < "2026-05-02""#, true),
        (
            "seq == 42 && seq > 41 && seq <= 42 && seq != 7 && seq >= 42 && seq < 43",
            true,
        ),
        ("seq > 41.5 && seq < 42.5", true),
        (
            r#"release == "v3" && release >= 2 && release < "v10""#,
            true,
        ),
        ("stream == stderr && stream != stdout", true),
        ("stream == system", false),
        ("true && !false", true),
    ] {
        assert_eq!(check(src, "x"), want, "{src}");
    }
}

#[test]
fn inline_string_equality_covers_every_length() {
    // Lengths 1..=40 cross every load width and the call past INLINE_EQ_MAX;
    // a one-byte difference at each position must be seen.
    for n in 1..=40usize {
        let lit: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        assert!(check(&format!("line == {lit:?}"), &lit), "len {n}");
        for pos in 0..n {
            let mut other = lit.clone().into_bytes();
            other[pos] = b'#';
            let other = String::from_utf8(other).unwrap();
            assert!(
                !check(&format!("line == {lit:?}"), &other),
                "len {n} pos {pos}"
            );
            assert!(
                check(&format!("line != {lit:?}"), &other),
                "len {n} pos {pos}"
            );
        }
        assert!(!check(&format!("line == {lit:?}"), &format!("{lit}x")));
    }
}

#[test]
fn json_fields_compile_with_missing_meaning_no_match() {
    for (src, line, want) in [
        ("status >= 500", JSON, true),
        ("status == 503.0", JSON, true),
        ("status != 503", JSON, false),
        ("latency_ms > 300ms && latency_ms < 1s", JSON, true),
        (
            r#"msg contains "timeout" && msg ~ /time(d )?out$/"#,
            JSON,
            true,
        ),
        (r#"msg == "upstream timeout""#, JSON, true),
        (r#"msg > "a""#, JSON, true),
        ("ok == false && ok != true", JSON, true),
        ("ok == true", JSON, false),
        ("level >= warn && level < error", JSON, true),
        ("level == info", r#"{"level": 30}"#, true),
        (r#"level == "loud""#, r#"{"level": "loud"}"#, true),
        ("level > trace", r#"{"level": "loud"}"#, false),
        ("status != 500", "not json", false),
        ("!(status == 500)", "not json", true),
        (r#"msg !~ "x""#, "not json", false),
        ("status == 1", r#"{"status": 1"#, false),
        ("status == 1", r#"{"status": 1} x"#, false),
        ("status == 2", r#"{"status": 1, "status": 2}"#, true),
        (r#"msg == "a\"b""#, r#"{"msg": "a\"b"}"#, true),
        (
            r#"m\u{e9}g == "x""#.replace("\\u{e9}", "é").as_str(),
            r#"{"m\u00e9g": "x"}"#,
            true,
        ),
        (
            "status == 1",
            r#"{"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], "status": 1}"#,
            true,
        ),
    ] {
        assert_eq!(check(src, line), want, "{src} on {line}");
    }
}

#[test]
fn json_lines_the_interpreter_refuses_are_refused_too() {
    let deep = format!(
        r#"{{"status": 1, "x": {}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let huge = r#"{"status": 1, "x": 1e400}"#;
    let surrogate = r#"{"status": 1, "x": "\ud800"}"#;
    for line in [deep.as_str(), huge, surrogate] {
        assert!(!check("status == 1", line), "{line}");
    }
}

#[test]
fn batches_agree_record_by_record() {
    let lines = [
        JSON,
        "plain",
        r#"{"status": 500}"#,
        r#"{"status": "500"}"#,
        "",
        r#"{"level": "error"}"#,
    ];
    let records: Vec<LogRecord> = lines.iter().cycle().take(100).map(|l| rec(l)).collect();
    for src in [
        "status >= 500",
        "level >= warn || status == 500",
        r#"line contains "status""#,
        "true",
    ] {
        let filter = parse_filter(src).unwrap();
        let compiled = CompiledFilter::compile(&filter).unwrap();
        let mut out = Vec::new();
        compiled.matches_batch(&records, &mut out);
        let want: Vec<bool> = records.iter().map(|r| filter.matches(r)).collect();
        assert_eq!(out, want, "{src}");
        let mut flags = vec![false; records.len()];
        compiled.matches_into(&records, &mut flags);
        assert_eq!(flags, want, "{src}");
        let mut kept = records.clone();
        compiled.retain(&mut kept);
        assert_eq!(kept.len(), want.iter().filter(|&&b| b).count());
        compiled.matches_batch(&[], &mut out);
        assert!(out.is_empty());
    }
}

#[test]
fn records_are_read_in_place_whatever_their_strings_hold() {
    // Each text field distinct and of a different length, so reading one
    // field's pointer with another's length would be caught.
    let r = LogRecord {
        seq: u64::MAX,
        time: "2026-05-01T12:00:00.123456Z".into(),
        host: "host-with-a-long-name.example".into(),
        app: "a".into(),
        release: Some(Version(u32::MAX)),
        instance: String::new(),
        stream: Stream::System,
        line: "é".repeat(100),
        partial: true,
    };
    let src = format!(
        r#"host == {:?} && app == "a" && instance == "" && time == {:?} && line == {:?} && seq == {} && release == {} && stream == system"#,
        r.host,
        r.time,
        r.line,
        u64::MAX,
        u32::MAX
    );
    let f = compile_filter(&src).unwrap();
    assert!(f.matches(&r));
    assert!(f.filter().matches(&r));
    for stream in [Stream::Stdout, Stream::Stderr] {
        let other = LogRecord {
            stream,
            ..r.clone()
        };
        assert!(!f.matches(&other));
    }
}

#[test]
fn records_without_a_release_fail_release_comparisons() {
    let mut r = rec("x");
    r.release = None;
    for src in ["release == 3", "release != 3", "release >= 0"] {
        let f = parse_filter(src).unwrap();
        let c = CompiledFilter::compile(&f).unwrap();
        assert!(!f.matches(&r) && !c.matches(&r), "{src}");
    }
}

#[test]
fn rules_compile_and_explain() {
    let m = Metrics {
        requests: 200,
        errors: 24,
        error_rate: Some(0.12),
        p50_ms: Some(20.0),
        p99_ms: Some(430.0),
        restarts: 0,
    };
    let idle = Metrics::default();
    for (src, want_m, want_idle) in [
        ("error_rate > 0.05 || p99_ms > 500", true, false),
        (
            "p99_ms > 400ms && requests >= 200 && restarts == 0 && errors < 25",
            true,
            false,
        ),
        ("error_rate != 0", true, false),
        ("!(error_rate > 0.5)", true, true),
        ("requests > 100.5", true, false),
        ("restarts >= 0", true, true),
    ] {
        let rule = parse_rule(src).unwrap();
        let c = CompiledRule::compile(&rule).unwrap();
        assert_eq!((c.eval(&m), rule.eval(&m)), (want_m, want_m), "{src}");
        assert_eq!(
            (c.eval(&idle), rule.eval(&idle)),
            (want_idle, want_idle),
            "{src} idle"
        );
    }
    let c = compile_rule("error_rate > 0.05 || p99_ms > 500").unwrap();
    assert_eq!(c.explain(&m).to_string(), "error_rate=0.12 > 0.05");
}

fn gm(
    requests: u64,
    errors: u64,
    rate: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
) -> Metrics {
    Metrics {
        requests,
        errors,
        error_rate: rate,
        p50_ms: p50,
        p99_ms: p99,
        restarts: 2,
    }
}

/// Compiles `src` and checks compiled against interpreted, gate and plain,
/// returning the agreed `eval_gate`.
fn gate(src: &str, canary: &Metrics, stable: &Metrics) -> bool {
    let rule = parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let c = CompiledRule::compile(&rule).unwrap_or_else(|e| panic!("{src}: {e}"));
    let want = rule.eval_gate(canary, stable);
    assert_eq!(c.eval_gate(canary, stable), want, "{src} gate");
    assert_eq!(c.eval(canary), rule.eval(canary), "{src} plain");
    assert_eq!(
        c.explain_gate(canary, stable).tripped,
        want,
        "{src} explain"
    );
    want
}

#[test]
fn gates_compile_arithmetic_over_both_releases() {
    let stable = gm(1000, 10, Some(0.01), Some(20.0), Some(100.0));
    let good = gm(100, 1, Some(0.015), Some(22.0), Some(140.0));
    let erring = gm(100, 30, Some(0.3), Some(22.0), Some(140.0));
    let slow = gm(100, 1, Some(0.01), Some(22.0), Some(150.5));
    let idle = Metrics::default();
    for (canary, want) in [
        (&good, false),
        (&erring, true),
        (&slow, true),
        (&idle, false),
    ] {
        assert_eq!(gate(DEFAULT_GATE, canary, &stable), want, "{canary:?}");
    }
    // No stable data: nothing to compare with, the gate holds back.
    assert!(!gate(DEFAULT_GATE, &erring, &idle));
    for (src, want) in [
        ("error_rate > 2 * stable.error_rate", true),
        ("canary.errors / canary.requests > 0.25", true),
        (
            "errors / requests >= stable.errors / stable.requests * 30",
            true,
        ),
        ("(p50_ms + p99_ms) / 2 > 80ms", true),
        ("p99_ms - p50_ms * 3 == 74", true),
        ("p99_ms > p50_ms * 3 + 100", false),
        ("- 1 * stable.restarts < 0 - 1.5", true),
        ("stable.requests - requests != 900", false),
        ("requests + restarts == 102 && stable.p99_ms <= 0.1s", true),
        ("!(canary.p50_ms / 0 < stable.p50_ms)", true),
    ] {
        assert_eq!(gate(src, &erring, &stable), want, "{src}");
    }
    let c = CompiledRule::compile(&parse_rule(DEFAULT_GATE).unwrap()).unwrap();
    assert_eq!(
        c.explain_gate(&erring, &stable).to_string(),
        "canary.error_rate=0.3 > 2 * stable.error_rate=0.01"
    );
}

#[test]
fn compiled_arithmetic_is_false_on_nan_whatever_the_operator() {
    let idle = Metrics::default();
    let stable = gm(10, 0, Some(0.0), Some(1.0), Some(2.0));
    let nan = Metrics {
        error_rate: Some(f64::NAN),
        p99_ms: Some(f64::NAN),
        ..idle
    };
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        for src in [
            format!("errors / requests {op} 0"),
            format!("error_rate * 0 {op} 0"),
            format!("0 {op} stable.p99_ms - p99_ms"),
            format!("(errors + 1) / requests - (errors + 1) / requests {op} 0"),
        ] {
            assert!(!gate(&src, &idle, &stable), "{src}");
            assert!(!gate(&src, &nan, &nan), "{src} NaN");
            assert!(gate(&format!("!({src})"), &idle, &stable), "!({src})");
        }
        // `eval` reads no stable release: every stable metric is NaN.
        let src = format!("stable.requests {op} requests");
        let c = compile_rule(&src).unwrap();
        assert!(!c.eval(&stable), "{src}");
    }
    // x / 0 is infinite, not missing.
    assert!(gate("(errors + 1) / requests > 1000000", &idle, &stable));
}

#[test]
fn errors_say_what_failed() {
    match compile_filter("line > 3") {
        Err(CompileError::Expr(e)) => assert!(e.to_string().contains("^"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(compile_rule("latency > 3").is_err());
    assert!(compile_rule("canary.latency > 3").is_err());
    match compile_filter("status * 2 > 3") {
        Err(CompileError::Expr(e)) => assert!(e.message.contains("only for health rules"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn compiled_code_is_shareable_and_freed_on_drop() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledFilter>();
    assert_send_sync::<CompiledRule>();
    // Compiling and dropping many filters must not accumulate code: each
    // drop frees its module (a leak would show up as growing RSS under a
    // long test run; here we at least exercise the drop path repeatedly).
    let filter: Filter = parse_filter(r#"msg ~ /a+b/ && status > 1"#).unwrap();
    for _ in 0..200 {
        let c = CompiledFilter::compile(&filter).unwrap();
        assert!(c.matches(&rec(r#"{"msg": "aab", "status": 2}"#)));
    }
    let m = Matcher::new(filter.clone());
    assert!(matches!(m, Matcher::Compiled(_)));
    let mut recs = vec![rec(r#"{"msg": "aab", "status": 2}"#), rec("x")];
    m.retain(&mut recs);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        Matcher::Interpreted(filter).matches(&recs[0]),
        m.matches(&recs[0])
    );
    let rule: Rule = parse_rule("restarts > 3").unwrap();
    let c = CompiledRule::compile(&rule).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(!c.eval(&Metrics::default())));
    });
}
