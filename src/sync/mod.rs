//! Sync pipelines: one scheduled run (detect, then drain at most `max_per_run`), dry runs, status, dead letters, imports.

pub mod detect;
pub mod drain;
pub mod import;
pub mod repair;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::extract::{ExtractError, Extractor};
use crate::pipeline::{Pipeline, PipelineError, SyncPipeline};
use crate::sinks::webhook::{SinkError, WebhookSink, build_body};
use crate::sources::SourceError;
use crate::state::lock::{LockError, RunLock};
use crate::state::{StateError, StateStore};
use detect::Detected;
use drain::{DrainOptions, DrainStats};

/// A sync operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The pipeline is not a sync pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Another run holds the lock.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// Reading the exports failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Transforming or encoding failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The sink could not be set up (missing secret, bad URL).
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A worker thread died.
    #[error("internal error: {0}")]
    Join(String),
    /// The state lock was poisoned by a panic.
    #[error("internal error: state lock poisoned")]
    Poisoned,
}

/// Options of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show what would be sent; send nothing, change nothing.
    pub dry_run: bool,
    /// Run even if the lock is held, but only when its holder is provably
    /// dead (operator override); never beside a live run.
    pub force: bool,
    /// A pinned clock, UTC ms, for detection (lookback, `max_future`, the
    /// wait for lines) and for the drain; `None` reads the system clock.
    /// Pipeline tests pin it so their results do not depend on the day.
    pub now_ms: Option<i64>,
    /// Environment variables the sink's secrets are read from before the
    /// process environment (pipeline tests give test secrets this way,
    /// without touching the process environment).
    pub env: std::collections::BTreeMap<String, String>,
}

/// The one-line summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Pipeline name.
    pub pipeline: String,
    /// Change detection.
    pub detection: Detected,
    /// Delivery.
    pub delivery: DrainStats,
    /// Orders still queued after the run.
    pub backlog: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// For dry runs: the batches that would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    /// Holder of a lock left by a killed run, if one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_lock: Option<String>,
}

/// How a run ended, as its state records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Everything sent was acknowledged.
    Ok,
    /// The CRM refused the configuration; delivery stopped, nothing lost.
    Refused,
    /// Work is left that needs attention.
    Incomplete,
}

impl RunOutcome {
    /// The word the state's run log uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Incomplete => "incomplete",
        }
    }
}

/// What a dry run would send.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// Orders that would be sent this run.
    pub orders: u64,
    /// Requests that would be made.
    pub requests: u64,
    /// First keys in sending order.
    pub first_keys: Vec<String>,
    /// Body size of each request, bytes.
    pub payload_bytes: Vec<usize>,
}

impl RunSummary {
    /// How the run ended: refused by the CRM; incomplete (dead letters,
    /// stopped early, or lines that could not be attached); or ok.
    pub fn outcome(&self) -> RunOutcome {
        let d = &self.delivery;
        if d.refused {
            RunOutcome::Refused
        } else if d.dead_lettered > 0
            || d.stopped.is_some()
            || self.detection.lines_without_order_file > 0
        {
            RunOutcome::Incomplete
        } else {
            RunOutcome::Ok
        }
    }

    /// One human line.
    pub fn line(&self) -> String {
        let d = &self.delivery;
        let det = &self.detection;
        let mut s = format!(
            "{}: detected {} (skipped: unchanged {}, too old {}, stale {}), sent {}, acknowledged {}, retried {}, dead-lettered {}, backlog {}, {:.1}s",
            self.pipeline,
            det.changes(),
            det.unchanged,
            det.too_old,
            det.stale,
            d.sent,
            d.acknowledged,
            d.retried,
            d.dead_lettered,
            self.backlog,
            self.duration_ms as f64 / 1000.0
        );
        if det.held_for_lines > 0 {
            s.push_str(&format!("; {} held for their lines", det.held_for_lines));
        }
        if det.relined > 0 {
            s.push_str(&format!("; {} read again for late lines", det.relined));
        }
        if det.lines_without_order_file > 0 {
            s.push_str(&format!(
                "; {} order(s) got late lines but their export file is gone: not queued again",
                det.lines_without_order_file
            ));
        }
        if d.sent_without_all_lines > 0 {
            s.push_str(&format!(
                "; {} sent without all their lines (lines.wait ran out)",
                d.sent_without_all_lines
            ));
        }
        if let Some(stop) = &d.stopped {
            s.push_str(&format!(" (stopped: {stop})"));
        }
        if let Some(dry) = &self.dry_run {
            s.push_str(&format!(
                "\ndry run: would send {} order(s) in {} request(s); first keys: {}; payload bytes: {:?}",
                dry.orders,
                dry.requests,
                dry.first_keys.join(", "),
                dry.payload_bytes
            ));
        }
        s
    }
}

/// The state database of a sync pipeline.
pub fn state_path(p: &Pipeline, spec: &SyncPipeline) -> PathBuf {
    match &spec.state.path {
        Some(path) => PathBuf::from(p.resolve(path)),
        None => p.base_dir.join("state").join(format!("{}.db", spec.name)),
    }
}

/// A duration in ms, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `now + d`, or far in the future when that cannot be represented.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub(crate) async fn open_store(path: PathBuf, pipeline: &str) -> Result<StateStore, SyncError> {
    let pipeline = pipeline.to_string();
    tokio::task::spawn_blocking(move || StateStore::open(&path, &pipeline))
        .await
        .map_err(|e| SyncError::Join(e.to_string()))?
        .map_err(SyncError::from)
}

