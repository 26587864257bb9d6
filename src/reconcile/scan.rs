//! One side of a consistency check as a Polars lazy frame: CSV and Parquet (local, or downloaded from an object store) scanned lazily, NDJSON read through the arrow-rs sources.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use super::error::ReconcileError;
use super::values::{to_epoch_ms, to_scaled};
use crate::engine::mapped::{self, Releaser};
use crate::pipeline::{ColumnType, Encoding, Format, Pipeline, ReconcileSide, parse_offset};
use crate::sources::{FileData, Source, SourceFile};
use crate::transforms::{self, polars_type};

/// Rows Polars reads to infer the types of undeclared CSV columns.
const INFER_ROWS: usize = 10_000;

/// One input file and its fingerprint, as listed in `summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputFile {
    /// `left` or `right`.
    pub side: String,
    /// Path relative to the pipeline folder when below it, else as listed.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 hash of the bytes, lower-case hex (`b3sum` prints the same).
    pub blake3: String,
}

/// The files of one side, listed and (for remote stores) downloaded.
#[derive(Debug)]
pub struct Fetched {
    source: Source,
    /// Each file and where it is on local disk (itself, or its download).
    files: Vec<(SourceFile, PathBuf)>,
    /// Local copies of remote files; removed when dropped.
    _downloads: Option<tempfile::TempDir>,
}

/// A side ready to join: its plan (after transforms).
pub struct ScannedSide {
    /// The side's records after its transforms; nothing is read yet, and
    /// where a partitioned check can cut them.
    pub input: super::partition::Input,
    /// Transcoded copies of non-UTF-8 CSV files; removed when dropped.
    _tmp: Option<tempfile::TempDir>,
    /// Gives back the pages of the side's mapped files while it is read.
    _release: Releaser,
}

impl std::fmt::Debug for ScannedSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannedSide").finish_non_exhaustive()
    }
}

impl Fetched {
    /// A rough guess of the memory an all-at-once check needs for this side:
    /// its bytes times what reading them took in the benchmarks (CSV and
    /// NDJSON about 2x their size, Parquet, compressed, about 12x).
    pub fn memory_estimate(&self) -> u64 {
        let factor = match self.source.options.format {
            Format::Parquet => 12,
            Format::Csv | Format::Ndjson => 2,
        };
        let bytes: u64 = self.files.iter().map(|(f, _)| f.size).sum();
        bytes.saturating_mul(factor)
    }
}

/// List a side's files, and download remote ones into a temporary folder
/// (`TMPDIR`), chunk by chunk: they are then read like local files, streamed
/// and with bounded memory. The only async part.
pub async fn fetch_side(p: &Pipeline, side: &ReconcileSide) -> Result<Fetched, ReconcileError> {
    let source = Source::new(&side.source, &p.resolve(&side.source.location))?;
    let mut downloads: Option<tempfile::TempDir> = None;
    let mut files = Vec::new();
    for (n, file) in source.list().await?.into_iter().enumerate() {
        let path = match source.local_path(&file) {
            Some(path) => path,
            None => {
                let dir = match &downloads {
                    Some(dir) => dir,
                    None => downloads.insert(tempfile::tempdir().map_err(|source| {
                        ReconcileError::Io {
                            path: std::env::temp_dir(),
                            source,
                        }
                    })?),
                };
                let dest = dir.path().join(format!("{n}.{}", source.options.format));
                source.download(&file, &dest).await?;
                tracing::debug!(file = %file.name, to = %dest.display(), "downloaded");
                dest
            }
        };
        files.push((file, path));
    }
    Ok(Fetched {
        source,
        files,
        _downloads: downloads,
    })
}

/// The files of a side and their fingerprints (size, BLAKE3), in path order.
/// Blocking: reads every byte.
pub fn fingerprints(
    name: &str,
    base_dir: &Path,
    fetched: &Fetched,
) -> Result<Vec<InputFile>, ReconcileError> {
    fetched
        .files
        .iter()
        .map(|(f, path)| fingerprint(name, base_dir, f, path))
        .collect()
}

