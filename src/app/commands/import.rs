//! `import flag` and `import run`: the initial import of a timeframe.

use crate::app::args::ImportCommand;
use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{cancel_on_signal, import_progress, print_json, runtime};
use crate::pipeline;

/// `import flag|run`.
pub fn import(cmd: ImportCommand) -> Result<u8, AppError> {
    match cmd {
        ImportCommand::Flag {
            pipeline: file,
            from,
            to,
            column,
            force,
            json,
        } => {
            if from >= to {
                return Err(AppError::usage(format!(
                    "--from {from} must be before --to {to}"
                )));
            }
            let p = pipeline::load(&file)?;
            let s = runtime()?.block_on(crate::sync::import::flag(
                &p,
                crate::sync::import::FlagOptions {
                    from,
                    to,
                    column,
                    force,
                },
            ))?;
            if json {
                print_json(&s)?;
            } else {
                println!(
                    "{}: {} order(s) in the timeframe: {} flagged, {} already queued, {} already delivered (use --force to resend), {} superseded; {} file(s) read",
                    p.name(),
                    s.matched,
                    s.flagged,
                    s.already_queued,
                    s.already_delivered,
                    s.superseded,
                    s.files
                );
            }
            Ok(exit::OK)
        }
        ImportCommand::Run {
            pipeline: file,
            concurrency,
            rate_limit,
            json,
        } => {
            let p = pipeline::load(&file)?;
            let rt = runtime()?;
            let summary = rt.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                cancel_on_signal(tx);
                let progress = (!json).then(|| import_progress(p.name()));
                crate::sync::import::run(
                    &p,
                    crate::sync::import::ImportRunOptions {
                        concurrency,
                        rate_limit,
                        progress,
                    },
                    rx,
                )
                .await
            })?;
            if json {
                print_json(&summary)?;
            } else {
                println!("{}", summary.line());
            }
            Ok(exit::of_run(&summary))
        }
    }
}
