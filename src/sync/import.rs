//! Initial import: flag the orders of a timeframe for sync, then drain the outbox in one large, resumable run.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::detect::{LINES, ORDERS, Row, file_record, fingerprint, rows_of};
use super::drain::{DrainOptions, Progress};
use super::{RunSummary, SyncError, env, finish, millis, open_store, state_path};
use crate::extract::Extractor;
use crate::pipeline::Pipeline;
use crate::sinks::webhook::WebhookSink;
use crate::sources::{SourceError, SourceFile};
use crate::state::lock::RunLock;
use crate::state::{Change, Offer, Reason, StateStore};

/// Which orders to flag.
#[derive(Debug, Clone)]
pub struct FlagOptions {
    /// Start of the timeframe (inclusive).
    pub from: DateTime<Utc>,
    /// End of the timeframe (exclusive).
    pub to: DateTime<Utc>,
    /// Time column that selects the orders (default: `creationDateTime`).
    pub column: String,
    /// Queue orders again even when the CRM already has their content.
    pub force: bool,
}

/// What `import flag` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagSummary {
    /// Orders in the timeframe.
    pub matched: u64,
    /// Newly queued.
    pub flagged: u64,
    /// Already on the outbox with this content.
    pub already_queued: u64,
    /// Already acknowledged by the CRM with this content (use `--force` to resend).
    pub already_delivered: u64,
    /// Rows superseded by a newer version of the same order.
    pub superseded: u64,
    /// Files read.
    pub files: usize,
    /// This flag set the pipeline's baseline (it had read no file before):
    /// the files it read are recorded, so the following runs send only what
    /// changes after them.
    pub baseline: bool,
    /// Start of the timeframe flagged (inclusive), as an instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// End of the timeframe flagged (exclusive), as an instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Keys selected (for reports of which were not found).
    #[serde(skip)]
    pub found: std::collections::HashSet<String>,
}

fn bad(file: &SourceFile, message: String) -> SyncError {
    SyncError::Source(SourceError::Parse {
        file: file.name.clone(),
        message,
    })
}

/// Which orders a flagging selects.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Orders whose time column falls in the timeframe (`import flag`).
    Timeframe(FlagOptions),
    /// Orders with these keys, queued even if the CRM acknowledged them (`repair`).
    Keys(std::collections::HashSet<String>),
}

/// Put every order of the timeframe on the outbox, in one transaction.
pub async fn flag(p: &Pipeline, options: FlagOptions) -> Result<FlagSummary, SyncError> {
    let (from, to) = (options.from, options.to);
    let mut s = flag_selection(p, Selection::Timeframe(options)).await?;
    (s.from, s.to) = (Some(from), Some(to));
    Ok(s)
}

/// Put the selected orders on the outbox, in one transaction.
pub async fn flag_selection(p: &Pipeline, selection: Selection) -> Result<FlagSummary, SyncError> {
    let spec = p.as_sync()?.clone();
    let path = state_path(p, &spec);
    let _lock = RunLock::acquire(&path)?;
    let ex = Extractor::new(p, &spec)?;
    let mut store = open_store(path, &spec.name).await?;
    let handle = tokio::runtime::Handle::current();
    let latest_ms = chrono::Utc::now()
        .timestamp_millis()
        .saturating_add(millis(spec.state.max_future.get()));
    tokio::task::spawn_blocking(move || {
        flag_blocking(&handle, &ex, &mut store, &selection, latest_ms)
    })
    .await
    .map_err(|e| SyncError::Join(e.to_string()))?
}