/// Build a side's lazy plan: readers, declared types, transforms.
/// Blocking (reads CSV headers): run on a blocking thread.
pub fn build_side(
    name: &str,
    side: &ReconcileSide,
    fetched: &Fetched,
) -> Result<ScannedSide, ReconcileError> {
    let src = &side.source;
    let offset = parse_offset(&src.timezone).unwrap_or(0);
    let format = fetched.source.options.format;
    let key = src.key.as_ref().map(|k| k.columns()).unwrap_or_default();
    let tmp = if format == Format::Csv && src.csv.encoding != Encoding::Utf8 {
        Some(tempfile::tempdir().map_err(|source| ReconcileError::Io {
            path: std::env::temp_dir(),
            source,
        })?)
    } else {
        None
    };
    let mut maps = Vec::new();
    let lf = match format {
        Format::Csv | Format::Parquet => {
            let mut frames = Vec::with_capacity(fetched.files.len());
            for (file, path) in &fetched.files {
                // A half-written CSV export is refused, as for sync.
                if format == Format::Csv {
                    crate::sources::check_complete(
                        &file.name,
                        &crate::sources::FileData::Local(path.clone()),
                    )?;
                }
                let path = match (&tmp, format) {
                    (Some(dir), Format::Csv) => transcode(path, dir.path(), frames.len())?,
                    _ => path.clone(),
                };
                let (sources, map) =
                    mapped::scan_sources(&path).map_err(|source| ReconcileError::Io {
                        path: path.clone(),
                        source,
                    })?;
                maps.extend(map);
                let lf = match format {
                    Format::Csv => scan_csv(&file.name, sources, side, &key)?,
                    _ => scan_parquet(&file.name, sources)?,
                };
                frames.push(conform(&file.name, lf, side, &key, offset)?);
            }
            concat_frames(frames, name)?
        }
        Format::Ndjson => read_through_arrow(name, fetched)?,
    };
    let stage = match transforms::partition_point(&side.transforms) {
        Ok(None) => Ok(None),
        Ok(Some((at, by))) => Ok(Some(super::partition::Stage {
            prefix: transforms::apply(lf.clone(), &side.transforms[..at])?,
            by: by.to_vec(),
            rest: side.transforms[at..].to_vec(),
        })),
        Err((i, why)) => Err(format!("{name}.transforms[{i}]: {why}")),
    };
    let lf = transforms::apply_with(lf, &side.transforms, transforms::RowOrder::Any)?;
    Ok(ScannedSide {
        input: super::partition::Input { lf, stage },
        _tmp: tmp,
        _release: Releaser::start(maps),
    })
}

fn concat_frames(frames: Vec<LazyFrame>, side: &str) -> Result<LazyFrame, ReconcileError> {
    let mut frames = frames;
    if frames.len() == 1
        && let Some(only) = frames.pop()
    {
        return Ok(only);
    }
    // A lazy union: the files are read in one streaming pass, never stacked
    // in memory. Types inferred differently per CSV file meet at their supertype.
    let args = UnionArgs {
        to_supertypes: true,
        ..Default::default()
    };
    concat(frames, args).map_err(|source| ReconcileError::Polars {
        context: format!("{side}: combining the files"),
        source,
    })
}

fn perr(file: &str, source: PolarsError) -> ReconcileError {
    ReconcileError::Polars {
        context: file.to_string(),
        source,
    }
}

fn scan_csv(
    name: &str,
    sources: ScanSources,
    side: &ReconcileSide,
    key: &[String],
) -> Result<LazyFrame, ReconcileError> {
    let o = &side.source.csv;
    let reader = |overrides: Option<SchemaRef>| {
        let mut r = LazyCsvReader::new_with_sources(sources.clone())
            .with_separator(o.delimiter as u8)
            .with_quote_char(Some(o.quote as u8))
            .with_has_header(o.header)
            .with_infer_schema_length(Some(INFER_ROWS))
            .with_glob(false)
            .with_dtype_overwrite(overrides);
        if !o.null_values.is_empty() {
            r = r.with_null_values(Some(NullValues::AllColumns(
                o.null_values
                    .iter()
                    .map(|v| PlSmallStr::from(v.as_str()))
                    .collect(),
            )));
        }
        r.finish()
    };
    // Read the header first, so the overrides name only present columns and
    // a missing one gets our message rather than Polars'.
    let mut probe = reader(None).map_err(|e| perr(name, e))?;
    let schema = probe.collect_schema().map_err(|e| perr(name, e))?;
    check_columns(name, &schema, side, key)?;
    // Keys and declared columns are read as text: keys keep leading zeros,
    // and declared types are parsed by `conform` with messages naming the file.
    let mut overrides = Schema::default();
    for c in key.iter().chain(side.source.columns.keys()) {
        if schema.contains(c) {
            overrides.with_column(c.as_str().into(), DataType::String);
        }
    }
    reader(Some(Arc::new(overrides))).map_err(|e| perr(name, e))
}

fn scan_parquet(name: &str, sources: ScanSources) -> Result<LazyFrame, ReconcileError> {
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
    LazyFrame::scan_parquet_sources(sources, args).map_err(|e| perr(name, e))
}

