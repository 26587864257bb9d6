//! Regression tests for failures that once lost orders silently with exit 0: implausible times, late lines, stalled in-flight batches, the first run after an import, `--force` beside a live run.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Answer, Recorder, bin_async, text, write};

/// A sync pipeline over `exports/orders_*.csv` (`orderId;orderState;
/// operationCount;lastModDateTime`), with lines from `exports/lines_*.csv`
/// when `lines` is given (its text goes under `lines:`), and `sink` text
/// under `sink:`.
fn pipeline(dir: &Path, url: &str, lines: Option<&str>, sink: &str) {
    let lines = match lines {
        Some(extra) => format!(
            "  lines:\n    location: exports/lines_*.csv\n    csv: {{ delimiter: \";\" }}\n    key: orderId\n{extra}"
        ),
        None => String::new(),
    };
    write(
        &dir.join("sync.yaml"),
        format!(
            r#"version: 1
kind: sync
name: trust-test
source:
  location: exports/orders_*.csv
  csv: {{ delimiter: ";" }}
  key: orderId
  cursor: lastModDateTime
  columns: {{ orderId: int64, lastModDateTime: timestamp }}
{lines}sink:
  url: {url}
  retry: {{ initial_backoff: 10ms, max_backoff: 50ms, max_attempts: 3 }}
  deadline: 20s
{sink}state:
  path: state/trust.db
  lookback: 1h
"#
        ),
    );
}

fn orders(dir: &Path, name: &str, rows: &[(i64, &str, i64, &str)]) {
    let mut s = String::from("orderId;orderState;operationCount;lastModDateTime\n");
    for (id, state, count, at) in rows {
        s.push_str(&format!("{id};{state};{count};{at}\n"));
    }
    write(&dir.join("exports").join(name), s);
}

fn lines(dir: &Path, name: &str, rows: &[(i64, i64, i64)]) {
    let mut s = String::from("orderId;operationId;quantity\n");
    for (order, op, qty) in rows {
        s.push_str(&format!("{order};{op};{qty}\n"));
    }
    write(&dir.join("exports").join(name), s);
}

async fn run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "sync.yaml", "--json"];
    args.extend_from_slice(extra);
    bin_async(dir, &args, &[]).await
}

fn summary(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(o)))
}

fn state_db(dir: &Path) -> PathBuf {
    dir.join("state/trust.db")
}

/// Hash of the state database and its WAL, to prove a refused run changed nothing.
fn state_hash(dir: &Path) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for suffix in ["", "-wal"] {
        let mut p = state_db(dir).into_os_string();
        p.push(suffix);
        if let Ok(bytes) = std::fs::read(PathBuf::from(p)) {
            h.update(&bytes);
        }
    }
    h.finalize().to_vec()
}

