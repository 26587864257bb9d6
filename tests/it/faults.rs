//! Fault injection: the real binary's `run` and `import run` against a receiver that fails on purpose, one fault per test.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::support::cli::{bin_async, dead_letters, import_flag, run_json, status};
use crate::support::exports::Table;
use crate::support::pipeline::{Lines, Retry, Sink, Source, SyncPipeline};
use crate::support::receiver::{
    Act, Entry, Outcome, Receiver, When, acknowledged_counts, batches_by_id,
};
use crate::support::{generate, text, write};

/// Lateness allowed when checking that a client waited long enough: the
/// receiver stamps a request once its body is in, a few ms after the client
/// started it.
const SLACK: Duration = Duration::from_millis(50);

/// `n` orders `1..=n` in `exports/orders_1.csv`, each with a `note` of
/// `pad` characters (to make bodies large).
fn export(dir: &Path, n: usize, pad: usize) {
    let mut t = Table::new(&[
        "orderId",
        "orderState",
        "saleAmount",
        "note",
        "creationDateTime",
        "lastModDateTime",
    ]);
    let note = "x".repeat(pad);
    for i in 1..=n {
        let at = format!("2026-10-13 12:{:02}:{:02}", i / 60 % 60, i % 60);
        t.push(&[&i, &"CLOSED", &(i * 10), &note, &at, &at]);
    }
    t.write(dir, "orders_1.csv");
}

/// A sync pipeline to `url`: a 5 s timeout, small retry delays, a 60 s deadline.
fn pipeline(url: &str) -> SyncPipeline {
    SyncPipeline::new(
        "fault-test",
        Source::generated(),
        Sink::to(url)
            .deadline("60s")
            .timeout("5s")
            .retry(Retry::backoff("10ms", "100ms", Some(10))),
    )
    .state_at("state/faults.db")
}

/// [`pipeline`] with this `retry:`.
fn with_retry(url: &str, retry: Retry) -> SyncPipeline {
    let mut p = pipeline(url);
    p.sink.retry = Some(retry);
    p
}

async fn run(dir: &Path) -> (std::process::Output, serde_json::Value) {
    run_json(dir, "sync.yaml", &[]).await
}

/// Acknowledged keys, checking that none was acknowledged twice (no crash,
/// so a request that was answered 2xx is never sent again).
fn acked_once(log: &[Entry]) -> HashSet<String> {
    let counts = acknowledged_counts(log);
    for (order, n) in &counts {
        assert_eq!(*n, 1, "{order:?} acknowledged {n} times");
    }
    counts.into_keys().map(|(k, _)| k).collect()
}

/// For each request that was not acknowledged, the next request with its
/// webhook-id (the retry), which must exist and carry the same orders.
fn retries_of<'a>(log: &'a [Entry], failed: &[&'a Entry]) -> Vec<(&'a Entry, &'a Entry)> {
    failed
        .iter()
        .map(|f| {
            let retry = log
                .iter()
                .find(|e| e.seq > f.seq && e.webhook_id() == f.webhook_id())
                .unwrap_or_else(|| panic!("request {} ({}) never retried", f.seq, f.webhook_id()));
            if f.outcome != Outcome::Reset {
                assert_eq!(
                    retry.orders, f.orders,
                    "retry of {} carries the same orders",
                    f.seq
                );
            }
            (*f, retry)
        })
        .collect()
}

