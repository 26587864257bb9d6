//! Draining the outbox: batches of at most `batch_size`, N in flight, outcomes committed per batch.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::time::Instant;

use super::{SyncError, deadline_after};
use crate::pipeline::RunPolicy;
use crate::sinks::{OutgoingOrder, Sink, StopReason, batch_id};
use crate::state::{OutboxEntry, StateStore};

/// How a drain runs.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Orders sent at most (the per-run cap); `None` for an import run.
    pub cap: Option<u64>,
    /// Orders per request.
    pub batch_size: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// No new attempt starts after this instant.
    pub deadline: Instant,
    /// The clock that decides which held orders are due, UTC ms; `None`
    /// reads the system clock (a pipeline test pins it).
    pub now_ms: Option<i64>,
}

impl DrainOptions {
    /// The drain's clock, UTC ms: the pinned one, else the system's.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
    }

    /// A scheduled run under `policy`: at most `max_per_run` orders, one
    /// request in flight, until `deadline` from now.
    pub fn scheduled(policy: &RunPolicy) -> Self {
        Self {
            cap: Some(u64::from(policy.max_per_run)),
            batch_size: policy.batch_size as usize,
            concurrency: 1,
            deadline: deadline_after(policy.deadline.get()),
            now_ms: None,
        }
    }

    /// An `import run` under `policy`: no cap, `concurrency` requests in
    /// flight (the policy's unless given), bounded by its retries rather
    /// than by the scheduled deadline.
    pub fn import(policy: &RunPolicy, concurrency: Option<usize>) -> Self {
        Self {
            cap: None,
            batch_size: policy.batch_size as usize,
            concurrency: concurrency.unwrap_or(policy.concurrency as usize),
            deadline: deadline_after(std::time::Duration::from_secs(365 * 86_400)),
            now_ms: None,
        }
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainStats {
    /// Orders put in requests (each order counted once per batch).
    pub sent: u64,
    /// Orders acknowledged.
    pub acknowledged: u64,
    /// Orders dead-lettered.
    pub dead_lettered: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Retries after transient failures.
    pub retried: u64,
    /// Orders sent after their wait for missing lines ran out.
    pub sent_without_all_lines: u64,
    /// Why delivery stopped early, if it did.
    pub stopped: Option<String>,
    /// The CRM refused the configuration (exit code 3).
    #[serde(skip)]
    pub refused: bool,
}

/// Progress callback: (orders done, total at start).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

struct Shared {
    stats: DrainStats,
    reserved: u64,
    busy_keys: HashSet<String>,
    busy_batches: HashSet<String>,
    stop: bool,
}

fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<StateStore>>,
    f: impl FnOnce(&mut StateStore) -> Result<T, crate::state::StateError> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, SyncError>> {
    let store = store.clone();
    async move {
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().map_err(|_| SyncError::Poisoned)?;
            f(&mut guard).map_err(SyncError::from)
        })
        .await
        .map_err(|e| SyncError::Join(e.to_string()))?
    }
}

