//! Test files: what is refused, where problems point, keys, the schema.

use std::path::Path;

use super::*;

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("t.yaml")) {
        Ok(_) => Vec::new(),
        Err(ps) => ps.iter().map(ToString::to_string).collect(),
    }
}

const HEAD: &str = "version: 1\nkind: test\nname: t\npipeline: ../p.yaml\n";

#[test]
fn a_test_that_asserts_nothing_is_refused() {
    let p = problems(HEAD);
    assert!(p[0].contains("the test asserts nothing"), "{p:?}");
    let p = problems(&format!("{HEAD}runs:\n  - now: 2026-10-13T00:00:00Z\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("t.yaml:5:1: runs: no run expects anything"),
        "{p:?}"
    );
    let p = problems(&format!("{HEAD}expect:\n  counts: {{}}\n"));
    assert!(p[0].contains("expect: expects nothing"), "{p:?}");
}

#[test]
fn problems_name_file_line_column_and_field() {
    let text = format!(
        "{HEAD}runs:\n  - now: yesterday\n    orders:\n      - {{ csv: x }}\n    expect:\n      backlog: 0\n      sent_keys: []\n"
    );
    let p = problems(&text);
    assert_eq!(
        p,
        [
            "t.yaml:11:7: runs[0].expect.sent_keys: unknown field `sent_keys`, expected one of `payloads`, `batch_sizes`, `keys`, `sent`, `fields`, `snapshot`, `cursor`, `backlog`, `dead_letters`, `outcome`"
        ],
    );
    let text = format!(
        "{HEAD}runs:\n  - now: yesterday\n    orders:\n      - {{ csv: x }}\n    receiver:\n      refuse: {{ keys: [1], status: 503 }}\n    expect:\n      backlog: 0\n"
    );
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m
                .starts_with("t.yaml:6:10: runs[0].now: \"yesterday\" is not an RFC 3339 time")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("t.yaml:7:5: runs[0].orders[0]: an inline table needs `name`")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("runs[0].receiver.refuse.status: 503 is not a refusal")),
        "{p:?}"
    );
}

#[test]
fn keys_are_text_numbers_or_composite_lists() {
    let text =
        format!("{HEAD}expect:\n  keys:\n    mismatched: [\"007\", 12, [105, 1], [null, 3]]\n");
    let t = parse(&text, Path::new("t.yaml")).unwrap();
    let keys = t.spec.expect.unwrap().keys.unwrap().mismatched.unwrap();
    let texts: Vec<String> = keys.iter().map(KeyValue::text).collect();
    assert_eq!(texts, ["007", "12", "105, 1", "null, 3"]);
}

#[test]
fn the_schema_describes_test_files() {
    let schema = crate::pipeline::json_schema();
    let text = schema.to_string();
    assert!(text.contains("\"test\""), "kind test");
    assert!(text.contains("The pinned clock of this run"));
    let test = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["properties"]["kind"]["const"] == "test")
        .expect("a `kind: test` variant");
    assert!(test["properties"]["runs"].is_object());
    assert!(
        test["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "pipeline")
    );
}
