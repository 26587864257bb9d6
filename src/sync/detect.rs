//! Change detection: read new or changed export files, fingerprint each order, and offer changes to the outbox.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::SyncError;
use crate::extract::{Extractor, records_json};
use crate::sources::nest::LinesIndex;
use crate::sources::{SourceError, SourceFile};
use crate::state::{Change, FileRecord, KnownFile, Offer, Reason, Staging, StateStore, format_ms};

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
    /// Rows of a rewritten file older than the cursor minus the lookback.
    pub too_old: u64,
    /// Rows older than a version of the same order already known.
    pub stale: u64,
    /// Orders read again from an earlier file because lines for them
    /// arrived in this run (those that changed are counted in `queued` or
    /// `coalesced` too).
    pub relined: u64,
    /// Orders queued but held because not all their lines have arrived
    /// (`lines.count`).
    pub held_for_lines: u64,
    /// Orders that new lines belong to but whose orders file is gone, so
    /// they could not be queued again with their lines.
    pub lines_without_order_file: u64,
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

pub fn file_record(f: &SourceFile) -> FileRecord {
    FileRecord {
        size: f.size,
        etag: f.etag.clone(),
        modified_ms: f.modified.timestamp_millis(),
    }
}

/// How long after its modification time a file must have been read for
/// its listing to prove it unchanged later. SFTP gives whole seconds, some
/// file systems two, and the server's clock is not ours: a file rewritten
/// in place with the same size within that second would list exactly as it
/// did when read. A file read this soon after it was modified is read again
/// on the next run (its unchanged orders are not sent again), as git treats
/// a "racily clean" index entry. A server whose clock is more than this
/// behind ours can still hide such a rewrite.
pub const RACY_MS: i64 = 60_000;

/// Files that are new or whose size, etag or mtime changed since recorded;
/// unless the store's ETag follows the content (`content_etag`), also those
/// read less than [`RACY_MS`] after their recorded mtime.
pub fn unseen(
    files: Vec<SourceFile>,
    known: &HashMap<String, KnownFile>,
    content_etag: bool,
) -> Vec<SourceFile> {
    files
        .into_iter()
        .filter(|f| match known.get(f.path.as_ref()) {
            None => true,
            Some(k) => k.record != file_record(f) || !(content_etag || proven(k)),
        })
        .collect()
}

/// Whether a file's record, listed the same again, proves it unchanged.
fn proven(k: &KnownFile) -> bool {
    k.read_at_ms
        .is_some_and(|read| read.saturating_sub(k.record.modified_ms) >= RACY_MS)
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
/// naming the file and row, and so is a cursor past `latest_ms` (an
/// implausible time that would otherwise become the cursor).
pub fn rows_of(
    batch: &RecordBatch,
    ex: &Extractor,
    file: &str,
    first_row: usize,
    latest_ms: i64,
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
        let modified_ms = cursor.value(i);
        if modified_ms > latest_ms {
            return Err(bad(
                file,
                format!(
                    "data row {row} (order {:?}): cursor `{}` is {}, later than {} \
                     (now plus `state.max_future`): an implausible time is refused, \
                     not taken as the new cursor; fix the export, or raise `state.max_future`",
                    keys.value(i),
                    ex.cursor,
                    format_ms(modified_ms),
                    format_ms(latest_ms),
                ),
            ));
        }
        out.push(Row {
            key: keys.value(i).to_string(),
            modified_ms,
            record,
        });
    }
    Ok(out)
}

/// For `lines.count`: which rows of a finished batch have fewer lines in
/// the list column `field` than their `count` column says.
fn missing_lines(
    batch: &RecordBatch,
    field: &str,
    count: &str,
    file: &str,
) -> Result<Vec<bool>, SyncError> {
    let schema = batch.schema();
    let find = |name: &str, what: &str| {
        schema.index_of(name).map_err(|_| {
            bad(
                file,
                format!(
                    "`lines.count` needs the {what} `{name}` in each record, but the \
                     transforms removed it (keep it, or drop `lines.count`)"
                ),
            )
        })
    };
    let list = batch.column(find(field, "list column")?);
    // The transforms may hand the list back as a large list.
    let have: Vec<i64> = if let Some(l) = list.as_list_opt::<i32>() {
        (0..l.len())
            .map(|i| {
                if l.is_null(i) {
                    0
                } else {
                    i64::from(l.value_length(i))
                }
            })
            .collect()
    } else if let Some(l) = list.as_list_opt::<i64>() {
        (0..l.len())
            .map(|i| if l.is_null(i) { 0 } else { l.value_length(i) })
            .collect()
    } else {
        return Err(bad(file, format!("`{field}` is not the list of lines")));
    };
    let counts = arrow::compute::cast(batch.column(find(count, "count column")?), &DataType::Int64)
        .map_err(|e| bad(file, format!("`lines.count` column `{count}`: {e}")))?;
    let counts = counts.as_primitive::<arrow::datatypes::Int64Type>();
    Ok((0..batch.num_rows())
        .map(|i| !counts.is_null(i) && have[i] < counts.value(i))
        .collect())
}

