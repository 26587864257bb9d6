//! File formats: one module per format (CSV, Parquet, NDJSON), each with both readers (Arrow batches for sync, a Polars frame for consistency checks), over one conversion of declared types, time zones, encodings and key columns; and the one table writer.
//!
//! Both readers of a format follow the same policy, so one export is typed
//! alike by a sync run and by a check:
//! - undeclared CSV columns are typed by [`infer`] from every row of the file;
//! - key columns stay text unless declared, so `00123` keeps its zeros;
//! - declared columns are converted by [`columns`], timestamps to UTC
//!   milliseconds with naive ones read at the source's `timezone`;
//! - non-UTF-8 CSV is decoded the same way ([`columns::decode`]).

pub mod batch;
pub mod columns;
pub mod csv;
pub mod infer;
pub mod ndjson;
pub mod parquet;
pub mod table;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::PathBuf;

use arrow::array::RecordBatch;
use bytes::Bytes;

use crate::pipeline::{ColumnSpec, CsvOptions, Format, NumberFormat, Zone};
use crate::reconcile::values::Spelling;
use crate::sources::error::SourceError;

/// Time zone of every timestamp after reading.
pub const UTC: &str = "+00:00";

/// Longest text or binary value accepted in one cell. Larger values are
/// refused with the file, row and column: a single order field of this size
/// is a broken export, and a payload carrying it would be refused by the CRM.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The bytes of one file, ready to parse.
#[derive(Debug, Clone)]
pub enum FileData {
    /// A local file, read in a streaming way.
    Local(PathBuf),
    /// A fetched remote object.
    Bytes(Bytes),
}

/// Batches from one file, parsed lazily.
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch, SourceError>> + Send>;

/// How to read one set of files.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// File format.
    pub format: Format,
    /// CSV options.
    pub csv: CsvOptions,
    /// Declared column types, with their spelling.
    pub columns: BTreeMap<String, ColumnSpec>,
    /// Where timestamps written without an offset are.
    pub zone: Zone,
    /// How the source writes numbers.
    pub numbers: NumberFormat,
    /// Columns that must be present.
    pub required: Vec<String>,
    /// Key columns: read as text unless declared, because a CSV column whose
    /// type is guessed as a number would lose leading zeros (`000123`).
    pub text: Vec<String>,
    /// Rows per batch.
    pub batch_size: usize,
}

impl ReadOptions {
    /// Whether `column` is typed by the reader's guess: neither declared nor a key.
    pub fn is_guessed(&self, column: &str) -> bool {
        !self.columns.contains_key(column) && !self.text.iter().any(|t| t == column)
    }

    /// How the values of declared column `spec` are written.
    pub fn spelling(&self, spec: &ColumnSpec) -> Spelling {
        Spelling {
            zone: self.zone,
            numbers: spec.numbers(self.numbers),
            format: spec.format.clone(),
        }
    }
}

/// The sync's reader: parse one file into batches of its declared types,
/// timestamps in UTC, with the required columns (checked on the file's
/// schema, so that a file with a header and no rows is refused too).
/// Blocking: call from a blocking thread.
pub fn read(name: &str, data: FileData, options: &ReadOptions) -> Result<Batches, SourceError> {
    let (schema, raw) = match options.format {
        Format::Csv => csv::read(name, data, options)?,
        Format::Parquet => parquet::read(name, data, options)?,
        Format::Ndjson => ndjson::read(name, data, options)?,
    };
    let present: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    check_columns(
        name,
        &present,
        options.required.iter().chain(options.columns.keys()),
    )?;
    let name = name.to_string();
    let options = options.clone();
    let mut offset = 0usize;
    Ok(Box::new(raw.map(move |b| {
        let b = b?;
        let first_row = offset;
        offset += b.num_rows();
        batch::conform(&name, b, &options, first_row)
    })))
}

/// The raw bytes of a file as a reader.
pub(crate) fn open(name: &str, data: &FileData) -> Result<Box<dyn BufRead + Send>, SourceError> {
    let raw: Box<dyn Read + Send> = match data {
        FileData::Local(path) => Box::new(File::open(path).map_err(|source| SourceError::Io {
            file: name.to_string(),
            source,
        })?),
        FileData::Bytes(b) => Box::new(Cursor::new(b.clone())),
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, raw)))
}

/// A CSV or NDJSON file must hold something and end with a line break:
/// an export cut inside its last row (still being written, or a transfer
/// cut short) would otherwise be read as if it were whole (`2026-10-13`
/// for `2026-10-13 10:09:27`, `1` for `12`).
pub(crate) fn check_complete(file: &str, data: &FileData) -> Result<(), SourceError> {
    let last = match data {
        FileData::Bytes(b) => b.last().copied(),
        FileData::Local(path) => {
            use std::io::{Seek, SeekFrom};
            let io = |source| SourceError::Io {
                file: file.to_string(),
                source,
            };
            let mut f = std::fs::File::open(path).map_err(io)?;
            let len = f.metadata().map_err(io)?.len();
            if len == 0 {
                None
            } else {
                f.seek(SeekFrom::Start(len - 1)).map_err(io)?;
                let mut b = [0u8; 1];
                f.read_exact(&mut b).map_err(io)?;
                Some(b[0])
            }
        }
    };
    match last {
        None => Err(SourceError::Empty {
            file: file.to_string(),
        }),
        Some(b'\n' | b'\r') => Ok(()),
        Some(_) => Err(SourceError::Unfinished {
            file: file.to_string(),
        }),
    }
}

/// Every wanted column must be in the file (`present` holds the file's
/// columns in order); the message lists the columns it has.
pub(crate) fn check_columns<'a>(
    file: &str,
    present: &[&str],
    mut wanted: impl Iterator<Item = &'a String>,
) -> Result<(), SourceError> {
    match wanted.find(|c| !present.contains(&c.as_str())) {
        Some(column) => Err(SourceError::MissingColumn {
            file: file.to_string(),
            column: column.clone(),
            present: present.join(", "),
        }),
        None => Ok(()),
    }
}

/// A Polars error about one file.
pub(crate) fn polars_error(file: &str, source: polars::prelude::PolarsError) -> SourceError {
    SourceError::Polars {
        context: file.to_string(),
        source,
    }
}
