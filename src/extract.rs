//! Extraction for sync pipelines: orders files, nested lines, transforms, as Arrow batches and JSON records.

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
                .or_insert(crate::pipeline::ColumnType::Timestamp);
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
                    l.columns.entry(l.key.clone()).or_insert(*t);
                }
                Some((
                    Source::for_lines(&l, &p.resolve(&l.location), &src.timezone)?,
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

    /// Read and index lines files.
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
        let mut batches = Vec::new();
        for file in &files {
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
        let idx = LinesIndex::build(&batches, key, field, &source.location.display)?;
        Ok(Some(idx))
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
