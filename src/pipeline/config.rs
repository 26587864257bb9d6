//! What the user writes in a pipeline file: serde types that double as the reference documentation and the JSON Schema.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration::HumanDuration;
use super::size::ByteSize;

/// Default and limits, kept in one place.
pub mod defaults {
    use super::HumanDuration;

    /// Orders per webhook payload, and its ceiling.
    pub const BATCH_SIZE: u32 = 50;
    /// Orders per scheduled run, and its ceiling.
    pub const MAX_PER_RUN: u32 = 500;
    /// Minutes between scheduled runs.
    pub const INTERVAL: HumanDuration = HumanDuration::mins(15);
    /// Shortest schedule interval, in minutes.
    pub const INTERVAL_MIN_MINUTES: u64 = 1;
    /// Longest schedule interval, in minutes.
    pub const INTERVAL_MAX_MINUTES: u64 = 1440;
    /// How far back from the cursor a run re-reads rows.
    pub const LOOKBACK: HumanDuration = HumanDuration::mins(60);
    /// How far past the clock a row's last-modified time may lie before it
    /// is refused as implausible (a typo, a `9999-12-31` sentinel).
    pub const MAX_FUTURE: HumanDuration = HumanDuration::mins(24 * 60);
    /// How long an order waits for lines that have not arrived yet.
    pub const LINES_WAIT: HumanDuration = HumanDuration::mins(60);
    /// Whole request timeout.
    pub const TIMEOUT: HumanDuration = HumanDuration::secs(30);
    /// TCP/TLS connect timeout.
    pub const CONNECT_TIMEOUT: HumanDuration = HumanDuration::secs(10);
    /// A run stops retrying and leaves the rest queued after this long.
    pub const DEADLINE: HumanDuration = HumanDuration::mins(10);
    /// First retry delay.
    pub const INITIAL_BACKOFF: HumanDuration = HumanDuration::secs(1);
    /// Longest retry delay.
    pub const MAX_BACKOFF: HumanDuration = HumanDuration::mins(5);
    /// Bytes of a response body that are read at most.
    pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
    /// Requests in flight during `import run`.
    pub const CONCURRENCY: u32 = 4;
}

/// The only pipeline file version this build reads.
pub const VERSION: u32 = 1;

/// A pipeline file: either a `sync` pipeline (source, transforms, webhook sink)
/// or a `reconcile` pipeline (two exports compared on a key).
///
/// This enum is the schema's view; parsing reads `kind` first and then the
/// matching struct, so that errors point at the exact field.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PipelineSpec {
    /// Pushes new and changed S-360 orders to a CRM webhook.
    Sync(SyncPipeline),
    /// Compares an S-360 export with a CRM export and reports discrepancies.
    Reconcile(ReconcilePipeline),
}

impl PipelineSpec {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Sync(p) => &p.name,
            Self::Reconcile(p) => &p.name,
        }
    }
}

/// A day-to-day sync pipeline.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncPipeline {
    /// Pipeline file format version; must be `1`.
    pub version: u32,
    /// Name used in logs, state and lock files. Letters, digits, `-` and `_`.
    pub name: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the S-360 orders are read from. `key` and `cursor` are required here.
    pub source: SourceConfig,
    /// Steps applied to every batch before change detection, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    /// Where the orders are delivered.
    pub sink: WebhookSinkConfig,
    /// How often `schedule` runs this pipeline.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Where progress is kept.
    #[serde(default)]
    pub state: StateConfig,
}

