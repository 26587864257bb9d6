//! What a finished check found: discrepancy rows by category, column statistics, control totals and row counts, the values the reports are made of.

use super::rules::FieldPlan;

/// What one discrepancy row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The key appears more than once on one side.
    DuplicateKey,
    /// Both sides have the key; some compared fields differ.
    Mismatched,
    /// Only the left (S-360) export has the key.
    MissingInCrm,
    /// Only the right (CRM) export has the key.
    MissingInS360,
    /// A key column is empty.
    NullKey,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 5] = [
        Self::DuplicateKey,
        Self::Mismatched,
        Self::MissingInCrm,
        Self::MissingInS360,
        Self::NullKey,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DuplicateKey => "duplicate_key",
            Self::Mismatched => "mismatched",
            Self::MissingInCrm => "missing_in_crm",
            Self::MissingInS360 => "missing_in_s360",
            Self::NullKey => "null_key",
        }
    }

    /// The category a report name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One row of the discrepancy report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// Key values as text (null parts as `None`).
    pub key: Vec<Option<String>>,
    /// Category.
    pub category: Category,
    /// `left` or `right` for duplicate and null keys.
    pub side: Option<&'static str>,
    /// Rows sharing the key on that side (duplicate and null keys).
    pub count: Option<u64>,
    /// Names of the differing fields (mismatched rows).
    pub fields: Vec<String>,
    /// Left values, one per compared field.
    pub left: Vec<Option<String>>,
    /// Right values, one per compared field.
    pub right: Vec<Option<String>>,
    /// `left - right` per compared field where both are numbers or times.
    pub difference: Vec<Option<String>>,
}

/// Statistics of one compared column.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ColumnStats {
    /// Report name.
    pub field: String,
    /// Right column.
    pub right: String,
    /// Keys present on both sides (the field was compared).
    pub compared: u64,
    /// Equal under the rule.
    pub equal: u64,
    /// Different under the rule.
    pub unequal: u64,
    /// Null on the left only.
    pub null_only_left: u64,
    /// Null on the right only.
    pub null_only_right: u64,
    /// Largest absolute difference (numbers: decimal text; times: seconds with milliseconds).
    pub max_difference: Option<String>,
}

/// Sum of an amount field on each side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControlTotal {
    /// Report name.
    pub field: String,
    /// Sum over all left rows.
    pub left: String,
    /// Sum over all right rows.
    pub right: String,
    /// `left - right`.
    pub delta: String,
}

/// Row counts of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SideRows {
    /// Rows after transforms.
    pub rows: u64,
    /// Rows whose key appears more than once.
    pub duplicate_rows: u64,
    /// Rows with a null key column.
    pub null_key_rows: u64,
}

/// Paired keys of one slice value, by category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SliceCounts {
    /// Keys on both sides with every field equal.
    pub matched: u64,
    /// Keys on both sides with a field that differs.
    pub mismatched: u64,
    /// Keys only in the S-360 export.
    pub missing_in_crm: u64,
    /// Keys only in the CRM export.
    pub missing_in_s360: u64,
}

impl SliceCounts {
    /// Both counts added up.
    pub fn plus(self, o: SliceCounts) -> SliceCounts {
        SliceCounts {
            matched: self.matched + o.matched,
            mismatched: self.mismatched + o.mismatched,
            missing_in_crm: self.missing_in_crm + o.missing_in_crm,
            missing_in_s360: self.missing_in_s360 + o.missing_in_s360,
        }
    }

    /// Keys counted.
    pub fn total(&self) -> u64 {
        self.matched + self.mismatched + self.missing_in_crm + self.missing_in_s360
    }

    /// Keys with a discrepancy.
    pub fn discrepancies(&self) -> u64 {
        self.mismatched + self.missing_in_crm + self.missing_in_s360
    }
}

/// The counts of one `output.slices` column, per value (`None`: null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// As written in the pipeline.
    pub spec: crate::pipeline::SliceSpec,
    /// Counts per value, in value order (null first).
    pub values: std::collections::BTreeMap<Option<String>, SliceCounts>,
}

/// Everything the reports are made of.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Key column names (the left side's).
    pub key_names: Vec<String>,
    /// Compared fields, resolved.
    pub fields: Vec<FieldPlan>,
    /// Discrepancy rows, sorted by category then key.
    pub rows: Vec<Discrepancy>,
    /// Keys on both sides with all fields equal.
    pub matched: u64,
    /// Per-column statistics.
    pub columns: Vec<ColumnStats>,
    /// Control totals of amount fields.
    pub totals: Vec<ControlTotal>,
    /// Row counts per side.
    pub left_rows: SideRows,
    /// Row counts per side.
    pub right_rows: SideRows,
    /// Counts per value of each `output.slices` column.
    pub slices: Vec<Slice>,
}

impl Comparison {
    /// Discrepancy rows of a category.
    pub fn count(&self, c: Category) -> u64 {
        self.rows.iter().filter(|r| r.category == c).count() as u64
    }
}

/// Deterministic order: category, key, side.
pub fn sort_rows(rows: &mut [Discrepancy]) {
    rows.sort_by(|a, b| {
        (a.category, &a.key, a.side, &a.fields).cmp(&(b.category, &b.key, b.side, &b.fields))
    });
}
