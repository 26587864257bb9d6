//! NDJSON reader: one JSON object per line; types inferred from the first rows unless declared.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema};

use super::{Batches, FileData, ReadOptions, SourceError, arrow_type};

const INFER_ROWS: usize = 1000;

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

pub(super) fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<Batches, SourceError> {
    let (inferred, _) =
        arrow::json::reader::infer_json_schema(open(name, &data)?, Some(INFER_ROWS))
            .map_err(|e| SourceError::parse(name, e))?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match options.columns.get(f.name()) {
            Some(t) => Field::new(f.name(), arrow_type(*t, &options.timezone), true),
            None => f.as_ref().clone().with_nullable(true),
        })
        .collect();
    let reader = arrow::json::ReaderBuilder::new(Arc::new(Schema::new(fields)))
        .with_batch_size(options.batch_size)
        .build(open(name, &data)?)
        .map_err(|e| SourceError::parse(name, e))?;
    let name = name.to_string();
    Ok(Box::new(
        reader.map(move |b| b.map_err(|e| SourceError::parse(&name, e))),
    ))
}
