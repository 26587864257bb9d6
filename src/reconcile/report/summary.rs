//! `summary.json`: counts, thresholds, statistics, control totals, settings, inputs and samples of a finished check, built from the comparison.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::pipeline::{FailIf, FieldComparison, ReconcilePipeline, SliceBy};
use crate::reconcile::model::{
    Category, ColumnStats, Comparison, ControlTotal, Discrepancy, SideRows, Slice, SliceCounts,
};
use crate::reconcile::rules::Rule;
use crate::reconcile::scan::InputFile;

/// Counts per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Keys on both sides with every compared field equal.
    pub matched: u64,
    /// Keys only in the left (S-360) export.
    pub missing_in_crm: u64,
    /// Keys only in the right (CRM) export.
    pub missing_in_s360: u64,
    /// Keys on both sides with at least one differing field.
    pub mismatched: u64,
    /// Keys found more than once on one side (one per side and key).
    pub duplicate_key: u64,
    /// Distinct null or partly null keys (one per side and key).
    pub null_key: u64,
}

impl Counts {
    /// Count of a discrepancy category.
    pub fn get(&self, c: Category) -> u64 {
        match c {
            Category::DuplicateKey => self.duplicate_key,
            Category::Mismatched => self.mismatched,
            Category::MissingInCrm => self.missing_in_crm,
            Category::MissingInS360 => self.missing_in_s360,
            Category::NullKey => self.null_key,
        }
    }
}

/// The tool that wrote the report.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// Always `s360-sync`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Row counts of both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Sides {
    /// The S-360 side.
    pub left: SideRows,
    /// The CRM side.
    pub right: SideRows,
}

/// One compared field in the settings: as written, and as resolved.
#[derive(Debug, Clone, Serialize)]
pub struct CompareSetting {
    /// The rule as written in the pipeline.
    #[serde(flatten)]
    pub written: FieldComparison,
    /// How it was applied (number at a scale, time, text).
    pub applied: Rule,
}

/// The settings the check ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Left key columns.
    pub left_key: Vec<String>,
    /// Right key columns.
    pub right_key: Vec<String>,
    /// Left location as written.
    pub left_location: String,
    /// Right location as written.
    pub right_location: String,
    /// Time zone of naive timestamps, left.
    pub left_timezone: String,
    /// Time zone of naive timestamps, right.
    pub right_timezone: String,
    /// Transform steps per side.
    pub left_transforms: usize,
    /// Transform steps per side.
    pub right_transforms: usize,
    /// Compared fields.
    pub compare: Vec<CompareSetting>,
    /// Duplicate policy.
    pub duplicates: crate::pipeline::DuplicatePolicy,
    /// Thresholds, absent ones as 0.
    pub fail_if: Thresholds,
    /// Sample rows per category.
    pub sample: usize,
}

/// Thresholds with defaults applied.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    /// See [`FailIf`].
    pub missing_in_crm: u64,
    /// See [`FailIf`].
    pub missing_in_s360: u64,
    /// See [`FailIf`].
    pub mismatched: u64,
    /// See [`FailIf`].
    pub duplicate_key: u64,
    /// See [`FailIf`].
    pub null_key: u64,
}

impl From<&FailIf> for Thresholds {
    fn from(f: &FailIf) -> Self {
        Self {
            missing_in_crm: f.missing_in_crm.unwrap_or(0),
            missing_in_s360: f.missing_in_s360.unwrap_or(0),
            mismatched: f.mismatched.unwrap_or(0),
            duplicate_key: f.duplicate_key.unwrap_or(0),
            null_key: f.null_key.unwrap_or(0),
        }
    }
}

impl Thresholds {
    /// The threshold of a discrepancy category.
    pub fn get(&self, c: Category) -> u64 {
        match c {
            Category::DuplicateKey => self.duplicate_key,
            Category::Mismatched => self.mismatched,
            Category::MissingInCrm => self.missing_in_crm,
            Category::MissingInS360 => self.missing_in_s360,
            Category::NullKey => self.null_key,
        }
    }
}

/// `summary.json`: deterministic (no clock), everything needed to trust the result.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Who wrote it.
    pub tool: Tool,
    /// Pipeline name.
    pub pipeline: String,
    /// Whether every count is within its threshold.
    pub passed: bool,
    /// Categories whose count exceeds the threshold.
    pub exceeded: Vec<String>,
    /// Counts per category.
    pub counts: Counts,
    /// Row counts per side.
    pub sides: Sides,
    /// Per compared column.
    pub columns: Vec<ColumnStats>,
    /// Sums of amount fields per side.
    pub control_totals: Vec<ControlTotal>,
    /// Settings used.
    pub settings: Settings,
    /// Input files and fingerprints.
    pub inputs: Vec<InputFile>,
    /// Up to `sample` discrepancy rows per category.
    pub samples: BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>,
    /// Counts per value of each `output.slices` column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceSummary>,
}

/// Values of a slice column listed one by one; the others are added up
/// under `other`, so a column of many values keeps the summary readable.
pub const MAX_SLICE_VALUES: usize = 200;

/// The counts of one slice column.
#[derive(Debug, Clone, Serialize)]
pub struct SliceSummary {
    /// The left column (the slice's name).
    pub column: String,
    /// The right column, when named differently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    /// `day`, `month` or `year`, for a cut date or timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<SliceBy>,
    /// Counts per value, in value order (null first); at most
    /// [`MAX_SLICE_VALUES`], those with the most discrepancies.
    pub values: Vec<SliceValue>,
    /// The values not listed, added up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<OtherValues>,
}

