//! One side of a consistency check as a Polars lazy frame: its files listed, downloaded when remote, fingerprinted, read by the check's reader of their format (`crate::formats`), combined, and transformed.

use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::error::ReconcileError;
use crate::engine::mapped::{self, Releaser};
use crate::formats::{csv, ndjson, parquet};
use crate::pipeline::{Encoding, Format, Pipeline, ReconcileSide};
use crate::sources::{FileData, Source, SourceFile};
use crate::transforms;

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
/// Blocking (reads CSV files to type their columns): run on a blocking thread.
pub fn build_side(
    name: &str,
    side: &ReconcileSide,
    fetched: &Fetched,
) -> Result<ScannedSide, ReconcileError> {
    let options = &fetched.source.options;
    let format = options.format;
    let tmp = if format == Format::Csv && side.source.csv.encoding != Encoding::Utf8 {
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
                let scanned = match (&tmp, format) {
                    (Some(dir), Format::Csv) => {
                        // Refused before it is copied, as for sync.
                        crate::formats::check_complete(&file.name, &FileData::Local(path.clone()))?;
                        csv::transcode(path, options.csv.encoding, dir.path(), frames.len())?
                    }
                    _ => path.clone(),
                };
                let (sources, map) =
                    mapped::scan_sources(&scanned).map_err(|source| ReconcileError::Io {
                        path: scanned.clone(),
                        source,
                    })?;
                maps.extend(map);
                frames.push(match format {
                    Format::Csv => csv::scan(&file.name, path, sources, options)?,
                    _ => parquet::scan(&file.name, sources, options)?,
                });
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

/// NDJSON is read by the arrow-rs reader, batch by batch into Polars.
fn read_through_arrow(side: &str, fetched: &Fetched) -> Result<LazyFrame, ReconcileError> {
    let mut frames = Vec::new();
    for (file, path) in &fetched.files {
        let batches = fetched
            .source
            .batches(file, FileData::Local(path.clone()))?;
        for frame in ndjson::frames(batches) {
            frames.push(frame?.map_err(|e| ReconcileError::Transform(e.into()))?);
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