fn assert_all_delivered(summary: &serde_json::Value, n: u64) {
    assert_eq!(summary["delivery"]["acknowledged"], n, "{summary}");
    assert_eq!(summary["delivery"]["dead_lettered"], 0, "{summary}");
    assert_eq!(summary["backlog"], 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_5xx_are_retried_until_every_order_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "1000"]);
    // About a third of all requests fail, with a mix of 5xx statuses.
    let rec = Receiver::builder()
        .seed(5)
        .rule(When::Chance(0.12), Act::Status(500))
        .rule(When::Chance(0.12), Act::Status(502))
        .rule(When::Chance(0.12), Act::Status(503))
        .rule(When::Chance(0.05), Act::Status(504))
        .start()
        .await;
    let mut p = pipeline(&rec.url());
    p.source = p.source.lines(Lines::csv("exports/order_lines_*.csv"));
    p.sink = p.sink.concurrency(4);
    p.write(dir.path());
    import_flag(dir.path(), "sync.yaml", "2026-09-01", "2026-11-01", &[]).await;
    let o = bin_async(dir.path(), &["import", "run", "sync.yaml", "--json"], &[]).await;
    // Every order acknowledged in the end: exit::OK.
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_all_delivered(&summary, 1000);
    let log = rec.log();
    let failed: Vec<&Entry> = log.iter().filter(|e| !e.acknowledged()).collect();
    assert!(failed.len() >= 5, "faults injected: {}", failed.len());
    assert!(
        failed
            .iter()
            .all(|e| matches!(e.outcome, Outcome::Answered(s) if (500..=504).contains(&s)))
    );
    assert_eq!(
        summary["delivery"]["retried"],
        failed.len() as u64,
        "{summary}"
    );
    assert_eq!(
        summary["delivery"]["requests"],
        log.len() as u64,
        "{summary}"
    );
    retries_of(&log, &failed);
    batches_by_id(&log).unwrap();
    assert_eq!(acked_once(&log).len(), 1000);
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_5xx_leave_the_orders_queued_and_the_run_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Always, Act::Status(503))
        .start()
        .await;
    with_retry(&rec.url(), Retry::backoff("10ms", "50ms", Some(3))).write(dir.path());
    export(dir.path(), 120, 0);
    let (o, summary) = run(dir.path()).await;
    // Work left queued: exit::INCOMPLETE, nothing dead-lettered.
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert_eq!(rec.len(), 3, "max_attempts requests, then the run stops");
    assert_eq!(summary["delivery"]["dead_lettered"], 0, "{summary}");
    assert_eq!(summary["backlog"], 120, "{summary}");
    assert!(summary["delivery"]["stopped"].is_string(), "{summary}");
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    // Once the CRM is back, the next run delivers everything.
    let ok = Receiver::builder().start().await;
    with_retry(&ok.url(), Retry::backoff("10ms", "50ms", Some(3))).write(dir.path());
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    assert_eq!(acked_once(&ok.log()).len(), 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hang_past_the_timeout_is_retried_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_millis(300);
    let rec = Receiver::builder()
        .rule(When::Nth(0), Act::Hang(Duration::from_secs(3)))
        .rule(When::Nth(2), Act::Hang(Duration::from_secs(3)))
        .start()
        .await;
    let mut p = pipeline(&rec.url());
    p.sink.timeout = Some("300ms".into());
    p.write(dir.path());
    export(dir.path(), 120, 0);
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    assert_eq!(summary["delivery"]["retried"], 2, "{summary}");
    let log = rec.log();
    let hung: Vec<&Entry> = log.iter().filter(|e| e.outcome == Outcome::Hung).collect();
    assert_eq!(hung.len(), 2);
    for (h, retry) in retries_of(&log, &hung) {
        assert!(retry.acknowledged());
        assert!(
            retry.at.duration_since(h.at) + SLACK >= timeout,
            "retried {:?} after a hang, before the 300ms timeout",
            retry.at.duration_since(h.at)
        );
    }
    assert_eq!(acked_once(&log).len(), 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_reset_mid_body_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    // Two resets in a row for the first batch, one for the second.
    let rec = Receiver::builder()
        .rule(When::Nth(0), Act::Reset)
        .rule(When::Nth(1), Act::Reset)
        .rule(When::Nth(3), Act::Reset)
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    // Bodies of about 25 KB, more than one read of the receiver.
    export(dir.path(), 120, 400);
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    assert_eq!(summary["delivery"]["retried"], 3, "{summary}");
    let log = rec.log();
    let reset: Vec<&Entry> = log.iter().filter(|e| e.outcome == Outcome::Reset).collect();
    assert_eq!(reset.len(), 3);
    assert!(reset.iter().all(|e| e.content_length.unwrap_or(0) > 20_000));
    let pairs = retries_of(&log, &reset);
    assert_eq!(
        pairs[0].1.seq, pairs[1].0.seq,
        "the first batch reset twice"
    );
    assert!(pairs[1].1.acknowledged() && pairs[2].1.acknowledged());
    assert_eq!(acked_once(&log).len(), 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_with_a_garbage_body_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Always, Act::Garbage)
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    export(dir.path(), 120, 0);
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    assert_eq!(summary["delivery"]["retried"], 0, "{summary}");
    assert_eq!(rec.len(), 3);
    assert_eq!(acked_once(&rec.log()).len(), 120);
    // Acknowledged means done: the next run sends nothing.
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary["delivery"]["sent"], 0, "{summary}");
    assert_eq!(rec.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_413_for_large_bodies_splits_the_batch_and_delivers_all() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 6_000;
    let rec = Receiver::builder()
        .rule(When::BodyOver(limit), Act::Status(413))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    // About 400 bytes an order: 50 orders make 20 KB, one fits easily.
    export(dir.path(), 120, 300);
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    let log = rec.log();
    let refused = log
        .iter()
        .filter(|e| e.outcome == Outcome::Answered(413))
        .count();
    assert!(refused >= 3, "every full batch was too large: {refused}");
    for e in log.iter().filter(|e| e.acknowledged()) {
        assert!(e.body.len() <= limit, "{} bytes acknowledged", e.body.len());
    }
    batches_by_id(&log).unwrap();
    let keys = acked_once(&log);
    assert_eq!(keys.len(), 120);
    // Split halves keep the orders' order: acknowledged keys come in export order.
    let order: Vec<i64> = log
        .iter()
        .filter(|e| e.acknowledged())
        .flat_map(|e| e.orders.iter().map(|(k, _)| k.parse::<i64>().unwrap()))
        .collect();
    assert!(order.is_sorted(), "{order:?}");
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_413_for_one_order_too_large_alone_dead_letters_only_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 6_000;
    let rec = Receiver::builder()
        .rule(When::BodyOver(limit), Act::Status(413))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    export(dir.path(), 120, 0);
    // Order 7 alone is larger than the CRM takes.
    let file = dir.path().join("exports/orders_1.csv");
    let csv = std::fs::read_to_string(&file).unwrap();
    let csv = csv.replacen(
        ";CLOSED;70;;",
        &format!(";CLOSED;70;{};", "y".repeat(8_000)),
        1,
    );
    write(&file, csv);
    let (o, summary) = run(dir.path()).await;
    // A dead letter is work that needs attention: exit::INCOMPLETE.
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert_eq!(summary["delivery"]["acknowledged"], 119, "{summary}");
    assert_eq!(summary["delivery"]["dead_lettered"], 1, "{summary}");
    assert_eq!(summary["backlog"], 0, "{summary}");
    let keys = acked_once(&rec.log());
    assert_eq!(keys.len(), 119);
    assert!(!keys.contains("7"));
    let list = dead_letters(dir.path(), "sync.yaml").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["key"], "7", "{list}");
    assert_eq!(list[0]["status"], 413, "{list}");
}

