//! `run --metrics-file`, `reconcile --metrics-file` and `schedule --metrics`: the node-exporter textfile of a run or a check and the endpoint of a schedule, read by Prometheus' own text parser (Python's `prometheus_client`), after runs that succeed and runs that fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::cli::Cmd;
use crate::support::receiver::Receiver;
use crate::support::{text, write};

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "pipeline")
        assert s.labels.get("pipeline") == "metrics", s
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;

const PARSE_ALL: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;

/// Every sample of the file, by name and all its labels, as Prometheus'
/// text parser reads it.
fn parse_all(path: &Path) -> BTreeMap<String, f64> {
    let o = Command::new("python3")
        .args(["-c", PARSE_ALL, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every sample of the file, by name and labels (without `pipeline`), as
/// Prometheus' text parser reads it.
fn parse(path: &Path) -> BTreeMap<String, f64> {
    let o = Command::new("python3")
        .args(["-c", PARSE, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn parser_present() -> bool {
    crate::support::python::has("prometheus_client", "prometheus-client")
}

#[test]
fn the_metrics_file_tells_how_each_run_ended_and_when_one_last_succeeded() {
    if !parser_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder().start_in_background();
    write(
        &dir.path().join("metrics.yaml"),
        format!(
            "version: 1\nkind: sync\nname: metrics\nsource:\n  location: orders_*.csv\n  csv: {{ delimiter: \";\" }}\n  key: orderId\n  cursor: lastModDateTime\n  columns: {{ lastModDateTime: timestamp }}\nsink:\n  url: {}\n  batch_size: 2\nstate:\n  path: state/metrics.db\n",
            rec.url()
        ),
    );
    write(
        &dir.path().join("orders_1.csv"),
        "orderId;lastModDateTime\n1;2026-10-13 10:00:00\n2;2026-10-13 10:01:00\n3;2026-10-13 10:02:00\n",
    );
    let prom = dir.path().join("textfile/s360.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let run = || {
        Cmd::new(dir.path())
            .args(&[
                "run",
                "metrics.yaml",
                "--json",
                "--metrics-file",
                prom.to_str().unwrap(),
            ])
            .run()
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: Value = crate::support::json(&o);
    let m = parse(&prom);
    assert_eq!(m["s360_sync_last_run_outcome{outcome=ok}"], 1.0, "{m:?}");
    assert_eq!(m["s360_sync_last_run_outcome{outcome=failed}"], 0.0);
    assert_eq!(m["s360_sync_last_run_orders{stage=detected}"], 3.0);
    assert_eq!(
        m["s360_sync_last_run_orders{stage=acknowledged}"],
        summary["delivery"]["acknowledged"].as_f64().unwrap()
    );
    assert_eq!(m["s360_sync_backlog_orders"], 0.0);
    assert_eq!(m["s360_sync_dead_letters"], 0.0);
    let success = m["s360_sync_last_success_timestamp_seconds"];
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - success).abs() < 120.0, "{success} vs {now}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "readable by the collector");
    }

    // A run that fails on a bad export: `failed`, and the last success
    // is still the earlier run's.
    write(
        &dir.path().join("orders_2.csv"),
        "orderId;lastModDateTime\n4;not a time\n",
    );
    let o = run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m = parse(&prom);
    assert_eq!(
        m["s360_sync_last_run_outcome{outcome=failed}"], 1.0,
        "{m:?}"
    );
    assert_eq!(m["s360_sync_last_run_outcome{outcome=ok}"], 0.0);
    assert_eq!(m["s360_sync_last_success_timestamp_seconds"], success);
    assert!(
        !m.contains_key("s360_sync_last_run_orders{stage=sent}"),
        "{m:?}"
    );
    // Only the file itself is in its folder: no temporary leftovers.
    let names: Vec<_> = std::fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("s360.prom")]);

    // The CRM down for longer than the runs `status` lists (ten): the
    // last success is still there, and still the first run's, so an alert
    // on the time since it fires rather than going quiet.
    std::fs::remove_file(dir.path().join("orders_2.csv")).unwrap();
    write(
        &dir.path().join("orders_3.csv"),
        "orderId;lastModDateTime\n5;2026-10-13 10:05:00\n",
    );
    write(
        &dir.path().join("metrics.yaml"),
        "version: 1\nkind: sync\nname: metrics\nsource:\n  location: orders_*.csv\n  csv: { delimiter: \";\" }\n  key: orderId\n  cursor: lastModDateTime\n  columns: { lastModDateTime: timestamp }\nsink:\n  url: http://127.0.0.1:1/down\n  retry: { max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms }\nstate:\n  path: state/metrics.db\n",
    );
    for i in 0..12 {
        let o = run();
        assert_eq!(o.status.code(), Some(6), "run {i}: {}", text(&o));
    }
    let m = parse(&prom);
    assert_eq!(
        m["s360_sync_last_run_outcome{outcome=incomplete}"], 1.0,
        "{m:?}"
    );
    assert_eq!(
        m["s360_sync_last_success_timestamp_seconds"], success,
        "{m:?}"
    );

    // A pipeline file broken by an edit: a failed run under the pipeline's
    // name, with the last success of the file it replaces.
    write(
        &dir.path().join("metrics.yaml"),
        "version: 1\nkind: sync\nname: [\n",
    );
    let o = run();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let m = parse_all(&prom);
    assert_eq!(
        m["s360_sync_last_run_outcome{outcome=failed,pipeline=metrics}"], 1.0,
        "{m:?}"
    );
    assert_eq!(
        m["s360_sync_last_success_timestamp_seconds{pipeline=metrics}"], success,
        "{m:?}"
    );
}

/// `GET /metrics` of a server on 127.0.0.1, as a scraper asks it.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")).then(|| body.to_string())
}

/// `schedule FILES --metrics` in `dir`, scraped until a body satisfies
/// `ready` (at most 60 s), then stopped with SIGTERM; the body, written to
/// `scraped.prom` in `dir`. The schedule must exit cleanly.
async fn scraped_schedule(
    dir: &Path,
    files: &[&str],
    ready: impl Fn(&str) -> bool,
) -> std::path::PathBuf {
    use crate::support::cli::{reap, sigterm};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["schedule"];
    args.extend_from_slice(files);
    args.extend_from_slice(&["--metrics", &addr]);
    let mut child = Cmd::new(dir)
        .args(&args)
        .spawn(std::process::Stdio::piped(), std::process::Stdio::piped());
    // The first runs happen at start; their metrics appear when they end.
    let mut body = None;
    for _ in 0..600 {
        if let Some(b) = scrape(port).filter(|b| ready(b)) {
            body = Some(b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    sigterm(&child);
    let exited = reap(&mut child, std::time::Duration::from_secs(60)).await;
    let out = child.wait_with_output().unwrap();
    let body = body.unwrap_or_else(|| panic!("no metrics of the runs within 60 s: {}", text(&out)));
    assert!(exited.is_some_and(|s| s.success()), "{}", text(&out));
    let file = dir.join("scraped.prom");
    std::fs::write(&file, &body).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_serves_the_metrics_of_its_runs_on_loopback() {
    if !parser_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    write(
        &dir.path().join("metrics.yaml"),
        format!(
            "version: 1\nkind: sync\nname: metrics\nsource:\n  location: orders_*.csv\n  csv: {{ delimiter: \";\" }}\n  key: orderId\n  cursor: lastModDateTime\n  columns: {{ lastModDateTime: timestamp }}\nsink:\n  url: {}\nschedule:\n  interval: 1m\nstate:\n  path: state/metrics.db\n",
            rec.url()
        ),
    );
    write(
        &dir.path().join("orders_1.csv"),
        "orderId;lastModDateTime\n1;2026-10-13 10:00:00\n2;2026-10-13 10:01:00\n",
    );
    let file = scraped_schedule(dir.path(), &["metrics.yaml"], |b| {
        b.contains("outcome=\"ok\"} 1")
    })
    .await;
    let m = parse(&file);
    assert_eq!(m["s360_sync_last_run_outcome{outcome=ok}"], 1.0, "{m:?}");
    assert_eq!(m["s360_sync_last_run_orders{stage=acknowledged}"], 2.0);
    assert_eq!(m["s360_sync_runs_total{outcome=ok}"], 1.0, "{m:?}");
    // Every outcome is counted from 0 before it first happens, so that
    // `increase()` sees the first failure.
    for o in ["refused", "incomplete", "failed"] {
        let k = format!("s360_sync_runs_total{{outcome={o}}}");
        assert_eq!(m.get(&k), Some(&0.0), "{k}: {m:?}");
    }
    assert_eq!(m["s360_sync_backlog_orders"], 0.0);

    // Not on an address other hosts reach.
    let o = Cmd::new(dir.path())
        .args(&["schedule", "metrics.yaml", "--metrics", "0.0.0.0:9464"])
        .run();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        crate::support::stderr(&o).contains("loopback"),
        "{}",
        text(&o)
    );
}

/// The committed edge-case check, its data paths made absolute, written
/// into `dir` with `extra` appended.
fn edge_check(dir: &Path, extra: &str) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(crate::support::root().join("pipelines/reconcile-edge.yaml"))
            .unwrap();
    let data = crate::support::root().join("testdata");
    let text = text.replace("../testdata", &data.display().to_string());
    let p = dir.join("edge.yaml");
    std::fs::write(&p, format!("{text}{extra}")).unwrap();
    p
}

#[test]
fn the_metrics_file_of_a_check_tells_its_outcome_and_keys_by_category() {
    if !parser_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = edge_check(dir.path(), "");
    let prom = dir.path().join("check.prom");
    let check = |pipeline: &Path| {
        Cmd::new(dir.path())
            .args(&[
                "reconcile",
                pipeline.to_str().unwrap(),
                "--json",
                "--out",
                "report",
                "--metrics-file",
                prom.to_str().unwrap(),
            ])
            .run()
    };
    let o = check(&p);
    let code = o.status.code();
    assert!(matches!(code, Some(0 | 5)), "{}", text(&o));
    let summary: Value = crate::support::json(&o);
    let m = parse_all(&prom);
    let outcome = if code == Some(0) {
        "passed"
    } else {
        "exceeded"
    };
    assert_eq!(
        m[&format!("s360_sync_last_check_outcome{{outcome={outcome},pipeline=reconcile-edge}}")],
        1.0,
        "{m:?}"
    );
    for category in [
        "matched",
        "mismatched",
        "missing_in_crm",
        "missing_in_s360",
        "duplicate_key",
        "null_key",
    ] {
        assert_eq!(
            m[&format!("s360_sync_last_check_keys{{category={category},pipeline=reconcile-edge}}")],
            summary["counts"][category].as_f64().unwrap(),
            "{category}"
        );
    }
    assert!(m["s360_sync_last_check_duration_seconds{pipeline=reconcile-edge}"] > 0.0);

    // A check that cannot read its input: `failed`, and no keys.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&p)
            .unwrap()
            .replace("/testdata/reconcile/edge/", "/testdata/reconcile/nowhere/"),
    )
    .unwrap();
    let o = check(&broken);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m = parse_all(&prom);
    assert_eq!(
        m["s360_sync_last_check_outcome{outcome=failed,pipeline=reconcile-edge}"], 1.0,
        "{m:?}"
    );
    assert!(!m.keys().any(|k| k.contains("last_check_keys")), "{m:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_serves_a_histogram_of_run_durations_and_the_last_check() {
    if !parser_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    write(
        &dir.path().join("metrics.yaml"),
        format!(
            "version: 1\nkind: sync\nname: metrics\nsource:\n  location: orders_*.csv\n  csv: {{ delimiter: \";\" }}\n  key: orderId\n  cursor: lastModDateTime\n  columns: {{ lastModDateTime: timestamp }}\nsink:\n  url: {}\nschedule:\n  interval: 1m\nstate:\n  path: state/metrics.db\n",
            rec.url()
        ),
    );
    write(
        &dir.path().join("orders_1.csv"),
        "orderId;lastModDateTime\n1;2026-10-13 10:00:00\n",
    );
    edge_check(
        dir.path(),
        "schedule:\n  interval: 1m\noutput:\n  dir: report\n",
    );
    let file = scraped_schedule(dir.path(), &["metrics.yaml", "edge.yaml"], |b| {
        b.contains("last_check_outcome{") && b.contains("last_run_outcome{")
    })
    .await;
    let m = parse_all(&file);
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["s360_sync_last_check_keys{category=mismatched,pipeline=reconcile-edge}"],
        summary["counts"]["mismatched"].as_f64().unwrap(),
        "{m:?}"
    );
    for pipeline in ["metrics", "reconcile-edge"] {
        let count = m[&format!("s360_sync_run_duration_seconds_count{{pipeline={pipeline}}}")];
        assert_eq!(count, 1.0, "{pipeline}: {m:?}");
        assert_eq!(
            m[&format!("s360_sync_run_duration_seconds_bucket{{le=+Inf,pipeline={pipeline}}}")],
            count
        );
        // Buckets are cumulative: never fewer runs under a higher bound.
        let mut last = 0.0;
        for le in ["0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "3600.0"] {
            let v =
                m[&format!("s360_sync_run_duration_seconds_bucket{{le={le},pipeline={pipeline}}}")];
            assert!(v >= last, "{pipeline} le={le}: {v} < {last}");
            last = v;
        }
        assert!(m[&format!("s360_sync_run_duration_seconds_sum{{pipeline={pipeline}}}")] > 0.0);
    }
    let runs = |pipeline: &str, outcome: &str| {
        m.get(&format!(
            "s360_sync_runs_total{{outcome={outcome},pipeline={pipeline}}}"
        ))
        .copied()
    };
    assert_eq!(runs("metrics", "ok"), Some(1.0), "{m:?}");
    let check_outcome = if summary["passed"] == true {
        "passed"
    } else {
        "exceeded"
    };
    assert_eq!(runs("reconcile-edge", check_outcome), Some(1.0), "{m:?}");
    assert_eq!(runs("reconcile-edge", "failed"), Some(0.0), "from 0: {m:?}");
}