/// A consistency check between two exports.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcilePipeline {
    /// Pipeline file format version; must be `1`.
    pub version: u32,
    /// Name used in logs and reports. Letters, digits, `-` and `_`.
    pub name: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The S-360 side ("left"). Orders only here are `missing_in_crm`.
    pub left: ReconcileSide,
    /// The CRM side ("right"). Orders only here are `missing_in_s360`.
    pub right: ReconcileSide,
    /// Fields compared on matched keys, after each side's transforms.
    #[serde(default)]
    pub compare: Vec<FieldComparison>,
    /// What to do with duplicate keys.
    #[serde(default)]
    pub duplicates: DuplicatePolicy,
    /// Memory the check may use before it works in partitions; default
    /// half of this machine's memory. See `partitions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<ByteSize>,
    /// Compare in this many partitions by key hash, one at a time, through
    /// files on disk; default: as many as `memory_limit` calls for (1 for
    /// exports that fit). The reports are the same either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<usize>,
    /// Exit with the "discrepancies found" code when a count exceeds its threshold.
    #[serde(default)]
    pub fail_if: FailIf,
    /// Where reports are written (folder or object store URL).
    #[serde(default)]
    pub output: OutputConfig,
    /// How often `schedule` runs this check; absent means never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleConfig>,
}

/// File format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Delimited text; see `csv` options.
    Csv,
    /// Apache Parquet; nested list and struct columns are kept.
    Parquet,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// Guess a format from a file name's extension.
    pub fn from_extension(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        let lower = lower.trim_end_matches(".gz");
        if lower.ends_with(".csv") || lower.ends_with(".tsv") || lower.ends_with(".txt") {
            Some(Self::Csv)
        } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            Some(Self::Parquet)
        } else if lower.ends_with(".ndjson")
            || lower.ends_with(".jsonl")
            || lower.ends_with(".json")
        {
            Some(Self::Ndjson)
        } else {
            None
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
            Self::Ndjson => "ndjson",
        })
    }
}

/// A set of export files and how to read them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A path (relative to the pipeline file's folder) or a URL: `file://`,
    /// `s3://`, `gs://`, `az://`, `https://`. The last path segments may hold
    /// a glob such as `exports/orders_*.csv`.
    pub location: String,
    /// File format; guessed from the extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Options for CSV files.
    #[serde(default)]
    pub csv: CsvOptions,
    /// Declared column types (`string`, `int64`, `float64`, `bool`, `date`,
    /// `timestamp`, `decimal(P,S)`); other columns are inferred.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnType>,
    /// Time zone of timestamps written without an offset, as `+HH:MM`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Key column(s) that identify one record. Required for sync and reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Column holding the last modification time (sync pipelines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Order lines in a second export, nested into each order as a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Box<LinesConfig>>,
    /// Object store options (`aws_region`, `aws_endpoint`, ...), passed to object_store.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, String>,
}

fn default_timezone() -> String {
    "+00:00".to_string()
}

/// A lines export joined to its orders: every order gets a list of its lines.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinesConfig {
    /// Path or URL of the lines files (globs allowed).
    pub location: String,
    /// File format; guessed from the extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Options for CSV files.
    #[serde(default)]
    pub csv: CsvOptions,
    /// Declared column types, as for the orders source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnType>,
    /// Column of the lines that holds the order key.
    pub key: String,
    /// Name of the list column added to each order.
    #[serde(default = "default_lines_field", rename = "as")]
    pub field: String,
    /// Column of the orders that says how many lines an order has (S-360's
    /// `operationCount`). With it, an order whose lines have not all arrived
    /// is held on the outbox until they do, for at most `wait`. Without it,
    /// an order is sent with the lines that have arrived. Either way, lines
    /// that arrive in a later run queue their order again (a new version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
    /// How long an order with missing lines (see `count`) is held before it
    /// is sent with the lines it has (counted and warned about).
    #[serde(default = "default_lines_wait")]
    pub wait: HumanDuration,
    /// Object store options, as for the orders source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, String>,
}

fn default_lines_wait() -> HumanDuration {
    defaults::LINES_WAIT
}

fn default_lines_field() -> String {
    "operationDatas".to_string()
}

/// How CSV files are written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Field separator, one character (`,`, `;`, `|`, `\t`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Quote character.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// Whether the first row names the columns.
    #[serde(default = "default_true")]
    pub header: bool,
    /// Text encoding of the file.
    #[serde(default)]
    pub encoding: Encoding,
    /// Cells equal to one of these are read as null (the empty cell always is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub null_values: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: default_delimiter(),
            quote: default_quote(),
            header: true,
            encoding: Encoding::default(),
            null_values: Vec::new(),
        }
    }
}

