//! `run`, `status`, `repair` and `dead-letters`: the day-to-day sync and its state.

use std::path::Path;

use crate::app::args::DeadLettersCommand;
use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{print_json, runtime};
use crate::pipeline;
use crate::state::StateStore;

/// `run PIPELINE`: one scheduled run; one summary line or JSON.
pub fn run(
    file: &Path,
    dry_run: bool,
    json: bool,
    force: bool,
    metrics_file: Option<&Path>,
) -> Result<u8, AppError> {
    let p = match pipeline::load(file) {
        Ok(p) => p,
        Err(e) => {
            // A pipeline that does not load is a failed run too.
            if let Some(path) = metrics_file {
                let name = file.file_stem().unwrap_or_default().to_string_lossy();
                let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                let previous = std::fs::read_to_string(path).ok();
                let text = crate::metrics::unloaded_textfile(previous.as_deref(), &name, now);
                write_replacing(path, text.as_bytes())?;
            }
            return Err(e.into());
        }
    };
    let rt = runtime()?;
    let result = rt.block_on(crate::sync::run(
        &p,
        crate::sync::RunOptions {
            dry_run,
            force,
            ..Default::default()
        },
    ));
    if let Some(path) = metrics_file {
        let outcome = match &result {
            Ok(s) => s.outcome().as_str(),
            Err(_) => "failed",
        };
        // The state as the run left it (none before a first run).
        let status = rt.block_on(crate::sync::status(&p)).ok().flatten();
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        let text = crate::metrics::textfile(
            p.name(),
            outcome,
            now,
            result.as_ref().ok(),
            status.as_ref(),
        );
        write_replacing(path, text.as_bytes())?;
    }
    let summary = result?;
    if json {
        print_json(&summary)?;
    } else {
        println!("{}", summary.line());
    }
    Ok(exit::of_run(&summary))
}

/// Write `bytes` to `path` whole: into a temporary file beside it, then
/// renamed over it, so a collector never reads half a file.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| AppError::failure(format!("{}: {e}", path.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    // Readable by the collector, which may run as another user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(fail)?;
    }
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// `status PIPELINE`: cursor, backlog, dead letters and the last runs.
pub fn status(file: &Path, json: bool) -> Result<u8, AppError> {
    let p = pipeline::load(file)?;
    let status = runtime()?.block_on(crate::sync::status(&p))?;
    match (status, json) {
        (None, true) => print_json(&serde_json::json!({"state": null}))?,
        (None, false) => println!("{}: no state yet (never run)", p.name()),
        (Some(s), true) => print_json(&s)?,
        (Some(s), false) => {
            println!("pipeline:      {}", p.name());
            match &s.cursor {
                Some((at, key)) => println!("cursor:        {at} / {key}"),
                None => println!("cursor:        (none)"),
            }
            println!("backlog:       {} ({} in flight)", s.backlog, s.in_flight);
            println!("dead letters:  {}", s.dead_letters);
            println!("delivered:     {} order(s)", s.delivered_orders);
            println!("files read:    {}", s.files_read);
            for r in &s.last_runs {
                println!(
                    "run {:>5}  {}  {:<7} {}",
                    r.id, r.started_at, r.kind, r.outcome
                );
            }
        }
    }
    Ok(exit::OK)
}

/// `repair REPORT --pipeline P`: flag a check's discrepant orders for re-sync.
pub fn repair(report_dir: &Path, file: &Path, json: bool) -> Result<u8, AppError> {
    let p = pipeline::load(file)?;
    let s = runtime()?.block_on(crate::sync::repair::repair(report_dir, &p))?;
    if json {
        print_json(&s)?;
    } else {
        println!(
            "{}: {} order(s) in the report to re-sync: {} flagged, {} already queued",
            p.name(),
            s.in_report,
            s.flagged,
            s.already_queued
        );
        if !s.not_found.is_empty() {
            println!(
                "not in the S-360 exports (cannot be re-sent): {}",
                s.not_found.join(", ")
            );
        }
    }
    Ok(exit::OK)
}

/// `dead-letters list|replay`.
pub fn dead_letters(cmd: DeadLettersCommand) -> Result<u8, AppError> {
    let (file, replay_ids, json) = match cmd {
        DeadLettersCommand::List { pipeline, json } => (pipeline, None, json),
        DeadLettersCommand::Replay {
            pipeline,
            ids,
            json,
        } => (pipeline, Some(ids), json),
    };
    let p = pipeline::load(&file)?;
    let spec = p.as_sync()?;
    let path = crate::sync::state_path(&p, spec);
    let opened =
        StateStore::open_existing(&path, &spec.name).map_err(crate::sync::SyncError::from)?;
    let Some(mut store) = opened else {
        match (json, replay_ids.is_some()) {
            (true, false) => print_json(&serde_json::json!([]))?,
            (true, true) => print_json(&serde_json::json!({ "queued": 0 }))?,
            (false, _) => println!("{}: no state yet (never run)", p.name()),
        }
        return Ok(exit::OK);
    };
    match replay_ids {
        None => {
            let list = store.dead_letters().map_err(AppError::failure)?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("no dead letters");
            } else {
                for d in list {
                    let status = d
                        .status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{:>6}  {}  key {} v{}  HTTP {status}  {}",
                        d.id, d.at, d.key, d.version, d.reason
                    );
                }
            }
        }
        Some(ids) => {
            let _lock = crate::state::lock::RunLock::acquire(&path).map_err(|e| AppError {
                code: exit::LOCKED,
                error: e.into(),
            })?;
            let ids = (!ids.is_empty()).then_some(ids);
            let n = store
                .replay_dead_letters(ids.as_deref())
                .map_err(AppError::failure)?;
            if json {
                print_json(&serde_json::json!({ "queued": n }))?;
            } else {
                println!("{n} dead letter(s) queued again; the next run sends them");
            }
        }
    }
    Ok(exit::OK)
}
