//! NDJSON: one JSON object per line, types inferred from every line unless declared; read by arrow-rs for both the sync and the check (whose frames cross into Polars without copying).

use std::io::BufRead;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use polars::prelude::{IntoLazy, LazyFrame};

use super::columns::{arrow_type, spelled};
use super::{Batches, FileData, ReadOptions, check_complete, open};
use crate::engine::bridge::{self, BridgeError};
use crate::pipeline::{ColumnSpec, ColumnType};
use crate::sources::error::SourceError;

/// The schema of every line of the file. A key that first appears late in
/// the file is still a column (a sample would drop it from every row), and
/// a line that is not a JSON object is an error naming its line number.
fn infer(name: &str, data: &FileData) -> Result<Schema, SourceError> {
    let mut lines = open(name, data)?.lines().enumerate();
    let mut failed: Option<SourceError> = None;
    let values = std::iter::from_fn(|| {
        for (i, line) in lines.by_ref() {
            let at = |message: String| SourceError::Parse {
                file: name.to_string(),
                message: format!("line {}: {message}", i + 1),
            };
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    failed = Some(at(e.to_string()));
                    return None;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            return match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v @ serde_json::Value::Object(_)) => Some(v),
                Ok(_) => {
                    failed = Some(at("not a JSON object".into()));
                    None
                }
                Err(e) => {
                    failed = Some(at(format!("not valid JSON: {e}")));
                    None
                }
            };
        }
        None
    });
    let schema =
        arrow::json::reader::infer_json_schema_from_iterator(values.map(Ok::<_, ArrowError>))
            .map_err(|e| SourceError::parse(name, e));
    match failed {
        Some(e) => Err(e),
        None => schema,
    }
}

/// The type arrow-json reads a declared column as: its own, with naive
/// timestamps at a fixed offset; text for [`super::batch::conform`] to
/// convert when only our parsers read it (a named zone, a date format, a
/// local number spelling).
fn read_type(spec: &ColumnSpec, options: &ReadOptions) -> DataType {
    match (spec.ty, options.zone.fixed_offset()) {
        _ if spelled(spec, options) => DataType::Utf8,
        (ColumnType::Timestamp, Some(_)) => DataType::Timestamp(
            arrow::datatypes::TimeUnit::Millisecond,
            Some(options.zone.to_string().into()),
        ),
        (ColumnType::Timestamp, None) => DataType::Utf8,
        (t, _) => arrow_type(t),
    }
}

/// The sync's reader: arrow-json batches, strict.
pub fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<(SchemaRef, Batches), SourceError> {
    check_complete(name, &data)?;
    let inferred = infer(name, &data)?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match options.columns.get(f.name()) {
            Some(spec) => Field::new(f.name(), read_type(spec, options), true),
            None => f.as_ref().clone().with_nullable(true),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    // Strict: a key outside the schema is an error, never a dropped value.
    let reader = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(options.batch_size)
        .with_strict_mode(true)
        .build(open(name, &data)?)
        .map_err(|e| SourceError::parse(name, e))?;
    let name = name.to_string();
    Ok((
        schema,
        Box::new(reader.map(move |b| b.map_err(|e| SourceError::parse(&name, e)))),
    ))
}

/// The check's reader: the sync's batches (declared types and UTC already
/// applied), each crossing into Polars without copying. The side is held in
/// memory; CSV and Parquet are streamed instead.
pub fn frames(
    batches: Batches,
) -> impl Iterator<Item = Result<Result<LazyFrame, BridgeError>, SourceError>> {
    batches.map(|b| b.map(|b| bridge::to_polars(&b).map(|df| df.lazy())))
}
