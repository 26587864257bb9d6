//! Finding test files (`tests/` folders) and loading one: the file parsed and checked, its pipeline read with the test's `env`, its kind and input files checked, every problem with its position.

use std::path::{Path, PathBuf};

use crate::pipeline::test_file::{Input, ParsedTest, TestFile};
use crate::pipeline::yaml::Positions;
use crate::pipeline::{self, Pipeline, PipelineError, PipelineSpec, Problem};

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
