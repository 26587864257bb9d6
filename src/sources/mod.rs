//! Sources: export files (CSV, Parquet, NDJSON) on local disk or object storage, read as Arrow batches.
//!
//! A [`Source`] lists its files ([`Source::list`]), fetches one
//! ([`Source::fetch`], async) and parses it into a stream of batches on the
//! calling (blocking) thread ([`Source::batches`]). Local files are streamed
//! from disk; remote objects are fetched whole, then parsed, or downloaded to
//! a local file first ([`Source::download`], as consistency checks do).

mod csv;
pub mod location;
mod ndjson;
pub mod nest;
mod parquet;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use tokio::io::AsyncWriteExt;

use crate::pipeline::{ColumnType, CsvOptions, Format, LinesConfig, SourceConfig, parse_offset};
pub use location::Location;

/// Time zone of every timestamp after reading.
pub const UTC: &str = "+00:00";

/// Why a source could not be listed or read. Each names the file and, where
/// known, the row or column.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The location is not usable.
    #[error("{location}: {message}")]
    Location {
        /// As written.
        location: String,
        /// Why.
        message: String,
    },
    /// Listing or fetching failed.
    #[error("{location}: {}", location::redacted_chain(error))]
    Store {
        /// Location or file.
        location: String,
        /// Cause. Shown in the message with every URL in it redacted, and
        /// not exposed as the error's source: object_store's own messages
        /// carry request URLs with their credentials and queries.
        error: object_store::Error,
    },
    /// Reading from local disk failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file's content is malformed.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What is wrong, with row/column where the parser knows them.
        message: String,
    },
    /// A required or declared column is absent.
    #[error("{file}: missing column `{column}` (columns present: {present})")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Columns the file has.
        present: String,
    },
    /// No file matches the location.
    #[error("{location}: no file matches")]
    NoFiles {
        /// As written.
        location: String,
    },
    /// A CSV or NDJSON file is empty: not even a header line.
    #[error("{file}: the file is empty (0 bytes); it may still be being written")]
    Empty {
        /// The file.
        file: String,
    },
    /// A CSV or NDJSON file does not end with a line break, so its last row
    /// may be cut short (a half-written export).
    #[error(
        "{file}: the file does not end with a line break, so its last row may be cut short; \
         it may still be being written (it is read once it ends with a line break)"
    )]
    Unfinished {
        /// The file.
        file: String,
    },
    /// A server answered with a redirect, which is never followed.
    #[error(
        "{url}: the server answered {status}, redirecting to {to}; redirects are not followed \
         (point the location at the final address)"
    )]
    Redirect {
        /// The requested URL, without credentials or query.
        url: String,
        /// HTTP status.
        status: u16,
        /// The redirect target, without credentials or query.
        to: String,
    },
}

impl SourceError {
    fn parse(file: &str, e: impl std::fmt::Display) -> Self {
        Self::Parse {
            file: file.to_string(),
            message: e.to_string(),
        }
    }

    /// A store error, or [`SourceError::Redirect`] when the store was answered with one.
    fn store(location: &str, source: object_store::Error) -> Self {
        match location::redirect_in(&source) {
            Some(r) => Self::Redirect {
                url: r.url.clone(),
                status: r.status,
                to: r.to.clone(),
            },
            None => Self::Store {
                location: location.to_string(),
                error: source,
            },
        }
    }
}

/// Longest text or binary value accepted in one cell. Larger values are
/// refused with the file, row and column: a single order field of this size
/// is a broken export, and a payload carrying it would be refused by the CRM.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// One export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path inside the store.
    pub path: StorePath,
    /// Human name (local path or URL).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag when the store has one.
    pub etag: Option<String>,
    /// Last modification time.
    pub modified: DateTime<Utc>,
}

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
    /// Declared column types.
    pub columns: BTreeMap<String, ColumnType>,
    /// Offset of timestamps written without one.
    pub timezone: String,
    /// Columns that must be present.
    pub required: Vec<String>,
    /// Key columns: read as text unless declared, because a CSV column whose
    /// type is guessed as a number would lose leading zeros (`000123`).
    pub text: Vec<String>,
    /// Rows per batch.
    pub batch_size: usize,
}