/// The counts of one slice value.
#[derive(Debug, Clone, Serialize)]
pub struct SliceValue {
    /// The value as text (null: none).
    pub value: Option<String>,
    /// Paired keys by category.
    #[serde(flatten)]
    pub counts: SliceCounts,
}

/// The values of a slice column that are not listed.
#[derive(Debug, Clone, Serialize)]
pub struct OtherValues {
    /// How many values.
    pub values: usize,
    /// Their counts, added up.
    #[serde(flatten)]
    pub counts: SliceCounts,
}

/// A slice's summary: every value, or the [`MAX_SLICE_VALUES`] with the
/// most discrepancies and the rest added up.
fn slice_summary(slice: &Slice) -> SliceSummary {
    let mut values: Vec<SliceValue> = slice
        .values
        .iter()
        .map(|(value, counts)| SliceValue {
            value: value.clone(),
            counts: *counts,
        })
        .collect();
    let mut other = None;
    if values.len() > MAX_SLICE_VALUES {
        values.sort_by(|a, b| {
            (b.counts.discrepancies(), b.counts.total(), &a.value).cmp(&(
                a.counts.discrepancies(),
                a.counts.total(),
                &b.value,
            ))
        });
        let rest = values.split_off(MAX_SLICE_VALUES);
        other = Some(OtherValues {
            values: rest.len(),
            counts: rest
                .iter()
                .fold(SliceCounts::default(), |acc, v| acc.plus(v.counts)),
        });
        values.sort_by(|a, b| a.value.cmp(&b.value));
    }
    SliceSummary {
        column: slice.spec.column.clone(),
        right: slice.spec.right.clone(),
        by: slice.spec.by,
        values,
        other,
    }
}

/// Build the summary of a finished comparison.
pub fn summarize(
    spec: &ReconcilePipeline,
    cmp: &Comparison,
    inputs: Vec<InputFile>,
    sample: usize,
) -> Summary {
    let counts = Counts {
        matched: cmp.matched,
        missing_in_crm: cmp.count(Category::MissingInCrm),
        missing_in_s360: cmp.count(Category::MissingInS360),
        mismatched: cmp.count(Category::Mismatched),
        duplicate_key: cmp.count(Category::DuplicateKey),
        null_key: cmp.count(Category::NullKey),
    };
    let thresholds = Thresholds::from(&spec.fail_if);
    let exceeded: Vec<String> = Category::ALL
        .iter()
        .filter(|c| counts.get(**c) > thresholds.get(**c))
        .map(|c| c.as_str().to_string())
        .collect();
    let mut samples = BTreeMap::new();
    for c in Category::ALL {
        let rows: Vec<_> = cmp
            .rows
            .iter()
            .filter(|r| r.category == c)
            .take(sample)
            .map(|r| sample_row(cmp, r))
            .collect();
        if !rows.is_empty() {
            samples.insert(c.as_str().to_string(), rows);
        }
    }
    let key = |s: &crate::pipeline::ReconcileSide| {
        s.source
            .key
            .as_ref()
            .map(|k| k.columns())
            .unwrap_or_default()
    };
    Summary {
        tool: Tool {
            name: "s360-sync",
            version: env!("CARGO_PKG_VERSION"),
        },
        pipeline: spec.name.clone(),
        passed: exceeded.is_empty(),
        exceeded,
        counts,
        sides: Sides {
            left: cmp.left_rows,
            right: cmp.right_rows,
        },
        columns: cmp.columns.clone(),
        control_totals: cmp.totals.clone(),
        settings: Settings {
            left_key: key(&spec.left),
            right_key: key(&spec.right),
            left_location: shown_location(&spec.left.source.location),
            right_location: shown_location(&spec.right.source.location),
            left_timezone: spec.left.source.timezone.clone(),
            right_timezone: spec.right.source.timezone.clone(),
            left_transforms: spec.left.transforms.len(),
            right_transforms: spec.right.transforms.len(),
            compare: spec
                .compare
                .iter()
                .zip(&cmp.fields)
                .map(|(w, f)| CompareSetting {
                    written: w.clone(),
                    applied: f.rule.clone(),
                })
                .collect(),
            duplicates: spec.duplicates,
            fail_if: thresholds,
            sample,
        },
        inputs,
        samples,
        slices: cmp.slices.iter().map(slice_summary).collect(),
    }
}

fn sample_row(cmp: &Comparison, r: &Discrepancy) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    let text = |v: &Option<String>| {
        v.clone()
            .map_or(serde_json::Value::Null, serde_json::Value::from)
    };
    for (name, v) in cmp.key_names.iter().zip(&r.key) {
        m.insert(name.clone(), text(v));
    }
    m.insert("category".into(), r.category.as_str().into());
    if let Some(side) = r.side {
        m.insert("side".into(), side.into());
    }
    if let Some(c) = r.count {
        m.insert("count".into(), c.into());
    }
    if !r.fields.is_empty() {
        m.insert("fields".into(), r.fields.join(",").into());
    }
    for (i, f) in cmp.fields.iter().enumerate() {
        if r.left[i].is_some() {
            m.insert(format!("left_{}", f.field), text(&r.left[i]));
        }
        if r.right[i].is_some() {
            m.insert(format!("right_{}", f.field), text(&r.right[i]));
        }
    }
    m
}

/// A location as the summary records it: a URL without its user info and
/// with its query values masked (a presigned URL's signature, a token), its
/// path kept; a local path as it is.
pub(crate) fn shown_location(location: &str) -> String {
    let Ok(mut url) = url::Url::parse(location) else {
        return location.to_string();
    };
    if !url.has_host()
        || (url.username().is_empty() && url.password().is_none() && url.query().is_none())
    {
        return location.to_string();
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(n, _)| n.into_owned()).collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|n| (n.as_str(), "***")));
    }
    url.to_string()
}
