//! `validate`, `schema` and `preview`: looking at pipelines without running them.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::runtime;
use crate::extract::{Extractor, records_json};
use crate::pipeline::{self, Pipeline, PipelineSpec};

/// `validate FILES...`: every problem of every file, exit 2 if any.
pub fn validate(files: &[PathBuf], json: bool) -> Result<u8, AppError> {
    let mut invalid = 0;
    for file in files {
        let loaded = pipeline::load(file);
        invalid += usize::from(loaded.is_err());
        if json {
            println!("{}", validation_json(file, &loaded));
            continue;
        }
        match loaded {
            Ok(p) => println!(
                "{}: ok ({} pipeline `{}`)",
                file.display(),
                kind_name(&p),
                p.name()
            ),
            Err(e) => eprintln!("{e}"),
        }
    }
    if invalid > 0 && json {
        Ok(exit::USAGE)
    } else if invalid > 0 {
        eprintln!("{invalid} of {} pipeline file(s) invalid", files.len());
        Ok(exit::USAGE)
    } else {
        Ok(exit::OK)
    }
}

/// One file's verdict as a JSON line for `validate --json`.
fn validation_json(file: &Path, loaded: &Result<Pipeline, pipeline::PipelineError>) -> String {
    use serde_json::json;
    let v = match loaded {
        Ok(p) => json!({
            "file": file.display().to_string(),
            "valid": true,
            "kind": kind_name(p),
            "name": p.name(),
            "problems": [],
        }),
        Err(pipeline::PipelineError::Invalid(problems)) => json!({
            "file": file.display().to_string(),
            "valid": false,
            "problems": problems
                .iter()
                .map(|p| json!({
                    "line": p.line,
                    "column": p.col,
                    "path": p.path,
                    "message": p.message,
                }))
                .collect::<Vec<_>>(),
        }),
        Err(e) => json!({
            "file": file.display().to_string(),
            "valid": false,
            "problems": [{ "line": 0, "column": 0, "path": "", "message": e.to_string() }],
        }),
    };
    v.to_string()
}

fn kind_name(p: &Pipeline) -> &'static str {
    match p.spec {
        PipelineSpec::Sync(_) => "sync",
        PipelineSpec::Reconcile(_) => "reconcile",
    }
}

/// `schema`: the JSON Schema of pipeline files.
pub fn schema() -> Result<u8, AppError> {
    let schema = pipeline::json_schema();
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).map_err(AppError::failure)?
    );
    Ok(exit::OK)
}

/// `completions SHELL`: the completion script of every command and option.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, AppError> {
    let mut cmd = <crate::app::Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "s360-sync", &mut std::io::stdout());
    Ok(exit::OK)
}

/// `man`: the man page, from the same clap definitions as `--help`.
pub fn man() -> Result<u8, AppError> {
    let cmd = <crate::app::Cli as clap::CommandFactory>::command();
    // The page lists every command with its summary; `COMMAND --help`
    // has the rest.
    clap_mangen::Man::new(cmd)
        .render(&mut std::io::stdout().lock())
        .map_err(AppError::failure)?;
    Ok(exit::OK)
}

/// `preview PIPELINE`: the first records after lines and transforms, as a
/// table or JSON lines: exactly what would be sent.
pub fn preview(file: &Path, limit: usize, json: bool) -> Result<u8, AppError> {
    let p = pipeline::load(file)?;
    let out = runtime()?.block_on(first_records(&p, limit, json))?;
    print!("{out}");
    Ok(exit::OK)
}

async fn first_records(p: &Pipeline, limit: usize, json: bool) -> Result<String, AppError> {
    let spec = p.as_sync()?;
    let ex = Extractor::new(p, spec).map_err(AppError::failure)?;
    let lines = ex.lines_index(None).await.map_err(AppError::failure)?;
    let mut out: Vec<RecordBatch> = Vec::new();
    let mut n = 0;
    'files: for file in ex.orders.list().await.map_err(AppError::failure)? {
        let data = ex.orders.fetch(&file).await.map_err(AppError::failure)?;
        let batches = ex.orders.batches(&file, data).map_err(AppError::failure)?;
        for batch in batches {
            let batch = batch.map_err(AppError::failure)?;
            let batch = ex
                .finish(&batch, lines.as_ref(), &file.name)
                .map_err(AppError::failure)?;
            let take = (limit - n).min(batch.num_rows());
            out.push(batch.slice(0, take));
            n += take;
            if n >= limit {
                break 'files;
            }
        }
    }
    if json {
        let mut text = String::new();
        for b in &out {
            for r in records_json(b).map_err(AppError::failure)? {
                text.push_str(&r);
                text.push('\n');
            }
        }
        Ok(text)
    } else {
        let table = arrow::util::pretty::pretty_format_batches(&out).map_err(AppError::failure)?;
        Ok(format!("{table}\n{n} record(s) shown\n"))
    }
}
