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
}
