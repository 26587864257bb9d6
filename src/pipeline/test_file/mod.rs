//! What the user writes in a pipeline test file (`kind: test`): the pipeline under test, its sample inputs, a pinned clock and the expected results; parsed and checked purely, like a pipeline file.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A pipeline test: runs one pipeline on sample data, offline, and checks
/// what comes out. A sync test has `runs`; a reconcile test has `expect`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Test file format version; must be `1`.
    pub version: u32,
    /// The test's name, shown in results and reports; `--filter` matches it.
    pub name: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The pipeline file under test, relative to this file.
    pub pipeline: String,
    /// Values for `${VAR}` in the pipeline file and for the sink's secrets,
    /// looked up before the process environment. Secrets the pipeline names
    /// (`signing.secret_env`, `auth.*_env`) get test values when not given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Sync pipelines: runs made in order on one fresh, temporary state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<SyncRun>,
    /// Reconcile pipelines: files of the S-360 side instead of its
    /// `location` (default: the pipeline's own files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<Input>,
    /// Reconcile pipelines: files of the CRM side instead of its `location`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub right: Vec<Input>,
    /// Reconcile pipelines: what the check must find.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<ReconcileExpect>,
}

/// One sync run of a test.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRun {
    /// A label for messages; `run N` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The pinned clock of this run, RFC 3339 (`2026-10-13T23:00:00Z`):
    /// lookback, `max_future` and the wait for lines are taken from it.
    pub now: String,
    /// Export files written into the orders source's folder before this run.
    /// Files of earlier runs stay (a file of the same name is replaced), as
    /// in a folder that receives delta exports. When no run gives any, the
    /// pipeline's own `location` is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<Input>,
    /// Files written into the lines source's folder before this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Input>,
    /// Names of files of earlier runs removed before this run (orders or lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// How the test's receiver answers; every other request gets `200`.
    #[serde(default)]
    pub receiver: ReceiverRules,
    /// What this run must send and leave behind.
    #[serde(default)]
    pub expect: SyncExpect,
}

/// One input file: a file of the repository, or a small table written inline.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A file, relative to the test file (usually under `testdata/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The file's name in the source folder; default the name of `file`.
    /// Required for `csv` and `rows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The file's content, written as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// Rows as maps of column to value, written as CSV with the source's
    /// delimiter (columns in order of first appearance; null is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<BTreeMap<String, Value>>>,
}

/// How the receiver answers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverRules {
    /// Requests holding any of these orders are refused with `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse: Option<Refusal>,
}

/// A refusal rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// Order keys.
    pub keys: Vec<KeyValue>,
    /// HTTP status, 400..=499 except the transient 408, 425 and 429
    /// (400, 413, 422: a bad record, dead-lettered; 401, 403, 404, 410:
    /// the configuration is refused and delivery stops).
    #[serde(default = "default_refusal")]
    pub status: u16,
}

fn default_refusal() -> u16 {
    422
}

/// What one sync run must send and leave behind. Payloads are the
/// requests the receiver got in this run, in order.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncExpect {
    /// Number of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payloads: Option<u64>,
    /// Orders in each request, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_sizes: Option<Vec<u64>>,
    /// The orders of each request, in order: `KEY` or `KEY@VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<Vec<String>>>,
    /// The orders sent in this run, in any request, as a set: `KEY` or
    /// `KEY@VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Vec<String>>,
    /// Selected fields of the orders sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldExpect>,
    /// A JSON file (relative to the test file) holding this run's requests:
    /// status answered, `webhook-id` and body, without volatile fields (the
    /// envelope's `timestamp`). `--update` rewrites it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The cursor afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorExpect>,
    /// Orders still queued afterwards (held ones included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// Every dead letter afterwards: order key to the HTTP status refused with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<BTreeMap<String, u16>>,
    /// How the run ended: `ok`, `incomplete` (exit 6) or `refused` (exit 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunEnd>,
}

/// How a sync run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Everything sent was acknowledged.
    Ok,
    /// Dead letters, orders left queued or lines that could not be attached.
    Incomplete,
    /// The CRM refused the configuration.
    Refused,
}

/// One field of a sent order, by JSON pointer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldExpect {
    /// The order, by key: the pointer starts at its item in the request
    /// (`/orderDetailsData/saleAmount` in the `s360` format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyValue>,
    /// The request, from 1: the pointer starts at its body (`/0/syncKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<usize>,
    /// RFC 6901 JSON pointer.
    pub pointer: String,
    /// The value expected there (`null` for a field that is null or absent).
    pub equals: Value,
}

/// The cursor, `(last-modified, key)`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CursorExpect {
    /// Last-modified time, RFC 3339.
    pub at: String,
    /// Order key.
    pub key: KeyValue,
}

/// An order key as written: text, a number, or the parts of a composite
/// key in a list (`[100, 2]`; `null` for a null part).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum KeyValue {
    /// A composite key.
    Parts(Vec<KeyPart>),
    /// A one-part key.
    One(KeyPart),
}

