//! `import flag` and `import run`: the initial import of a timeframe.

use crate::app::args::{ImportCommand, TimeArg};
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
            let p = pipeline::load(&file)?;
            let zone = p.as_sync()?.source.zone();
            let at = |flag: &str, t: TimeArg| {
                t.in_zone(&zone).map_err(|e| {
                    AppError::usage(format!(
                        "--{flag}: {e} (timezone {zone} of {})",
                        file.display()
                    ))
                })
            };
            let (from, to) = (at("from", from)?, at("to", to)?);
            if from >= to {
                return Err(AppError::usage(format!(
                    "--from {} must be before --to {}",
                    shown(from),
                    shown(to)
                )));
            }
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
                    "{}: {} order(s) from {} to {}: {} flagged, {} already queued, {} already delivered (use --force to resend), {} superseded; {} file(s) read",
                    p.name(),
                    s.matched,
                    shown(from),
                    shown(to),
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

/// An instant of the timeframe as the messages show it: RFC 3339 in UTC.
fn shown(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
