//! `reconcile`: the consistency check, its progress and its summary.

use std::path::Path;

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
) -> Result<u8, AppError> {
    let p = pipeline::load(file)?;
    let steps = (!json).then(|| check_steps(p.name()));
    let opts = crate::reconcile::RunOptions {
        out,
        sample,
        steps,
        partitions: partitions.map(|n| n as usize),
        memory_limit,
    };
    let outcome = runtime()?.block_on(crate::reconcile::run(&p, &opts))?;
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
