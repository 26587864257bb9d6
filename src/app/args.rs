//! The command line's arguments: every clap type of s360-sync.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use crate::rehearsal::generate::{GenFormat, GenOptions};
use crate::rehearsal::sandbox::{Faults, SandboxConfig};

/// Keeps an external CRM in step with the orders of S-360, and proves it.
///
/// Pipeline files (YAML) describe a day-to-day sync (S-360 exports to a CRM
/// webhook) or a consistency check (an S-360 export against a CRM export).
/// Start with `s360-sync validate pipelines/*.yaml`.
///
/// Exit codes: 0 ok, 1 runtime failure, 2 usage or invalid pipeline,
/// 3 delivery stopped by the CRM (nothing lost), 4 another run holds the lock,
/// 5 discrepancies found, 6 run incomplete (dead letters, orders left queued,
/// no progress, or lines whose order file is gone).
#[derive(Debug, Parser)]
#[command(name = "s360-sync", version, max_term_width = 100)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Colour in log lines: auto (when stderr is a terminal and NO_COLOR is
    /// not set), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When log lines are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (to anything but empty).
    Auto,
    /// Always, even into a file or pipe.
    Always,
    /// Never.
    Never,
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
        /// Print one JSON object per file (`file`, `valid`, `kind`, `name`,
        /// `problems` with `line`, `column`, `path`, `message`) on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of pipeline files (for editor validation).
    Schema,
    /// Print a shell completion script: `s360-sync completions bash >
    /// /etc/bash_completion.d/s360-sync`, or zsh, fish, powershell, elvish.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from the same definitions as
    /// `--help`: `s360-sync man > s360-sync.1`.
    Man,
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
    Demo(DemoArgs),
    /// Write deterministic sample S-360 and CRM exports of any size.
    Gen(GenArgs),
    /// Run the pipeline tests (`tests/` folders) on their sample data, offline.
    ///
    /// Each test file runs one pipeline: sync runs through the real sync
    /// code into a receiver on 127.0.0.1 with a pinned clock and a
    /// temporary state; checks into a temporary report folder. Prints one
    /// line per test and a diff of every expectation that did not hold.
    /// Exits with 0 when all pass, 1 when any fails, 2 for an invalid test
    /// file (FILE:LINE:COLUMN: FIELD: MESSAGE, as `validate`).
    Test {
        /// Test files, or folders searched for `tests/` folders of test files.
        #[arg(default_value = "pipelines")]
        paths: Vec<PathBuf>,
        /// Also write a JUnit XML report (for GitLab, GitHub, Jenkins).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Print one JSON object per test (one per line) instead of lines for people.
        #[arg(long)]
        json: bool,
        /// Rewrite the snapshot files that differ, and say which.
        #[arg(long)]
        update: bool,
        /// Run only the tests whose name contains NAME.
        #[arg(long, value_name = "NAME")]
        filter: Option<String>,
        /// Tests run at once.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
        jobs: u64,
    },
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
        /// Also write the check's metrics (outcome, keys by category,
        /// duration) in the Prometheus text format to this file (replaced
        /// whole, for node-exporter's textfile collector), whether the
        /// check passes, exceeds a threshold or fails.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// Run a sandbox CRM that receives order webhooks, for rehearsals and tests.
    ///
    /// Accepts both payload shapes on any path (POST), checks Standard Webhooks
    /// signatures when given a secret, keeps the newest version of each order
    /// in SQLite, and can inject failures. Prints its webhook URL on stdout,
    /// then serves until Ctrl-C or SIGTERM. `GET /_sandbox/orders` and
    /// `GET /_sandbox/stats` show what it received. `sandbox-crm export`
    /// writes what it holds as a CRM export (one row per order line).
    SandboxCrm(SandboxArgs),
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
        /// Also write the run's metrics in the Prometheus text format to
        /// this file (replaced whole, for node-exporter's textfile
        /// collector), whether the run succeeds or fails.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
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
        /// Serve Prometheus metrics of the runs (sync and checks) at
        /// http://ADDR/metrics (a loopback address such as 127.0.0.1:9464).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
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
        /// Print JSON (`{"queued": N}`).
        #[arg(long)]
        json: bool,
    },
}

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Flag every order of a timeframe for sync (idempotent).
    Flag {
        /// A sync pipeline file.
        pipeline: PathBuf,
        /// Start, inclusive: RFC 3339 with an offset (2026-10-13T00:00:00Z),
        /// or a date (2026-10-13) or local time (2026-10-13T08:00) in the
        /// source's `timezone`.
        #[arg(long, value_parser = parse_time)]
        from: TimeArg,
        /// End, exclusive: written as --from is.
        #[arg(long, value_parser = parse_time)]
        to: TimeArg,
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

/// A time on the command line: an instant, or a wall-clock time that the
/// pipeline's source `timezone` places (a date is its midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// RFC 3339 with an offset or `Z`.
    Instant(chrono::DateTime<chrono::Utc>),
    /// A date or a date and time without an offset.
    Local(chrono::NaiveDateTime),
}

impl TimeArg {
    /// The instant, a local time read in `zone` (its `dst` choices decide a
    /// time that the clocks skip or repeat).
    pub fn in_zone(
        self,
        zone: &crate::pipeline::spelling::Zone,
    ) -> Result<chrono::DateTime<chrono::Utc>, String> {
        match self {
            Self::Instant(t) => Ok(t),
            Self::Local(wall) => {
                let ms = zone
                    .to_utc_ms(wall.and_utc().timestamp_millis())
                    .map_err(|e| e.to_string())?;
                chrono::DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| format!("{wall} is out of range"))
            }
        }
    }
}