/// Acknowledged orders of `format: s360` bodies as (key, version,
/// operationIds of its lines), in arrival order.
fn acked(rec: &Recorder) -> Vec<(String, i64, Vec<i64>)> {
    rec.all()
        .iter()
        .filter(|r| r.status == 200)
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
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), None, "");
    orders(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 0, "2026-10-13 12:00:00")],
    );
    assert_eq!(run(dir.path(), &[]).await.status.code(), Some(0));
    let before = state_hash(dir.path());
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
    assert!(rec.all().is_empty(), "nothing sent from a refused file");
    assert_eq!(state_hash(dir.path()), before, "state unchanged");
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
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), None, "");
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
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), None, "");
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
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), Some(""), "  format: s360\n");
    orders(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 1, "2026-10-13 12:00:00"),
            (2, "CLOSED", 2, "2026-10-13 12:01:00"),
        ],
    );
    lines(dir.path(), "lines_1.csv", &[(1, 10, 1), (2, 20, 1)]);
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
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), Some(""), "  format: s360\n");
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
    let rec = Recorder::ok().await;
    pipeline(
        dir.path(),
        &rec.url(),
        Some("    count: operationCount\n    wait: 1h\n"),
        "  format: s360\n",
    );
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
    let status = bin_async(dir.path(), &["status", "sync.yaml", "--json"], &[]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
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
    let rec = Recorder::ok().await;
    pipeline(
        dir.path(),
        &rec.url(),
        Some("    count: operationCount\n    wait: 0s\n"),
        "  format: s360\n",
    );
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
    let rec = Recorder::ok().await;
    pipeline(
        dir.path(),
        &rec.url(),
        Some("    count: operationCount\n"),
        "",
    );
    let yaml = std::fs::read_to_string(dir.path().join("sync.yaml")).unwrap();
    let yaml = yaml.replace(
        "sink:\n",
        "transforms:\n  - { type: drop, columns: [operationCount] }\nsink:\n",
    );
    write(&dir.path().join("sync.yaml"), yaml);
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
    assert!(rec.all().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_batch_larger_than_the_room_is_split_not_stalled() {
    let dir = tempfile::tempdir().unwrap();
    // The CRM is down: the first batch of 50 stays in flight.
    let rec = Recorder::start(Arc::new(|_, _| Answer::status(503))).await;
    pipeline(dir.path(), &rec.url(), None, "");
    let rows: Vec<(i64, &str, i64, String)> = (1..=60)
        .map(|i| (i, "CLOSED", 0, format!("2026-10-13 12:{:02}:00", i % 60)))
        .collect();
    let rows: Vec<(i64, &str, i64, &str)> = rows
        .iter()
        .map(|(a, b, c, d)| (*a, *b, *c, d.as_str()))
        .collect();
    orders(dir.path(), "orders_1.csv", &rows);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let first: HashSet<String> = rec.all()[0].orders().into_iter().map(|o| o.0).collect();
    assert_eq!(first.len(), 50);
    // The operator lowers the limits; the CRM is back.
    pipeline(
        dir.path(),
        &rec.url(),
        None,
        "  batch_size: 10\n  max_per_run: 10\n",
    );
    rec.set(Arc::new(|_, _| Answer::status(200)));
    rec.clear();
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 10, "{}", text(&o));
    let sent: Vec<(String, i64)> = rec.all().iter().flat_map(|r| r.orders()).collect();
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
    for (k, _) in rec.all().iter().flat_map(|r| r.orders()) {
        *counts.entry(k).or_default() += 1;
    }
    assert_eq!(counts.len(), 60, "nothing lost");
    assert!(
        counts.values().all(|&n| n == 1),
        "nothing twice: {counts:?}"
    );
    for r in rec.all() {
        assert!(r.orders().len() <= 10);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_after_import_flag_sends_only_what_changed_after() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), None, "");
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
    let o = bin_async(
        dir.path(),
        &[
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
        ],
        &[],
    )
    .await;
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
    let keys: Vec<String> = rec
        .all()
        .iter()
        .flat_map(|r| r.orders())
        .map(|o| o.0)
        .collect();
    assert_eq!(keys, vec!["1".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_flag_on_a_running_pipeline_does_not_hide_files_not_yet_read() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), None, "");
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
    let mut keys: Vec<String> = rec
        .all()
        .iter()
        .flat_map(|r| r.orders())
        .map(|o| o.0)
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["2".to_string(), "3".to_string()], "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn force_never_runs_beside_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::start(Arc::new(|_, _| Answer {
        status: 200,
        headers: Vec::new(),
        delay: Duration::from_millis(1500),
    }))
    .await;
    pipeline(dir.path(), &rec.url(), None, "");
    let rows: Vec<(i64, &str, i64, String)> = (1..=100)
        .map(|i| (i, "CLOSED", 0, "2026-10-13 12:00:00".to_string()))
        .collect();
    let rows: Vec<(i64, &str, i64, &str)> = rows
        .iter()
        .map(|(a, b, c, d)| (*a, *b, *c, d.as_str()))
        .collect();
    orders(dir.path(), "orders_1.csv", &rows);
    let first = {
        let d = dir.path().to_path_buf();
        tokio::spawn(async move { run(&d, &[]).await })
    };
    let mut waited = 0;
    while rec.all().is_empty() {
        assert!(waited < 200, "first run never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let forced = run(dir.path(), &["--force"]).await;
    assert_eq!(forced.status.code(), Some(4), "{}", text(&forced));
    let first = first.await.unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (k, _) in rec.all().iter().flat_map(|r| r.orders()) {
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
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url(), None, "");
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
    assert!(rec.all().is_empty());
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