/// One scheduled run of a sync pipeline.
pub async fn run(p: &Pipeline, options: RunOptions) -> Result<RunSummary, SyncError> {
    let spec = p.as_sync()?.clone();
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    // Set the sink and sources up first: a missing secret or a bad location
    // fails before anything, even the lock file, is written.
    let env = |name: &str| options.env.get(name).cloned().or_else(|| env(name));
    let sink = Arc::new(WebhookSink::new(&spec.sink.webhook, &env)?);
    let now_ms = || {
        options
            .now_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
    };
    let ex = Extractor::new(p, &spec)?;
    let path = state_path(p, &spec);
    let lock = if options.force {
        RunLock::acquire_force(&path)?
    } else {
        RunLock::acquire(&path)?
    };
    let stale_lock = lock.stale.clone();
    if let Some(stale) = &stale_lock {
        tracing::warn!(holder = %stale, "previous run ended without releasing its lock (killed?); taking over");
    }
    let mut store = open_store(path.clone(), &spec.name).await?;
    let mut detect_options = detect::DetectOptions {
        lookback_ms: millis(spec.state.lookback.get()),
        max_future_ms: millis(spec.state.max_future.get()),
        now_ms: now_ms(),
        commit: false,
    };
    let handle = tokio::runtime::Handle::current();
    let drain_options = DrainOptions {
        now_ms: options.now_ms,
        ..DrainOptions::scheduled(&spec.sink.policy)
    };
    let batch_size = drain_options.batch_size;
    let max_per_run = u64::from(spec.sink.policy.max_per_run);

    if options.dry_run {
        let (detection, dry) = tokio::task::spawn_blocking(move || {
            let (d, staging) = detect::detect(&handle, &ex, &mut store, detect_options)?;
            let entries = match staging {
                Some(st) => st.peek(max_per_run as usize)?,
                None => Vec::new(),
            };
            Ok::<_, SyncError>((d, entries))
        })
        .await
        .map_err(|e| SyncError::Join(e.to_string()))??;
        let first_keys = dry.iter().take(10).map(|e| e.key.clone()).collect();
        let payload_bytes = dry
            .chunks(batch_size.max(1))
            .map(|c| build_body(spec.sink.webhook.format, &drain::outgoing(c)).len())
            .collect::<Vec<_>>();
        return Ok(RunSummary {
            pipeline: spec.name.clone(),
            backlog: 0,
            duration_ms: started.elapsed().as_millis() as u64,
            delivery: DrainStats::default(),
            dry_run: Some(DryRun {
                orders: dry.len() as u64,
                requests: payload_bytes.len() as u64,
                first_keys,
                payload_bytes,
            }),
            detection,
            stale_lock,
        });
    }

    detect_options.commit = true;
    let (detection, store) = tokio::task::spawn_blocking(move || {
        let (d, _) = detect::detect(&handle, &ex, &mut store, detect_options)?;
        Ok::<_, SyncError>((d, store))
    })
    .await
    .map_err(|e| SyncError::Join(e.to_string()))??;
    tracing::info!(
        changes = detection.changes(),
        files = detection.files_read,
        "detection done"
    );

    let store = Arc::new(Mutex::new(store));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let delivery = drain::drain(store.clone(), sink, drain_options, cancel, None).await?;
    finish(
        store,
        "run",
        now_ms(),
        &started_at,
        started,
        spec.name.clone(),
        detection,
        delivery,
        stale_lock,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    store: Arc<Mutex<StateStore>>,
    kind: &'static str,
    now_ms: i64,
    started_at: &str,
    started: std::time::Instant,
    pipeline: String,
    detection: Detected,
    delivery: DrainStats,
    stale_lock: Option<String>,
) -> Result<RunSummary, SyncError> {
    let mut summary = RunSummary {
        pipeline,
        detection,
        delivery,
        backlog: 0,
        duration_ms: 0,
        dry_run: None,
        stale_lock,
    };
    let started_at = started_at.to_string();
    let summary = tokio::task::spawn_blocking(move || {
        let s = store.lock().map_err(|_| SyncError::Poisoned)?;
        summary.backlog = s.backlog()?;
        // Progress or a loud stop: orders that could have gone out, none did,
        // and nothing said why.
        let sendable = s.sendable(now_ms)?;
        let d = &mut summary.delivery;
        if d.stopped.is_none() && d.sent == 0 && sendable > 0 {
            d.stopped = Some(format!(
                "no progress: {sendable} order(s) could be sent but none was"
            ));
        }
        summary.duration_ms = started.elapsed().as_millis() as u64;
        let outcome = summary.outcome().as_str();
        let json = serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null);
        s.record_run(kind, &started_at, outcome, &json)?;
        Ok::<_, SyncError>(summary)
    })
    .await
    .map_err(|e| SyncError::Join(e.to_string()))??;
    Ok(summary)
}

/// Status of a sync pipeline's state.
pub async fn status(p: &Pipeline) -> Result<Option<crate::state::Status>, SyncError> {
    let spec = p.as_sync()?;
    let path = state_path(p, spec);
    let name = spec.name.clone();
    tokio::task::spawn_blocking(move || match StateStore::open_existing(&path, &name)? {
        Some(s) => Ok(Some(s.status(10)?)),
        None => Ok(None),
    })
    .await
    .map_err(|e| SyncError::Join(e.to_string()))?
}

#[cfg(test)]
mod tests;
