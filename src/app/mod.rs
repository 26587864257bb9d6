//! The command line: the only part of s360-sync that knows the terminal,
//! the process and its exit codes.
//!
//! [`args`] holds every clap type, [`run`] dispatches each command to its
//! body in [`commands`], [`terminal`] owns stdout, stderr, signals and
//! progress, [`exit`] maps what the library reports to an exit code, and
//! [`AppError`] carries an error with its code. Nothing under `src/` but
//! `main.rs` imports from here.

pub mod args;
mod commands;
mod error;
pub mod exit;
mod terminal;

pub use args::Cli;
use args::Command;
pub use error::AppError;

/// Run a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, AppError> {
    terminal::init_logging(cli.verbose, cli.log_format, cli.color);
    match cli.command {
        Command::Validate { files, json } => commands::check::validate(&files, json),
        Command::Schema => commands::check::schema(),
        Command::Completions { shell } => commands::check::completions(shell),
        Command::Man => commands::check::man(),
        Command::Preview {
            pipeline,
            limit,
            json,
        } => commands::check::preview(&pipeline, limit, json),
        Command::Run {
            pipeline,
            dry_run,
            json,
            force,
            metrics_file,
        } => commands::sync::run(&pipeline, dry_run, json, force, metrics_file.as_deref()),
        Command::Status { pipeline, json } => commands::sync::status(&pipeline, json),
        Command::Repair {
            report_dir,
            pipeline,
            json,
        } => commands::sync::repair(&report_dir, &pipeline, json),
        Command::DeadLetters(cmd) => commands::sync::dead_letters(cmd),
        Command::Import(cmd) => commands::import::import(cmd),
        Command::Schedule { paths, metrics } => commands::schedule::schedule(paths, metrics),
        Command::Reconcile {
            pipeline,
            out,
            sample,
            json,
            partitions,
            memory_limit,
            metrics_file,
        } => commands::reconcile::reconcile(
            &pipeline,
            out,
            sample,
            json,
            partitions,
            memory_limit,
            metrics_file.as_deref(),
        ),
        Command::Test {
            paths,
            junit,
            json,
            update,
            filter,
            jobs,
        } => commands::test::test(&paths, junit, json, update, filter, jobs as usize),
        Command::Demo(args) => commands::rehearsal::demo(&args),
        Command::Gen(args) => commands::rehearsal::generate(&args),
        Command::SandboxCrm(args) => commands::rehearsal::sandbox_crm(args),
    }
}