fn bad(file: &str, message: String) -> SyncError {
    SyncError::Source(SourceError::Parse {
        file: file.to_string(),
        message,
    })
}

/// How detection reads.
#[derive(Debug, Clone, Copy)]
pub struct DetectOptions {
    /// `state.lookback`, ms.
    pub lookback_ms: i64,
    /// `state.max_future`, ms.
    pub max_future_ms: i64,
    /// The clock, UTC ms.
    pub now_ms: i64,
    /// Commit what was staged (false: a dry run, always rolled back).
    pub commit: bool,
}

/// Read every new or changed file, stage its changes, and commit them with
/// the files and cursor in one transaction (or roll back on any error, or
/// always when `commit` is false).
///
/// A file new to the tool is read whole, whatever the age of its rows (the
/// ledger keeps what the CRM has from being sent again); a file read before
/// and rewritten in place is read from `cursor - lookback` on. When lines
/// files are new, every lines file is indexed, and the orders they belong
/// to that were read in an earlier run are read again from their file, so
/// they are queued again with their lines.
pub fn detect<'a>(
    handle: &Handle,
    ex: &Extractor,
    store: &'a mut StateStore,
    options: DetectOptions,
) -> Result<(Detected, Option<Staging<'a>>), SyncError> {
    let known = store.known_files(ORDERS)?;
    // The real clock, not `now_ms` (which a rehearsal may set): what
    // `RACY_MS` compares with the files' mtimes.
    let listed_at_ms = chrono::Utc::now().timestamp_millis();
    let listed = match handle.block_on(ex.orders.list()) {
        // Delta files already read may be cleaned up. A glob that matches
        // none of the files read before is a wrong location (a typo, a
        // moved folder): the run stops rather than read nothing every time.
        Err(SourceError::NoFiles { .. }) if known.keys().any(|p| ex.orders.location.covers(p)) => {
            Vec::new()
        }
        other => other?,
    };
    let files = unseen(listed.clone(), &known, ex.orders.location.content_etag);
    let (lines_idx, lines_files, lined_keys) = match &ex.lines {
        Some((source, _, _)) => {
            let all = handle.block_on(source.list())?;
            let new = unseen(
                all.clone(),
                &store.known_files(LINES)?,
                source.location.content_etag,
            );
            if files.is_empty() && new.is_empty() {
                (None, Vec::new(), HashSet::new())
            } else {
                let paths: HashSet<String> = new.iter().map(|f| f.path.to_string()).collect();
                match handle.block_on(ex.lines_index_with_new(&all, &paths))? {
                    Some((idx, keys)) => (Some(idx), new, keys),
                    None => (None, new, HashSet::new()),
                }
            }
        }
        None => (None, Vec::new(), HashSet::new()),
    };
    let latest_ms = options.now_ms.saturating_add(options.max_future_ms);
    let floor = match store.cursor()? {
        Some((ms, key)) if ms > latest_ms => {
            tracing::warn!(
                cursor = %format_ms(ms),
                key = %key,
                "the recorded cursor lies in the future (written before implausible times \
                 were refused); it sets no floor, every row of a rewritten file is read"
            );
            None
        }
        Some((ms, _)) => Some(ms.saturating_sub(options.lookback_ms)),
        None => None,
    };
    let staging = store.stage()?;
    let mut d = Detected::default();
    let mut max: Option<(i64, String)> = None;
    let mut read = Reader {
        handle,
        ex,
        staging: &staging,
        lines: lines_idx.as_ref(),
        latest_ms,
        hold_ms: ex
            .lines_completeness()
            .map(|(_, _, wait)| options.now_ms.saturating_add(wait)),
        d: &mut d,
        max: &mut max,
        seen: HashSet::new(),
        listed_at_ms,
    };
    for file in &files {
        let rewritten = known.contains_key(file.path.as_ref());
        read.file(file, if rewritten { floor } else { None }, None)?;
    }
    // Orders read in an earlier run that lines of this run belong to.
    let relined: HashSet<String> = lined_keys
        .into_iter()
        .filter(|k| !read.seen.contains(k))
        .collect();
    if !relined.is_empty() {
        let by_file = staging.order_files(&relined)?;
        for (path, keys) in by_file {
            match listed.iter().find(|f| f.path.as_ref() == path) {
                Some(file) => read.file(file, None, Some(&keys))?,
                None => {
                    tracing::warn!(
                        file = %path,
                        orders = keys.len(),
                        "lines arrived for orders whose export file is gone: \
                         they cannot be queued again with their lines"
                    );
                    read.d.lines_without_order_file += keys.len() as u64;
                }
            }
        }
    }
    for file in &lines_files {
        staging.file_read(
            LINES,
            file.path.as_ref(),
            &file_record(file),
            0,
            listed_at_ms,
        )?;
    }
    if let Some((ms, key)) = &max {
        staging.advance_cursor(*ms, key)?;
    }
    if options.commit {
        staging.commit()?;
        Ok((d, None))
    } else {
        Ok((d, Some(staging)))
    }
}

