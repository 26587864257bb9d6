//! Validation tests: every kind of problem is reported with its position and field.

use std::path::Path;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "CRM_URL" => Some("https://crm.example.com/hooks/s360".into()),
        "BATCH" => Some("25".into()),
        _ => None,
    }
}

fn check(text: &str) -> Result<PipelineSpec, Vec<Problem>> {
    parse(text, Path::new("p.yaml"), &env)
}

fn problems(text: &str) -> Vec<String> {
    match check(text) {
        Ok(_) => panic!("expected problems"),
        Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
    }
}

const SYNC: &str = r#"version: 1
kind: sync
name: orders
source:
  location: ../testdata/s360/orders_*.csv
  csv: { delimiter: ";" }
  key: orderId
  cursor: lastModDateTime
sink:
  url: ${CRM_URL}
  batch_size: ${BATCH}
"#;

#[test]
fn minimal_sync_pipeline_gets_defaults() {
    let PipelineSpec::Sync(p) = check(SYNC).unwrap() else {
        panic!("not sync")
    };
    assert_eq!(p.sink.webhook.url, "https://crm.example.com/hooks/s360");
    assert_eq!(p.sink.policy.batch_size, 25);
    assert_eq!(p.sink.policy.max_per_run, 500);
    assert_eq!(p.schedule.interval.get().as_secs(), 15 * 60);
    assert_eq!(p.source.csv.delimiter, ';');
    assert_eq!(p.sink.webhook.format, PayloadFormat::Envelope);
}

#[test]
fn out_of_range_values_are_all_reported_with_field_and_position() {
    let text = SYNC.replace(
        "  batch_size: ${BATCH}\n",
        "  batch_size: 51\n  max_per_run: 0\n",
    ) + "schedule:\n  interval: 1441m\n";
    let ps = problems(&text);
    assert_eq!(ps.len(), 3, "{ps:#?}");
    assert_eq!(
        ps[0],
        "p.yaml:11:15: sink.batch_size: 51 is out of range 1..=50"
    );
    assert_eq!(
        ps[1],
        "p.yaml:12:16: sink.max_per_run: 0 is out of range 1..=500"
    );
    assert_eq!(
        ps[2],
        "p.yaml:14:13: schedule.interval: 1441m is out of range 1m..=1440m"
    );
}

#[test]
fn interval_bounds() {
    for (interval, ok) in [
        ("1m", true),
        ("1440m", true),
        ("24h", true),
        ("0m", false),
        ("90s", false),
        ("25h", false),
    ] {
        let text = format!("{SYNC}schedule:\n  interval: {interval}\n");
        assert_eq!(check(&text).is_ok(), ok, "{interval}");
    }
}

#[test]
fn unknown_field_points_at_the_key() {
    let text = SYNC.replace("  key: orderId\n", "  key: orderId\n  kee: typo\n");
    let ps = problems(&text);
    assert_eq!(ps.len(), 1);
    assert!(
        ps[0].starts_with("p.yaml:8:3: source.kee: unknown field `kee`"),
        "{}",
        ps[0]
    );
}

#[test]
fn wrong_type_names_the_field() {
    let text = SYNC.replace("  batch_size: ${BATCH}\n", "  batch_size: many\n");
    let ps = problems(&text);
    assert!(
        ps[0].starts_with("p.yaml:11:15: sink.batch_size: invalid type"),
        "{}",
        ps[0]
    );
}

#[test]
fn missing_env_vars_are_all_named() {
    let text = SYNC.replace("${CRM_URL}", "${NOPE_ONE}/${NOPE_TWO}");
    let ps = problems(&text);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert!(ps[0].contains("sink.url: environment variable `NOPE_ONE` is not set"));
    assert!(ps[1].contains("`NOPE_TWO`"));
}

#[test]
fn invalid_yaml_is_one_clear_problem() {
    let ps = problems("version: 1\nkind: sync\nsource: [unclosed\n");
    assert_eq!(ps.len(), 1);
    assert!(ps[0].starts_with("p.yaml:"), "{}", ps[0]);
    assert!(ps[0].contains("invalid YAML"), "{}", ps[0]);
}

