//! The scanner against `serde_json::from_str::<Value>` itself: edge cases,
//! the nesting limit, and generated JSON-like text.

use proptest::prelude::*;
use serde_json::Value;

use super::token::plain_prefix;
use super::*;

const NAMES: [&str; 3] = ["status", "msg", "level"];

/// The scanner's reading of `line` against `Value`'s.
fn agree(line: &str) {
    let names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    let mut slots: Vec<Slot> = names.iter().map(|_| Slot::default()).collect();
    fill(&names, &mut slots, line);
    let map = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    for (name, slot) in names.iter().zip(&slots) {
        let want = map.as_ref().and_then(|m| m.get(name));
        match (want, slot.kind) {
            (Some(Value::Number(n)), Kind::Number(x)) => {
                assert_eq!(
                    n.as_f64().map(f64::to_bits),
                    Some(x.to_bits()),
                    "{line:?} {name}"
                )
            }
            (Some(Value::String(s)), Kind::Text) => {
                assert_eq!(slot.as_str(), Some(s.as_str()), "{line:?}")
            }
            (Some(Value::Bool(b)), Kind::Bool(x)) => assert_eq!(*b, x, "{line:?}"),
            (None | Some(Value::Null | Value::Array(_) | Value::Object(_)), Kind::Missing) => {}
            (want, got) => panic!("{line:?} {name}: serde_json {want:?}, scanner {got:?}"),
        }
    }
}

#[test]
fn agrees_with_serde_json_on_edge_cases() {
    for line in [
        r#"{"status": 500}"#,
        r#" {"status":500} "#,
        "{\"status\":\n1}\t",
        r#"{}"#,
        r#"{"status": 1,}"#,
        r#"{"status": 1 "msg": "x"}"#,
        r#"{"status" 1}"#,
        r#"{status: 1}"#,
        r#"{"status": 01}"#,
        r#"{"status": -0}"#,
        r#"{"status": -}"#,
        r#"{"status": 1.}"#,
        r#"{"status": .5}"#,
        r#"{"status": +1}"#,
        r#"{"status": 1e}"#,
        r#"{"status": 1e+}"#,
        r#"{"status": 1E-2}"#,
        r#"{"status": 259.7}"#,
        r#"{"status": 0.1e-400}"#,
        r#"{"status": 1e308}"#,
        r#"{"status": 1.7976931348623157e308}"#,
        r#"{"status": 1.8e308}"#,
        r#"{"status": 1e400}"#,
        r#"{"msg": 1e400}"#,
        r#"{"x": 1e400, "status": 1}"#,
        r#"{"x": 1e99999999999, "status": 1}"#,
        r#"{"x": 0e99999999999, "status": 1}"#,
        r#"{"x": 1e-99999999999, "status": 1}"#,
        r#"{"status": 18446744073709551615}"#,
        r#"{"status": 18446744073709551616}"#,
        r#"{"status": -9223372036854775808}"#,
        r#"{"status": -9223372036854775809}"#,
        r#"{"status": 123456789012345678}"#,
        r#"{"status": 1234567890123456789}"#,
        r#"{"status": 9007199254740993}"#,
        r#"{"status": 1.00000000000000000000000000001}"#,
        r#"{"status": 1truex}"#,
        r#"{"status": tru}"#,
        r#"{"status": true, "msg": false, "level": null}"#,
        r#"{"status": nul}"#,
        r#"{"msg": "a\"b\\c\/d\b\f\n\r\t\u00e9"}"#,
        r#"{"msg": "\ud83d\ude00"}"#,
        r#"{"msg": "\ud83d"}"#,
        r#"{"msg": "\ud83dx"}"#,
        r#"{"msg": "\ud83d\u0041"}"#,
        r#"{"msg": "\ude00"}"#,
        r#"{"msg": "\u12"}"#,
        r#"{"msg": "\u12g4"}"#,
        r#"{"msg": "\x"}"#,
        "{\"msg\": \"tab\there\"}",
        r#"{"msg": "unterminated}"#,
        r#"{"m\u0073g": "escaped key", "st\u0061tus": 2}"#,
        r#"{"status": 1, "status": "two"}"#,
        r#"{"status": [1, {"a": [true, null]}], "msg": {"x": 1}}"#,
        r#"{"status": [1,]}"#,
        r#"{"status": [,1]}"#,
        r#"{"status": {"a" 1}}"#,
        r#"{"status": 1} x"#,
        r#"{"status": 1}}"#,
        r#"[{"status": 1}]"#,
        r#""status""#,
        "",
        "{",
        "é{}",
        r#"{"é": "ü", "msg": "日本"}"#,
    ] {
        agree(line);
    }
}

#[test]
fn nesting_limit_is_serde_jsons() {
    for depth in 120..132 {
        let line = format!(
            r#"{{"status": 1, "x": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        agree(&line);
        let line = format!(
            r#"{{"x": {}1{}, "status": 1}}"#,
            r#"{"a":"#.repeat(depth),
            "}".repeat(depth)
        );
        agree(&line);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn agrees_with_serde_json_on_json_like_text(
        parts in prop::collection::vec(prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", " ", "\"", "\"status\"", "\"msg\"", "\"level\"", "\\", "\\u00",
            "e9", "\\ud800", "\\udc00", "1", "0", "-", ".", "e", "+", "500", "2.5", "1e400", "true", "null",
            "x", "\n", "\u{1}", "é",
        ]), 0..24),
    ) {
        agree(&parts.concat());
    }

    #[test]
    fn plain_prefix_stops_where_a_byte_loop_does(bytes in prop::collection::vec(prop::sample::select(vec![
        b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xff,
    ]), 0..40)) {
        let naive = bytes.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(bytes.len());
        prop_assert_eq!(plain_prefix(&bytes), naive);
    }

    #[test]
    fn agrees_with_serde_json_on_valid_objects(
        fields in prop::collection::vec((
            prop::sample::select(vec!["status", "msg", "level", "other", "st\\u0061tus"]),
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| format!("{x:e}")),
                (-1_000_000i64..1_000_000, 0u32..8).prop_map(|(n, d)| format!("{}.{}", n, "7".repeat(d as usize + 1))),
                ".{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
                Just("[1, [2, {\"a\": null}]]".to_string()),
                Just("true".to_string()),
                Just("null".to_string()),
            ],
        ), 0..6),
    ) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        agree(&format!("{{{}}}", body.join(", ")));
    }
}