/// The 429'd requests and the retry of each, checked against the wait the receiver asked for.
fn check_retry_after(log: &[Entry]) -> Vec<Duration> {
    let limited: Vec<&Entry> = log
        .iter()
        .filter(|e| e.outcome == Outcome::Answered(429))
        .collect();
    assert!(!limited.is_empty());
    retries_of(log, &limited)
        .into_iter()
        .map(|(l, retry)| {
            let not_before = l.not_before.expect("429 asked for a wait");
            assert!(
                retry.at + SLACK >= not_before,
                "retried {:?} after the 429, {:?} before the Retry-After",
                retry.at.duration_since(l.at),
                not_before.duration_since(retry.at)
            );
            not_before.duration_since(l.at)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_in_seconds_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Nth(0), Act::RetryAfterSecs(1))
        .rule(When::Nth(2), Act::RetryAfterSecs(2))
        .start()
        .await;
    // Backoff alone would wait at most 10 ms before the first retry.
    with_retry(&rec.url(), Retry::backoff("10ms", "5s", Some(10))).write(dir.path());
    export(dir.path(), 120, 0);
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    assert_eq!(summary["delivery"]["retried"], 2, "{summary}");
    let waits = check_retry_after(&rec.log());
    assert_eq!(waits, vec![Duration::from_secs(1), Duration::from_secs(2)]);
    assert_eq!(acked_once(&rec.log()).len(), 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_as_an_http_date_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Nth(0), Act::RetryAfterDate(Duration::from_secs(1)))
        .rule(When::Nth(1), Act::RetryAfterDate(Duration::from_secs(1)))
        .start()
        .await;
    with_retry(&rec.url(), Retry::backoff("10ms", "5s", Some(10))).write(dir.path());
    export(dir.path(), 120, 0);
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 120);
    assert_eq!(summary["delivery"]["retried"], 2, "{summary}");
    let log = rec.log();
    // Two 429s in a row for the first batch, each waited out.
    let waits = check_retry_after(&log);
    assert!(
        waits.iter().all(|w| *w >= Duration::from_secs(1)),
        "{waits:?}"
    );
    assert_eq!(log[1].webhook_id(), log[0].webhook_id());
    assert_eq!(acked_once(&log).len(), 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_400_receiver_stops_the_run_as_a_configuration_problem() {
    let dir = tempfile::tempdir().unwrap();
    // A CRM that refuses every body, as when `format:` is wrong.
    let rec = Receiver::builder()
        .rule(When::Always, Act::Status(400))
        .start()
        .await;
    pipeline(&rec.url()).write(dir.path());
    export(dir.path(), 300, 0);
    let (o, summary) = run(dir.path()).await;
    // exit::DELIVERY_STOPPED: a configuration problem, everything still queued.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(summary["delivery"]["dead_lettered"], 0, "{summary}");
    assert_eq!(summary["backlog"], 300, "{summary}");
    assert!(summary["delivery"]["stopped"].is_string(), "{summary}");
    assert!(
        rec.len() < 300,
        "stopped before trying every order alone: {} requests",
        rec.len()
    );
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    assert_eq!(s["backlog"], 300, "{s}");
    // With the CRM fixed, the next runs deliver every order.
    let ok = Receiver::builder().start().await;
    pipeline(&ok.url()).write(dir.path());
    let (o, summary) = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_all_delivered(&summary, 300);
    let keys: HashMap<String, i64> = ok.log().iter().flat_map(|e| e.orders.clone()).collect();
    assert_eq!(keys.len(), 300);
}
