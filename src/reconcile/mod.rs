//! The consistency check: two exports, normalised, joined on their key in Polars, every difference reported.
//!
//! [`run`] lists and fetches both sides (async), then builds and runs the
//! Polars plans on a blocking thread ([`scan`], [`compare`]) and writes the
//! reports all-or-nothing ([`report`], [`html`]).

pub mod compare;
pub mod html;
mod merge;
pub mod output;
pub mod partition;
pub mod progress;
pub mod report;
pub mod scan;
pub mod values;

use std::path::{Path, PathBuf};

use polars::prelude::PolarsError;

use crate::pipeline::{
    ByteSize, MAX_PARTITIONS, Pipeline, PipelineError, ReconcilePipeline, parse_offset,
};
use crate::sources::SourceError;
use crate::transforms::TransformError;

pub use compare::{Category, Comparison};
pub use output::Target;
pub use progress::Steps;
pub use report::{Counts, Summary};

/// Why a check could not finish. Every variant but `Output` is bad input or
/// an I/O failure (exit 1); no report file is written in either case.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The pipeline is not a reconcile pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Listing, fetching or parsing an export failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A transform step could not be built.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// A key, declared or compared column is absent.
    #[error("{file}: missing column `{column}` (columns present: {present})")]
    MissingColumn {
        /// The file, or the side after its transforms.
        file: String,
        /// The column.
        column: String,
        /// Columns that are there.
        present: String,
    },
    /// Reading or comparing failed in Polars (unparsable values name file and column).
    #[error("{context}: {source}")]
    Polars {
        /// Where.
        context: String,
        /// Cause.
        source: PolarsError,
    },
    /// `duplicates: fail` and a key appears more than once.
    #[error(
        "duplicate key on the {side} side: `{key}` appears {count} times ({keys} duplicated key(s) in all); `duplicates: fail` stops the check"
    )]
    Duplicates {
        /// `left` or `right`.
        side: String,
        /// The first duplicated key (parts joined by `|`).
        key: String,
        /// Rows with that key.
        count: u64,
        /// Duplicated keys on both sides.
        keys: usize,
    },
    /// A side has no rows at all to read.
    #[error("{side}: no records")]
    Empty {
        /// Side.
        side: String,
    },
    /// File system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The output location is not usable.
    #[error("output {dir:?}: {message}")]
    Output {
        /// As written.
        dir: String,
        /// Why.
        message: String,
    },
    /// Publishing a report object to the store failed.
    #[error("{action} {url}: {source}")]
    Upload {
        /// `reading`, `deleting` or `uploading`.
        action: &'static str,
        /// The object.
        url: String,
        /// Cause.
        source: object_store::Error,
    },
    /// Partitions were asked for, but a side's steps cannot run per partition.
    #[error("partitions: {0}")]
    Partitions(String),
    /// The blocking worker failed.
    #[error("reconcile worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// Command-line overrides.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Output folder or object store URL instead of `output.dir`.
    pub out: Option<String>,
    /// Sample rows per category instead of `output.sample`.
    pub sample: Option<usize>,
    /// Told each step of the check as it starts.
    pub steps: Option<Steps>,
    /// Partitions instead of `partitions`.
    pub partitions: Option<usize>,
    /// Memory limit instead of `memory_limit`.
    pub memory_limit: Option<ByteSize>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("out", &self.out)
            .field("sample", &self.sample)
            .field("steps", &self.steps.is_some())
            .field("partitions", &self.partitions)
            .field("memory_limit", &self.memory_limit)
            .finish()
    }
}

/// A finished check.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What `summary.json` says.
    pub summary: Summary,
    /// Where the reports are.
    pub out: Target,
}

impl Outcome {
    /// A few lines for people.
    pub fn human(&self) -> String {
        let s = &self.summary;
        let c = &s.counts;
        let mut out = format!(
            "{}: {} matched, {} missing in CRM, {} missing in S-360, {} mismatched, {} duplicate key(s), {} null key(s)\n",
            s.pipeline,
            c.matched,
            c.missing_in_crm,
            c.missing_in_s360,
            c.mismatched,
            c.duplicate_key,
            c.null_key
        );
        for t in &s.control_totals {
            out.push_str(&format!(
                "  total {}: S-360 {} / CRM {} (delta {})\n",
                t.field, t.left, t.right, t.delta
            ));
        }
        if s.passed {
            out.push_str("within thresholds\n");
        } else {
            out.push_str(&format!("thresholds exceeded: {}\n", s.exceeded.join(", ")));
        }
        out.push_str(&format!("reports in {}\n", self.out.display()));
        out
    }
}

