//! Pipeline tests (`s360-sync test`): test files found in `tests/` folders, each running one pipeline offline on sample data (sync runs through the real sync code into an in-process receiver on 127.0.0.1, checks into a temporary report folder) and comparing what came out with what the file expects.
//!
//! Nothing outside a temporary folder is written, except snapshot files
//! rewritten on request (`--update`).

pub mod check;
mod error;
mod inputs;
pub mod junit;
mod load;
mod receiver;
mod reconcile;
mod sync;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pipeline::{PipelineSpec, Problem};
pub use check::Failure;
pub use error::TestError;
pub use load::{Loaded, discover, load};

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every expectation held.
    Ok,
    /// At least one did not.
    Failed,
    /// The test file is invalid; it did not run.
    Invalid,
}

/// The result of one test file.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// The test's name (the file's path when it could not be read).
    pub name: String,
    /// The test file.
    pub file: PathBuf,
    /// How it ended.
    pub status: Status,
    /// Wall time.
    #[serde(rename = "duration_ms", serialize_with = "as_ms")]
    pub duration: Duration,
    /// What did not hold.
    pub failures: Vec<Failure>,
    /// Why the file is invalid, one `FILE:LINE:COLUMN: FIELD: MESSAGE` each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Snapshot files rewritten (`--update`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub updated: Vec<PathBuf>,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl TestReport {
    /// A test file that could not be used.
    pub fn invalid(file: &Path, problems: &[Problem]) -> Self {
        Self {
            name: file.display().to_string(),
            file: file.to_path_buf(),
            status: Status::Invalid,
            duration: Duration::ZERO,
            failures: Vec::new(),
            problems: problems.iter().map(ToString::to_string).collect(),
            updated: Vec::new(),
        }
    }

    /// `FILE:LINE:COLUMN: FIELD: MESSAGE` of each failure, with its diff indented below.
    pub fn failure_text(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            out.push_str(&format!(
                "{}:{}:{}: {}{}\n",
                self.file.display(),
                f.line,
                f.col,
                if f.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", f.field)
                },
                f.message
            ));
            for line in f.diff.lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// Run one loaded test; `update` rewrites its snapshots instead of comparing them.
pub async fn run(t: &Loaded, update: bool) -> TestReport {
    let started = Instant::now();
    let mut checks = check::Checks::new(&t.positions, update);
    let ran = match t.pipeline.spec {
        PipelineSpec::Sync(_) => sync::run(t, &mut checks).await,
        PipelineSpec::Reconcile(_) => reconcile::run(t, &mut checks).await,
    };
    match ran {
        Ok(()) => {}
        Err(TestError::Input { field, message }) => checks.fail(&field, message, ""),
        Err(e) => checks.fail("", format!("the test could not run: {e}"), ""),
    }
    let failures = checks.failures;
    TestReport {
        name: t.spec.name.clone(),
        file: t.file.clone(),
        status: if failures.is_empty() {
            Status::Ok
        } else {
            Status::Failed
        },
        duration: started.elapsed(),
        failures,
        problems: Vec::new(),
        updated: checks.updated,
    }
}
