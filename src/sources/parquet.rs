//! Parquet reader: nested list and struct columns are kept as they are.

use std::fs::File;

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Batches, FileData, ReadOptions, SourceError};

pub(super) fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<(SchemaRef, Batches), SourceError> {
    let err = |e: parquet::errors::ParquetError| SourceError::Parse {
        file: name.to_string(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let (schema, reader) = match data {
        FileData::Local(path) => {
            let file = File::open(&path).map_err(|source| SourceError::Io {
                file: name.to_string(),
                source,
            })?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(err)?;
            let schema = builder.schema().clone();
            let reader = builder
                .with_batch_size(options.batch_size)
                .build()
                .map_err(err)?;
            (schema, reader)
        }
        FileData::Bytes(bytes) => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(err)?;
            let schema = builder.schema().clone();
            let reader = builder
                .with_batch_size(options.batch_size)
                .build()
                .map_err(err)?;
            (schema, reader)
        }
    };
    let name = name.to_string();
    Ok((
        schema,
        Box::new(reader.map(move |b| {
            b.map_err(|e| SourceError::Parse {
                file: name.clone(),
                message: e.to_string(),
            })
        })),
    ))
}
