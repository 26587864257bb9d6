//! What the user writes about export files: location, format, CSV options, declared column types, keys and nested lines.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::column::ColumnSpec;
use super::defaults::{self, yes as default_true};
use super::duration::HumanDuration;
use super::spelling::{DstPolicy, NumberFormat, Zone};

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
    /// `timestamp`, `decimal(P,S)`), or a map with the type and its
    /// spelling: `{ type: timestamp, format: "%d.%m.%Y %H:%M" }`,
    /// `{ type: decimal(18,2), decimal: ",", group: "." }`. Other columns
    /// are inferred (numbers only in the plain spelling).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnSpec>,
    /// Time zone of timestamps written without an offset: an IANA name
    /// (`Europe/Zurich`, whose offset follows summer time) or a fixed
    /// offset (`+01:00`, `Z`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// What local times that a daylight-saving change repeats or skips are
    /// read as, in a named `timezone` (default: `before` for both).
    #[serde(default)]
    pub dst: DstPolicy,
    /// How the export writes numbers of its declared number columns (and
    /// of text compared as numbers): decimal separator and thousands
    /// grouping, e.g. `{ decimal: ",", group: "." }` for `1.234,56`.
    #[serde(default)]
    pub numbers: NumberFormat,
    /// Key column(s) that identify one record. Required for sync and reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Column holding the last modification time (sync pipelines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Order lines in a second export, nested into each order as a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Box<LinesConfig>>,
    /// Options of the location: object_store's (`aws_region`,
    /// `aws_endpoint`, ...), `aws_profile`, or for `sftp://` `sftp_key`,
    /// `sftp_key_passphrase_env`, `sftp_password_env`, `sftp_known_hosts`,
    /// `sftp_timeout`. An unknown option is an error.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, String>,
}

fn default_timezone() -> String {
    "+00:00".to_string()
}

impl SourceConfig {
    /// The zone of local times; `+00:00` when `timezone` does not parse
    /// (validation refuses such a file first).
    pub fn zone(&self) -> Zone {
        Zone::parse(&self.timezone, self.dst).unwrap_or(Zone::UTC)
    }
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
    /// Declared column types, as for the orders source (the lines are read
    /// in the orders' `timezone`, `dst` and `numbers`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnSpec>,
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

/// Text encodings S-360 exports can be configured with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
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

/// Every spelling the reader takes, aliases included (schemars leaves
/// serde's aliases out, and editors would refuse `cp1252`).
impl JsonSchema for Encoding {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Encoding".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": ["utf-8", "utf8", "windows-1252", "cp1252", "windows1252", "iso-8859-1", "latin1"],
            "description": "Text encoding of the file: utf-8 (a byte order mark is skipped), windows-1252 (cp1252), iso-8859-1 (latin1, decoded as Windows-1252)"
        })
    }
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
