//! Parquet: the sync's arrow-rs batches and the check's Polars scan; nested list and struct columns are kept as they are, declared columns converted alike (see [`super::columns`]).

use std::fs::File;

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use parquet::file::reader::ChunkReader;

use polars::prelude::{HiveOptions, LazyFrame, ScanArgsParquet, ScanSources};

use super::{Batches, FileData, ReadOptions, check_columns, polars_error};
use crate::sources::error::SourceError;

/// The sync's reader: arrow-rs batches as the file types them.
pub fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<(SchemaRef, Batches), SourceError> {
    let err = |e: ParquetError| SourceError::Parse {
        file: name.to_string(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let (schema, reader) = match data {
        FileData::Local(path) => {
            let file = File::open(&path).map_err(|source| SourceError::Io {
                file: name.to_string(),
                source,
            })?;
            open(file, options.batch_size).map_err(err)?
        }
        FileData::Bytes(bytes) => open(bytes, options.batch_size).map_err(err)?,
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

/// The file's schema and a reader of its batches, from a file or bytes.
fn open<T: ChunkReader + 'static>(
    input: T,
    batch_size: usize,
) -> Result<(SchemaRef, ParquetRecordBatchReader), ParquetError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(input)?;
    let schema = builder.schema().clone();
    Ok((schema, builder.with_batch_size(batch_size).build()?))
}

/// The check's reader: a lazy Polars scan of one file's `sources`, with
/// keys and declared columns checked and declared columns converted.
pub fn scan(
    name: &str,
    sources: ScanSources,
    options: &ReadOptions,
) -> Result<LazyFrame, SourceError> {
    let args = ScanArgsParquet {
        glob: false,
        // One file at a time, with no partition values in its folder names
        // (Polars refuses to look for them in a buffer).
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut lf =
        LazyFrame::scan_parquet_sources(sources, args).map_err(|e| polars_error(name, e))?;
    let schema = lf.collect_schema().map_err(|e| polars_error(name, e))?;
    let present: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    check_columns(
        name,
        &present,
        options.text.iter().chain(options.columns.keys()),
    )?;
    Ok(super::columns::conform_frame(name, lf, options))
}