/// A configured source of export files.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where the files are.
    pub location: Location,
    /// How to read them.
    pub options: ReadOptions,
}

impl Source {
    /// A source for an orders export; `location` must already be resolved.
    pub fn new(cfg: &SourceConfig, location: &str) -> Result<Self, SourceError> {
        let keys = cfg.key.as_ref().map(|k| k.columns()).unwrap_or_default();
        let mut required = keys.clone();
        required.extend(cfg.cursor.clone());
        Self::build(
            location,
            &cfg.storage,
            cfg.format,
            ReadOptions {
                format: Format::Csv,
                csv: cfg.csv.clone(),
                columns: cfg.columns.clone(),
                timezone: cfg.timezone.clone(),
                required,
                text: keys,
                batch_size: 8192,
            },
        )
    }

    /// A source for a lines export; `location` must already be resolved.
    pub fn for_lines(
        cfg: &LinesConfig,
        location: &str,
        timezone: &str,
    ) -> Result<Self, SourceError> {
        Self::build(
            location,
            &cfg.storage,
            cfg.format,
            ReadOptions {
                format: Format::Csv,
                csv: cfg.csv.clone(),
                columns: cfg.columns.clone(),
                timezone: timezone.to_string(),
                required: vec![cfg.key.clone()],
                text: vec![cfg.key.clone()],
                batch_size: 8192,
            },
        )
    }

    fn build(
        location: &str,
        storage: &BTreeMap<String, String>,
        format: Option<Format>,
        mut options: ReadOptions,
    ) -> Result<Self, SourceError> {
        options.format = format
            .or_else(|| Format::from_extension(location))
            .ok_or_else(|| SourceError::Location {
                location: location::without_credentials(location),
                message: "cannot tell the format from the extension; set `format`".into(),
            })?;
        if parse_offset(&options.timezone).is_none() {
            return Err(SourceError::Location {
                location: location::without_credentials(location),
                message: format!("bad timezone {:?}", options.timezone),
            });
        }
        Ok(Self {
            location: Location::parse(location, storage)?,
            options,
        })
    }

    /// The files of this source, sorted by path. Without a glob the location
    /// names one file, which must exist.
    pub async fn list(&self) -> Result<Vec<SourceFile>, SourceError> {
        let loc = &self.location;
        let store_err = |source| SourceError::store(&loc.display, source);
        let mut files = Vec::new();
        match &loc.glob {
            None => {
                let meta = loc.store.head(&loc.prefix).await.map_err(store_err)?;
                files.push(self.file_of(meta));
            }
            Some(glob) => {
                let listed: Vec<_> = loc
                    .store
                    .list(Some(&loc.prefix))
                    .try_collect()
                    .await
                    .map_err(store_err)?;
                for meta in listed {
                    if glob.is_match(meta.location.as_ref()) {
                        files.push(self.file_of(meta));
                    }
                }
                if files.is_empty() {
                    return Err(SourceError::NoFiles {
                        location: loc.display.clone(),
                    });
                }
            }
        }
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        Ok(files)
    }

    fn file_of(&self, meta: object_store::ObjectMeta) -> SourceFile {
        SourceFile {
            name: self.location.name_of(&meta.location),
            path: meta.location,
            size: meta.size,
            etag: meta.e_tag,
            modified: meta.last_modified,
        }
    }

    /// A file's path on local disk, for a local source.
    pub fn local_path(&self, file: &SourceFile) -> Option<PathBuf> {
        self.location
            .local
            .then(|| PathBuf::from(format!("/{}", file.path.as_ref())))
    }

    /// Get a file's bytes (remote) or its path (local).
    pub async fn fetch(&self, file: &SourceFile) -> Result<FileData, SourceError> {
        if let Some(path) = self.local_path(file) {
            return Ok(FileData::Local(path));
        }
        let got = self
            .location
            .store
            .get(&file.path)
            .await
            .map_err(|source| SourceError::store(&file.name, source))?;
        let bytes = got
            .bytes()
            .await
            .map_err(|source| SourceError::store(&file.name, source))?;
        Ok(FileData::Bytes(bytes))
    }

