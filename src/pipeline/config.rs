//! What the user writes in a pipeline file, at the top: the two kinds of pipeline, schedule, state, and the consistency check's settings. The parts have their own files (source, transform, sink); together they are the reference documentation and the JSON Schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defaults::{self, yes as default_true};
use super::duration::HumanDuration;
use super::sink::SinkConfig;
use super::size::ByteSize;
use super::source::SourceConfig;
use super::spelling::UnicodeForm;
use super::transform::Transform;

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
    pub sink: SinkConfig,
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
    /// Compare text without regard to letter case (Unicode case folding:
    /// `STRASSE` and `Straße` are the same).
    #[serde(default)]
    pub ignore_case: bool,
    /// Compare text after Unicode normalisation: `nfc` makes a `ü` typed
    /// as one character and as `u` with a combining diaeresis the same;
    /// `nfkc` also folds compatibility forms (`ﬁ` and `fi`, full-width digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<UnicodeForm>,
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
    /// Field separator of the CSV reports: `,` (the default), `;` (what
    /// Excel expects in fr-CH, de-CH and de-DE), a tab or `|`.
    #[serde(default = "default_csv_delimiter")]
    pub csv_delimiter: char,
    /// Also write `report.xlsx`: the summary, one sheet per category of
    /// discrepancy and the field mismatches, numbers as numbers and
    /// instants as dates.
    #[serde(default)]
    pub xlsx: bool,
    /// Columns the counts are broken down by, in `summary.json` and
    /// `summary.html`: `[sales_channel, { column: created_at, by: month }]`.
    /// A key's value comes from its S-360 row, or from its CRM row when it
    /// is missing in S-360; duplicate and null keys are not sliced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<super::SliceSpec>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: None,
            sample: default_sample(),
            storage: BTreeMap::new(),
            csv_delimiter: default_csv_delimiter(),
            xlsx: false,
            slices: Vec::new(),
        }
    }
}

fn default_csv_delimiter() -> char {
    ','
}

fn default_sample() -> usize {
    20
}
fn is_default_sample(n: &usize) -> bool {
    *n == default_sample()
}
