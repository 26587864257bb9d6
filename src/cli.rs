//! Command-line interface: argument types (clap) and dispatch to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::pipeline;

/// Keeps an external CRM in step with the orders of S-360, and proves it.
///
/// Pipeline files (YAML) describe a day-to-day sync (S-360 exports to a CRM
/// webhook) or a consistency check (an S-360 export against a CRM export).
/// Start with `s360-sync validate pipelines/*.yaml`.
///
/// Exit codes: 0 ok, 1 runtime failure, 2 usage or invalid pipeline,
/// 3 delivery stopped by the CRM (nothing lost), 4 another run holds the lock,
/// 5 discrepancies found, 6 run incomplete (dead letters or deadline).
#[derive(Debug, Parser)]
#[command(name = "s360-sync", version, max_term_width = 100)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check pipeline files without touching files, network or state.
    ///
    /// Reports every problem as FILE:LINE:COLUMN: FIELD: MESSAGE and exits
    /// with 2 when any file is invalid.
    Validate {
        /// Pipeline files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of pipeline files (for editor validation).
    Schema,
    /// Show the first records after transforms: exactly what would be sent.
    Preview {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Records to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print JSON records (one per line) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write deterministic sample S-360 and CRM exports of any size.
    Gen(crate::generate::GenArgs),
    /// Compare an S-360 export with a CRM export and write discrepancy reports.
    ///
    /// Exits with 5 when a count exceeds the pipeline's `fail_if` threshold,
    /// 1 on bad input (no report is written then), 2 on a bad pipeline.
    Reconcile {
        /// A reconcile pipeline file.
        pipeline: PathBuf,
        /// Report folder (default: `output.dir`, else `reports/<name>` beside the pipeline).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Discrepancy rows per category shown in the summaries.
        #[arg(long)]
        sample: Option<usize>,
        /// Print the summary as JSON instead of a few lines.
        #[arg(long)]
        json: bool,
    },
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// Process exit code.
    pub code: u8,
    /// What went wrong.
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl CliError {
    /// A runtime failure (exit 1).
    pub fn failure(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: exit::FAILURE,
            error: e.into(),
        }
    }

    /// A usage or configuration error (exit 2).
    pub fn usage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: exit::USAGE,
            error: e.into(),
        }
    }
}

impl From<pipeline::PipelineError> for CliError {
    fn from(e: pipeline::PipelineError) -> Self {
        Self::usage(e)
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::failure)
}

/// Run a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    init_logging(cli.verbose, cli.log_format);
    match cli.command {
        Command::Validate { files } => {
            let mut invalid = 0;
            for file in &files {
                match pipeline::load(file) {
                    Ok(p) => println!("{}: ok ({} pipeline `{}`)", file.display(), kind_name(&p), p.name()),
                    Err(e) => {
                        invalid += 1;
                        eprintln!("{e}");
                    }
                }
            }
            if invalid > 0 {
                eprintln!("{invalid} of {} pipeline file(s) invalid", files.len());
                Ok(exit::USAGE)
            } else {
                Ok(exit::OK)
            }
        }
        Command::Schema => {
            let schema = pipeline::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).map_err(CliError::failure)?
            );
            Ok(exit::OK)
        }
        Command::Preview {
            pipeline: file,
            limit,
            json,
        } => {
            let p = pipeline::load(&file)?;
            let out = runtime()?.block_on(crate::preview::preview(&p, limit, json))?;
            print!("{out}");
            Ok(exit::OK)
        }
        Command::Reconcile {
            pipeline: file,
            out,
            sample,
            json,
        } => {
            let p = pipeline::load(&file)?;
            let opts = crate::reconcile::RunOptions { out, sample };
            let outcome = runtime()?
                .block_on(crate::reconcile::run(&p, &opts))
                .map_err(|e| CliError {
                    code: e.exit_code(),
                    error: e.into(),
                })?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome.summary).map_err(CliError::failure)?
                );
            } else {
                print!("{}", outcome.human());
            }
            Ok(outcome.exit_code())
        }
        Command::Gen(args) => {
            let summary = crate::generate::run(&args).map_err(CliError::failure)?;
            println!("{summary}");
            Ok(exit::OK)
        }
    }
}

fn kind_name(p: &pipeline::Pipeline) -> &'static str {
    match p.spec {
        pipeline::PipelineSpec::Sync(_) => "sync",
        pipeline::PipelineSpec::Reconcile(_) => "reconcile",
    }
}