fn default_delimiter() -> char {
    ','
}
fn default_quote() -> char {
    '"'
}
fn default_true() -> bool {
    true
}

/// Text encodings S-360 exports can be configured with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8 (a byte order mark is skipped).
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// Windows-1252 (Western European, a superset of ISO-8859-1's printable range).
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "windows1252")]
    Windows1252,
    /// ISO-8859-1 (Latin-1); decoded as Windows-1252, as browsers do.
    #[serde(alias = "latin1", rename = "iso-8859-1")]
    Iso88591,
}

/// A single key column or a composite key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Key {
    /// One column.
    One(String),
    /// Several columns, compared together.
    Many(Vec<String>),
}

impl Key {
    /// The key's columns, in order.
    pub fn columns(&self) -> Vec<String> {
        match self {
            Self::One(c) => vec![c.clone()],
            Self::Many(cs) => cs.clone(),
        }
    }
}

/// A column type as written in pipeline files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    String,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// true/false.
    Bool,
    /// Calendar date.
    Date,
    /// Instant in time, stored in UTC with millisecond precision.
    Timestamp,
    /// Fixed-point decimal with precision and scale.
    Decimal(u8, i8),
}

impl FromStr for ColumnType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "string" | "str" | "utf8" | "text" => Self::String,
            "int64" | "int" | "integer" | "i64" => Self::Int64,
            "float64" | "float" | "double" | "f64" => Self::Float64,
            "bool" | "boolean" => Self::Bool,
            "date" => Self::Date,
            "timestamp" | "datetime" => Self::Timestamp,
            _ => {
                let inner = t
                    .strip_prefix("decimal(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        format!(
                            "unknown type {s:?}: expected string, int64, float64, bool, date, timestamp or decimal(P,S)"
                        )
                    })?;
                let (p, sc) = inner
                    .split_once(',')
                    .ok_or_else(|| format!("decimal type {s:?} needs precision and scale"))?;
                let p: u8 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad decimal precision in {s:?}"))?;
                let sc: i8 = sc
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad decimal scale in {s:?}"))?;
                if !(1..=38).contains(&p) || sc < 0 || sc as u8 > p {
                    return Err(format!(
                        "decimal type {s:?} out of range: precision 1..=38, scale 0..=precision"
                    ));
                }
                Self::Decimal(p, sc)
            }
        })
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("string"),
            Self::Int64 => f.write_str("int64"),
            Self::Float64 => f.write_str("float64"),
            Self::Bool => f.write_str("bool"),
            Self::Date => f.write_str("date"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Decimal(p, s) => write!(f, "decimal({p},{s})"),
        }
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ColumnType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ColumnType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ColumnType".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(string|int64|float64|bool|date|timestamp|decimal\\([0-9]+, ?[0-9]+\\))$",
            "description": "string, int64, float64, bool, date, timestamp or decimal(P,S)"
        })
    }
}