/// Send queued orders until the outbox is empty, the cap is reached, the
/// deadline passes, `cancel` turns true, or the CRM refuses.
pub async fn drain<S: Sink>(
    store: Arc<Mutex<StateStore>>,
    sink: Arc<S>,
    options: DrainOptions,
    cancel: tokio::sync::watch::Receiver<bool>,
    progress: Option<Progress>,
) -> Result<DrainStats, SyncError> {
    let total = blocking(&store, |s| s.backlog()).await?;
    let shared = Arc::new(tokio::sync::Mutex::new(Shared {
        stats: DrainStats::default(),
        reserved: 0,
        busy_keys: HashSet::new(),
        busy_batches: HashSet::new(),
        stop: false,
    }));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.concurrency.max(1) {
        let (store, sink, shared, options, cancel, progress) = (
            store.clone(),
            sink.clone(),
            shared.clone(),
            options.clone(),
            cancel.clone(),
            progress.clone(),
        );
        workers.spawn(async move {
            worker(store, sink, shared, options, cancel, progress, total).await
        });
    }
    let mut first_error = None;
    while let Some(res) = workers.join_next().await {
        let res = res
            .map_err(|e| SyncError::Join(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = res
            && first_error.is_none()
        {
            first_error = Some(e);
            shared.lock().await.stop = true;
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let stats = shared.lock().await.stats.clone();
    Ok(stats)
}

async fn worker<S: Sink>(
    store: Arc<Mutex<StateStore>>,
    sink: Arc<S>,
    shared: Arc<tokio::sync::Mutex<Shared>>,
    options: DrainOptions,
    cancel: tokio::sync::watch::Receiver<bool>,
    progress: Option<Progress>,
    total: u64,
) -> Result<(), SyncError> {
    loop {
        // Choose and reserve a batch under the lock, so no two workers
        // take the same orders or two versions of one order.
        let (batch, id) = {
            let mut sh = shared.lock().await;
            if sh.stop {
                return Ok(());
            }
            // Stopping with work left is said, never silent.
            let why = if *cancel.borrow() {
                Some("interrupted (Ctrl-C or SIGTERM); the rest stays queued")
            } else if Instant::now() >= options.deadline {
                Some("the run's deadline passed with orders still queued")
            } else {
                None
            };
            if let Some(why) = why {
                let now = options.now_ms();
                if blocking(&store, move |s| s.sendable(now)).await? > 0
                    && sh.stats.stopped.is_none()
                {
                    sh.stats.stopped = Some(why.to_string());
                }
                return Ok(());
            }
            let room = match options.cap {
                Some(cap) if sh.reserved >= cap => return Ok(()),
                Some(cap) => (cap - sh.reserved).min(options.batch_size as u64) as usize,
                None => options.batch_size,
            };
            let (busy, busy_batches) = (sh.busy_keys.clone(), sh.busy_batches.clone());
            let now = options.now_ms();
            let batch: Vec<OutboxEntry> = blocking(&store, move |s| {
                take_batch(s, room, &busy, &busy_batches, now)
            })
            .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let orders = outgoing(&batch);
            sh.stats.sent_without_all_lines +=
                batch.iter().filter(|e| e.lines_incomplete).count() as u64;
            let id = batch[0]
                .batch_id
                .clone()
                .unwrap_or_else(|| batch_id(&orders));
            let seqs: Vec<i64> = batch.iter().map(|e| e.seq).collect();
            let mark_id = id.clone();
            blocking(&store, move |s| s.mark_in_flight(&seqs, &mark_id)).await?;
            sh.reserved += batch.len() as u64;
            sh.busy_keys.extend(batch.iter().map(|e| e.key.clone()));
            sh.busy_batches.insert(id.clone());
            (orders, id)
        };
        let outcome = sink.deliver(&batch, options.deadline).await;
        let acked = outcome.acked.clone();
        let dead: Vec<(i64, Option<u16>, String)> = outcome
            .dead
            .iter()
            .map(|d| (d.seq, d.status, d.reason.clone()))
            .collect();
        let (n_acked, n_dead) = (acked.len() as u64, dead.len() as u64);
        blocking(&store, move |s| s.record_outcome(&acked, &dead)).await?;
        let mut sh = shared.lock().await;
        for o in &batch {
            sh.busy_keys.remove(&o.key);
        }
        sh.busy_batches.remove(&id);
        sh.stats.sent += batch.len() as u64;
        sh.stats.acknowledged += n_acked;
        sh.stats.dead_lettered += n_dead;
        sh.stats.requests += u64::from(outcome.requests);
        sh.stats.retried += u64::from(outcome.retries);
        if let Some(stop) = &outcome.stop {
            sh.stop = true;
            if sh.stats.stopped.is_none() {
                sh.stats.stopped = Some(describe(stop));
            }
            if matches!(stop, StopReason::Refused { .. }) {
                sh.stats.refused = true;
            }
        }
        if let Some(p) = &progress {
            p(sh.stats.acknowledged + sh.stats.dead_lettered, total);
        }
    }
}

/// The next batch of at most `room` orders (see [`StateStore::next_batch`]).
/// A batch left in flight that is larger than the room now (the limits were
/// lowered, or an import crashed with batches above this run's cap) is split
/// in queue order, each part under the id of its own members, and the first
/// part is taken: such a batch can always drain.
pub fn take_batch(
    s: &mut StateStore,
    room: usize,
    busy: &HashSet<String>,
    busy_batches: &HashSet<String>,
    now_ms: i64,
) -> Result<Vec<OutboxEntry>, crate::state::StateError> {
    let room = room.max(1);
    loop {
        let batch = s.next_batch(room, busy, busy_batches, now_ms)?;
        if batch.len() <= room {
            return Ok(batch);
        }
        let (head, tail) = batch.split_at(room);
        for part in [head, tail] {
            let seqs: Vec<i64> = part.iter().map(|e| e.seq).collect();
            s.rebatch(&seqs, &batch_id(&outgoing(part)))?;
        }
    }
}

/// The orders of outbox entries, as the sink takes them.
pub fn outgoing(entries: &[OutboxEntry]) -> Vec<OutgoingOrder> {
    entries
        .iter()
        .map(|e| OutgoingOrder {
            seq: e.seq,
            key: e.key.clone(),
            version: e.version,
            record: e.record.clone(),
        })
        .collect()
}

fn describe(stop: &StopReason) -> String {
    match stop {
        StopReason::Refused { status, message } => {
            format!("the CRM refused the request with HTTP {status}: {message}")
        }
        StopReason::Deadline => "the run's deadline passed while retrying".into(),
        StopReason::Exhausted { last_error } => {
            format!("gave up after the configured attempts: {last_error}")
        }
    }
}

#[cfg(test)]
mod tests;
