//! Regression tests for failures that once lost orders silently with exit 0: implausible times, late lines, stalled in-flight batches, the first run after an import, `--force` beside a live run.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::cli::{POLL, WAIT, bin_async, run, status, wait_until};
use crate::support::exports::{borrowed, lines, orders_with};
use crate::support::pipeline::{Lines, Retry, Sink, Source, Step, SyncPipeline, names};
use crate::support::receiver::{Act, Receiver, When};
use crate::support::state::db_hash as state_hash;
use crate::support::{json as summary, settle, text};

/// A sync pipeline over `exports/orders_*.csv` (`orderId;orderState;
/// operationCount;lastModDateTime`) to `url`, with quick retries and a
/// lookback of an hour.
fn pipeline(url: &str) -> SyncPipeline {
    SyncPipeline::new(
        "trust-test",
        Source::orders().columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")]),
        Sink::to(url)
            .retry(Retry::backoff("10ms", "50ms", Some(3)))
            .deadline("20s"),
    )
    .state_at("state/trust.db")
    .lookback("1h")
}

/// [`pipeline`] with lines from `exports/lines_*.csv`, as `lines` sets them up.
fn with_lines(url: &str, lines: impl Fn(Lines) -> Lines) -> SyncPipeline {
    let mut p = pipeline(url);
    p.source = p.source.lines(lines(Lines::csv("exports/lines_*.csv")));
    p
}

fn orders(dir: &Path, name: &str, rows: &[(i64, &str, i64, &str)]) -> PathBuf {
    orders_with(dir, name, "operationCount", rows)
}

/// `import flag` of the orders last modified on 2026-10-13, with `--json`.
async fn flag_the_13th(dir: &Path) -> std::process::Output {
    let args = [
        "import",
        "flag",
        "sync.yaml",
        "--from",
        "2026-10-13",
        "--to",
        "2026-10-14",
        "--column",
        "lastModDateTime",
        "--json",
    ];
    bin_async(dir, &args, &[]).await
}

fn state_db(dir: &Path) -> PathBuf {
    dir.join("state/trust.db")
}

