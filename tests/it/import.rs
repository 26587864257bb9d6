//! Initial import against a real receiver on 127.0.0.1: flag, drain, interrupt, resume, flag again.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::cli::{Cmd, POLL, WAIT, bin_async, import_flag, reap, sigterm, wait_until};
use crate::support::exports::orders;
use crate::support::generate;
use crate::support::pipeline::{Retry, Sink, Source, SyncPipeline};
use crate::support::receiver::Receiver;
use crate::support::text;

fn pipeline(dir: &Path, url: &str) {
    SyncPipeline::new(
        "import-test",
        Source::generated_with_lines(),
        Sink::to(url)
            .concurrency(4)
            .retry(Retry::backoff("10ms", "100ms", None)),
    )
    .state_at("state/import.db")
    .write_as(dir, "import.yaml");
}

async fn flag(dir: &Path) -> serde_json::Value {
    import_flag(dir, "import.yaml", "2026-09-01", "2026-11-01", &[]).await
}

fn counts(rec: &Receiver) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rec.log().iter().filter(|r| r.acknowledged()) {
        assert!(r.orders.len() <= 50);
        for (k, _) in &r.orders {
            *m.entry(k.clone()).or_default() += 1;
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn flag_3000_then_drain_once_each_and_flag_again_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "3000", "--days", "3"]);
    let rec = Receiver::ok().await;
    pipeline(dir.path(), &rec.url());
    let s = flag(dir.path()).await;
    assert_eq!(s["matched"], 3000, "{s}");
    assert_eq!(s["flagged"], 3000, "{s}");
    // Flagging twice queues once.
    let s = flag(dir.path()).await;
    assert_eq!(s["flagged"], 0, "{s}");
    assert_eq!(s["already_queued"], 3000, "{s}");
    let o = bin_async(dir.path(), &["import", "run", "import.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["delivery"]["acknowledged"], 3000, "{summary}");
    assert_eq!(summary["backlog"], 0);
    let c = counts(&rec);
    assert_eq!(c.len(), 3000);
    assert!(
        c.values().all(|&n| n == 1),
        "each order delivered exactly once"
    );
    // Every order carries its lines.
    let first = rec.log()[0].json();
    assert!(first["data"]["orders"][0]["order"]["operationDatas"].is_array());
    // After delivery, flagging again queues nothing (the CRM has it all).
    let s = flag(dir.path()).await;
    assert_eq!(s["flagged"], 0, "{s}");
    assert_eq!(s["already_delivered"], 3000, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_import_resumes_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "1000"]);
    let rec = Receiver::builder()
        .latency(Duration::from_millis(200))
        .start()
        .await;
    pipeline(dir.path(), &rec.url());
    flag(dir.path()).await;
    let mut child = Cmd::new(dir.path())
        .args(&["import", "run", "import.yaml", "--concurrency", "2"])
        .spawn(Stdio::piped(), Stdio::piped());
    wait_until("the import's fourth request", POLL, WAIT, || rec.len() >= 4).await;
    // SIGTERM: requests in flight finish, the outcome is committed, the process exits.
    sigterm(&child);
    let exited = reap(&mut child, Duration::from_secs(60)).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        exited.is_some(),
        "still running after SIGTERM: {}",
        text(&out)
    );
    assert!(
        out.status.code().is_some(),
        "exited by itself, not killed: {}",
        text(&out)
    );
    let partial = counts(&rec).len();
    assert!(partial < 1000, "interrupted before the end ({partial})");
    rec.heal();
    let o = bin_async(dir.path(), &["import", "run", "import.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c = counts(&rec);
    assert_eq!(c.len(), 1000, "nothing lost");
    assert!(
        c.values().all(|&n| n == 1),
        "a graceful stop sends nothing twice"
    );
}

/// A pipeline over `exports/orders_*.csv` whose times are written in
/// Zurich's local time, without an offset.
fn zurich(dir: &Path, url: &str) {
    SyncPipeline::new(
        "import-zone",
        Source::orders()
            .columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")])
            .timezone("Europe/Zurich"),
        Sink::to(url).retry(Retry::backoff("10ms", "50ms", Some(3))),
    )
    .state_at("state/zone.db")
    .write_as(dir, "zone.yaml");
    // October: summer time, UTC+2.
    orders(
        dir,
        "orders_1.csv",
        &[
            (1, "CLOSED", 1, "2026-10-12 23:30:00"),
            (2, "CLOSED", 1, "2026-10-13 00:30:00"),
            (3, "CLOSED", 1, "2026-10-13 23:30:00"),
            (4, "CLOSED", 1, "2026-10-14 01:00:00"),
        ],
    );
}

/// The keys `import run` delivers after `import flag --from from --to to`.
async fn flagged(from: &str, to: &str) -> (serde_json::Value, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    zurich(dir.path(), &rec.url());
    let extra = ["--column", "lastModDateTime"];
    let s = import_flag(dir.path(), "zone.yaml", from, to, &extra).await;
    let o = bin_async(dir.path(), &["import", "run", "zone.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut keys: Vec<String> = counts(&rec).into_keys().collect();
    keys.sort();
    (s, keys)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_date_or_local_time_is_read_in_the_source_zone_and_an_offset_as_written() {
    // 2026-10-13 in Zurich runs from 22:00 UTC the day before: order 2
    // (00:30 local, 22:30 UTC on the 12th) is in it, order 4 (01:00 local
    // on the 14th, 23:00 UTC on the 13th) is not.
    let (s, keys) = flagged("2026-10-13", "2026-10-14").await;
    assert_eq!(keys, ["2", "3"], "{s}");
    assert_eq!(s["matched"], 2, "{s}");
    assert_eq!(s["from"], "2026-10-12T22:00:00Z", "{s}");
    assert_eq!(s["to"], "2026-10-13T22:00:00Z", "{s}");
    // A local time, to the minute.
    let (s, keys) = flagged("2026-10-13T00:15", "2026-10-13 23:00").await;
    assert_eq!(keys, ["2"], "{s}");
    // With an offset, the instant as written: UTC midnights.
    let (s, keys) = flagged("2026-10-13T00:00:00Z", "2026-10-14T00:00:00+00:00").await;
    assert_eq!(keys, ["3", "4"], "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typo_in_the_timeframe_is_refused_naming_it_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    zurich(dir.path(), &rec.url());
    let o = bin_async(dir.path(), &["run", "zone.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let db = dir.path().join("state/zone.db");
    let before = crate::support::state::db_hash(&db);
    for (from, to, says) in [
        // The year typed wrong: --to before --from.
        ("2026-10-13", "2025-10-14", "must be before"),
        // The same day twice: an empty timeframe.
        ("2026-10-13", "2026-10-13", "must be before"),
        ("2026-13-01", "2026-12-31", "2026-13-01"),
        ("2026-10-13", "14.10.2026", "14.10.2026"),
    ] {
        let args = [
            "import",
            "flag",
            "zone.yaml",
            "--from",
            from,
            "--to",
            to,
            "--json",
        ];
        let o = bin_async(dir.path(), &args, &[]).await;
        assert_eq!(o.status.code(), Some(2), "{from} {to}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{from} {to}: {err}");
        assert_eq!(crate::support::state::db_hash(&db), before, "{from} {to}");
    }
}