    /// Copy a (remote) file into `dest` chunk by chunk, so that an export
    /// larger than memory never has to fit in it. `dest` is created (or
    /// truncated).
    pub async fn download(&self, file: &SourceFile, dest: &Path) -> Result<(), SourceError> {
        let store_err = |source| SourceError::store(&file.name, source);
        let io_err = |source| SourceError::Io {
            file: format!("{} (downloading {})", dest.display(), file.name),
            source,
        };
        let got = self
            .location
            .store
            .get(&file.path)
            .await
            .map_err(store_err)?;
        let mut out = tokio::io::BufWriter::with_capacity(
            1 << 20,
            tokio::fs::File::create(dest).await.map_err(io_err)?,
        );
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.try_next().await.map_err(store_err)? {
            out.write_all(&chunk).await.map_err(io_err)?;
        }
        out.flush().await.map_err(io_err)
    }

    /// Parse a fetched file into batches. Blocking: call from a blocking thread.
    /// Every batch has the declared types, timestamps in UTC, and the required columns.
    pub fn batches(&self, file: &SourceFile, data: FileData) -> Result<Batches, SourceError> {
        let name = file.name.clone();
        let (schema, raw) = match self.options.format {
            Format::Csv => csv::read(&name, data, &self.options)?,
            Format::Parquet => parquet::read(&name, data, &self.options)?,
            Format::Ndjson => ndjson::read(&name, data, &self.options)?,
        };
        // Checked on the file's schema, so a file with a header and no rows
        // is refused too.
        check_columns(&name, &schema, &self.options)?;
        let options = self.options.clone();
        let mut offset = 0usize;
        Ok(Box::new(raw.map(move |b| {
            let b = b?;
            let first_row = offset;
            offset += b.num_rows();
            conform(&name, b, &options, first_row)
        })))
    }

    /// Read every file of the source (listing, fetching, parsing), in path order.
    /// For previews and small lines exports; sync runs read file by file.
    pub async fn read_all(&self) -> Result<Vec<RecordBatch>, SourceError> {
        let mut out = Vec::new();
        for file in self.list().await? {
            let data = self.fetch(&file).await?;
            let this = self.clone();
            let batches = tokio::task::spawn_blocking(move || {
                this.batches(&file, data)?.collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| SourceError::Parse {
                file: self.location.display.clone(),
                message: format!("reader thread failed: {e}"),
            })??;
            out.extend(batches);
        }
        Ok(out)
    }
}

/// The Arrow type of a declared column.
pub fn arrow_type(t: ColumnType, timezone: &str) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some(timezone.into())),
        ColumnType::Decimal(p, s) => DataType::Decimal128(p, s),
    }
}