/// Acknowledged orders of `format: s360` bodies as (key, version,
/// operationIds of its lines), in arrival order.
fn acked(rec: &Receiver) -> Vec<(String, i64, Vec<i64>)> {
    rec.log()
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
        .map(|o| {
            let ops = o["orderDetailsData"]["operationDatas"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|l| l["operationId"].as_i64().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            (
                o["syncKey"].as_str().unwrap().to_string(),
                o["syncVersion"].as_i64().unwrap(),
                ops,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn future_dated_row_does_not_blind_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 0, "2026-10-13 12:00:00")],
    );
    assert_eq!(run(dir.path(), &[]).await.status.code(), Some(0));
    let before = state_hash(&state_db(dir.path()));
    rec.clear();
    // A typo'd year in row 2 of a new file.
    orders(
        dir.path(),
        "orders_2.csv",
        &[
            (2, "CLOSED", 0, "2026-10-13 13:00:00"),
            (3, "CLOSED", 0, "2099-10-13 13:00:00"),
        ],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("orders_2.csv") && err.contains("data row 2") && err.contains("max_future"),
        "{err}"
    );
    assert!(rec.log().is_empty(), "nothing sent from a refused file");
    assert_eq!(state_hash(&state_db(dir.path())), before, "state unchanged");
    // Fixed at the source: everything flows, and later changes still do.
    orders(
        dir.path(),
        "orders_2.csv",
        &[
            (2, "CLOSED", 0, "2026-10-13 13:00:00"),
            (3, "CLOSED", 0, "2026-10-13 13:05:00"),
        ],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 2);
    orders(
        dir.path(),
        "orders_3.csv",
        &[(1, "CANCELLED", 0, "2026-10-14 08:00:00")],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 1, "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_left_in_the_future_by_an_older_build_sets_no_floor() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 0, "2026-10-13 12:00:00")],
    );
    assert_eq!(run(dir.path(), &[]).await.status.code(), Some(0));
    // What an older build recorded after reading a 2099 row.
    {
        let c = rusqlite::Connection::open(state_db(dir.path())).unwrap();
        c.execute(
            "UPDATE cursor SET modified_ms = 4102444800000, key = '9'",
            [],
        )
        .unwrap();
    }
    // The same file rewritten with a real change: read, not `too_old`.
    orders(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 0, "2026-10-13 12:00:00"),
            (2, "CLOSED", 0, "2026-10-13 12:30:00"),
        ],
    );
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["detection"]["too_old"], 0, "{s}");
    assert_eq!(s["delivery"]["acknowledged"], 1, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_line_shows_what_was_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 0, "2026-10-13 12:00:00")],
    );
    let o = bin_async(dir.path(), &["run", "sync.yaml"], &[]).await;
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.contains("skipped: unchanged 0, too old 0, stale 0"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_arriving_a_run_later_requeue_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = with_lines(&rec.url(), |l| l);
    p.sink = p.sink.format("s360");
    p.write(dir.path());
    // Written well before the run: the orders file is not read again for
    // its own sake (`sync::detect::RACY_MS`), only for the lines.
    settle(&orders(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 1, "2026-10-13 12:00:00"),
            (2, "CLOSED", 2, "2026-10-13 12:01:00"),
        ],
    ));
    settle(&lines(dir.path(), "lines_1.csv", &[(1, 10, 1), (2, 20, 1)]));
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 2);
    // Order 2's second line comes ten minutes later, in its own file.
    rec.clear();
    lines(dir.path(), "lines_2.csv", &[(2, 21, 1)]);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = acked(&rec);
    assert_eq!(got.len(), 1, "only order 2 again: {got:?}");
    assert_eq!(got[0].2, vec![20, 21], "with both lines: {got:?}");
    assert_eq!(summary(&o)["detection"]["relined"], 1);
    // Nothing new: nothing sent.
    rec.clear();
    let o = run(dir.path(), &[]).await;
    assert_eq!(summary(&o)["delivery"]["sent"], 0, "{}", text(&o));
    // A corrected lines file, rewritten in place, is sent again too.
    lines(dir.path(), "lines_1.csv", &[(1, 10, 5), (2, 20, 1)]);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = acked(&rec);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1), ("1", 2), "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_that_come_before_their_order_are_attached_when_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = with_lines(&rec.url(), |l| l);
    p.sink = p.sink.format("s360");
    p.write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 1, "2026-10-13 12:00:00")],
    );
    lines(dir.path(), "lines_1.csv", &[(1, 10, 1), (2, 20, 1)]);
    run(dir.path(), &[]).await;
    rec.clear();
    orders(
        dir.path(),
        "orders_2.csv",
        &[(2, "CLOSED", 1, "2026-10-13 12:05:00")],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = acked(&rec);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].2, vec![20]);
}