#[test]
fn unknown_kind_and_version() {
    let ps = problems(&SYNC.replace("kind: sync", "kind: mirror"));
    assert!(ps[0].contains("kind: unknown kind `mirror`"), "{}", ps[0]);
    let ps = problems(&SYNC.replace("version: 1", "version: 2"));
    assert!(
        ps[0].contains("version: unsupported version 2"),
        "{}",
        ps[0]
    );
}

#[test]
fn plain_http_needs_loopback_or_allow_http() {
    let remote = SYNC.replace("${CRM_URL}", "http://crm.example.com/x");
    assert!(problems(&remote)[0].contains("sink.url: plain http is only allowed to loopback"));
    let loopback = SYNC.replace("${CRM_URL}", "http://127.0.0.1:9/x");
    assert!(check(&loopback).is_ok());
    let allowed = remote.replace("  batch_size", "  allow_http: true\n  batch_size");
    assert!(check(&allowed).is_ok());
}

#[test]
fn sync_requires_key_and_cursor() {
    let text = SYNC
        .replace("  key: orderId\n", "")
        .replace("  cursor: lastModDateTime\n", "");
    let ps = problems(&text);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert!(ps[0].contains("source.key: a sync source needs `key`"));
    assert!(ps[1].contains("source.cursor"));
}

#[test]
fn unknown_format_extension_needs_format() {
    let text = SYNC.replace("orders_*.csv", "orders.dat");
    assert!(problems(&text)[0].contains("source.location: cannot tell the format"));
    let text = text.replace("  csv:", "  format: csv\n  csv:");
    assert!(check(&text).is_ok());
}

#[test]
fn transforms_are_checked() {
    let text = format!(
        "{SYNC}transforms:\n  - type: rename\n    columns: {{}}\n  - type: aggregate\n    by: [orderId]\n    aggregations: {{total: \"median(x)\"}}\n  - type: frobnicate\n"
    );
    let ps = problems(&text);
    // The unknown transform type stops deserialization first.
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(ps[0].contains("transforms[2]"), "{}", ps[0]);
    let text = format!(
        "{SYNC}transforms:\n  - type: rename\n    columns: {{}}\n  - type: aggregate\n    by: [orderId]\n    aggregations: {{total: \"median(x)\"}}\n"
    );
    let ps = problems(&text);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert!(ps[0].contains("transforms[0].columns: names no column"));
    assert!(ps[1].contains("transforms[1].aggregations.total"));
}

const RECONCILE: &str = r#"version: 1
kind: reconcile
name: check
left:
  source:
    location: s360.csv
    key: orderId
right:
  source:
    location: crm.parquet
    key: [a, b]
compare:
  - field: saleAmount
    absolute: "0.01x"
"#;

#[test]
fn reconcile_checks_keys_and_tolerances() {
    let ps = problems(RECONCILE);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert!(ps[0].contains("right.source.key: left key has 1 column(s), right key has 2"));
    assert!(ps[1].contains("compare[0].absolute"));
}

#[test]
fn reconcile_output_locations_are_checked() {
    let good = RECONCILE
        .replace("0.01x", "0.01")
        .replace("key: [a, b]", "key: a");
    for dir in ["reports/x", "file:///tmp/r", "s3://bucket/reports/orders"] {
        let text = format!("{good}output:\n  dir: {dir}\n  storage: {{ aws_region: eu-west-1 }}\n");
        assert!(check(&text).is_ok(), "{dir}: {:?}", check(&text).err());
    }
    for (dir, why) in [
        ("s3://bucket/reports/*", "cannot contain a glob"),
        ("ftp://host/reports", "unsupported URL scheme `ftp`"),
        ("\"\"", "must not be empty"),
    ] {
        let ps = problems(&format!("{good}output:\n  dir: {dir}\n"));
        assert_eq!(ps.len(), 1, "{dir}: {ps:#?}");
        assert!(
            ps[0].contains("output.dir") && ps[0].contains(why),
            "{dir}: {ps:#?}"
        );
    }
}

