//! NDJSON reader: one JSON object per line; types inferred from every line unless declared.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::{Batches, FileData, ReadOptions, SourceError, arrow_type, check_complete};

fn open(name: &str, data: &FileData) -> Result<Box<dyn BufRead + Send>, SourceError> {
    let raw: Box<dyn Read + Send> = match data {
        FileData::Local(path) => Box::new(File::open(path).map_err(|source| SourceError::Io {
            file: name.to_string(),
            source,
        })?),
        FileData::Bytes(b) => Box::new(Cursor::new(b.clone())),
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, raw)))
}

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

pub(super) fn read(
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
            Some(t) => Field::new(f.name(), arrow_type(*t, &options.timezone), true),
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