fn check_columns(
    file: &str,
    schema: &Schema,
    side: &ReconcileSide,
    key: &[String],
) -> Result<(), ReconcileError> {
    for column in key.iter().chain(side.source.columns.keys()) {
        if !schema.contains(column) {
            return Err(ReconcileError::MissingColumn {
                file: file.to_string(),
                column: column.clone(),
                present: schema
                    .iter_names()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// Give declared columns their types; values that do not parse fail the run
/// with the file and column named.
fn conform(
    name: &str,
    mut lf: LazyFrame,
    side: &ReconcileSide,
    key: &[String],
    offset: i32,
) -> Result<LazyFrame, ReconcileError> {
    let schema = lf.collect_schema().map_err(|e| perr(name, e))?;
    check_columns(name, &schema, side, key)?;
    let file: Arc<str> = Arc::from(name);
    let exprs: Vec<Expr> = side
        .source
        .columns
        .iter()
        .map(|(c, t)| conform_expr(c, *t, offset, file.clone()))
        .collect();
    Ok(if exprs.is_empty() {
        lf
    } else {
        lf.with_columns(exprs)
    })
}

fn conform_expr(column: &str, t: ColumnType, offset: i32, file: Arc<str>) -> Expr {
    let name = column.to_string();
    col(column).map(
        move |c| conform_column(&c, t, offset, &file, &name),
        move |_, f| Ok(Field::new(f.name().clone(), polars_type(t))),
    )
}

/// Convert one column to its declared type (timestamps to UTC milliseconds,
/// naive ones read in the side's `timezone`).
pub(crate) fn conform_column(
    c: &Column,
    t: ColumnType,
    offset: i32,
    file: &str,
    name: &str,
) -> PolarsResult<Column> {
    let s = c.as_materialized_series();
    let bad = |why: String| polars_err!(ComputeError: "{file}: column `{name}`: {why}");
    let out: Series = match t {
        ColumnType::Timestamp => to_epoch_ms(s, offset)
            .map_err(bad)?
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_series(),
        ColumnType::Decimal(p, sc) => to_scaled(s, sc as u32)
            .map_err(bad)?
            .into_decimal(p as usize, sc as usize)
            .map_err(|e| bad(e.to_string()))?
            .into_series(),
        other => {
            let target = polars_type(other);
            if s.dtype() == &target {
                s.clone()
            } else {
                s.strict_cast(&target).map_err(|e| bad(e.to_string()))?
            }
        }
    };
    Ok(out.with_name(c.name().clone()).into_column())
}

/// NDJSON goes through the arrow-rs reader (which already applies declared
/// types and UTC), then crosses into Polars without copying. The side is
/// held in memory; CSV and Parquet are streamed instead.
fn read_through_arrow(side: &str, fetched: &Fetched) -> Result<LazyFrame, ReconcileError> {
    let mut frames = Vec::new();
    for (file, path) in &fetched.files {
        for batch in fetched
            .source
            .batches(file, FileData::Local(path.clone()))?
        {
            let batch = batch?;
            let df = crate::engine::bridge::to_polars(&batch)
                .map_err(|e| ReconcileError::Transform(e.into()))?;
            frames.push(df.lazy());
        }
    }
    if frames.is_empty() {
        return Err(ReconcileError::Empty {
            side: side.to_string(),
        });
    }
    concat_frames(frames, side)
}

fn fingerprint(
    side: &str,
    base_dir: &Path,
    file: &SourceFile,
    path: &Path,
) -> Result<InputFile, ReconcileError> {
    let mut hasher = blake3::Hasher::new();
    let io = |source| ReconcileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let blake3 = hasher.finalize().to_hex().to_string();
    Ok(InputFile {
        side: side.to_string(),
        path: display_path(base_dir, &file.name),
        size,
        blake3,
    })
}

/// A local path relative to the pipeline folder (`../testdata/x.csv`), so the
/// summary is the same wherever the checkout lives; URLs stay as they are.
fn display_path(base_dir: &Path, name: &str) -> String {
    if name.contains("://") {
        return name.to_string();
    }
    let (Ok(base), Ok(path)) = (std::fs::canonicalize(base_dir), std::fs::canonicalize(name))
    else {
        return name.to_string();
    };
    let b: Vec<_> = base.components().collect();
    let p: Vec<_> = path.components().collect();
    let common = b.iter().zip(&p).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    rel.to_string_lossy().into_owned()
}

/// Decode a Windows-1252 file into a UTF-8 copy that Polars can scan.
fn transcode(path: &Path, dir: &Path, n: usize) -> Result<PathBuf, ReconcileError> {
    let out = dir.join(format!("{n}.csv"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReconcileError::Io { path, source }
    };
    let input = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding_rs::WINDOWS_1252))
        .build(std::io::BufReader::new(input));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).map_err(io(&out))?);
    std::io::copy(&mut reader, &mut w).map_err(io(path))?;
    w.flush().map_err(io(&out))?;
    Ok(out)
}
