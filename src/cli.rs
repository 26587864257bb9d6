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
    /// The whole job on generated sample data, with an in-process sandbox CRM.
    ///
    /// Starts the sandbox on a free loopback port, writes sample S-360
    /// exports, flags and imports them, changes some orders and runs a
    /// day-to-day sync, exports the CRM's orders and reconciles them against
    /// S-360's export. Prints each step and where the report is. Needs no
    /// server and no network beyond loopback.
    Demo(crate::rehearsal::demo::DemoArgs),
    /// Write deterministic sample S-360 and CRM exports of any size.
    Gen(crate::rehearsal::generate::GenArgs),
    /// Compare an S-360 export with a CRM export and write discrepancy reports.
    ///
    /// Exits with 5 when a count exceeds the pipeline's `fail_if` threshold,
    /// 1 on bad input (no report is written then), 2 on a bad pipeline.
    Reconcile {
        /// A reconcile pipeline file.
        pipeline: PathBuf,
        /// Report folder or object store URL (`s3://bucket/reports/orders`);
        /// default: `output.dir`, else `reports/<name>` beside the pipeline.
        #[arg(long, value_name = "DIR|URL")]
        out: Option<String>,
        /// Discrepancy rows per category shown in the summaries.
        #[arg(long)]
        sample: Option<usize>,
        /// Print the summary as JSON instead of a few lines.
        #[arg(long)]
        json: bool,
        /// Compare in N partitions by key hash, one at a time, through
        /// files in the temporary folder (TMPDIR): memory holds one
        /// partition of each side. Overrides `partitions`; default: as many
        /// as the memory limit calls for.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=crate::pipeline::MAX_PARTITIONS as u64))]
        partitions: Option<u64>,
        /// Memory the check may use before it works in partitions, e.g.
        /// `2GiB` (overrides `memory_limit`; default half of this machine's
        /// memory). It sets the number of partitions from an estimate of
        /// the need; it is not a hard cap.
        #[arg(long, value_name = "SIZE")]
        memory_limit: Option<crate::pipeline::ByteSize>,
    },
    /// Run a sandbox CRM that receives order webhooks, for rehearsals and tests.
    ///
    /// Accepts both payload shapes on any path (POST), checks Standard Webhooks
    /// signatures when given a secret, keeps the newest version of each order
    /// in SQLite, and can inject failures. Prints its webhook URL on stdout,
    /// then serves until Ctrl-C or SIGTERM. `GET /_sandbox/orders` and
    /// `GET /_sandbox/stats` show what it received. `sandbox-crm export`
    /// writes what it holds as a CRM export (one row per order line).
    SandboxCrm(crate::rehearsal::sandbox::SandboxArgs),
    /// One scheduled run of a sync pipeline (for cron): detect changes, send
    /// at most `max_per_run` orders in payloads of at most `batch_size`.
    ///
    /// Prints one summary line (or JSON). Exit 0 when everything sent was
    /// acknowledged, 3 when the CRM refused the configuration, 4 when another
    /// run holds the lock, 6 when orders were dead-lettered or left queued.
    Run {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Show what would be sent; send nothing and change no state.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Run even if another run seems to hold the lock (operator override:
        /// only when you are sure no other run is going).
        #[arg(long)]
        force: bool,
    },
    /// Show a sync pipeline's cursor, backlog, dead letters and last runs.
    Status {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List or replay orders the CRM refused.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Initial import: flag a timeframe's orders, then drain them in one large run.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Flag the orders a consistency check found missing in or mismatched
    /// with the CRM for re-sync (idempotent); the next `run` sends them.
    Repair {
        /// The report folder written by `reconcile`.
        report_dir: PathBuf,
        /// The sync pipeline whose outbox receives the orders.
        #[arg(long)]
        pipeline: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run pipelines at their intervals until SIGTERM or Ctrl-C.
    ///
    /// Each sync pipeline runs every `schedule.interval`; reconcile pipelines
    /// run only if they have a `schedule`. A pipeline never overlaps itself,
    /// and shares its lock with `run`, so cron and the daemon cannot collide.
    Schedule {
        /// Pipeline files or folders of them (default: ./pipelines).
        paths: Vec<PathBuf>,
    },
}

/// `dead-letters` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters.
    List {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back on the outbox (all, or the given ids).
    Replay {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Dead letter ids (from `list`); all when none are given.
        ids: Vec<i64>,
    },
}

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Flag every order of a timeframe for sync (idempotent).
    Flag {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Start, inclusive: RFC 3339 or YYYY-MM-DD (UTC).
        #[arg(long, value_parser = parse_time)]
        from: chrono::DateTime<chrono::Utc>,
        /// End, exclusive: RFC 3339 or YYYY-MM-DD (UTC).
        #[arg(long, value_parser = parse_time)]
        to: chrono::DateTime<chrono::Utc>,
        /// Time column that selects orders.
        #[arg(long, default_value = "creationDateTime")]
        column: String,
        /// Queue again orders the CRM already has with the same content.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drain everything flagged, without the per-run cap; Ctrl-C stops
    /// cleanly and running it again resumes.
    Run {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Requests in flight (default: the pipeline's sink.concurrency).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Requests per second at most (default: the pipeline's sink.rate_limit).
        #[arg(long)]
        rate_limit: Option<f64>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?}: write RFC 3339 (2026-10-13T00:00:00Z) or YYYY-MM-DD"))
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

impl From<crate::sync::SyncError> for CliError {
    fn from(e: crate::sync::SyncError) -> Self {
        Self {
            code: e.exit_code(),
            error: e.into(),
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    println!("{}", serde_json::to_string(v).map_err(CliError::failure)?);
    Ok(())
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
                    Ok(p) => println!(
                        "{}: ok ({} pipeline `{}`)",
                        file.display(),
                        kind_name(&p),
                        p.name()
                    ),
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
        Command::SandboxCrm(args) => {
            if let Some(line) = runtime()?.block_on(crate::rehearsal::sandbox::run(args))? {
                println!("{line}");
            }
            Ok(exit::OK)
        }
        Command::Run {
            pipeline: file,
            dry_run,
            json,
            force,
        } => {
            let p = pipeline::load(&file)?;
            let summary = runtime()?.block_on(crate::sync::run(
                &p,
                crate::sync::RunOptions { dry_run, force },
            ))?;
            if json {
                print_json(&summary)?;
            } else {
                println!("{}", summary.line());
            }
            Ok(summary.exit_code())
        }
        Command::Status {
            pipeline: file,
            json,
        } => {
            let p = pipeline::load(&file)?;
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
        Command::Repair {
            report_dir,
            pipeline: file,
            json,
        } => {
            let p = pipeline::load(&file)?;
            let s = runtime()?.block_on(crate::sync::repair::repair(&report_dir, &p))?;
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
        Command::DeadLetters(cmd) => dead_letters(cmd),
        Command::Import(cmd) => import(cmd),
        Command::Schedule { paths } => crate::schedule::cli(paths),
        Command::Reconcile {
            pipeline: file,
            out,
            sample,
            json,
            partitions,
            memory_limit,
        } => {
            let p = pipeline::load(&file)?;
            let steps = (!json).then(|| crate::reconcile::progress::reporter(p.name()));
            let opts = crate::reconcile::RunOptions {
                out,
                sample,
                steps,
                partitions: partitions.map(|n| n as usize),
                memory_limit,
            };
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
        Command::Demo(args) => {
            // The sink reads its signing secret from the environment, as in
            // production; set it while the process is still single-threaded.
            // SAFETY: no other thread exists yet.
            unsafe {
                std::env::set_var(
                    crate::rehearsal::demo::SECRET_ENV,
                    crate::rehearsal::demo::SECRET,
                )
            };
            runtime()?.block_on(crate::rehearsal::demo::run(&args))
        }
        Command::Gen(args) => {
            let summary = crate::rehearsal::generate::run(&args).map_err(CliError::failure)?;
            println!("{summary}");
            Ok(exit::OK)
        }
    }
}

fn dead_letters(cmd: DeadLettersCommand) -> Result<u8, CliError> {
    use crate::state::StateStore;
    let (file, replay_ids, json) = match cmd {
        DeadLettersCommand::List { pipeline, json } => (pipeline, None, json),
        DeadLettersCommand::Replay { pipeline, ids } => (pipeline, Some(ids), false),
    };
    let p = pipeline::load(&file)?;
    let spec = p.as_sync()?;
    let path = crate::sync::state_path(&p, spec);
    let opened = StateStore::open_existing(&path, &spec.name).map_err(|e| {
        let e = crate::sync::SyncError::from(e);
        CliError {
            code: e.exit_code(),
            error: e.into(),
        }
    })?;
    let Some(mut store) = opened else {
        println!("{}: no state yet (never run)", p.name());
        return Ok(exit::OK);
    };
    match replay_ids {
        None => {
            let list = store.dead_letters().map_err(CliError::failure)?;
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
            let _lock = crate::state::lock::RunLock::acquire(&path).map_err(|e| CliError {
                code: exit::LOCKED,
                error: e.into(),
            })?;
            let ids = (!ids.is_empty()).then_some(ids);
            let n = store
                .replay_dead_letters(ids.as_deref())
                .map_err(CliError::failure)?;
            println!("{n} dead letter(s) queued again; the next run sends them");
        }
    }
    Ok(exit::OK)
}

fn import(cmd: ImportCommand) -> Result<u8, CliError> {
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
                return Err(CliError::usage(format!(
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
                crate::sync::cancel_on_signal(tx);
                let progress = (!json).then(|| crate::sync::progress_reporter(p.name()));
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
            Ok(summary.exit_code())
        }
    }
}

fn kind_name(p: &pipeline::Pipeline) -> &'static str {
    match p.spec {
        pipeline::PipelineSpec::Sync(_) => "sync",
        pipeline::PipelineSpec::Reconcile(_) => "reconcile",
    }
}
