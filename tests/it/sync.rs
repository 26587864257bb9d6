//! Day-to-day sync against a real webhook receiver on 127.0.0.1: caps, ties, lookback, retries, dead letters, crashes, locks.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use crate::support::cli::{Cmd, POLL, WAIT, bin_async, dead_letters, run, status, wait_until};
use crate::support::exports::{borrowed as rows, closed as many, noon_orders, orders as export};
use crate::support::pipeline::{Retry, Sink, Source, SyncPipeline};
use crate::support::receiver::{Act, Receiver, When};
use crate::support::{json as summary, mtime, set_mtime, settle, text};

/// The pipeline of these tests: the orders export to `url`, quick retries,
/// a lookback of an hour.
fn pipeline(url: &str) -> SyncPipeline {
    SyncPipeline::new(
        "test-sync",
        Source::orders().columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")]),
        Sink::to(url)
            .retry(Retry::backoff("10ms", "200ms", Some(5)))
            .deadline("20s"),
    )
    .state_at("state/test.db")
    .lookback("1h")
}

#[tokio::test(flavor = "multi_thread")]
async fn twelve_hundred_changes_go_out_in_runs_of_500_500_200() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    let data = many(1200, 1, |i| {
        format!(
            "2026-10-13 {:02}:{:02}:{:02}",
            i / 3600,
            (i / 60) % 60,
            i % 60
        )
    });
    export(dir.path(), "orders_1.csv", &rows(&data));
    let mut per_run = Vec::new();
    for _ in 0..4 {
        rec.clear();
        let o = run(dir.path(), &[]).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let s = summary(&o);
        per_run.push(s["delivery"]["acknowledged"].as_u64().unwrap());
        for r in rec.log() {
            assert!(r.orders.len() <= 50, "payload of {}", r.orders.len());
        }
    }
    assert_eq!(per_run, vec![500, 500, 200, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cap_inside_a_group_of_equal_timestamps_neither_skips_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 700);
    for _ in 0..3 {
        let o = run(dir.path(), &[]).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let got = rec.delivered();
    let keys: HashSet<&String> = got.iter().map(|(k, _)| k).collect();
    assert_eq!(got.len(), 700, "no order sent twice");
    assert_eq!(keys.len(), 700, "no order skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn late_rows_in_a_new_file_are_sent_whatever_their_age_and_unchanged_reexports_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    // Exports written an hour before the runs: read once, a file is proven
    // unchanged by its listing alone.
    settle(&export(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 100, "2026-10-13 12:00:00"),
            (2, "CLOSED", 200, "2026-10-13 12:30:00"),
        ],
    ));
    let o = run(dir.path(), &[]).await;
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 2);
    // A full re-export with the same content: nothing to send.
    settle(&export(
        dir.path(),
        "orders_2.csv",
        &[
            (1, "CLOSED", 100, "2026-10-13 12:00:00"),
            (2, "CLOSED", 200, "2026-10-13 12:30:00"),
        ],
    ));
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["delivery"]["sent"], 0, "{s}");
    assert_eq!(
        s["detection"]["files_read"], 1,
        "only the new file is read: {s}"
    );
    // A late file: rows 20 minutes and 2 hours before the cursor. The file
    // is new, so both are sent; age alone never drops a row of a new file.
    settle(&export(
        dir.path(),
        "orders_3.csv",
        &[
            (3, "CLOSED", 300, "2026-10-13 12:10:00"),
            (4, "CLOSED", 400, "2026-10-13 10:29:00"),
        ],
    ));
    rec.clear();
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["detection"]["too_old"], 0, "{s}");
    let mut got = rec.delivered();
    got.sort();
    assert_eq!(got, vec![("3".to_string(), 1), ("4".to_string(), 1)]);
    // A file read before and rewritten in place (a full export kept under
    // one name) is read from cursor - lookback on: its old rows are skipped
    // as too old, counted, and its recent ones are offered.
    settle(&export(
        dir.path(),
        "orders_1.csv",
        &[
            (1, "CLOSED", 100, "2026-10-13 12:00:00"),
            (2, "CLOSED", 200, "2026-10-13 12:30:00"),
            (5, "CLOSED", 500, "2026-10-13 09:00:00"),
            (6, "CLOSED", 600, "2026-10-13 12:20:00"),
        ],
    ));
    rec.clear();
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["detection"]["too_old"], 1, "{s}");
    assert_eq!(rec.delivered(), vec![("6".to_string(), 1)]);
    // A changed order gets version 2.
    settle(&export(
        dir.path(),
        "orders_4.csv",
        &[(1, "CANCELLED", 100, "2026-10-13 13:00:00")],
    ));
    rec.clear();
    run(dir.path(), &[]).await;
    assert_eq!(rec.delivered(), vec![("1".to_string(), 2)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_same_size_rewrite_that_keeps_the_mtime_is_still_read() {
    // What a whole-second clock (SFTP, a network share) shows of a file
    // rewritten in place within the second after it was read: the same
    // size, the same mtime, the same inode. The listing cannot tell, so a
    // file read that soon after its mtime is read again on the next run.
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    let file = export(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 100, "2026-10-13 12:00:00")],
    );
    let written = mtime(&file);
    let o = run(dir.path(), &[]).await;
    assert_eq!(summary(&o)["delivery"]["acknowledged"], 1, "{}", text(&o));
    let before = std::fs::read(&file).unwrap();
    export(
        dir.path(),
        "orders_1.csv",
        &[(1, "ISSUED", 100, "2026-10-13 12:05:00")],
    );
    assert_eq!(std::fs::read(&file).unwrap().len(), before.len());
    assert_ne!(std::fs::read(&file).unwrap(), before);
    set_mtime(&file, written);
    rec.clear();
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["detection"]["files_read"], 1, "{s}");
    assert_eq!(rec.delivered(), vec![("1".to_string(), 2)], "{s}");

    // Read long after its mtime, a file is proven unchanged by its listing:
    // not read again, even once more.
    settle(&file);
    let o = run(dir.path(), &[]).await;
    assert_eq!(summary(&o)["detection"]["files_read"], 1);
    rec.clear();
    let o = run(dir.path(), &[]).await;
    let s = summary(&o);
    assert_eq!(s["detection"]["files_read"], 0, "{s}");
    assert!(rec.delivered().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_with_the_same_webhook_id() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Nth(0), Act::RetryAfterSecs(1))
        .rule(When::Nth(1), Act::Status(503))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 10);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = summary(&o);
    assert_eq!(s["delivery"]["acknowledged"], 10);
    assert_eq!(s["delivery"]["retried"], 2);
    let reqs = rec.log();
    assert_eq!(reqs.len(), 3);
    let id = reqs[0].header("webhook-id");
    assert!(id.starts_with("msg_"), "{id}");
    assert!(reqs.iter().all(|r| r.header("webhook-id") == id));
    assert!(
        reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(900),
        "Retry-After honoured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_order_is_isolated_and_dead_lettered_then_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(
            When::BodyContains("\"orderId\":13,".into()),
            Act::Status(422),
        )
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 20);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let s = summary(&o);
    assert_eq!(s["delivery"]["acknowledged"], 19, "{s}");
    assert_eq!(s["delivery"]["dead_lettered"], 1, "{s}");
    let keys: HashSet<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 19);
    assert!(!keys.contains("13"));
    let list = dead_letters(dir.path(), "sync.yaml").await;
    assert_eq!(list[0]["key"], "13");
    assert_eq!(list[0]["status"], 422);
    // Once the CRM accepts it, a replay delivers it with a new version.
    rec.heal();
    rec.clear();
    let o = bin_async(
        dir.path(),
        &["dead-letters", "replay", "sync.yaml", "--json"],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let queued: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(queued["queued"], 1, "{}", text(&o));
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(rec.delivered(), vec![("13".to_string(), 2)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_stops_the_run_and_loses_nothing_even_if_the_file_goes() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Always, Act::Status(401))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    let file = noon_orders(dir.path(), 120);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(rec.log().len(), 1, "stops at the first refusal");
    let s = summary(&o);
    assert_eq!(s["backlog"], 120, "{s}");
    // The export disappears; the queued orders are still delivered.
    std::fs::remove_file(file).unwrap();
    rec.heal();
    rec.clear();
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let keys: HashSet<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(
            When::Always,
            Act::Redirect("http://127.0.0.1:9/elsewhere".into()),
        )
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 3);
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_verify_with_an_independent_implementation() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let rec = Receiver::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline(&rec.url());
    p.sink = p.sink.signing("TEST_WEBHOOK_SECRET").format("s360");
    p.write(dir.path());
    noon_orders(dir.path(), 60);
    let o = bin_async(
        dir.path(),
        &["run", "sync.yaml"],
        &[("TEST_WEBHOOK_SECRET", secret)],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = rec.log();
    assert_eq!(reqs.len(), 2);
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    for r in &reqs {
        let mut h = axum::http::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            h.insert(name, r.header(name).parse().unwrap());
        }
        wh.verify(&r.body, &h).expect("signature verifies");
        assert!(r.json().as_array().unwrap()[0]["orderDetailsData"]["orderId"].is_i64());
        assert!(!String::from_utf8_lossy(&o.stderr).contains(secret));
    }
    let wrong = standardwebhooks::Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let mut h = axum::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        h.insert(name, reqs[0].header(name).parse().unwrap());
    }
    assert!(wrong.verify(&reqs[0].body, &h).is_err());
    // Without the secret in the environment, the run refuses to start.
    let o = bin_async(dir.path(), &["run", "sync.yaml"], &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TEST_WEBHOOK_SECRET"));
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_run_resends_only_the_batch_in_flight_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    // Slow receiver: each request takes 1.5 s, so the kill lands mid-request.
    let rec = Receiver::builder()
        .latency(Duration::from_millis(1500))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 200);
    let mut child = Cmd::new(dir.path())
        .args(&["run", "sync.yaml"])
        .spawn(Stdio::null(), Stdio::null());
    // Wait (bounded) until the second request has arrived, then SIGKILL.
    wait_until("the second request", POLL, WAIT, || rec.len() >= 2).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = rec.log();
    let in_flight_id = killed[1].header("webhook-id");
    let in_flight: Vec<(String, i64)> = killed[1].orders.clone();
    rec.heal();
    rec.clear();
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = rec.log();
    assert_eq!(
        after[0].header("webhook-id"),
        in_flight_id,
        "in-flight batch resent first, same id"
    );
    assert_eq!(after[0].orders, in_flight);
    let mut all: Vec<(String, i64)> = killed[..1].iter().flat_map(|r| r.orders.clone()).collect();
    all.extend(after.iter().flat_map(|r| r.orders.clone()));
    let keys: HashSet<&String> = all.iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 200, "nothing lost");
    assert_eq!(all.len(), 200, "only the in-flight batch was sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_while_one_holds_the_lock_exits_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .latency(Duration::from_millis(1500))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 100);
    let first = {
        let d = dir.path().to_path_buf();
        tokio::spawn(async move { run(&d, &[]).await })
    };
    wait_until("the first run's first request", POLL, WAIT, || {
        !rec.is_empty()
    })
    .await;
    let second = run(dir.path(), &[]).await;
    assert_eq!(second.status.code(), Some(4), "{}", text(&second));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another run"));
    let first = first.await.unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_sends_nothing_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 120);
    let o = run(dir.path(), &["--dry-run"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = summary(&o);
    assert_eq!(s["dry_run"]["orders"], 120, "{s}");
    assert_eq!(s["dry_run"]["requests"], 3, "{s}");
    assert_eq!(s["dry_run"]["first_keys"][0], "1", "{s}");
    assert!(rec.log().is_empty());
    let o = run(dir.path(), &[]).await;
    assert_eq!(
        summary(&o)["delivery"]["acknowledged"],
        120,
        "the dry run left everything to do"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_clearly_and_leaves_state_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    export(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 1, "2026-10-13 12:00:00")],
    );
    run(dir.path(), &[]).await;
    let mut before = status(dir.path(), "sync.yaml").await;
    // One good new file and one with a bad timestamp in row 2.
    export(
        dir.path(),
        "orders_2.csv",
        &[(2, "CLOSED", 1, "2026-10-13 13:00:00")],
    );
    export(
        dir.path(),
        "orders_3.csv",
        &[
            (3, "CLOSED", 1, "2026-10-13 13:00:00"),
            (4, "CLOSED", 1, "yesterday"),
        ],
    );
    rec.clear();
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("orders_3.csv") && err.contains("yesterday"),
        "{err}"
    );
    assert!(rec.log().is_empty());
    let mut after = status(dir.path(), "sync.yaml").await;
    // Run history differs by design (a failed run is not recorded); the rest must not.
    before.as_object_mut().unwrap().remove("last_runs");
    after.as_object_mut().unwrap().remove("last_runs");
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_fails_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = pipeline(&rec.url());
    p.sink = p.sink.signing("TEST_ABSENT_SECRET");
    p.write(dir.path());
    export(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 1, "2026-10-13 12:00:00")],
    );
    let o = bin_async(dir.path(), &["run", "sync.yaml"], &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TEST_ABSENT_SECRET"));
    assert!(!dir.path().join("state").exists(), "no state, no lock file");
    assert!(rec.log().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undeclared_cursor_is_read_as_a_time_in_the_source_zone() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = pipeline(&rec.url());
    p.source.columns.clear();
    p.source = p.source.timezone("+01:00");
    p.write(dir.path());
    export(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 1, "2026-10-13 12:00:00")],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["cursor"][0], "2026-10-13T11:00:00.000Z", "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_files_cleaned_up_after_reading_leave_the_next_run_with_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    let file = export(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 100, "2026-10-13 12:00:00")],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::remove_file(&file).unwrap();
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary(&o)["detection"]["files_read"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_location_changed_to_one_that_matches_nothing_stops_the_run() {
    // A typo or a moved folder in a pipeline that has synced: a glob that
    // matches none of the files read before is not files cleaned up.
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = pipeline(&rec.url());
    p.write(dir.path());
    export(
        dir.path(),
        "orders_1.csv",
        &[(1, "CLOSED", 100, "2026-10-13 12:00:00")],
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let db = dir.path().join("state/test.db");
    let before = crate::support::state::db_hash(&db);
    for typo in ["exports/order_*.csv", "export/orders_*.csv"] {
        p.source.location = typo.into();
        p.write(dir.path());
        let o = run(dir.path(), &[]).await;
        assert_eq!(o.status.code(), Some(1), "{typo}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no file matches"), "{typo}: {err}");
        assert!(err.contains(&typo[..typo.len() - 6]), "{typo}: {err}");
        assert_eq!(crate::support::state::db_hash(&db), before, "{typo}");
    }
}