pub(crate) fn parse_time(s: &str) -> Result<TimeArg, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(TimeArg::Instant(t.with_timezone(&chrono::Utc)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Ok(TimeArg::Local(t));
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(TimeArg::Local)
        .ok_or_else(|| {
            format!(
                "{s:?}: write RFC 3339 (2026-10-13T00:00:00Z), or a date (2026-10-13) or local time (2026-10-13T08:00) in the source's timezone"
            )
        })
}

/// Arguments of `s360-sync demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo's exports, state and reports (kept afterwards).
    #[arg(long, default_value = "demo-out")]
    pub dir: PathBuf,
    /// Orders in the sample exports (the default, 300, writes exactly the
    /// files bundled in testdata/s360).
    #[arg(long, default_value_t = 300)]
    pub orders: usize,
}

/// Arguments of `s360-sync gen`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Output folder (created if missing).
    #[arg(long, default_value = "generated")]
    pub out: PathBuf,
    /// Number of orders.
    #[arg(long, default_value_t = 1000)]
    pub orders: usize,
    /// Days the modifications are spread over; one orders file and one lines file per day.
    #[arg(long, default_value_t = 1)]
    pub days: usize,
    /// First day, YYYY-MM-DD.
    #[arg(long, default_value = "2026-10-13")]
    pub start: NaiveDate,
    /// Seed of the generator; the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Format of the S-360 exports.
    #[arg(long, value_enum, default_value_t = GenFormatArg::Csv)]
    pub format: GenFormatArg,
    /// Also write `crm/crm_orders.csv`, the CRM's export of the same orders.
    #[arg(long)]
    pub crm: bool,
    /// Discrepancies to inject into the CRM export (listed in manifest.json).
    #[arg(long, default_value_t = 0)]
    pub discrepancies: usize,
}

/// Export formats `gen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenFormatArg {
    /// `;`-separated CSV, dates as `YYYY-MM-DD HH:MM:SS`.
    Csv,
    /// Parquet, timestamps as UTC milliseconds.
    Parquet,
    /// One JSON object per line.
    Ndjson,
}

/// Arguments of `s360-sync sandbox-crm`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port. The webhook URL
    /// (`http://HOST:PORT/hooks/orders`) is printed on stdout; any path accepts POSTs.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite file for received orders and the request log (created if missing).
    #[arg(long, default_value = "sandbox-crm.db")]
    pub db: PathBuf,
    /// Standard Webhooks secret (`whsec_...`); when set, unsigned or badly
    /// signed requests get 401.
    #[arg(long, env = "SANDBOX_CRM_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Share of requests (0 to 1) that fail with --fail-status, drawn from --seed.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// HTTP status of injected failures (400 to 599).
    #[arg(long, default_value_t = 503)]
    pub fail_status: u16,
    /// The first N requests fail with --fail-status.
    #[arg(long, default_value_t = 0)]
    pub fail_first: u32,
    /// Milliseconds added to every webhook response (after the orders are stored).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// `Retry-After` seconds sent with injected 429 and 503 answers.
    #[arg(long)]
    pub retry_after: Option<u64>,
    /// Order keys (comma-separated) that make their request fail with 422, storing nothing.
    #[arg(long, value_delimiter = ',')]
    pub reject_ids: Vec<String>,
    /// Seed for --fail-rate: the same seed gives the same failures.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Store nothing: check each request and answer 200 at once (a fast
    /// receiver for load tests and benchmarks).
    #[arg(long)]
    pub discard: bool,
    /// Instead of serving: export what the sandbox holds.
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
}

/// Subcommands of `sandbox-crm`.
#[derive(Debug, Clone, Subcommand)]
pub enum SandboxCommand {
    /// Write the CRM export: one row per order line, Salesforce field names
    /// (SecuTix connector), amounts in major units, ISO dates in UTC.
    Export {
        /// The sandbox's SQLite file.
        #[arg(long, default_value = "sandbox-crm.db")]
        db: PathBuf,
        /// Output file; the format follows the extension: .csv or .parquet.
        #[arg(long)]
        out: PathBuf,
    },
}

impl SandboxArgs {
    /// The sandbox configuration these arguments describe.
    pub fn config(&self) -> SandboxConfig {
        SandboxConfig {
            db: self.db.clone(),
            secret: self.secret.clone().filter(|s| !s.is_empty()),
            faults: Faults {
                fail_rate: self.fail_rate,
                fail_status: self.fail_status,
                fail_first: self.fail_first,
                latency: Duration::from_millis(self.latency_ms),
                retry_after: self.retry_after,
                reject_ids: self
                    .reject_ids
                    .iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                seed: self.seed,
                discard: self.discard,
            },
        }
    }
}

impl GenArgs {
    /// The generator options these arguments describe.
    pub fn options(&self) -> GenOptions {
        GenOptions {
            out: self.out.clone(),
            orders: self.orders,
            days: self.days,
            start: self.start,
            seed: self.seed,
            format: match self.format {
                GenFormatArg::Csv => GenFormat::Csv,
                GenFormatArg::Parquet => GenFormat::Parquet,
                GenFormatArg::Ndjson => GenFormat::Ndjson,
            },
            crm: self.crm,
            discrepancies: self.discrepancies,
        }
    }
}