/// One part of a key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum KeyPart {
    /// Text.
    Text(String),
    /// A whole number.
    Number(i64),
    /// Null.
    Null(()),
}

impl KeyValue {
    /// The key's parts as text; `None` for a null part.
    pub fn parts(&self) -> Vec<Option<String>> {
        let one = |p: &KeyPart| match p {
            KeyPart::Text(s) => Some(s.clone()),
            KeyPart::Number(n) => Some(n.to_string()),
            KeyPart::Null(()) => None,
        };
        match self {
            Self::One(p) => vec![one(p)],
            Self::Parts(ps) => ps.iter().map(one).collect(),
        }
    }

    /// The key as text: parts joined with `, `, null parts as `null`.
    pub fn text(&self) -> String {
        key_text(&self.parts())
    }
}

/// Key parts as text: joined with `, `, null parts as `null`.
pub fn key_text(parts: &[Option<String>]) -> String {
    parts
        .iter()
        .map(|p| p.as_deref().unwrap_or("null"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a check must find.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileExpect {
    /// Whether every count is within the pipeline's `fail_if`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Counts per category (the categories given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CategoryCounts>,
    /// The keys of every discrepancy of each category given, as a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<CategoryKeys>,
    /// The differing fields of mismatched keys, as a set of
    /// `(key, field)`; `left` and `right` are checked where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatches: Option<Vec<MismatchExpect>>,
    /// Keys whose field differs, per compared field (the fields given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_mismatches: Option<BTreeMap<String, u64>>,
    /// Control totals per field: the sums of both sides and their delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_totals: Option<BTreeMap<String, TotalExpect>>,
    /// A JSON file (relative to the test file) holding `summary.json`
    /// without volatile fields (tool version, temporary paths, fingerprints
    /// of files the test wrote). `--update` rewrites it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// Counts per category; absent ones are not checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryCounts {
    /// Keys on both sides with equal fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    /// Keys only in the S-360 export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_in_crm: Option<u64>,
    /// Keys only in the CRM export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_in_s360: Option<u64>,
    /// Keys on both sides with a differing field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatched: Option<u64>,
    /// Keys found more than once on a side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_key: Option<u64>,
    /// Rows with a null key part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_key: Option<u64>,
}

/// Keys per discrepancy category; absent ones are not checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryKeys {
    /// Keys only in the S-360 export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_in_crm: Option<Vec<KeyValue>>,
    /// Keys only in the CRM export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_in_s360: Option<Vec<KeyValue>>,
    /// Keys on both sides with a differing field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatched: Option<Vec<KeyValue>>,
    /// Keys found more than once on a side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_key: Option<Vec<KeyValue>>,
    /// Keys with a null part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_key: Option<Vec<KeyValue>>,
}

/// One differing field of a mismatched key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MismatchExpect {
    /// The key.
    pub key: KeyValue,
    /// The compared field (its name after the transforms).
    pub field: String,
    /// The S-360 side's value, as the report writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    /// The CRM side's value, as the report writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
}

/// A control total; the sums as the report writes them (`137471.60`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TotalExpect {
    /// Sum of the S-360 side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    /// Sum of the CRM side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    /// `left - right`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
}

impl SyncExpect {
    /// How many things this run checks.
    pub fn assertions(&self) -> usize {
        [
            self.payloads.is_some(),
            self.batch_sizes.is_some(),
            self.keys.is_some(),
            self.sent.is_some(),
            self.snapshot.is_some(),
            self.cursor.is_some(),
            self.backlog.is_some(),
            self.dead_letters.is_some(),
            self.outcome.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
            + self.fields.len()
    }
}

impl ReconcileExpect {
    /// How many things this check verifies.
    pub fn assertions(&self) -> usize {
        let counts = self.counts.as_ref().map_or(0, |c| {
            [
                c.matched,
                c.missing_in_crm,
                c.missing_in_s360,
                c.mismatched,
                c.duplicate_key,
                c.null_key,
            ]
            .iter()
            .filter(|v| v.is_some())
            .count()
        });
        let keys = self.keys.as_ref().map_or(0, |k| {
            [
                &k.missing_in_crm,
                &k.missing_in_s360,
                &k.mismatched,
                &k.duplicate_key,
                &k.null_key,
            ]
            .iter()
            .filter(|v| v.is_some())
            .count()
        });
        counts
            + keys
            + usize::from(self.passed.is_some())
            + usize::from(self.mismatches.is_some())
            + self.field_mismatches.as_ref().map_or(0, BTreeMap::len)
            + self.control_totals.as_ref().map_or(0, BTreeMap::len)
            + usize::from(self.snapshot.is_some())
    }
}

mod parse;
pub use parse::{ParsedTest, parse};

#[cfg(test)]
mod tests;
