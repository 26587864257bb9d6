//! `repair`: flag the orders a consistency check found missing in or mismatched with the CRM for re-sync.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use serde::Serialize;

use super::SyncError;
use super::import::{Selection, flag_selection};
use crate::pipeline::Pipeline;
use crate::sources::SourceError;

/// Categories that a re-sync can fix.
pub const REPAIRABLE: &[&str] = &["missing_in_crm", "mismatched"];

/// What `repair` did.
#[derive(Debug, Clone, Serialize)]
pub struct RepairSummary {
    /// Orders the report lists as missing in or mismatched with the CRM.
    pub in_report: usize,
    /// Queued for the next run (new versions).
    pub flagged: u64,
    /// Already queued with the same content.
    pub already_queued: u64,
    /// Keys of the report not found in the S-360 exports (first 20).
    pub not_found: Vec<String>,
}

/// The keys of repairable discrepancies in `report_dir/discrepancies.parquet`
/// (first column: the S-360 key).
pub fn repairable_keys(report_dir: &Path) -> Result<BTreeSet<String>, SyncError> {
    let path = report_dir.join("discrepancies.parquet");
    let name = path.display().to_string();
    let bad = |message: String| {
        SyncError::Source(SourceError::Parse {
            file: name.clone(),
            message,
        })
    };
    let file = std::fs::File::open(&path).map_err(|source| {
        SyncError::Source(SourceError::Io {
            file: name.clone(),
            source,
        })
    })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(format!("not a discrepancy report: {e}")))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut keys = BTreeSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let category = batch
            .schema()
            .index_of("category")
            .map_err(|_| bad("no `category` column: not a discrepancy report".into()))?;
        let text = |i: usize| arrow::compute::cast(batch.column(i), &DataType::Utf8);
        let cats = text(category).map_err(|e| bad(e.to_string()))?;
        let key = text(0).map_err(|e| bad(e.to_string()))?;
        let (cats, key) = (cats.as_string::<i32>(), key.as_string::<i32>());
        for r in 0..batch.num_rows() {
            if !cats.is_null(r) && REPAIRABLE.contains(&cats.value(r)) && !key.is_null(r) {
                keys.insert(key.value(r).to_string());
            }
        }
    }
    Ok(keys)
}

/// Queue the repairable orders of a report on the sync pipeline's outbox,
/// even where the CRM acknowledged the same content before. Idempotent:
/// running it twice queues each order once.
pub async fn repair(report_dir: &Path, p: &Pipeline) -> Result<RepairSummary, SyncError> {
    let keys = repairable_keys(report_dir)?;
    let wanted: HashSet<String> = keys.iter().cloned().collect();
    let s = flag_selection(p, Selection::Keys(wanted)).await?;
    let not_found = keys
        .iter()
        .filter(|k| !s.found.contains(*k))
        .take(20)
        .cloned()
        .collect();
    Ok(RepairSummary {
        in_report: keys.len(),
        flagged: s.flagged,
        already_queued: s.already_queued,
        not_found,
    })
}