/// One declarative step over the records. Steps run in order, in Polars.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Rename columns: `{old: new}`.
    Rename {
        /// Map of current name to new name.
        columns: BTreeMap<String, String>,
    },
    /// Change column types: `{column: int64}`.
    Cast {
        /// Map of column to target type.
        columns: BTreeMap<String, ColumnType>,
    },
    /// Add or replace a column computed by a SQL expression.
    Derive {
        /// Name of the new column.
        column: String,
        /// SQL expression, e.g. `saleAmount / 100`.
        expr: String,
    },
    /// Keep rows for which a SQL condition holds.
    Filter {
        /// SQL condition, e.g. `orderState <> 'ABANDONED'`.
        expr: String,
    },
    /// Keep only these columns, in this order.
    Select {
        /// Column names.
        columns: Vec<String>,
    },
    /// Drop these columns.
    Drop {
        /// Column names.
        columns: Vec<String>,
    },
    /// A full SQL `SELECT` over the table `source` (Polars SQL).
    Sql {
        /// The query, e.g. `SELECT *, saleAmount / 100 AS amount FROM source`.
        query: String,
    },
    /// Divide (or multiply) numeric columns by 10^digits, as exact decimals:
    /// `digits: 2` turns minor units `40000` into `400.00`.
    Scale {
        /// Columns to scale.
        columns: Vec<String>,
        /// Decimal digits to shift; positive divides, negative multiplies.
        digits: i8,
    },
    /// Trim whitespace and/or change case of text columns.
    Text {
        /// Columns to normalise.
        columns: Vec<String>,
        /// Remove leading and trailing whitespace.
        #[serde(default)]
        trim: bool,
        /// Change letter case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        case: Option<LetterCase>,
    },
    /// Truncate timestamps to a precision (e.g. `1s` drops milliseconds).
    Truncate {
        /// Timestamp columns.
        columns: Vec<String>,
        /// Precision such as `1s` or `1m`.
        every: HumanDuration,
    },
    /// Group rows into one per key, e.g. a CRM's order lines into orders.
    Aggregate {
        /// Grouping columns.
        by: Vec<String>,
        /// Output column to aggregation, e.g. `{amount: "sum(lineAmount)"}`;
        /// functions: sum, min, max, first, last, count, mean.
        #[serde(default)]
        aggregations: BTreeMap<String, String>,
    },
}

/// Letter case for the `text` transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LetterCase {
    /// lower case
    Lower,
    /// UPPER CASE
    Upper,
}

/// How orders are sent to the CRM.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// The CRM's webhook URL. HTTPS unless loopback or `allow_http`.
    pub url: String,
    /// Body shape of each request.
    #[serde(default)]
    pub format: PayloadFormat,
    /// Orders per request, 1..=50.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Orders per scheduled run, 1..=500 (`import run` is not capped).
    #[serde(default = "default_max_per_run")]
    pub max_per_run: u32,
    /// Standard Webhooks signing; absent means unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfig>,
    /// Authentication header, its secret read from an environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Extra static headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Allow plain `http://` to hosts other than loopback.
    #[serde(default)]
    pub allow_http: bool,
    /// Timeout of one whole request.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Timeout for establishing a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Retry policy for transient failures.
    #[serde(default)]
    pub retry: RetryConfig,
    /// A run stops sending and leaves the rest queued after this long.
    #[serde(default = "default_deadline")]
    pub deadline: HumanDuration,
    /// Requests in flight during `import run` (1..=32).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Requests per second at most during `import run`; absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
}

fn default_batch_size() -> u32 {
    defaults::BATCH_SIZE
}
fn default_max_per_run() -> u32 {
    defaults::MAX_PER_RUN
}
fn default_timeout() -> HumanDuration {
    defaults::TIMEOUT
}
fn default_connect_timeout() -> HumanDuration {
    defaults::CONNECT_TIMEOUT
}
fn default_deadline() -> HumanDuration {
    defaults::DEADLINE
}
fn default_concurrency() -> u32 {
    defaults::CONCURRENCY
}

/// Body shape of webhook requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `{"type":"order.upserted","timestamp":...,"data":{"orders":[...]}}`
    #[default]
    Envelope,
    /// A JSON array of `{"orderDetailsData":{...}}`, like S-360's own order webhook.
    S360,
}

/// Standard Webhooks signing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Environment variable that holds the secret (`whsec_...`).
    pub secret_env: String,
}

/// An authentication header; secrets come from environment variables.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Environment variable holding the token.
        token_env: String,
    },
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        username: String,
        /// Environment variable holding the password.
        password_env: String,
    },
    /// Any header, e.g. `X-Api-Key`.
    Header {
        /// Header name.
        name: String,
        /// Environment variable holding the value.
        value_env: String,
    },
}

