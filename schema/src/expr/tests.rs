use proptest::prelude::*;

use super::*;
use crate::names::Version;
use crate::types::Stream;

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

fn matches(src: &str, line: &str) -> bool {
    parse_filter(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .matches(&rec(line))
}

fn err(src: &str) -> ExprError {
    match parse_filter(src) {
        Ok(_) => panic!("{src:?} parsed"),
        Err(e) => e,
    }
}

fn rule_err(src: &str) -> ExprError {
    match parse_rule(src) {
        Ok(_) => panic!("{src:?} parsed"),
        Err(e) => e,
    }
}

const JSON: &str = r#"{"status": 503, "latency_ms": 312.5, "level": "WARNING", "msg": "upstream timeout", "ok": false}"#;

#[test]
fn record_fields_compare_as_text_numbers_releases_and_streams() {
    assert!(matches(r#"app == "api""#, "x"));
    assert!(matches(r#"app != "web""#, "x"));
    assert!(matches(r#"host < "h2" && host >= "h1""#, "x"));
    assert!(matches(r#"instance contains "-1""#, "x"));
    assert!(matches(r#"time >= "2026-05-01""#, "x"));
    assert!(matches(r#"time < "2026-05-02""#, "x"));
    assert!(matches(
        "seq == 42 && seq > 41 && seq <= 42 && seq != 7",
        "x"
    ));
    assert!(matches("seq > 41.5", "x"));
    assert!(matches(
        r#"release == "v3" && release >= 2 && release < "v10""#,
        "x"
    ));
    assert!(matches("stream == stderr && stream != \"stdout\"", "x"));
    assert!(!matches("stream == system", "x"));
}

#[test]
fn literal_on_the_left_flips_the_comparison() {
    assert!(matches("41 < seq", "x"));
    assert!(!matches("43 <= seq", "x"));
    assert!(matches(r#""api" == app"#, "x"));
}

#[test]
fn json_fields_compare_by_the_literal_they_meet() {
    assert!(matches("status >= 500", JSON));
    assert!(matches("status == 503.0", JSON));
    assert!(matches("latency_ms > 300ms && latency_ms < 1s", JSON));
    assert!(matches(
        r#"msg contains "timeout" && msg ~ /time(d )?out$/"#,
        JSON
    ));
    assert!(matches(r#"msg !~ "^ok""#, JSON));
    assert!(matches("ok == false && ok != true", JSON));
    // A string is not a number, so a number comparison cannot hold.
    assert!(!matches(r#"msg > 3"#, JSON));
    assert!(!matches(r#"status == "503""#, JSON));
}

#[test]
fn missing_fields_fail_every_comparison_but_not_their_negation() {
    for src in [
        "status == 500",
        "status != 500",
        "status < 500",
        r#"nope != "x""#,
        r#"msg !~ "zzz""#,
        "ok != true",
        "level != info",
    ] {
        assert!(!matches(src, "plain text, not json"), "{src}");
        assert!(
            matches(&format!("!({src})"), "plain text, not json"),
            "!({src})"
        );
    }
    assert!(!matches("nope == 1", JSON));
    assert!(
        !matches("status == 1", r#"{"status": 1"#),
        "invalid JSON has no fields"
    );
    assert!(
        !matches("status == 1", r#"[{"status": 1}]"#),
        "only objects have fields"
    );
    assert!(!matches("status == 1", r#"{"status": 1} trailing"#));
    let mut no_release = rec("x");
    no_release.release = None;
    let f = parse_filter("release != 3").unwrap();
    assert!(!f.matches(&no_release));
}

#[test]
fn duplicate_json_keys_take_the_last_value() {
    assert!(matches("status == 2", r#"{"status": 1, "status": 2}"#));
    assert!(!matches("status == 1", r#"{"status": 1, "status": "x"}"#));
}

#[test]
fn levels_compare_by_severity_with_aliases_and_numbers() {
    assert!(matches("level >= warn", JSON));
    assert!(matches(r#"level == "warn""#, JSON));
    assert!(matches("level < error", JSON));
    assert!(!matches("level >= error", JSON));
    assert!(matches("level >= error", r#"{"level": "FATAL"}"#));
    assert!(matches("level == error", r#"{"level": "err"}"#));
    assert!(matches("level == fatal", r#"{"level": "Critical"}"#));
    assert!(matches("level == info", r#"{"level": 30}"#));
    assert!(matches("level > info", r#"{"level": 50}"#));
    assert!(
        !matches("level > trace", r#"{"level": 35}"#),
        "35 names no level"
    );
    assert!(!matches("level > trace", r#"{"level": "loud"}"#));
    // Against a string that names no level, `level` is plain text.
    assert!(matches(r#"level == "loud""#, r#"{"level": "loud"}"#));
    assert!(matches(r#"level ~ "^WARN""#, JSON));
}

#[test]
fn boolean_literals_and_connectives() {
    assert!(matches("true", "x"));
    assert!(!matches("false", "x"));
    assert!(matches("!false && (false || true)", "x"));
    assert!(
        matches(r#"app == "web" || app == "api" && seq == 42"#, "x"),
        "&& binds tighter"
    );
    assert!(!matches(
        r#"(app == "web" || app == "api") && seq == 1"#,
        "x"
    ));
    assert!(matches("!!true", "x"));
}

#[test]
fn strings_take_escapes_and_single_quotes() {
    assert!(matches(r#"line == "a\"b\\c\n\u{e9}""#, "a\"b\\c\né"));
    assert!(matches(r#"line == 'it\'s'"#, "it's"));
    assert!(matches(r#"line == 'say "hi"'"#, r#"say "hi""#));
    assert!(matches(r#"line ~ /a\/b/"#, "xa/by"));
    assert!(matches(r#"line ~ /\d+ms/"#, "took 25ms"));
}

#[test]
fn durations_are_milliseconds() {
    assert!(matches("latency_ms == 1500", r#"{"latency_ms": 1500}"#));
    assert!(matches("latency_ms == 1.5s", r#"{"latency_ms": 1500}"#));
    assert!(matches("latency_ms == 2m", r#"{"latency_ms": 120000}"#));
    assert!(matches("latency_ms == 1h", r#"{"latency_ms": 3600000}"#));
}

#[test]
fn syntax_errors_name_the_position_and_what_was_expected() {
    let e = err("status >= ");
    assert_eq!((e.line, e.column), (1, 11));
    assert!(
        e.message
            .contains("expected a value after `>=`, found end of input"),
        "{e}"
    );
    let e = err("status 500");
    assert!(e.message.contains("expected an operator"), "{e}");
    assert_eq!(e.column, 8);
    let e = err("(status == 1");
    assert!(
        e.message.contains("expected `)` to close the `(` at 1:1"),
        "{e}"
    );
    let e = err("status == 1)");
    assert!(e.message.contains("unmatched `)`"), "{e}");
    let e = err("status = 1");
    assert!(e.message.contains("expected `==`"), "{e}");
    let e = err("a == 1 & b == 2");
    assert!(e.message.contains("expected `&&`"), "{e}");
    let e = err(r#"line == "open"#);
    assert!(e.message.contains("unterminated string"), "{e}");
    let e = err(r#"line == "\d""#);
    assert!(e.message.contains("unknown escape"), "{e}");
    let e = err("latency_ms > 5xs");
    assert!(e.message.contains("unknown unit `xs`"), "{e}");
    let e = err("seq > 99999999999999999999");
    assert!(e.message.contains("out of range"), "{e}");
    let e = err("");
    assert!(e.message.contains("empty expression"), "{e}");
    let e = err("status == 1 status");
    assert!(e.message.contains("expected `&&`, `||` or the end"), "{e}");
    let e = err("status == 1 # x");
    assert!(e.message.contains("unexpected character '#'"), "{e}");
}

#[test]
fn errors_render_a_caret_under_the_source() {
    let e = err("app == \"api\" &&\n  line > 3");
    assert_eq!((e.line, e.column), (2, 10));
    let shown = e.to_string();
    assert_eq!(
        shown,
        "2:10: `line` is text and cannot be compared with the number 3; compare it with a string, e.g. line == \"...\"\n    line > 3\n           ^"
    );
    assert_eq!(e.summary().lines().count(), 1);
    let e = err(r#"msg ~ "a(""#);
    assert!(
        e.message
            .starts_with("invalid regex \"a(\": unclosed group"),
        "{e}"
    );
    assert!(e.to_string().ends_with("\n        ^^^^"), "{e}");
}

#[test]
fn type_errors_are_refused_before_evaluation() {
    for (src, want) in [
        ("line > 3", "`line` is text"),
        (
            r#"seq ~ "x""#,
            "`~` matches text against a regex, but `seq` is a number",
        ),
        (r#"seq contains "x""#, "`contains` looks for text in text"),
        (r#"seq == "x""#, "`seq` is a number"),
        ("seq > -1", "never negative"),
        ("seq > 5ms", "not a duration"),
        (r#"stream < "stdout""#, "streams have no order"),
        (r#"stream == "stdin""#, "compare it with \"stdout\""),
        (r#"release == "three""#, "release like \"v3\""),
        (r#"level >= "loud""#, "is not a level"),
        ("ok < true", "booleans have no order"),
        ("status > /x/", "a /regex/ only goes after `~`"),
        (r#"status contains 5"#, "`contains` needs a string"),
        (r#"msg ~ 5"#, "`~` needs a regex"),
        (r#""x" ~ line"#, "put the field on the left"),
        ("status == latency_ms", "comparing two fields"),
        ("1 == 1", "neither side"),
        ("status", "`status` alone is not a condition"),
        ("500", "a value alone"),
    ] {
        let e = err(src);
        assert!(e.message.contains(want), "{src}: {e}");
    }
}

#[test]
fn limits_refuse_hostile_expressions() {
    let deep = format!(
        "{}true{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(err(&deep).message.contains("nested too deeply"));
    let nots = format!("{}true", "!".repeat(MAX_DEPTH + 1));
    assert!(err(&nots).message.contains("nested too deeply"));
    let wide = vec!["a==1"; MAX_COMPARISONS + 1].join("||");
    assert!(err(&wide).message.contains("too many comparisons"));
    assert!(
        err(&"x".repeat(MAX_SOURCE_LEN + 1))
            .message
            .contains("too long")
    );
    assert!(
        err(r#"line ~ "a{100000}""#)
            .message
            .contains("invalid regex")
    );
}

#[test]
fn health_rules_read_metrics() {
    let m = Metrics {
        requests: 200,
        errors: 24,
        error_rate: Some(0.12),
        p50_ms: Some(20.0),
        p99_ms: Some(430.0),
        restarts: 0,
    };
    let r = parse_rule("error_rate > 0.05 || p99_ms > 500").unwrap();
    assert!(r.eval(&m));
    assert_eq!(r.metrics(), vec![Metric::ErrorRate, Metric::P99Ms]);
    assert_eq!(r.explain(&m).to_string(), "error_rate=0.12 > 0.05");
    assert!(
        parse_rule("p99_ms > 400ms && requests >= 200 && restarts == 0 && errors < 25")
            .unwrap()
            .eval(&m)
    );
    assert!(!parse_rule("p50_ms >= 1s").unwrap().eval(&m));
    let idle = Metrics::default();
    assert!(
        !parse_rule("error_rate != 0").unwrap().eval(&idle),
        "no data is missing"
    );
    assert!(parse_rule("!(error_rate > 0.5)").unwrap().eval(&idle));
    let nan = Metrics {
        p99_ms: Some(f64::NAN),
        ..idle
    };
    assert!(!parse_rule("p99_ms != 1").unwrap().eval(&nan));
    let ex = parse_rule("!(requests > 10)").unwrap().explain(&idle);
    assert!(ex.tripped);
    assert_eq!(ex.to_string(), "requests=0 > 10 (false)");
}

#[test]
fn health_rules_refuse_unknown_metrics_and_misfit_literals() {
    assert!(
        rule_err("latency > 5")
            .message
            .contains("unknown metric `latency`")
    );
    assert!(
        rule_err("error_rate > 5ms")
            .message
            .contains("not a duration")
    );
    assert!(
        rule_err(r#"requests == "x""#)
            .message
            .contains("`requests` is a count")
    );
    assert!(rule_err("restarts > -1").message.contains("never negative"));
}

#[test]
fn filters_travel_as_their_source_and_are_checked_on_arrival() {
    let f = parse_filter("status >= 500").unwrap();
    let json = serde_json::to_string(&f).unwrap();
    assert_eq!(json, r#""status >= 500""#);
    let back: Filter = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f);
    assert!(serde_json::from_str::<Filter>(r#""line > 3""#).is_err());
    assert_eq!(f.json_fields(), ["status"]);
    let f = parse_filter("a == 1 && b == 2 || a == 3").unwrap();
    assert_eq!(f.json_fields(), ["a", "b"]);
}

fn metrics(
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
        restarts: 0,
    }
}

fn rule(src: &str) -> Rule {
    parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn arith(src: &str) -> Arith {
    match rule(src).expr() {
        Expr::Arith(a) => a.clone(),
        other => panic!("{src}: not arithmetic: {other:?}"),
    }
}

fn m(metric: Metric) -> Box<Num> {
    Box::new(Num::Metric {
        of: Which::Own,
        metric,
    })
}

fn k(x: f64) -> Box<Num> {
    Box::new(Num::Const(x))
}

#[test]
fn arithmetic_has_the_usual_precedence_and_associativity() {
    use NumOp::*;
    let a = arith("p99_ms > p50_ms + 2 * 3");
    assert_eq!(
        a.left,
        Num::Metric {
            of: Which::Own,
            metric: Metric::P99Ms
        }
    );
    assert_eq!(a.op, CmpOp::Gt);
    assert_eq!(
        a.right,
        Num::Bin(
            Add,
            m(Metric::P50Ms),
            Box::new(Num::Bin(Mul, k(2.0), k(3.0)))
        )
    );
    // Left-associative: a - b - c is (a - b) - c; a / b / c is (a / b) / c.
    let a = arith("p99_ms - p50_ms - 1 > 0");
    assert_eq!(
        a.left,
        Num::Bin(
            Sub,
            Box::new(Num::Bin(Sub, m(Metric::P99Ms), m(Metric::P50Ms))),
            k(1.0)
        )
    );
    let a = arith("errors / requests / 2 > 0");
    assert_eq!(
        a.left,
        Num::Bin(
            Div,
            Box::new(Num::Bin(Div, m(Metric::Errors), m(Metric::Requests))),
            k(2.0)
        )
    );
    // Parentheses, at the start of a condition too.
    let a = arith("(p50_ms + p99_ms) / 2 > 300");
    assert_eq!(
        a.left,
        Num::Bin(
            Div,
            Box::new(Num::Bin(Add, m(Metric::P50Ms), m(Metric::P99Ms))),
            k(2.0)
        )
    );
    let a = arith("((p50_ms)) * (1 + 2) >= p99_ms");
    assert_eq!(
        a.left,
        Num::Bin(
            Mul,
            m(Metric::P50Ms),
            Box::new(Num::Bin(Add, k(1.0), k(2.0)))
        )
    );
    let a = arith("1 - - 2 < p99_ms");
    assert_eq!(a.left, Num::Bin(Sub, k(1.0), k(-2.0)));
    // No spaces: `-` after an operand subtracts, `/` divides.
    let a = arith("p99_ms-3>p50_ms/2");
    assert_eq!(a.left, Num::Bin(Sub, m(Metric::P99Ms), k(3.0)));
    assert_eq!(a.right, Num::Bin(Div, m(Metric::P50Ms), k(2.0)));
    // A comparison inside parentheses is still a condition.
    let r = rule("(p99_ms > p50_ms * 2) && !(error_rate > 0.1)");
    assert!(matches!(r.expr(), Expr::And(es) if matches!(es[0], Expr::Arith(_))));
}

#[test]
fn durations_in_arithmetic_are_milliseconds() {
    let a = arith("p99_ms > p50_ms + 1.5s");
    assert_eq!(a.right, Num::Bin(NumOp::Add, m(Metric::P50Ms), k(1500.0)));
    let r = rule("p99_ms - p50_ms >= 250ms");
    assert!(r.eval(&metrics(1, 0, Some(0.0), Some(50.0), Some(300.0))));
    assert!(!r.eval(&metrics(1, 0, Some(0.0), Some(51.0), Some(300.0))));
}

#[test]
fn simple_forms_stay_field_against_literal() {
    for src in [
        "error_rate > 0.05",
        "0.05 < error_rate",
        "requests >= 10",
        "p99_ms > 500ms",
        "error_rate > - 1",
    ] {
        let r = rule(src);
        assert!(
            matches!(r.expr(), Expr::Compare(_)),
            "{src}: {:?}",
            r.expr()
        );
        assert!(!r.is_gate(), "{src}");
    }
    // Two metrics, or a prefixed one, is arithmetic.
    for src in [
        "p99_ms > p50_ms",
        "canary.error_rate > 0.05",
        "errors > requests",
    ] {
        assert!(matches!(rule(src).expr(), Expr::Arith(_)), "{src}");
    }
}

#[test]
fn prefixes_say_which_release_a_metric_is_read_from() {
    let a = arith("canary.error_rate > 2 * stable.error_rate");
    assert_eq!(
        a.left,
        Num::Metric {
            of: Which::Canary,
            metric: Metric::ErrorRate
        }
    );
    assert_eq!(
        a.right,
        Num::Bin(
            NumOp::Mul,
            k(2.0),
            Box::new(Num::Metric {
                of: Which::Stable,
                metric: Metric::ErrorRate
            })
        )
    );
    assert!(rule("canary.error_rate > 2 * stable.error_rate").is_gate());
    assert!(rule("error_rate > 0.1 || canary.requests > 3").is_gate());
    assert!(!rule("p99_ms > p50_ms * 3").is_gate());
    let r = rule(DEFAULT_GATE);
    assert!(r.is_gate());
    assert_eq!(r.metrics(), vec![Metric::ErrorRate, Metric::P99Ms]);
}

#[test]
fn gates_read_the_canary_and_the_stable_release() {
    let gate = rule(DEFAULT_GATE);
    let stable = metrics(1000, 10, Some(0.01), Some(20.0), Some(100.0));
    let good = metrics(100, 1, Some(0.015), Some(22.0), Some(140.0));
    let erring = metrics(100, 30, Some(0.3), Some(22.0), Some(140.0));
    let slow = metrics(100, 1, Some(0.01), Some(22.0), Some(151.0));
    assert!(!gate.eval_gate(&good, &stable));
    assert!(gate.eval_gate(&erring, &stable));
    assert!(gate.eval_gate(&slow, &stable));
    assert_eq!(
        gate.explain_gate(&erring, &stable).to_string(),
        "canary.error_rate=0.3 > 2 * stable.error_rate=0.01"
    );
    assert_eq!(
        gate.explain_gate(&slow, &stable).to_string(),
        "canary.p99_ms=151 > stable.p99_ms=100 + 50"
    );
    let ex = gate.explain_gate(&good, &stable);
    assert!(!ex.tripped);
    assert_eq!(ex.arithmetic.len(), 2);
    assert_eq!(ex.arithmetic[0].readings[1].of, Which::Stable);
    assert_eq!(ex.arithmetic[0].readings[1].value, Some(0.01));
    // Unprefixed metrics read the canary.
    let r = rule("error_rate > 2 * stable.error_rate");
    assert!(r.eval_gate(&erring, &stable));
    assert!(!r.eval_gate(&stable, &erring));
    // `eval` has no stable release: stable metrics are missing, counts too.
    assert!(!gate.eval(&erring));
    assert!(!rule("stable.requests == 0").eval(&erring));
    assert!(!rule("stable.requests != 0").eval(&erring));
    assert!(rule("!(stable.requests != 0)").eval(&erring));
    assert!(rule("canary.requests == 100").eval(&erring));
    let ex = rule("canary.error_rate > 2 * stable.error_rate").explain(&erring);
    assert_eq!(
        ex.to_string(),
        "canary.error_rate=0.3 > 2 * stable.error_rate=- (false)"
    );
    // A plain rule's eval_gate is its eval on the canary.
    let plain = rule("error_rate > 0.05 || p99_ms > 500");
    assert!(plain.eval_gate(&erring, &stable) && plain.eval(&erring));
    assert_eq!(
        plain.explain_gate(&erring, &stable).to_string(),
        "error_rate=0.3 > 0.05"
    );
}

#[test]
fn explanations_keep_comparisons_in_order_and_parenthesize() {
    let c = metrics(200, 30, Some(0.15), Some(20.0), Some(430.0));
    let s = metrics(1000, 10, Some(0.01), None, Some(100.0));
    let r = rule("requests > 100 && (p99_ms - p50_ms) * 2 > stable.p99_ms && errors > 1");
    assert_eq!(
        r.explain_gate(&c, &s).to_string(),
        "requests=200 > 100, (p99_ms=430 - p50_ms=20) * 2 > stable.p99_ms=100, errors=30 > 1"
    );
    let r = rule("p99_ms - (p50_ms - 1) > 0 && p50_ms / (p99_ms * 2) > 0");
    assert_eq!(
        r.explain(&c).to_string(),
        "p99_ms=430 - (p50_ms=20 - 1) > 0, p50_ms=20 / (p99_ms=430 * 2) > 0"
    );
    let ex = rule("requests < 1 || stable.p50_ms > 1").explain_gate(&c, &s);
    assert!(!ex.tripped);
    assert_eq!(
        ex.to_string(),
        "requests=200 < 1 (false), stable.p50_ms=- > 1 (false)"
    );
}

#[test]
fn missing_metrics_make_arithmetic_false_whatever_the_operator() {
    let idle = Metrics::default();
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        for src in [
            format!("error_rate * 0 {op} 0"),
            format!("p99_ms - p99_ms {op} 0"),
            format!("0 {op} p50_ms + requests"),
            format!("stable.p50_ms {op} requests"),
        ] {
            let r = rule(&src);
            assert!(!r.eval(&idle), "{src}");
            assert!(!r.eval_gate(&idle, &idle), "{src}");
            assert!(rule(&format!("!({src})")).eval(&idle), "!({src})");
        }
    }
    for op in ["==", "<=", ">="] {
        // Stable counts are missing in `eval`, present in `eval_gate`.
        let r = rule(&format!("stable.requests {op} requests"));
        assert!(!r.eval(&idle), "{op}");
        assert!(r.eval_gate(&idle, &idle), "{op}");
    }
    // A NaN float counts as missing, as today.
    let nan = Metrics {
        p99_ms: Some(f64::NAN),
        ..metrics(1, 0, Some(0.0), Some(1.0), None)
    };
    assert!(!rule("p99_ms + 1 != p50_ms").eval(&nan));
}

#[test]
fn division_by_zero_follows_ieee() {
    let idle = Metrics::default(); // requests = errors = 0
    // 0 / 0 is NaN: false whatever the operator.
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        assert!(
            !rule(&format!("errors / requests {op} 0.1")).eval(&idle),
            "{op}"
        );
    }
    let m = metrics(0, 5, None, Some(10.0), Some(20.0));
    // x / 0 is +inf (or -inf).
    assert!(rule("errors / requests > 1000000").eval(&m));
    assert!(rule("errors / requests == 1 / 0").eval(&m));
    assert!(rule("0 - errors / requests < -1000000").eval(&m));
    assert!(rule("p50_ms / 0 > p99_ms").eval(&m));
    // inf - inf is NaN.
    assert!(!rule("errors / requests - errors / requests == 0").eval(&m));
    assert!(!rule("errors / requests - errors / requests != 0").eval(&m));
    // Counts are converted to f64.
    let big = metrics(u64::MAX, 1, Some(0.5), Some(1.0), Some(1.0));
    assert!(rule("requests + 1 == 18446744073709551615").eval(&big));
}

#[test]
fn gate_errors_point_at_the_offending_name() {
    let e = rule_err("canary.nope > 1");
    assert_eq!((e.line, e.column, e.width), (1, 8, 4), "{e}");
    assert!(e.message.contains("unknown metric `canary.nope`: health rules can use requests, errors, error_rate, p50_ms, p99_ms, restarts"), "{e}");
    assert!(
        e.to_string()
            .ends_with("\n  canary.nope > 1\n         ^^^^"),
        "{e}"
    );
    let e = rule_err("error_rate > 2 * blue.error_rate");
    assert_eq!((e.column, e.width), (18, 4), "{e}");
    assert!(e.message.contains("unknown prefix `blue.`"), "{e}");
    assert!(
        e.message.contains("canary.") && e.message.contains("stable."),
        "{e}"
    );
    let e = rule_err("p99_ms > p50_ms * latency");
    assert_eq!(e.column, 19, "{e}");
    assert!(e.message.contains("unknown metric `latency`"), "{e}");
    let e = rule_err(r#"p99_ms > p50_ms * "3""#);
    assert_eq!(e.column, 19, "{e}");
    assert!(
        e.message
            .contains("the string \"3\" cannot take part in arithmetic"),
        "{e}"
    );
    let e = rule_err("p99_ms + true > 1");
    assert!(
        e.message.contains("true cannot take part in arithmetic"),
        "{e}"
    );
    let e = rule_err("p99_ms * 2");
    assert!(
        e.message.contains("arithmetic alone is not a condition"),
        "{e}"
    );
    let e = rule_err("p99_ms > -p50_ms");
    assert_eq!(e.column, 11, "{e}");
    assert!(
        e.message
            .contains("a leading `-` only goes before a number"),
        "{e}"
    );
    let e = rule_err("1 + 2 > 2");
    assert!(e.message.contains("neither side"), "{e}");
    let e = rule_err("p99_ms + 1 ~ /x/");
    assert_eq!(e.column, 12, "{e}");
    assert!(e.message.contains("health rules compare numbers"), "{e}");
    let e = rule_err("(p99_ms > 1) * 2 > 3");
    assert_eq!(e.column, 14, "{e}");
    assert!(e.message.contains("needs a number on its left"), "{e}");
    let e = rule_err("p99_ms > (p50_ms + 1");
    assert!(
        e.message.contains("expected `)` to close the `(` at 1:10"),
        "{e}"
    );
    let e = rule_err("p99_ms > p50_ms *");
    assert!(
        e.message
            .contains("expected a number after `*`, found end of input"),
        "{e}"
    );
    // Lone prefixed metric against a literal: the simple form's checks.
    assert!(
        rule_err("canary.requests > -1")
            .message
            .contains("never negative")
    );
    assert!(
        rule_err("stable.error_rate > 5ms")
            .message
            .contains("not a duration")
    );
    let long = format!("p99_ms > {}", vec!["1"; MAX_ARITH_DEPTH + 2].join(" + "));
    assert!(rule_err(&long).message.contains("arithmetic too long"));
}

#[test]
fn log_filters_refuse_arithmetic_and_prefixes() {
    let e = err("status + 1 > 500");
    assert_eq!((e.column, e.width), (8, 1), "{e}");
    assert!(
        e.message
            .contains("arithmetic (`+`) is only for health rules"),
        "{e}"
    );
    let e = err("latency_ms > upstream_ms * 2");
    assert_eq!(e.column, 26, "{e}");
    assert!(
        e.message
            .contains("arithmetic (`*`) is only for health rules"),
        "{e}"
    );
    let e = err("seq == - 3");
    assert!(e.message.contains("only for health rules"), "{e}");
    let e = err("canary.status == 1");
    assert!(e.message.contains("field names cannot contain `.`"), "{e}");
    // What worked still does: negative numbers, regexes after `~`.
    assert!(matches("status > -1", JSON));
    assert!(matches("latency_ms < -1 || status == 503", JSON));
    assert!(matches(r#"msg ~ /time/ && status >= 500"#, JSON));
    assert!(matches(r#"msg !~ /a\/b/"#, JSON));
    assert!(
        err("status == /x/")
            .message
            .contains("a /regex/ only goes after")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever arrives over SSH, parsing answers Ok or an error whose
    /// position is inside the source; it never panics.
    #[test]
    fn parsing_never_panics(src in r#"[ -~\n\té"'/\\]{0,40}"#) {
        match parse_filter(&src) {
            Ok(f) => { f.matches(&rec(JSON)); }
            Err(e) => {
                prop_assert!(e.span.start <= src.len());
                prop_assert!(e.line >= 1 && e.column >= 1);
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("status"), Just("level"), Just("seq"), Just("line"), Just("=="), Just("<"), Just("~"),
        Just("!"), Just("("), Just(")"), Just("&&"), Just("||"), Just("500"), Just("\"x\""), Just("/a/"),
        Just("warn"), Just("2s"), Just("true"), Just("contains"), Just("!~"), Just("-3"), Just("0.5"),
    ], 0..12)) {
        let src = parts.join(" ");
        if let Ok(f) = parse_filter(&src) {
            f.matches(&rec(JSON));
        }
        let _ = parse_rule(&src.replace("status", "p99_ms"));
    }

    /// Arithmetic and gate tokens in any order: Ok or a positioned error,
    /// and a parsed rule evaluates and explains without panicking.
    #[test]
    fn rule_token_soup_never_panics(parts in proptest::collection::vec(prop::sample::select(vec![
        "p99_ms", "canary.error_rate", "stable.p50_ms", "requests", "blue.errors", "canary.nope",
        "+", "-", "*", "/", "(", ")", ">", "==", "!=", "&&", "||", "!", "2", "0", "-3", "0.5",
        "50ms", "\"x\"", "true", "/a/", "~",
    ]), 0..14)) {
        let src = parts.join(" ");
        for src in [src.clone(), src.replace(' ', "")] {
            match parse_rule(&src) {
                Ok(r) => {
                    let m = Metrics { requests: 3, errors: 1, error_rate: Some(0.3), p50_ms: None, p99_ms: Some(9.0), restarts: 0 };
                    let ex = r.explain_gate(&m, &Metrics::default());
                    prop_assert_eq!(ex.tripped, r.eval_gate(&m, &Metrics::default()));
                    prop_assert_eq!(r.explain(&m).tripped, r.eval(&m));
                    let _ = ex.to_string();
                }
                Err(e) => {
                    prop_assert!(e.span.start <= src.len() && e.span.end <= src.len());
                    let _ = e.to_string();
                }
            }
            let _ = parse_filter(&src);
        }
    }
}
