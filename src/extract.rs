//! Extraction for sync pipelines: orders files, nested lines, transforms, as Arrow batches and JSON records.

use std::collections::HashSet;

use arrow::array::RecordBatch;

use crate::pipeline::{Pipeline, SyncPipeline};
use crate::sources::nest::LinesIndex;
use crate::sources::{Source, SourceError, SourceFile};
use crate::transforms::{TransformError, apply_to_batch};

/// Extraction failed; the message names the file, row or step.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading an export failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A transform failed.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// Records could not be encoded as JSON.
    #[error("encoding records as JSON: {0}")]
    Json(#[source] arrow::error::ArrowError),
}

/// The sources of a sync pipeline and the steps applied to their batches.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// The orders export.
    pub orders: Source,
    /// The lines export, with the key column and list name.
    pub lines: Option<(Source, String, String)>,
    /// Order key column.
    pub key: String,
    /// Last-modified column.
    pub cursor: String,
    spec: SyncPipeline,
}

impl Extractor {
    /// Build the sources of a sync pipeline (no I/O yet).
    pub fn new(p: &Pipeline, spec: &SyncPipeline) -> Result<Self, ExtractError> {
        let mut src = spec.source.clone();
        // The cursor is always read as a time, in the source's time zone,
        // even when the pipeline does not declare its type.
        if let Some(cursor) = &src.cursor {
            src.columns
                .entry(cursor.clone())
                .or_insert(crate::pipeline::ColumnType::Timestamp.into());
        }
        let src = &src;
        let orders = Source::new(src, &p.resolve(&src.location))?;
        let lines = match &src.lines {
            Some(l) => {
                // Lines meet their orders on the key's text: an undeclared
                // lines key is read as the orders key is declared, so that
                // `000123` meets `123` when the orders key is an int64.
                let mut l = l.as_ref().clone();
                let order_key = src
                    .key
                    .as_ref()
                    .and_then(|k| k.columns().into_iter().next());
                if let Some(t) = order_key.and_then(|k| src.columns.get(&k)) {
                    l.columns.entry(l.key.clone()).or_insert_with(|| t.clone());
                }
                Some((
                    Source::for_lines(&l, &p.resolve(&l.location), src)?,
                    l.key.clone(),
                    l.field.clone(),
                ))
            }
            None => None,
        };
        Ok(Self {
            orders,
            lines,
            key: src
                .key
                .as_ref()
                .map(|k| k.columns().remove(0))
                .unwrap_or_default(),
            cursor: src.cursor.clone().unwrap_or_default(),
            spec: spec.clone(),
        })
    }

    /// Read and index lines files: `files`, or all that the lines location
    /// lists.
    pub async fn lines_index(
        &self,
        files: Option<&[SourceFile]>,
    ) -> Result<Option<LinesIndex>, ExtractError> {
        let Some((source, key, field)) = &self.lines else {
            return Ok(None);
        };
        let files = match files {
            Some(f) => f.to_vec(),
            None => source.list().await?,
        };
        let batches = self.lines_batches(&files).await?;
        let idx = LinesIndex::build(&batches, key, field, &source.location.display)?;
        Ok(Some(idx))
    }

    /// Index all lines files `all`, and say which order keys the files
    /// among them whose paths are in `new` have lines for.
    pub async fn lines_index_with_new(
        &self,
        all: &[SourceFile],
        new: &HashSet<String>,
    ) -> Result<Option<(LinesIndex, HashSet<String>)>, ExtractError> {
        let Some((source, key, field)) = &self.lines else {
            return Ok(None);
        };
        let mut batches = Vec::new();
        let mut keys = HashSet::new();
        for file in all {
            let got = self.lines_batches(std::slice::from_ref(file)).await?;
            if new.contains(file.path.as_ref()) {
                keys.extend(LinesIndex::keys_of(&got, key, &file.name)?);
            }
            batches.extend(got);
        }
        let idx = LinesIndex::build(&batches, key, field, &source.location.display)?;
        Ok(Some((idx, keys)))
    }

    async fn lines_batches(&self, files: &[SourceFile]) -> Result<Vec<RecordBatch>, ExtractError> {
        let Some((source, _, _)) = &self.lines else {
            return Ok(Vec::new());
        };
        let mut batches = Vec::new();
        for file in files {
            let data = source.fetch(file).await?;
            let s = source.clone();
            let f = file.clone();
            let got = tokio::task::spawn_blocking(move || {
                s.batches(&f, data)?.collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| SourceError::Parse {
                file: file.name.clone(),
                message: format!("reader thread failed: {e}"),
            })??;
            batches.extend(got);
        }
        Ok(batches)
    }

    /// With `lines.count`: the list column, the count column and how long
    /// an order with missing lines is held, in ms.
    pub fn lines_completeness(&self) -> Option<(&str, &str, i64)> {
        let lines = self.spec.source.lines.as_ref()?;
        let count = lines.count.as_deref()?;
        let wait = i64::try_from(lines.wait.get().as_millis()).unwrap_or(i64::MAX);
        Some((lines.field.as_str(), count, wait))
    }

    /// Nest lines (if any) and apply the pipeline's transforms to one orders batch.
    pub fn finish(
        &self,
        batch: &RecordBatch,
        lines: Option<&LinesIndex>,
        file: &str,
    ) -> Result<RecordBatch, ExtractError> {
        let batch = match lines {
            Some(idx) => idx.attach(batch, &self.key, file)?,
            None => batch.clone(),
        };
        Ok(apply_to_batch(&batch, &self.spec.transforms)?)
    }
}

/// Encode each row of a batch as one JSON object (nulls written explicitly).
pub fn records_json(batch: &RecordBatch) -> Result<Vec<String>, ExtractError> {
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
        writer.write(batch).map_err(ExtractError::Json)?;
        writer.finish().map_err(ExtractError::Json)?;
    }
    let text = String::from_utf8(buf)
        .map_err(|e| ExtractError::Json(arrow::error::ArrowError::ExternalError(Box::new(e))))?;
    Ok(text.lines().map(str::to_string).collect())
}