/// Reads orders files into the staged outbox.
struct Reader<'r, 's> {
    handle: &'r Handle,
    ex: &'r Extractor,
    staging: &'r Staging<'s>,
    lines: Option<&'r LinesIndex>,
    latest_ms: i64,
    /// Until when an order with missing lines is held; `None` without
    /// `lines.count`.
    hold_ms: Option<i64>,
    d: &'r mut Detected,
    max: &'r mut Option<(i64, String)>,
    /// Keys read in this run.
    seen: HashSet<String>,
    /// When the files were listed, UTC ms.
    listed_at_ms: i64,
}

impl Reader<'_, '_> {
    /// Offer the rows of `file` at or after `floor`; with `only`, only those
    /// orders (read again for their lines), and the file is not recorded.
    fn file(
        &mut self,
        file: &SourceFile,
        floor: Option<i64>,
        only: Option<&HashSet<String>>,
    ) -> Result<(), SyncError> {
        let ex = self.ex;
        let data = self.handle.block_on(ex.orders.fetch(file))?;
        let mut in_file = HashSet::new();
        let mut first_row = 0usize;
        let mut n = 0u64;
        for batch in ex.orders.batches(file, data)? {
            let batch = batch?;
            let raw_rows = batch.num_rows();
            let batch = ex.finish(&batch, self.lines, &file.name)?;
            let missing = match ex.lines_completeness() {
                Some((field, count, _)) => Some(missing_lines(&batch, field, count, &file.name)?),
                None => None,
            };
            let rows = rows_of(&batch, ex, &file.name, first_row, self.latest_ms)?;
            for (i, row) in rows.into_iter().enumerate() {
                n += 1;
                if !in_file.insert(row.key.clone()) {
                    return Err(bad(
                        &file.name,
                        format!("order key {:?} appears twice in this file", row.key),
                    ));
                }
                if only.is_some_and(|keys| !keys.contains(&row.key)) {
                    continue;
                }
                if floor.is_some_and(|f| row.modified_ms < f) {
                    self.d.too_old += 1;
                    continue;
                }
                if only.is_some() {
                    self.d.relined += 1;
                } else {
                    self.seen.insert(row.key.clone());
                }
                if self
                    .max
                    .as_ref()
                    .is_none_or(|(ms, k)| (row.modified_ms, &row.key) > (*ms, k))
                {
                    *self.max = Some((row.modified_ms, row.key.clone()));
                }
                let held = missing.as_ref().is_some_and(|m| m[i]);
                self.staging
                    .order_file(&row.key, file.path.as_ref(), row.modified_ms)?;
                let change = Change {
                    fingerprint: fingerprint(&row.record),
                    key: row.key,
                    modified_ms: Some(row.modified_ms),
                    record: row.record,
                    hold_until_ms: if held { self.hold_ms } else { None },
                };
                let offer = self.staging.offer(&change, Reason::Change, false)?;
                if held && matches!(offer, Offer::Queued | Offer::Coalesced) {
                    self.d.held_for_lines += 1;
                }
                match offer {
                    Offer::Queued => self.d.queued += 1,
                    Offer::Coalesced => self.d.coalesced += 1,
                    Offer::AlreadyQueued | Offer::Unchanged => self.d.unchanged += 1,
                    Offer::Stale => self.d.stale += 1,
                }
            }
            first_row += raw_rows;
        }
        if only.is_none() {
            self.d.rows += n;
            self.d.files_read += 1;
            self.staging.file_read(
                ORDERS,
                file.path.as_ref(),
                &file_record(file),
                n,
                self.listed_at_ms,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
