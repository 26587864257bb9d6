//! Change detection: read new or changed export files, fingerprint each order, and offer changes to the outbox.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::SyncError;
use crate::extract::{Extractor, records_json};
use crate::sources::{SourceError, SourceFile};
use crate::state::{Change, FileRecord, Offer, Reason, Staging, StateStore};

/// Name of the orders source in the `files` table.
pub const ORDERS: &str = "orders";
/// Name of the lines source in the `files` table.
pub const LINES: &str = "lines";

/// What detection found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Detected {
    /// Files read (new or changed since the last run).
    pub files_read: usize,
    /// Rows read from them.
    pub rows: u64,
    /// Orders put on the outbox.
    pub queued: u64,
    /// Queued orders whose content was replaced by a newer export.
    pub coalesced: u64,
    /// Orders whose content the CRM already has.
    pub unchanged: u64,
    /// Rows older than the cursor minus the lookback window.
    pub too_old: u64,
    /// Rows older than a version of the same order already known.
    pub stale: u64,
}

impl Detected {
    /// Orders detected as new or changed.
    pub fn changes(&self) -> u64 {
        self.queued + self.coalesced
    }
}

/// Content hash of a record.
pub fn fingerprint(record: &str) -> String {
    let digest = Sha256::digest(record.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn file_record(f: &SourceFile) -> FileRecord {
    FileRecord {
        size: f.size,
        etag: f.etag.clone(),
        modified_ms: f.modified.timestamp_millis(),
    }
}

/// Files that are new or whose size, etag or mtime changed since recorded.
pub fn unseen(files: Vec<SourceFile>, known: &HashMap<String, FileRecord>) -> Vec<SourceFile> {
    files
        .into_iter()
        .filter(|f| known.get(f.path.as_ref()) != Some(&file_record(f)))
        .collect()
}

/// One order row, ready to offer.
pub struct Row {
    /// Key as text.
    pub key: String,
    /// Cursor, UTC ms.
    pub modified_ms: i64,
    /// The record as JSON.
    pub record: String,
}

/// Key, cursor and JSON of every row of a finished batch; nulls are errors
/// naming the file and row.
pub fn rows_of(
    batch: &RecordBatch,
    ex: &Extractor,
    file: &str,
    first_row: usize,
) -> Result<Vec<Row>, SyncError> {
    let schema = batch.schema();
    let column = |name: &str| {
        schema.index_of(name).map_err(|_| {
            SyncError::Source(SourceError::MissingColumn {
                file: file.to_string(),
                column: name.to_string(),
                present: format!(
                    "{} (after transforms: they must keep the key and cursor columns)",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        })
    };
    let keys = arrow::compute::cast(batch.column(column(&ex.key)?), &DataType::Utf8)
        .map_err(|e| bad(file, format!("key `{}`: {e}", ex.key)))?;
    let keys = keys.as_string::<i32>();
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()));
    let cursor = arrow::compute::cast(batch.column(column(&ex.cursor)?), &ts)
        .map_err(|e| bad(file, format!("cursor `{}`: {e}", ex.cursor)))?;
    let cursor = cursor.as_primitive::<TimestampMillisecondType>();
    let records = records_json(batch)?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for (i, record) in records.into_iter().enumerate() {
        let row = first_row + i + 1;
        if keys.is_null(i) || keys.value(i).is_empty() {
            return Err(bad(
                file,
                format!("data row {row}: key `{}` is empty", ex.key),
            ));
        }
        if cursor.is_null(i) {
            return Err(bad(
                file,
                format!(
                    "data row {row}: cursor `{}` is empty or not a time",
                    ex.cursor
                ),
            ));
        }
        out.push(Row {
            key: keys.value(i).to_string(),
            modified_ms: cursor.value(i),
            record,
        });
    }
    Ok(out)
}

fn bad(file: &str, message: String) -> SyncError {
    SyncError::Source(SourceError::Parse {
        file: file.to_string(),
        message,
    })
}

/// Read every new or changed file, stage its changes, and commit them with
/// the files and cursor in one transaction (or roll back on any error, or
/// always when `commit` is false).
pub fn detect<'a>(
    handle: &Handle,
    ex: &Extractor,
    store: &'a mut StateStore,
    lookback_ms: i64,
    commit: bool,
) -> Result<(Detected, Option<Staging<'a>>), SyncError> {
    let known = store.known_files(ORDERS)?;
    let files = match handle.block_on(ex.orders.list()) {
        // Delta files already read may be cleaned up; a glob that never
        // matched anything is more likely a wrong location.
        Err(SourceError::NoFiles { .. }) if !known.is_empty() => Vec::new(),
        other => other?,
    };
    let files = unseen(files, &known);
    let (lines_idx, lines_files) = match &ex.lines {
        Some((source, _, _)) => {
            let all = handle.block_on(source.list())?;
            let new = unseen(all, &store.known_files(LINES)?);
            let idx = handle.block_on(ex.lines_index(Some(&new)))?;
            (idx, new)
        }
        None => (None, Vec::new()),
    };
    let floor = store.cursor()?.map(|(ms, _)| ms - lookback_ms);
    let staging = store.stage()?;
    let mut d = Detected::default();
    let mut max: Option<(i64, String)> = None;
    for file in &files {
        let data = handle.block_on(ex.orders.fetch(file))?;
        let mut seen = HashSet::new();
        let mut first_row = 0usize;
        let mut n = 0u64;
        for batch in ex.orders.batches(file, data)? {
            let batch = batch?;
            let raw_rows = batch.num_rows();
            let batch = ex.finish(&batch, lines_idx.as_ref(), &file.name)?;
            for row in rows_of(&batch, ex, &file.name, first_row)? {
                n += 1;
                if !seen.insert(row.key.clone()) {
                    return Err(bad(
                        &file.name,
                        format!("order key {:?} appears twice in this file", row.key),
                    ));
                }
                if floor.is_some_and(|f| row.modified_ms < f) {
                    d.too_old += 1;
                    continue;
                }
                if max
                    .as_ref()
                    .is_none_or(|(ms, k)| (row.modified_ms, &row.key) > (*ms, k))
                {
                    max = Some((row.modified_ms, row.key.clone()));
                }
                let change = Change {
                    fingerprint: fingerprint(&row.record),
                    key: row.key,
                    modified_ms: Some(row.modified_ms),
                    record: row.record,
                };
                match staging.offer(&change, Reason::Change, false)? {
                    Offer::Queued => d.queued += 1,
                    Offer::Coalesced => d.coalesced += 1,
                    Offer::AlreadyQueued | Offer::Unchanged => d.unchanged += 1,
                    Offer::Stale => d.stale += 1,
                }
            }
            first_row += raw_rows;
        }
        d.rows += n;
        d.files_read += 1;
        staging.file_read(ORDERS, file.path.as_ref(), &file_record(file), n)?;
    }
    for file in &lines_files {
        staging.file_read(LINES, file.path.as_ref(), &file_record(file), 0)?;
    }
    if let Some((ms, key)) = &max {
        staging.advance_cursor(*ms, key)?;
    }
    if commit {
        staging.commit()?;
        Ok((d, None))
    } else {
        Ok((d, Some(staging)))
    }
}