#[test]
fn every_example_pipeline_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let env = |_: &str| None;
            if let Err(ps) = parse(&text, &path, &env) {
                panic!("{}: {ps:#?}", path.display());
            }
            n += 1;
        }
    }
    assert!(n >= 1, "expected example pipelines in {}", dir.display());
}

/// `schema/s360-sync.schema.json` is what `s360-sync schema` prints, so
/// editors that point at the committed file see every field of this build.
#[test]
fn the_committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/s360-sync.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    assert!(
        committed == current,
        "{} is stale: run `cargo run -- schema > schema/s360-sync.schema.json`",
        path.display()
    );
}

#[test]
fn schema_describes_both_kinds() {
    let schema = json_schema().to_string();
    assert!(schema.contains("batch_size"));
    assert!(schema.contains("\"reconcile\""));
    assert!(schema.contains("Orders per request"));
}

#[test]
fn the_sink_section_is_read_into_webhook_and_run_policy_and_written_back_as_one_mapping() {
    let text = format!(
        "{SYNC}  format: s360\n  max_per_run: 40\n  concurrency: 3\n  rate_limit: 2.5\n  deadline: 5m\n  timeout: 7s\n  retry: {{ max_attempts: 2 }}\n"
    );
    let PipelineSpec::Sync(p) = check(&text).unwrap() else {
        panic!("a sync pipeline")
    };
    let (w, policy) = (&p.sink.webhook, &p.sink.policy);
    assert_eq!(w.format, PayloadFormat::S360);
    assert_eq!(w.timeout, HumanDuration::secs(7));
    assert_eq!(w.retry.max_attempts, 2);
    assert_eq!((policy.batch_size, policy.max_per_run), (25, 40));
    assert_eq!((policy.concurrency, policy.rate_limit), (3, Some(2.5)));
    assert_eq!(policy.deadline, HumanDuration::mins(5));
    // Written back, the section is the mapping the user wrote, policy
    // keys beside the webhook's.
    let back = serde_json::to_value(&p.sink).unwrap();
    for key in [
        "url",
        "format",
        "batch_size",
        "max_per_run",
        "deadline",
        "concurrency",
        "rate_limit",
        "timeout",
        "retry",
    ] {
        assert!(back.get(key).is_some(), "{key} in {back}");
    }
    assert!(
        back.get("policy").is_none() && back.get("webhook").is_none(),
        "{back}"
    );
}

#[test]
fn the_schema_shows_the_sink_and_aggregations_as_written() {
    let schema = json_schema();
    let sink = &schema["$defs"]["WebhookSinkConfig"];
    let props = sink["properties"].as_object().unwrap();
    for key in [
        "url",
        "format",
        "batch_size",
        "max_per_run",
        "deadline",
        "concurrency",
        "rate_limit",
        "signing",
        "auth",
        "headers",
        "allow_http",
        "timeout",
        "connect_timeout",
        "retry",
    ] {
        assert!(props.contains_key(key), "{key} in the sink's schema");
    }
    assert_eq!(props.len(), 14);
    assert_eq!(sink["additionalProperties"], serde_json::json!(false));
    let text = schema.to_string();
    assert!(
        !text.contains("SinkFile") && !text.contains("RunPolicy"),
        "{text}"
    );
    assert!(
        text.contains(r#""aggregations":{"additionalProperties":{"type":"string"}"#),
        "{text}"
    );
}

#[test]
fn aggregations_are_read_once_into_a_function_and_a_column() {
    for (text, want) in [
        ("sum(amount)", Some((AggFn::Sum, "amount"))),
        (" first ( label ) ", Some((AggFn::First, "label"))),
        ("count(x)", Some((AggFn::Count, "x"))),
        ("mean(x)", Some((AggFn::Mean, "x"))),
        ("median(x)", None),
        ("SUM(x)", None),
        ("sum()", None),
        ("sum(x", None),
        ("x", None),
    ] {
        let a = Aggregation::parse(text);
        assert_eq!(a.get(), want, "{text:?}");
        assert_eq!(a.text(), text);
    }
    for (name, f) in AggFn::ALL {
        assert_eq!(AggFn::from_name(name), Some(f));
        assert_eq!(f.name(), name);
    }
}