/// Every required and declared column must be in the file.
fn check_columns(file: &str, schema: &Schema, options: &ReadOptions) -> Result<(), SourceError> {
    for column in options.required.iter().chain(options.columns.keys()) {
        if schema.index_of(column).is_err() {
            return Err(SourceError::MissingColumn {
                file: file.to_string(),
                column: column.clone(),
                present: schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// A CSV or NDJSON file must hold something and end with a line break:
/// an export cut inside its last row (still being written, or a transfer
/// cut short) would otherwise be read as if it were whole (`2026-10-13`
/// for `2026-10-13 10:09:27`, `1` for `12`).
pub(crate) fn check_complete(file: &str, data: &FileData) -> Result<(), SourceError> {
    let last = match data {
        FileData::Bytes(b) => b.last().copied(),
        FileData::Local(path) => {
            use std::io::{Read, Seek, SeekFrom};
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

/// Check required columns, cast declared ones that the format did not type
/// (Parquet, NDJSON), put every timestamp in UTC milliseconds, and refuse
/// values no order can hold (non-finite numbers, oversized cells).
fn conform(
    file: &str,
    batch: RecordBatch,
    options: &ReadOptions,
    first_row: usize,
) -> Result<RecordBatch, SourceError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut changed = false;
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let target = match options.columns.get(field.name()) {
            Some(t) => arrow_type(*t, &options.timezone),
            None => array.data_type().clone(),
        };
        let target = match target {
            DataType::Timestamp(_, _) => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
            }
            t => t,
        };
        if &target == array.data_type() {
            check_values(file, field.name(), array, first_row)?;
            fields.push(field.as_ref().clone());
            arrays.push(array.clone());
            continue;
        }
        changed = true;
        let cast = cast_checked(
            file,
            field.name(),
            array,
            &target,
            &options.timezone,
            first_row,
        )?;
        check_values(file, field.name(), &cast, first_row)?;
        fields.push(Field::new(field.name(), target, true));
        arrays.push(cast);
    }
    if !changed {
        return Ok(batch);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, arrays).map_err(|e| SourceError::parse(file, e))
}

/// Refuse a cell larger than [`MAX_VALUE_BYTES`] and a floating-point
/// number that is not finite (`1e999` read as infinity, `NaN`): neither is
/// an order's value, and JSON cannot carry the latter.
fn check_values(
    file: &str,
    column: &str,
    array: &ArrayRef,
    first_row: usize,
) -> Result<(), SourceError> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type};
    let bad = |row: usize, why: String| SourceError::Parse {
        file: file.to_string(),
        message: format!("data row {}, column `{column}`: {why}", first_row + row + 1),
    };
    let too_long = |row: usize, len: usize| {
        bad(
            row,
            format!(
                "a value of {len} bytes, over the limit of {MAX_VALUE_BYTES} bytes for one cell"
            ),
        )
    };
    // Offsets give every value's length without touching the values.
    let check_offsets = |lengths: &mut dyn Iterator<Item = usize>| match lengths
        .enumerate()
        .find(|&(_, len)| len > MAX_VALUE_BYTES)
    {
        Some((row, len)) => Err(too_long(row, len)),
        None => Ok(()),
    };
    match array.data_type() {
        DataType::Utf8 => check_offsets(&mut array.as_string::<i32>().offsets().lengths()),
        DataType::LargeUtf8 => check_offsets(&mut array.as_string::<i64>().offsets().lengths()),
        DataType::Binary => check_offsets(&mut array.as_binary::<i32>().offsets().lengths()),
        DataType::LargeBinary => check_offsets(&mut array.as_binary::<i64>().offsets().lengths()),
        DataType::Utf8View => check_offsets(
            &mut array
                .as_string_view()
                .views()
                .iter()
                .map(|v| *v as u32 as usize),
        ),
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            match (0..a.len()).find(|&i| a.is_valid(i) && !a.value(i).is_finite()) {
                Some(row) => Err(bad(
                    row,
                    format!("{} is not a finite number (out of range?)", a.value(row)),
                )),
                None => Ok(()),
            }
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            match (0..a.len()).find(|&i| a.is_valid(i) && !a.value(i).is_finite()) {
                Some(row) => Err(bad(
                    row,
                    format!("{} is not a finite number (out of range?)", a.value(row)),
                )),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Cast with errors that name the column and the first bad row.
fn cast_checked(
    file: &str,
    column: &str,
    array: &ArrayRef,
    target: &DataType,
    timezone: &str,
    first_row: usize,
) -> Result<ArrayRef, SourceError> {
    // A naive timestamp is first given the source's offset, then converted.
    let array = match (array.data_type(), target) {
        (DataType::Timestamp(unit, None), DataType::Timestamp(_, Some(_))) => {
            let with_tz = DataType::Timestamp(*unit, Some(timezone.into()));
            arrow::compute::cast(array, &with_tz).map_err(|e| SourceError::parse(file, e))?
        }
        _ => array.clone(),
    };
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(&array, target, &options).map_err(|e: ArrowError| {
        // Find the first row that does not convert, for the message.
        let safe = arrow::compute::cast(&array, target).ok();
        let row = safe.and_then(|s| (0..s.len()).find(|&i| s.is_null(i) && !array.is_null(i)));
        let at = row
            .map(|r| format!(" (first bad value in data row {})", first_row + r + 1))
            .unwrap_or_default();
        SourceError::Parse {
            file: file.to_string(),
            message: format!("column `{column}`: cannot read as {target}{at}: {e}"),
        }
    })
}
