//! `test`: the pipeline tests, a few at a time, one line each, a diff per failure, JUnit XML and JSON lines for CI.

use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;

use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{print_json, runtime};
use crate::testing::{self, Status, TestReport};

/// `test [PATH...]`: exit 0 when every test passes, 1 when any fails, 2
/// when a test file is invalid (or none is found).
pub fn test(
    paths: &[PathBuf],
    junit: Option<PathBuf>,
    json: bool,
    update: bool,
    filter: Option<String>,
    jobs: usize,
) -> Result<u8, AppError> {
    let started = Instant::now();
    let files = testing::discover(paths).map_err(|p| AppError::usage(p.to_string()))?;
    if files.is_empty() {
        let where_ = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(AppError::usage(format!(
            "no test files under {where_} (test files are YAML files with `kind: test` in a `tests` folder)"
        )));
    }
    let mut reports: Vec<TestReport> = Vec::new();
    let mut loaded = Vec::new();
    for file in &files {
        match testing::load(file) {
            Ok(t) => loaded.push(t),
            Err(problems) => {
                for p in &problems {
                    eprintln!("{p}");
                }
                let report = TestReport::invalid(file, &problems);
                if json {
                    print_json(&report)?;
                } else {
                    println!("INVALID {}", file.display());
                }
                reports.push(report);
            }
        }
    }
    if let Some(name) = &filter {
        loaded.retain(|t| t.spec.name.contains(name.as_str()));
        if loaded.is_empty() && reports.is_empty() {
            return Err(AppError::usage(format!("no test's name contains {name:?}")));
        }
    }
    let rt = runtime()?;
    let mut ran = rt.block_on(async {
        let mut done = Vec::new();
        let mut stream = futures::stream::iter(loaded.iter())
            .map(|t| testing::run(t, update))
            .buffer_unordered(jobs.max(1));
        while let Some(report) = stream.next().await {
            if json {
                print_json(&report)?;
            } else {
                print_human(&report);
            }
            done.push(report);
        }
        Ok::<_, AppError>(done)
    })?;
    reports.append(&mut ran);
    reports.sort_by(|a, b| a.file.cmp(&b.file));

    let count = |s: Status| reports.iter().filter(|r| r.status == s).count();
    let (passed, failed, invalid) = (
        count(Status::Ok),
        count(Status::Failed),
        count(Status::Invalid),
    );
    let line = format!(
        "{passed} passed, {failed} failed, {invalid} invalid; {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    if let Some(path) = junit {
        std::fs::write(&path, testing::junit::render(&reports)).map_err(|e| {
            AppError::failure(format!("cannot write JUnit report {}: {e}", path.display()))
        })?;
    }
    Ok(if invalid > 0 {
        exit::USAGE
    } else if failed > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

fn print_human(r: &TestReport) {
    let word = match r.status {
        Status::Ok => "ok     ",
        Status::Failed => "FAILED ",
        Status::Invalid => "INVALID",
    };
    println!(
        "{word} {} ({}) {:.2}s",
        r.name,
        r.file.display(),
        r.duration.as_secs_f64()
    );
    if r.status == Status::Failed {
        print!("{}", r.failure_text());
    }
    for f in &r.updated {
        println!("        updated snapshot {}", f.display());
    }
}
