//! Pipeline tests (`s360-sync test`): test files found in `tests/` folders, each running one pipeline offline on sample data (sync runs through the real sync code into an in-process receiver on 127.0.0.1, checks into a temporary report folder) and comparing what came out with what the file expects.
//!
//! Nothing outside a temporary folder is written, except snapshot files
//! rewritten on request (`--update`).

pub mod check;
mod inputs;
pub mod junit;
mod receiver;
mod reconcile;
mod sync;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pipeline::test_file::{Input, ParsedTest, TestFile};
use crate::pipeline::yaml::Positions;
use crate::pipeline::{self, Pipeline, PipelineError, PipelineSpec, Problem};
pub use check::Failure;

/// Why a test could not run as written.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// An input of the test is wrong (a file that cannot be read, a file
    /// to remove that is not there).
    #[error("{field}: {message}")]
    Input {
        /// The field of the test file.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A temporary file or folder could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl TestError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A test file, read and checked, with its pipeline loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The test file.
    pub file: PathBuf,
    /// Its folder: inputs and snapshots are relative to it.
    pub dir: PathBuf,
    /// What it says.
    pub spec: TestFile,
    /// Where its fields are.
    pub positions: Positions,
    /// The pipeline under test, as the test's `env` interpolates it.
    pub pipeline: Pipeline,
}

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

/// Every test file under `paths`: a path that is a file is a test file;
/// in a folder, the YAML files inside folders named `tests` (not in their
/// `testdata` or `snapshots` folders), except pipeline files kept there as
/// fixtures (`kind: sync` or `reconcile`). Sorted, each once.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Problem> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_file() {
            found.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            return Err(Problem {
                file: path.clone(),
                line: 1,
                col: 1,
                path: String::new(),
                message: "no such file or folder".into(),
            });
        }
        walk(path, path_has(path, "tests"), &mut found).map_err(|e| Problem {
            file: path.clone(),
            line: 1,
            col: 1,
            path: String::new(),
            message: format!("cannot list: {e}"),
        })?;
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn path_has(path: &Path, name: &str) -> bool {
    path.components().any(|c| c.as_os_str() == name)
}

fn walk(dir: &Path, in_tests: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if in_tests && (name == "testdata" || name == "snapshots") {
                continue;
            }
            walk(&path, in_tests || name == "tests", out)?;
        } else if in_tests
            && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && !is_pipeline_fixture(&path)
        {
            out.push(path);
        }
    }
    Ok(())
}

fn is_pipeline_fixture(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let no_env = |_: &str| Some(String::new());
    pipeline::yaml::load(&text, &no_env)
        .ok()
        .and_then(|(v, _)| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .is_some_and(|k| k == "sync" || k == "reconcile")
}

fn problem_at(file: &Path, positions: &Positions, field: &str, message: String) -> Problem {
    let pos = positions.value(field);
    Problem {
        file: file.to_path_buf(),
        line: pos.line,
        col: pos.col,
        path: field.to_string(),
        message,
    }
}

/// Read a test file, check it and load its pipeline; every problem found.
pub fn load(file: &Path) -> Result<Loaded, Vec<Problem>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![Problem {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            path: String::new(),
            message: format!("cannot read test file: {e}"),
        }]
    })?;
    let ParsedTest { spec, positions } = pipeline::test_file::parse(&text, file)?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let pipeline_file = PathBuf::from(pipeline::resolve_location(&dir, &spec.pipeline));
    let env = |name: &str| {
        spec.env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    };
    let p = match pipeline::load_with_env(&pipeline_file, &env) {
        Ok(p) => p,
        Err(PipelineError::Read { file: f, source }) => {
            return Err(vec![problem_at(
                file,
                &positions,
                "pipeline",
                format!("cannot read pipeline file {}: {source}", f.display()),
            )]);
        }
        Err(PipelineError::Invalid(mut problems)) => {
            problems.push(problem_at(
                file,
                &positions,
                "pipeline",
                format!(
                    "the pipeline under test, {}, is invalid",
                    pipeline_file.display()
                ),
            ));
            return Err(problems);
        }
    };
    let mut problems = Vec::new();
    match (&p.spec, spec.runs.is_empty()) {
        (PipelineSpec::Sync(_), true) => problems.push(problem_at(
            file,
            &positions,
            "expect",
            format!(
                "{} is a sync pipeline: its test has `runs`, not `expect`",
                pipeline_file.display()
            ),
        )),
        (PipelineSpec::Reconcile(_), false) => problems.push(problem_at(
            file,
            &positions,
            "runs",
            format!(
                "{} is a reconcile pipeline: its test has `expect`, not `runs`",
                pipeline_file.display()
            ),
        )),
        _ => {}
    }
    if let PipelineSpec::Sync(s) = &p.spec
        && s.source.lines.is_none()
        && let Some(i) = spec.runs.iter().position(|r| !r.lines.is_empty())
    {
        problems.push(problem_at(
            file,
            &positions,
            &format!("runs[{i}].lines"),
            "the pipeline reads no lines (`source.lines`)".into(),
        ));
    }
    let mut inputs: Vec<(String, &Input)> = Vec::new();
    for (i, run) in spec.runs.iter().enumerate() {
        for (side, list) in [("orders", &run.orders), ("lines", &run.lines)] {
            inputs.extend(
                list.iter()
                    .enumerate()
                    .map(|(j, input)| (format!("runs[{i}].{side}[{j}]"), input)),
            );
        }
    }
    for (side, list) in [("left", &spec.left), ("right", &spec.right)] {
        inputs.extend(
            list.iter()
                .enumerate()
                .map(|(j, input)| (format!("{side}[{j}]"), input)),
        );
    }
    for (at, input) in inputs {
        if let Some(f) = &input.file {
            let path = PathBuf::from(pipeline::resolve_location(&dir, f));
            if !path.is_file() {
                problems.push(problem_at(
                    file,
                    &positions,
                    &format!("{at}.file"),
                    format!("no such file: {}", path.display()),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Loaded {
        file: file.to_path_buf(),
        dir,
        spec,
        positions,
        pipeline: p,
    })
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

/// A temporary folder for one test, removed when dropped.
pub(crate) fn temp_dir() -> Result<tempfile::TempDir, TestError> {
    tempfile::Builder::new()
        .prefix("s360-sync-test-")
        .tempdir()
        .map_err(|e| TestError::io(&std::env::temp_dir(), e))
}

/// An error and its sources, in one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
