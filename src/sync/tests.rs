//! The end of a run on a real SQLite state: progress or a loud stop, the exit code and the recorded outcome, and delivery through the `Sink` contract with a recording in-crate sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::RunOutcome;
use super::drain::{DrainOptions, DrainStats, drain};
use super::{RunSummary, finish};
use crate::pipeline::{HumanDuration, RunPolicy};
use crate::sinks::{BatchOutcome, DeadLetter, OutgoingOrder, Sink, StopReason, batch_id};
use crate::state::{Change, Reason, StateStore};

/// What the recording sink answers.
#[derive(Clone)]
enum Answer {
    /// Every order acknowledged, except these keys, refused as bad records.
    AckExcept(Vec<&'static str>),
    /// The configuration is refused: every order pending, stop `Refused`.
    Refuse,
}

/// One batch a sink was given: each order's key and version, and the batch id.
type Call = (Vec<(String, i64)>, String);

/// A real [`Sink`] that keeps the contract and records every call: the
/// keys, versions and batch id of each batch it was given.
struct RecordingSink {
    answer: Answer,
    calls: Mutex<Vec<Call>>,
}

impl RecordingSink {
    fn new(answer: Answer) -> Arc<Self> {
        Arc::new(Self {
            answer,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn batch_sizes(&self) -> Vec<usize> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(orders, _)| orders.len()).collect()
    }
}

impl Sink for RecordingSink {
    async fn deliver(
        &self,
        orders: &[OutgoingOrder],
        _deadline: tokio::time::Instant,
    ) -> BatchOutcome {
        self.calls.lock().unwrap().push((
            orders.iter().map(|o| (o.key.clone(), o.version)).collect(),
            batch_id(orders),
        ));
        let mut out = BatchOutcome {
            requests: 1,
            ..Default::default()
        };
        match &self.answer {
            Answer::AckExcept(refused) => {
                for o in orders {
                    if refused.contains(&o.key.as_str()) {
                        out.dead.push(DeadLetter {
                            seq: o.seq,
                            status: Some(422),
                            reason: "422 Unprocessable Entity".into(),
                        });
                    } else {
                        out.acked.push(o.seq);
                    }
                }
            }
            Answer::Refuse => {
                out.pending = orders.iter().map(|o| o.seq).collect();
                out.stop = Some(StopReason::Refused {
                    status: 401,
                    message: "401 Unauthorized".into(),
                });
            }
        }
        out
    }
}

fn store(dir: &tempfile::TempDir) -> StateStore {
    StateStore::open(&dir.path().join("state/p.db"), "p").unwrap()
}

/// Queue orders `1..=n`; `hold_until_ms` holds them (waiting for lines).
fn queue(s: &mut StateStore, n: usize, hold_until_ms: Option<i64>) {
    let staging = s.stage().unwrap();
    for k in 1..=n {
        let record = format!("{{\"orderId\":{k}}}");
        let change = Change {
            key: k.to_string(),
            modified_ms: Some(k as i64),
            fingerprint: record.clone(),
            record,
            hold_until_ms,
        };
        staging.offer(&change, Reason::Change, false).unwrap();
    }
    staging.commit().unwrap();
}

async fn finish_run(store: Arc<Mutex<StateStore>>, delivery: DrainStats) -> RunSummary {
    finish(
        store,
        "run",
        chrono::Utc::now().timestamp_millis(),
        "2026-12-01T00:00:00Z",
        std::time::Instant::now(),
        "p".into(),
        Default::default(),
        delivery,
        None,
    )
    .await
    .unwrap()
}

fn last_outcome(store: &Arc<Mutex<StateStore>>) -> String {
    let s = store.lock().unwrap();
    let status = s.status(1).unwrap();
    status.last_runs[0].outcome.clone()
}

fn policy(batch_size: u32, max_per_run: u32) -> RunPolicy {
    RunPolicy {
        batch_size,
        max_per_run,
        deadline: HumanDuration::secs(60),
        ..RunPolicy::default()
    }
}

fn no_cancel() -> tokio::sync::watch::Receiver<bool> {
    tokio::sync::watch::channel(false).1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_sent_nothing_while_orders_were_sendable_says_no_progress_and_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    queue(&mut s, 2, None);
    let store = Arc::new(Mutex::new(s));
    let summary = finish_run(store.clone(), DrainStats::default()).await;
    assert_eq!(
        summary.delivery.stopped.as_deref(),
        Some("no progress: 2 order(s) could be sent but none was")
    );
    assert_eq!(summary.backlog, 2);
    assert_eq!(summary.outcome(), RunOutcome::Incomplete);
    assert_eq!(last_outcome(&store), "incomplete");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_outbox_finishes_ok_and_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(store(&dir)));
    let summary = finish_run(store.clone(), DrainStats::default()).await;
    assert_eq!(summary.delivery.stopped, None);
    assert_eq!(summary.backlog, 0);
    assert_eq!(summary.outcome(), RunOutcome::Ok);
    assert_eq!(last_outcome(&store), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_held_for_their_lines_are_backlog_but_not_a_lack_of_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    queue(&mut s, 3, Some(later));
    let store = Arc::new(Mutex::new(s));
    let summary = finish_run(store.clone(), DrainStats::default()).await;
    assert_eq!(summary.delivery.stopped, None);
    assert_eq!(summary.backlog, 3);
    assert_eq!(summary.outcome(), RunOutcome::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_run_sends_at_most_max_per_run_in_batches_of_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    queue(&mut s, 7, None);
    let store = Arc::new(Mutex::new(s));
    let sink = RecordingSink::new(Answer::AckExcept(vec![]));
    let stats = drain(
        store.clone(),
        sink.clone(),
        DrainOptions::scheduled(&policy(2, 5)),
        no_cancel(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(sink.batch_sizes(), vec![2, 2, 1]);
    assert_eq!((stats.sent, stats.acknowledged), (5, 5));
    let summary = finish_run(store, stats).await;
    // The two left are for the next run, which is progress, not a stop.
    assert_eq!(summary.backlog, 2);
    assert_eq!(summary.delivery.stopped, None);
    assert_eq!(summary.outcome(), RunOutcome::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn acked_orders_leave_the_outbox_and_refused_ones_become_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    queue(&mut s, 4, None);
    let store = Arc::new(Mutex::new(s));
    let sink = RecordingSink::new(Answer::AckExcept(vec!["3"]));
    let stats = drain(
        store.clone(),
        sink.clone(),
        DrainOptions::scheduled(&policy(50, 500)),
        no_cancel(),
        None,
    )
    .await
    .unwrap();
    assert_eq!((stats.acknowledged, stats.dead_lettered), (3, 1));
    let dead = store.lock().unwrap().dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, "3");
    let summary = finish_run(store, stats).await;
    assert_eq!(summary.backlog, 0);
    assert_eq!(summary.outcome(), RunOutcome::Incomplete);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_configuration_stops_the_run_keeps_every_order_and_exits_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    queue(&mut s, 5, None);
    let store = Arc::new(Mutex::new(s));
    let sink = RecordingSink::new(Answer::Refuse);
    let stats = drain(
        store.clone(),
        sink.clone(),
        DrainOptions::scheduled(&policy(2, 500)),
        no_cancel(),
        None,
    )
    .await
    .unwrap();
    // The first refusal stops the run: no second batch is tried.
    assert_eq!(sink.batch_sizes(), vec![2]);
    assert!(stats.refused);
    assert_eq!(stats.dead_lettered, 0);
    let summary = finish_run(store.clone(), stats).await;
    assert_eq!(summary.backlog, 5);
    assert_eq!(summary.outcome(), RunOutcome::Refused);
    assert_eq!(last_outcome(&store), "refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_left_in_flight_is_sent_again_under_the_same_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    queue(&mut s, 3, None);
    let store = Arc::new(Mutex::new(s));
    // A run whose CRM refuses the configuration leaves the batch in flight.
    let refusing = RecordingSink::new(Answer::Refuse);
    drain(
        store.clone(),
        refusing.clone(),
        DrainOptions::scheduled(&policy(3, 500)),
        no_cancel(),
        None,
    )
    .await
    .unwrap();
    let acking = RecordingSink::new(Answer::AckExcept(vec![]));
    drain(
        store.clone(),
        acking.clone(),
        DrainOptions::scheduled(&policy(3, 500)),
        no_cancel(),
        None,
    )
    .await
    .unwrap();
    let first = refusing.calls.lock().unwrap()[0].clone();
    let again = acking.calls.lock().unwrap()[0].clone();
    assert_eq!(first, again, "same orders, versions and batch id");
    assert_eq!(store.lock().unwrap().backlog().unwrap(), 0);
}

#[test]
fn the_run_policy_decides_the_drain_of_a_scheduled_run_and_of_an_import() {
    let p = RunPolicy {
        batch_size: 7,
        max_per_run: 30,
        deadline: HumanDuration::secs(60),
        concurrency: 3,
        rate_limit: None,
    };
    let before = tokio::time::Instant::now();
    let run = DrainOptions::scheduled(&p);
    assert_eq!((run.cap, run.batch_size, run.concurrency), (Some(30), 7, 1));
    assert!(run.deadline <= before + Duration::from_secs(61));
    assert!(run.deadline >= before + Duration::from_secs(59));
    let import = DrainOptions::import(&p, None);
    assert_eq!(
        (import.cap, import.batch_size, import.concurrency),
        (None, 7, 3)
    );
    assert!(import.deadline > before + Duration::from_secs(86_400));
    assert_eq!(DrainOptions::import(&p, Some(9)).concurrency, 9);
}