/// Run the check of a reconcile pipeline and write its reports.
pub async fn run(p: &Pipeline, opts: &RunOptions) -> Result<Outcome, ReconcileError> {
    let spec = p.as_reconcile()?.clone();
    let target = Target::resolve(p, opts)?;
    if let Target::Local(out) = &target {
        // Before any work: a folder that is not a report is never written to.
        output::check_local(out)?;
    }
    let steps = opts.steps.clone().unwrap_or_else(progress::silent);
    steps(&format!("listing {}", spec.left.source.location));
    let left = scan::fetch_side(p, &spec.left).await?;
    steps(&format!("listing {}", spec.right.source.location));
    let right = scan::fetch_side(p, &spec.right).await?;
    let base_dir = p.base_dir.clone();
    let left_name = p.resolve(&spec.left.source.location);
    let right_name = p.resolve(&spec.right.source.location);
    let sample = opts.sample.unwrap_or(spec.output.sample);
    let partitions = partitions(&spec, opts, &left, &right)?;
    // Local reports replace the folder at once; remote ones are written to
    // a staging folder first, then uploaded.
    let (write_to, staging) = match &target {
        Target::Local(out) => (WriteTo::Replace(out.clone()), None),
        Target::Remote(_) => {
            let dir = output::staging()?;
            (WriteTo::Into(dir.path().to_path_buf()), Some(dir))
        }
    };
    let worker_steps = steps.clone();
    let summary = tokio::task::spawn_blocking(move || -> Result<Summary, ReconcileError> {
        let steps = worker_steps;
        let l = scan::build_side("left", &spec.left, &left)?;
        let r = scan::build_side("right", &spec.right, &right)?;
        let key = |s: &crate::pipeline::ReconcileSide| {
            s.source
                .key
                .as_ref()
                .map(|k| k.columns())
                .unwrap_or_default()
        };
        let cspec = compare::Spec {
            left_key: key(&spec.left),
            right_key: key(&spec.right),
            fields: spec.compare.clone(),
            duplicates: spec.duplicates,
            left_offset: parse_offset(&spec.left.source.timezone).unwrap_or(0),
            right_offset: parse_offset(&spec.right.source.timezone).unwrap_or(0),
            left_name: relative(&base_dir, &left_name),
            right_name: relative(&base_dir, &right_name),
            partitions,
        };
        // The inputs are hashed beside the comparison, not before it.
        let (cmp, inputs) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| -> Result<Vec<scan::InputFile>, ReconcileError> {
                let started = std::time::Instant::now();
                let mut inputs = scan::fingerprints("left", &base_dir, &left)?;
                inputs.extend(scan::fingerprints("right", &base_dir, &right)?);
                tracing::debug!(
                    seconds = started.elapsed().as_secs_f64(),
                    bytes = inputs.iter().map(|i| i.size).sum::<u64>(),
                    "inputs hashed"
                );
                Ok(inputs)
            });
            let cmp = compare::compare_with(l.input.clone(), r.input.clone(), &cspec, &steps);
            let inputs = hashing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (cmp, inputs)
        });
        let (cmp, inputs) = (cmp?, inputs?);
        let summary = report::summarize(&spec, &cmp, inputs, sample);
        steps("writing the reports");
        match &write_to {
            WriteTo::Replace(out) => output::write_local(out, &cmp, &summary)?,
            WriteTo::Into(dir) => report::write_files(dir, &cmp, &summary)?,
        }
        // The sides (and transcoded temp files) live until the plans ran.
        drop((l, r));
        Ok(summary)
    })
    .await??;
    if let (Target::Remote(location), Some(dir)) = (&target, &staging) {
        steps(&format!("uploading the reports to {}", location.display));
        output::upload(location, dir.path()).await?;
    }
    steps("done");
    Ok(Outcome {
        summary,
        out: target,
    })
}

/// How many partitions the check uses: as told (command line, then
/// pipeline), else as many as the memory limit calls for, given a rough
/// estimate of what both sides need all at once. A side whose steps cannot
/// run per partition refuses partitions that were asked for, and turns an
/// estimate's into one partition, with a warning.
fn partitions(
    spec: &ReconcilePipeline,
    opts: &RunOptions,
    left: &scan::Fetched,
    right: &scan::Fetched,
) -> Result<usize, ReconcileError> {
    let blocker = [("left", &spec.left), ("right", &spec.right)]
        .into_iter()
        .find_map(|(name, side)| {
            crate::transforms::partition_point(&side.transforms)
                .err()
                .map(|(i, why)| format!("{name}.transforms[{i}]: {why}"))
        });
    if let Some(n) = opts.partitions.or(spec.partitions) {
        let n = n.clamp(1, MAX_PARTITIONS);
        return match blocker {
            Some(why) if n > 1 => Err(ReconcileError::Partitions(why)),
            _ => Ok(n),
        };
    }
    let limit = opts
        .memory_limit
        .or(spec.memory_limit)
        .map(ByteSize::bytes)
        .unwrap_or_else(default_memory_limit)
        .max(1);
    let need = left
        .memory_estimate()
        .saturating_add(right.memory_estimate());
    let n = need.div_ceil(limit).clamp(1, MAX_PARTITIONS as u64) as usize;
    tracing::debug!(need, limit, partitions = n, "partitions");
    match blocker {
        Some(why) if n > 1 => {
            tracing::warn!(
                "the exports may need {n} partitions to fit in {}, but {why}; comparing all at once",
                ByteSize(limit)
            );
            Ok(1)
        }
        _ => Ok(n),
    }
}

/// Half of this machine's memory (`MemTotal`), or 4 GiB when unknown.
pub fn default_memory_limit() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

/// Where the worker writes the report files.
enum WriteTo {
    /// Stage beside this folder, then swap it in.
    Replace(PathBuf),
    /// Into this (empty staging) folder.
    Into(PathBuf),
}

fn relative(base: &Path, location: &str) -> String {
    Path::new(location)
        .strip_prefix(base)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| location.to_string())
}

#[cfg(test)]
mod tests;