/// Retry policy for transient failures (408, 425, 429, 5xx, timeouts, resets).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First delay; doubles after each failure, with jitter.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Longest backoff between two attempts (a server's `Retry-After` is
    /// honoured as asked, up to the run's `deadline`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Attempts per request before the run gives up and leaves it queued.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: defaults::INITIAL_BACKOFF,
            max_backoff: defaults::MAX_BACKOFF,
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_initial_backoff() -> HumanDuration {
    defaults::INITIAL_BACKOFF
}
fn default_max_backoff() -> HumanDuration {
    defaults::MAX_BACKOFF
}
fn default_max_attempts() -> u32 {
    12
}

/// When a pipeline runs under `schedule`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Time between runs, 1m..=1440m.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            interval: defaults::INTERVAL,
        }
    }
}

fn default_interval() -> HumanDuration {
    defaults::INTERVAL
}

/// Where a sync pipeline keeps its progress.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// SQLite database file; default `state/<name>.db` beside the pipeline file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// When an export file that was read before is rewritten in place, its
    /// rows modified up to this long before the cursor are read again (older
    /// rows are skipped as `too_old`). Rows of a file new to the tool are
    /// always read, whatever their age. The cursor is the newest
    /// `(last-modified, key)` detection has read; it only sets this floor.
    #[serde(default = "default_lookback")]
    pub lookback: HumanDuration,
    /// A row whose last-modified time lies more than this far past the
    /// clock is refused as implausible: the run stops with an error naming
    /// the file and row, and nothing is recorded.
    #[serde(default = "default_max_future")]
    pub max_future: HumanDuration,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            path: None,
            lookback: defaults::LOOKBACK,
            max_future: defaults::MAX_FUTURE,
        }
    }
}

fn default_max_future() -> HumanDuration {
    defaults::MAX_FUTURE
}

fn default_lookback() -> HumanDuration {
    defaults::LOOKBACK
}

/// One side of a consistency check.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSide {
    /// The export; its `key` is required.
    pub source: SourceConfig,
    /// Normalising steps applied before the join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
}

/// How one field is compared on matched keys.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldComparison {
    /// Column on the left side (after transforms); also the field's name in reports.
    pub field: String,
    /// Column on the right side; defaults to `field`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    /// Values equal when `|left - right| <= absolute` (exact decimal arithmetic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute: Option<String>,
    /// Values equal when `|left - right| <= relative * max(|left|, |right|)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<String>,
    /// Timestamps equal when at most this far apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_tolerance: Option<HumanDuration>,
    /// Trim text before comparing.
    #[serde(default)]
    pub trim: bool,
    /// Compare text without regard to letter case.
    #[serde(default)]
    pub ignore_case: bool,
    /// Whether null on both sides counts as equal (default true).
    #[serde(default = "default_true")]
    pub null_equals_null: bool,
}

/// What duplicate keys do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Report them as `duplicate_key` rows and go on.
    #[default]
    Report,
    /// Stop the check with an error.
    Fail,
}

/// Thresholds: a count above its threshold makes `reconcile` exit with the
/// "discrepancies found" code. Absent thresholds are 0 (any discrepancy fails).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailIf {
    /// Most `missing_in_crm` rows tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_in_crm: Option<u64>,
    /// Most `missing_in_s360` rows tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_in_s360: Option<u64>,
    /// Most `mismatched` rows tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatched: Option<u64>,
    /// Most `duplicate_key` rows tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_key: Option<u64>,
    /// Most `null_key` rows tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_key: Option<u64>,
}

/// Where reports go.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Folder or object store URL; default `reports/<name>` beside the pipeline file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Rows per category shown in `summary.html` and `summary.json` samples.
    #[serde(default = "default_sample", skip_serializing_if = "is_default_sample")]
    pub sample: usize,
    /// Object store options for an output URL (`aws_region`, `allow_http`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, String>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: None,
            sample: default_sample(),
            storage: BTreeMap::new(),
        }
    }
}

fn default_sample() -> usize {
    20
}
fn is_default_sample(n: &usize) -> bool {
    *n == default_sample()
}
