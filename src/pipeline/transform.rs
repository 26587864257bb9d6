//! What the user writes as transform steps: the step types, their aggregation functions, and where a partitioned check may cut them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::source::ColumnType;

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
        aggregations: BTreeMap<String, Aggregation>,
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

/// A function of an `aggregate` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFn {
    /// Sum of the group's values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// The value of the group's first row.
    First,
    /// The value of the group's last row.
    Last,
    /// Number of non-null values.
    Count,
    /// Arithmetic mean.
    Mean,
}

impl AggFn {
    /// Every function, as pipeline files name them.
    pub const ALL: [(&'static str, Self); 7] = [
        ("sum", Self::Sum),
        ("min", Self::Min),
        ("max", Self::Max),
        ("first", Self::First),
        ("last", Self::Last),
        ("count", Self::Count),
        ("mean", Self::Mean),
    ];

    /// The function named `name` (exactly, lower case), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find_map(|(n, f)| (*n == name).then_some(*f))
    }

    /// The name pipeline files use.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find_map(|(n, f)| (*f == self).then_some(*n))
            .unwrap_or_default()
    }

    /// `first` and `last`: values gathered by row number, not reduced.
    pub fn is_gathered(self) -> bool {
        matches!(self, Self::First | Self::Last)
    }
}

impl std::fmt::Display for AggFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One aggregation of an `aggregate` step, `FUNCTION(column)`, read when the
/// pipeline file is read.
///
/// Text that is not a known function of a named column is kept as written
/// and has no [`get`](Self::get): validation reports it with its position
/// (`transforms[i].aggregations.<output>`), and a step built without
/// validation refuses to run it. There is no default function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    text: String,
    parsed: Option<(AggFn, String)>,
}

impl Aggregation {
    /// Read `text` (`sum(amount)`, spaces allowed around the parts).
    pub fn parse(text: &str) -> Self {
        let parsed = text.trim().split_once('(').and_then(|(func, rest)| {
            let column = rest.strip_suffix(')')?.trim();
            let func = AggFn::from_name(func.trim())?;
            (!column.is_empty()).then(|| (func, column.to_string()))
        });
        Self {
            text: text.to_string(),
            parsed,
        }
    }

    /// The aggregation as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The function and its input column; `None` for text that is not one.
    pub fn get(&self) -> Option<(AggFn, &str)> {
        self.parsed.as_ref().map(|(f, c)| (*f, c.as_str()))
    }
}

impl From<&str> for Aggregation {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl<'de> Deserialize<'de> for Aggregation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}

impl Serialize for Aggregation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// In the schema, as written: a string.
impl JsonSchema for Aggregation {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// A side's `aggregate` step: its index and `by` columns.
pub type Cut<'a> = (usize, &'a [String]);

/// Where a side's steps can be cut for a partitioned check: the index and
/// `by` columns of its one `aggregate` step, if any. Steps before it run in one streaming
/// pass over all rows; the aggregate and the steps after it run once per
/// partition of the aggregate's `by` columns, so they must not look across
/// groups: a second `aggregate` or an `sql` step after the first is refused
/// with its index and the reason.
///
/// Validation calls it for `partitions` above 1, and the consistency check
/// plans with it (as `crate::transforms::partition_point`).
pub fn partition_point(steps: &[Transform]) -> Result<Option<Cut<'_>>, (usize, String)> {
    let Some((at, by)) = steps.iter().enumerate().find_map(|(i, s)| match s {
        Transform::Aggregate { by, .. } => Some((i, by.as_slice())),
        _ => None,
    }) else {
        return Ok(None);
    };
    for (i, step) in steps.iter().enumerate().skip(at + 1) {
        let what = match step {
            Transform::Aggregate { .. } => "a second `aggregate`",
            Transform::Sql { .. } => "an `sql` step after `aggregate`",
            _ => continue,
        };
        return Err((
            i,
            format!(
                "{what} cannot run per partition: in a partitioned check the aggregate and the steps after it run once per partition of its `by` columns; merge it into the first aggregate, or set `partitions: 1`"
            ),
        ));
    }
    Ok(Some((at, by)))
}