/// Flag in one transaction. On a pipeline that has read no orders file yet,
/// a timeframe flag also sets the baseline: the orders and lines files it
/// read are recorded as read and the cursor is set to the newest row, so the
/// first `run` after it sends only what changed since, not every order of
/// every file. On a pipeline that already syncs, nothing but the outbox
/// changes, so files that arrived since its last run are still detected.
fn flag_blocking(
    handle: &tokio::runtime::Handle,
    ex: &Extractor,
    store: &mut StateStore,
    selection: &Selection,
    latest_ms: i64,
) -> Result<FlagSummary, SyncError> {
    let listed_at_ms = chrono::Utc::now().timestamp_millis();
    let files = handle.block_on(ex.orders.list())?;
    let lines_files = match &ex.lines {
        Some((source, _, _)) => handle.block_on(source.list())?,
        None => Vec::new(),
    };
    let lines = handle.block_on(ex.lines_index(Some(&lines_files)))?;
    let baseline = matches!(selection, Selection::Timeframe(_))
        && store.known_files(ORDERS)?.is_empty()
        && store.cursor()?.is_none();
    let staging = store.stage()?;
    let mut newest: Option<(i64, String)> = None;
    let mut s = FlagSummary {
        files: files.len(),
        ..Default::default()
    };
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()));
    for file in &files {
        let data = handle.block_on(ex.orders.fetch(file))?;
        let mut first_row = 0;
        for batch in ex.orders.batches(file, data)? {
            let batch = batch?;
            let n = batch.num_rows();
            let batch = ex.finish(&batch, lines.as_ref(), &file.name)?;
            let when = match selection {
                Selection::Timeframe(o) => {
                    let idx = batch.schema().index_of(&o.column).map_err(|_| {
                        bad(
                            file,
                            format!(
                                "no column `{}` to select the timeframe by (use --column)",
                                o.column
                            ),
                        )
                    })?;
                    let when = arrow::compute::cast(batch.column(idx), &ts).map_err(|e| {
                        bad(file, format!("column `{}` is not a time: {e}", o.column))
                    })?;
                    Some(when)
                }
                Selection::Keys(_) => None,
            };
            let rows: Vec<Row> = rows_of(&batch, ex, &file.name, first_row, latest_ms)?;
            for (i, row) in rows.into_iter().enumerate() {
                if newest
                    .as_ref()
                    .is_none_or(|(ms, k)| (row.modified_ms, &row.key) > (*ms, k))
                {
                    newest = Some((row.modified_ms, row.key.clone()));
                }
                staging.order_file(&row.key, file.path.as_ref(), row.modified_ms)?;
                let (selected, reason, force) = match (selection, &when) {
                    (Selection::Timeframe(o), Some(when)) => {
                        let when = when.as_primitive::<TimestampMillisecondType>();
                        let (from, to) = (o.from.timestamp_millis(), o.to.timestamp_millis());
                        let inside =
                            !when.is_null(i) && when.value(i) >= from && when.value(i) < to;
                        (inside, Reason::Import, o.force)
                    }
                    (Selection::Keys(keys), _) => (keys.contains(&row.key), Reason::Repair, true),
                    _ => (false, Reason::Import, false),
                };
                let change = Change {
                    fingerprint: fingerprint(&row.record),
                    key: row.key,
                    modified_ms: Some(row.modified_ms),
                    record: row.record,
                    hold_until_ms: None,
                };
                if !selected {
                    // What the baseline leaves out is not sent until it changes,
                    // even when its file is read again.
                    if baseline {
                        staging.baseline(&change)?;
                    }
                    continue;
                }
                s.matched += 1;
                s.found.insert(change.key.clone());
                match staging.offer(&change, reason, force)? {
                    Offer::Queued | Offer::Coalesced => s.flagged += 1,
                    Offer::AlreadyQueued => s.already_queued += 1,
                    Offer::Unchanged => s.already_delivered += 1,
                    Offer::Stale => s.superseded += 1,
                }
            }
            first_row += n;
        }
        if baseline {
            staging.file_read(
                ORDERS,
                file.path.as_ref(),
                &file_record(file),
                0,
                listed_at_ms,
            )?;
        }
    }
    if baseline {
        for file in &lines_files {
            staging.file_read(
                LINES,
                file.path.as_ref(),
                &file_record(file),
                0,
                listed_at_ms,
            )?;
        }
        if let Some((ms, key)) = &newest {
            staging.advance_cursor(*ms, key)?;
        }
        s.baseline = true;
    }
    staging.commit()?;
    Ok(s)
}

/// Options of `import run`.
#[derive(Clone, Default)]
pub struct ImportRunOptions {
    /// Requests in flight (default from the pipeline's `sink.concurrency`).
    pub concurrency: Option<usize>,
    /// Requests per second (default from `sink.rate_limit`).
    pub rate_limit: Option<f64>,
    /// Show progress.
    pub progress: Option<Progress>,
}

/// Drain everything queued, without the per-run cap, until done or
/// interrupted (`cancel`); resumable by running it again.
pub async fn run(
    p: &Pipeline,
    options: ImportRunOptions,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<RunSummary, SyncError> {
    let spec = p.as_sync()?.clone();
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let policy = &spec.sink.policy;
    let mut sink = WebhookSink::new(&spec.sink.webhook, &env)?.with_cancel(cancel.clone());
    if let Some(rate) = options.rate_limit.or(policy.rate_limit) {
        sink = sink.with_rate_limit(rate);
    }
    let sink = Arc::new(sink);
    let path = state_path(p, &spec);
    let lock = RunLock::acquire(&path)?;
    let stale = lock.stale.clone();
    let store = Arc::new(Mutex::new(open_store(path, &spec.name).await?));
    let delivery = super::drain::drain(
        store.clone(),
        sink,
        DrainOptions::import(policy, options.concurrency),
        cancel,
        options.progress,
    )
    .await?;
    let summary = finish(
        store,
        "import",
        chrono::Utc::now().timestamp_millis(),
        &started_at,
        started,
        spec.name.clone(),
        Default::default(),
        delivery,
        stale,
    )
    .await;
    drop(lock);
    summary
}

#[cfg(test)]
mod tests;
