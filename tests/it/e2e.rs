//! End to end with the sandbox CRM on 127.0.0.1: import, export, reconcile; tampering found and repaired; faults survived.

use std::path::Path;
use std::time::Duration;

use s360_sync::rehearsal::sandbox::{Faults, RunningSandbox, SandboxConfig};

use crate::support::cli::{bin_async, import_flag};
use crate::support::pipeline::{Lines, Retry, Sink, Source, SyncPipeline};
use crate::support::{bin, generate, text, write};

/// The sync pipeline to the sandbox CRM at `url`, and the demo's reconcile pipeline.
fn sync_yaml(dir: &Path, url: &str) {
    SyncPipeline::new(
        "e2e",
        Source::orders()
            .columns(&[
                ("orderId", "int64"),
                ("contactReference", "string"),
                ("creationDateTime", "timestamp"),
                ("lastModDateTime", "timestamp"),
                ("saleAmount", "int64"),
            ])
            .lines(Lines::csv("exports/order_lines_*.csv")),
        Sink::to(url)
            .format("s360")
            .retry(Retry::backoff("10ms", "100ms", Some(20))),
    )
    .write(dir);
    write(
        &dir.join("reconcile.yaml"),
        s360_sync::rehearsal::demo::RECONCILE,
    );
}

async fn sandbox(dir: &Path, faults: Faults) -> RunningSandbox {
    s360_sync::rehearsal::sandbox::start(
        SandboxConfig {
            faults,
            ..SandboxConfig::new(dir.join("crm.db"))
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

async fn import(dir: &Path) {
    import_flag(dir, "sync.yaml", "2026-01-01", "2027-01-01", &[]).await;
    let o = bin_async(dir, &["import", "run", "sync.yaml"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Export the sandbox and reconcile; returns the exit code and the summary.
async fn check(dir: &Path) -> (i32, serde_json::Value) {
    let (db, out) = (dir.join("crm.db"), dir.join("crm_orders.csv"));
    tokio::task::spawn_blocking(move || s360_sync::rehearsal::sandbox::export(&db, &out))
        .await
        .unwrap()
        .unwrap();
    let o = bin_async(dir, &["reconcile", "reconcile.yaml", "--json"], &[]).await;
    let code = o.status.code().unwrap();
    assert!(code == 0 || code == 5, "{}", text(&o));
    (code, serde_json::from_slice(&o.stdout).unwrap())
}

fn count(summary: &serde_json::Value, category: &str) -> u64 {
    summary["counts"][category]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {category}: {summary}"))
}

#[test]
fn demo_runs_the_whole_job_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = bin(dir.path(), &["demo", "--dir", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The demo's sample data is the bundled sample data.
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/s360");
    for f in [
        "orders_2026-10-14.csv",
        "order_lines_2026-10-13.csv",
        "order_lines_2026-10-15.csv",
    ] {
        assert_eq!(
            std::fs::read(out.join("exports").join(f)).unwrap(),
            std::fs::read(bundled.join(f)).unwrap(),
            "{f}"
        );
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("0 missing in CRM, 0 missing in S-360, 0 mismatched"),
        "{stdout}"
    );
    assert!(out.join("report").join("summary.html").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_crm_records_are_found_exactly_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "300", "--days", "2"]);
    let crm = sandbox(dir.path(), Faults::default()).await;
    sync_yaml(dir.path(), &crm.url());
    import(dir.path()).await;
    let (code, s) = check(dir.path()).await;
    assert_eq!(code, 0, "{s}");

    // Tamper with the CRM's own database: three currencies changed, two orders gone.
    let db = rusqlite::Connection::open(dir.path().join("crm.db")).unwrap();
    let keys: Vec<String> = {
        let mut stmt = db
            .prepare("SELECT key FROM orders WHERE json_array_length(record, '$.operationDatas') > 0 ORDER BY key LIMIT 5")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for k in &keys[..3] {
        db.execute(
            "UPDATE orders SET record = json_set(record, '$.currencyCode', 'XXX') WHERE key = ?1",
            [k],
        )
        .unwrap();
    }
    for k in &keys[3..] {
        db.execute("DELETE FROM orders WHERE key = ?1", [k])
            .unwrap();
    }
    drop(db);
    let (code, s) = check(dir.path()).await;
    assert_eq!(code, 5, "{s}");
    assert_eq!(count(&s, "mismatched"), 3, "{s}");
    assert_eq!(count(&s, "missing_in_crm"), 2, "{s}");
    assert_eq!(count(&s, "missing_in_s360"), 0, "{s}");
    let report =
        std::fs::read_to_string(dir.path().join("report").join("discrepancies.csv")).unwrap();
    for k in &keys {
        assert!(report.contains(k.as_str()), "{k} not in report:\n{report}");
    }

    // repair (twice: idempotent), then a scheduled run, then the check is clean.
    let o = bin_async(
        dir.path(),
        &["repair", "report", "--pipeline", "sync.yaml", "--json"],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["in_report"], 5, "{r}");
    assert_eq!(r["flagged"], 5, "{r}");
    let o = bin_async(
        dir.path(),
        &["repair", "report", "--pipeline", "sync.yaml", "--json"],
        &[],
    )
    .await;
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["flagged"], 0, "{r}");
    assert_eq!(r["already_queued"], 5, "{r}");
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(run["delivery"]["acknowledged"], 5, "{run}");
    let (code, s) = check(dir.path()).await;
    assert_eq!(code, 0, "{s}");
    crm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_do_not_make_the_result_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "400"]);
    let crm = sandbox(
        dir.path(),
        Faults {
            fail_rate: 0.3,
            fail_status: 503,
            fail_first: 1,
            latency: Duration::from_millis(20),
            retry_after: Some(1),
            seed: 7,
            ..Faults::default()
        },
    )
    .await;
    sync_yaml(dir.path(), &crm.url());
    import(dir.path()).await;
    let stats = s360_sync::rehearsal::sandbox::stats(&dir.path().join("crm.db")).unwrap();
    let stats = serde_json::to_value(&stats).unwrap();
    assert!(
        stats["requests"]["503"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    let (code, s) = check(dir.path()).await;
    assert_eq!(code, 0, "{s}");
    crm.shutdown().await;
}