#[tokio::test(flavor = "multi_thread")]
async fn order_with_missing_lines_is_held_until_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = with_lines(&rec.url(), |l| l.count("operationCount", Some("1h")));
    p.sink = p.sink.format("s360");
    p.write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 1, "2026-10-13 12:00:00"),
            (2, "CLOSED", 2, "2026-10-13 12:01:00"),
            (3, "ABANDONED", 0, "2026-10-13 12:02:00"),
        ],
    );
    lines(dir.path(), "lines_1.csv", &[(1, 10, 1), (2, 20, 1)]);
    let o = run(dir.path(), &[]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "waiting is not a failure: {}",
        text(&o)
    );
    let s = summary(&o);
    assert_eq!(s["delivery"]["acknowledged"], 2, "{s}");
    assert_eq!(s["detection"]["held_for_lines"], 1, "{s}");
    assert_eq!(s["backlog"], 1, "{s}");
    let keys: HashSet<String> = acked(&rec).into_iter().map(|o| o.0).collect();
    assert_eq!(keys, HashSet::from(["1".to_string(), "3".to_string()]));
    let status = status(dir.path(), "sync.yaml").await;
    assert_eq!(status["waiting_for_lines"], 1, "{status}");
    // The missing line arrives: order 2 goes out once, complete, version 1.
    rec.clear();
    lines(dir.path(), "lines_2.csv", &[(2, 21, 1)]);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = acked(&rec);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].1, got[0].2.clone()), (1, vec![20, 21]), "{got:?}");
    assert_eq!(summary(&o)["backlog"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn order_whose_lines_never_come_goes_out_when_the_wait_runs_out_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = with_lines(&rec.url(), |l| l.count("operationCount", Some("0s")));
    p.sink = p.sink.format("s360");
    p.write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(2, "CLOSED", 2, "2026-10-13 12:01:00")],
    );
    lines(dir.path(), "lines_1.csv", &[(2, 20, 1)]);
    let o = bin_async(dir.path(), &["run", "sync.yaml"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.contains("1 sent without all their lines"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_count_column_removed_by_transforms_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    with_lines(&rec.url(), |l| l.count("operationCount", None))
        .step(Step::Drop(names(&["operationCount"])))
        .write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 1, "2026-10-13 12:00:00")],
    );
    lines(dir.path(), "lines_1.csv", &[(1, 10, 1)]);
    let o = run(dir.path(), &[]).await;
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("operationCount") && err.contains("lines.count"),
        "{err}"
    );
    assert!(rec.log().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_batch_larger_than_the_room_is_split_not_stalled() {
    let dir = tempfile::tempdir().unwrap();
    // The CRM is down: the first batch of 50 stays in flight.
    let rec = Receiver::builder()
        .rule(When::Always, Act::Status(503))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    let rows: Vec<(i64, &str, i64, String)> = (1..=60)
        .map(|i| (i, "CLOSED", 0, format!("2026-10-13 12:{:02}:00", i % 60)))
        .collect();
    orders(dir.path(), "orders_1.csv", &borrowed(&rows));
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let first: HashSet<String> = rec.log()[0]
        .orders
        .clone()
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(first.len(), 50);
    // The operator lowers the limits; the CRM is back.
    let mut p = pipeline(&rec.url());
    p.sink = p.sink.batch_size(10);
    p.sink.max_per_run = Some(10);
    p.write(dir.path());
    rec.heal();
    rec.clear();
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 10, "{}", text(&o));
    let sent: Vec<(String, i64)> = rec.log().iter().flat_map(|r| r.orders.clone()).collect();
    assert!(
        sent.iter().all(|(k, _)| first.contains(k)),
        "the in-flight batch goes first: {sent:?}"
    );
    // Bounded: six runs of ten drain the rest, each order once.
    for _ in 0..6 {
        let o = run(dir.path(), &[]).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (k, _) in rec.log().iter().flat_map(|r| r.orders.clone()) {
        *counts.entry(k).or_default() += 1;
    }
    assert_eq!(counts.len(), 60, "nothing lost");
    assert!(
        counts.values().all(|&n| n == 1),
        "nothing twice: {counts:?}"
    );
    for r in rec.log() {
        assert!(r.orders.len() <= 10);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_after_import_flag_sends_only_what_changed_after() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    // October's orders; the import is for the 13th only.
    orders(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 0, "2026-10-12 12:00:00"),
            (2, "CLOSED", 0, "2026-10-13 12:00:00"),
            (3, "CLOSED", 0, "2026-10-13 15:00:00"),
            (4, "CLOSED", 0, "2026-10-14 09:00:00"),
        ],
    );
    let o = flag_the_13th(dir.path()).await;
    assert!(o.status.success(), "{}", text(&o));
    let flagged: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(flagged["flagged"], 2, "{flagged}");
    assert_eq!(flagged["baseline"], true, "{flagged}");
    let o = bin_async(dir.path(), &["import", "run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    rec.clear();
    // Day-to-day sync carries on: nothing from the baseline files.
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["delivery"]["sent"], 0, "{}", text(&o));
    // A change after the import is sent, whatever its order's creation.
    orders(
        dir.path(),
        "orders_2.csv",
        &[(1, "CANCELLED", 0, "2026-10-15 08:00:00")],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 1, "{}", text(&o));
    let keys: Vec<String> = rec.delivered().into_iter().map(|o| o.0).collect();
    assert_eq!(keys, vec!["1".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_baseline_export_rewritten_in_place_sends_only_what_changed() {
    // A full export kept under one name. The import flags the 13th; order 1
    // (the 12th, 40 minutes before the cursor, so inside the lookback) is
    // left out. S-360 then appends order 3 to the same file.
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    let rows = [
        (1, "CLOSED", 0, "2026-10-12 23:30:00"),
        (2, "CLOSED", 0, "2026-10-13 00:10:00"),
    ];
    settle(&orders(dir.path(), "orders_1.csv", &rows));
    let o = flag_the_13th(dir.path()).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = bin_async(dir.path(), &["import", "run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(rec.delivered(), vec![("2".to_string(), 1)]);
    rec.clear();

    let mut more = rows.to_vec();
    more.push((3, "CLOSED", 0, "2026-10-13 00:20:00"));
    orders(dir.path(), "orders_1.csv", &more);
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["detection"]["files_read"], 1, "{s}");
    assert_eq!(rec.delivered(), vec![("3".to_string(), 1)], "{s}");

    // Changed, the order the import left out is sent, as version 1.
    rec.clear();
    more[0] = (1, "CANCELLED", 0, "2026-10-13 00:30:00");
    orders(dir.path(), "orders_1.csv", &more);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(rec.delivered(), vec![("1".to_string(), 1)], "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn import_flag_on_a_running_pipeline_does_not_hide_files_not_yet_read() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 0, "2026-10-13 12:00:00")],
    );
    run(dir.path(), &[]).await;
    // A new delta arrives, then someone flags an old timeframe before the
    // next run: the delta's change outside the timeframe must still go.
    orders(
        dir.path(),
        "orders_2.csv",
        &[
            (2, "CLOSED", 0, "2026-10-14 12:00:00"),
            (3, "CLOSED", 0, "2026-10-01 12:00:00"),
        ],
    );
    let o = bin_async(
        dir.path(),
        &[
            "import",
            "flag",
            "sync.yaml",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
            "--column",
            "lastModDateTime",
            "--json",
        ],
        &[],
    )
    .await;
    let flagged: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(flagged["baseline"], false, "{flagged}");
    rec.clear();
    let o = run(dir.path(), &[]).await;
    let mut keys: Vec<String> = rec.delivered().into_iter().map(|o| o.0).collect();
    keys.sort();
    assert_eq!(keys, vec!["2".to_string(), "3".to_string()], "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn force_never_runs_beside_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .latency(Duration::from_millis(1500))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    let rows: Vec<(i64, &str, i64, String)> = (1..=100)
        .map(|i| (i, "CLOSED", 0, "2026-10-13 12:00:00".to_string()))
        .collect();
    orders(dir.path(), "orders_1.csv", &borrowed(&rows));
    let first = {
        let d = dir.path().to_path_buf();
        tokio::spawn(async move { run(&d, &[]).await })
    };
    wait_until("the first run's first request", POLL, WAIT, || {
        !rec.is_empty()
    })
    .await;
    let forced = run(dir.path(), &["--force"]).await;
    assert_eq!(forced.status.code(), Some(4), "{}", text(&forced));
    let first = first.await.unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (k, _) in rec.log().iter().flat_map(|r| r.orders.clone()) {
        *counts.entry(k).or_default() += 1;
    }
    assert_eq!(counts.len(), 100);
    assert!(
        counts.values().all(|&n| n == 1),
        "no batch sent by two processes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn force_goes_on_only_when_the_recorded_holder_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 0, "2026-10-13 12:00:00")],
    );
    // The lock is held by a process (flock's child) that is not the run
    // the lock file names: that run (pid 999999) is dead.
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let lock = dir.path().join("state/trust.db.lock");
    let host = String::from_utf8(
        std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    std::fs::write(
        &lock,
        format!("pid 999999 on {host} since 2026-10-13T00:00:00Z"),
    )
    .unwrap();
    let mut holder = std::process::Command::new("flock")
        .args(["-x", lock.to_str().unwrap(), "sleep", "30"])
        .spawn()
        .unwrap();
    // Bounded wait until flock holds it.
    let mut waited = 0;
    while std::process::Command::new("flock")
        .args(["-n", "-x", lock.to_str().unwrap(), "true"])
        .status()
        .unwrap()
        .success()
    {
        assert!(waited < 50, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    let o = run(dir.path(), &[]).await;
    assert_eq!(
        o.status.code(),
        Some(4),
        "a plain run waits its turn: {}",
        text(&o)
    );
    assert!(rec.log().is_empty());
    let o = run(dir.path(), &["--force"]).await;
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 1);
    assert!(
        summary(&o)["stale_lock"]
            .as_str()
            .unwrap()
            .contains("999999")
    );
}
