//! A check run end to end: both sides listed and fetched (async), the Polars plans built and run on a blocking thread beside the hashing of the inputs, the reports written all-or-nothing, and the outcome.

use std::path::{Path, PathBuf};

use super::check;
use super::error::ReconcileError;
use super::options::RunOptions;
use super::plan::{self, Spec};
use super::progress;
use super::report::ReportStyle;
use super::report::destination::{self, Target};
use super::report::{Summary, summarize, write_files};
use super::scan;
use crate::formats::table::CsvStyle;
use crate::pipeline::{Pipeline, SourceConfig};
use crate::reconcile::values::Spelling;

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
        destination::check_local(out)?;
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
    let style = ReportStyle {
        // Validation allows ASCII separators only.
        csv: CsvStyle::spreadsheet(spec.output.csv_delimiter as u8),
        xlsx: spec.output.xlsx,
    };
    let partitions = plan::partitions(&spec, opts, &left, &right)?;
    // Local reports replace the folder at once; remote ones are written to
    // a staging folder first, then uploaded.
    let (write_to, staging) = match &target {
        Target::Local(out) => (WriteTo::Replace(out.clone()), None),
        Target::Remote(_) => {
            let dir = destination::staging()?;
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
        let cspec = Spec {
            left_key: key(&spec.left),
            right_key: key(&spec.right),
            fields: spec.compare.clone(),
            duplicates: spec.duplicates,
            left_spelling: spelling(&spec.left.source),
            right_spelling: spelling(&spec.right.source),
            left_name: relative(&base_dir, &left_name),
            right_name: relative(&base_dir, &right_name),
            partitions,
            slices: spec.output.slices.clone(),
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
            let cmp = check::compare_with(l.input.clone(), r.input.clone(), &cspec, &steps);
            let inputs = hashing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (cmp, inputs)
        });
        let (cmp, inputs) = (cmp?, inputs?);
        let summary = summarize(&spec, &cmp, inputs, sample);
        steps("writing the reports");
        match &write_to {
            WriteTo::Replace(out) => destination::write_local(out, &cmp, &summary, style)?,
            WriteTo::Into(dir) => write_files(dir, &cmp, &summary, style)?,
        }
        // The sides (and transcoded temp files) live until the plans ran.
        drop((l, r));
        Ok(summary)
    })
    .await??;
    if let (Target::Remote(location), Some(dir)) = (&target, &staging) {
        steps(&format!("uploading the reports to {}", location.display));
        destination::upload(location, dir.path(), &style).await?;
    }
    steps("done");
    Ok(Outcome {
        summary,
        out: target,
    })
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

/// How a side writes values the comparison reads from text: its zone and
/// number format.
fn spelling(source: &SourceConfig) -> Spelling {
    Spelling {
        numbers: source.numbers,
        ..Spelling::plain(source.zone())
    }
}
