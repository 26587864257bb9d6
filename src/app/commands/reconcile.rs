//! `reconcile`: the consistency check, its progress and its summary.

use std::path::Path;

use crate::app::commands::schedule::last_check;
use crate::app::commands::sync::write_replacing;
use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{check_steps, runtime};
use crate::pipeline::{self, ByteSize};

/// `reconcile PIPELINE`: write the reports, print the summary, exit 5 when
/// a count passes its `fail_if` threshold.
pub fn reconcile(
    file: &Path,
    out: Option<String>,
    sample: Option<usize>,
    json: bool,
    partitions: Option<u64>,
    memory_limit: Option<ByteSize>,
    metrics_file: Option<&Path>,
) -> Result<u8, AppError> {
    let started = std::time::Instant::now();
    let p = match pipeline::load(file) {
        Ok(p) => p,
        Err(e) => {
            // A pipeline that does not load is a failed check too.
            if let Some(path) = metrics_file {
                let name = file.file_stem().unwrap_or_default().to_string_lossy();
                let text = crate::metrics::check_textfile(last_check(&name, None, started));
                write_replacing(path, text.as_bytes())?;
            }
            return Err(e.into());
        }
    };
    let steps = (!json).then(|| check_steps(p.name()));
    let opts = crate::reconcile::RunOptions {
        out,
        sample,
        steps,
        partitions: partitions.map(|n| n as usize),
        memory_limit,
    };
    let result = runtime()?.block_on(crate::reconcile::run(&p, &opts));
    if let Some(path) = metrics_file {
        let text =
            crate::metrics::check_textfile(last_check(p.name(), result.as_ref().ok(), started));
        write_replacing(path, text.as_bytes())?;
    }
    let outcome = result?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome.summary).map_err(AppError::failure)?
        );
    } else {
        print!("{}", outcome.human());
    }
    Ok(exit::of_check(&outcome))
}
