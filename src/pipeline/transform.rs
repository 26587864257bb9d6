//! What the user writes as transform steps: the step types, their aggregation functions, and where a partitioned check may cut them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::source::ColumnType;
use super::spelling::UnicodeForm;

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
    /// `digits: 2` turns minor units `40000` into `400.00`. The digits may
    /// also be each row's own, from a column (`digits: { column:
    /// fractionDigit }`) or from the ISO 4217 minor units of a currency
    /// column (`digits: { currency: currencyCode }`: CHF 40000 is 400.00,
    /// JPY 1500 is 1500, KWD 12345 is 12.345); the result then has the scale
    /// `max_digits` for every row. Nothing is rounded: a row whose digits
    /// cannot be had or do not fit stops the step, naming the column and
    /// the value.
    Scale {
        /// Columns to scale.
        columns: Vec<String>,
        /// Decimal digits to shift: a number (positive divides, negative
        /// multiplies), `{ column }` or `{ currency, table }`.
        digits: Digits,
    },
    /// Trim whitespace, normalise Unicode, strip leading zeros and/or change
    /// case of text columns, in that order.
    Text {
        /// Columns to normalise.
        columns: Vec<String>,
        /// Remove leading and trailing whitespace.
        #[serde(default)]
        trim: bool,
        /// Unicode normalisation: `nfc` (one spelling for text typed with
        /// composed or combining accents: `Zu\u{308}rich` is `Zürich`) or
        /// `nfkc` (also compatibility forms: full-width digits, ligatures).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        normalize: Option<UnicodeForm>,
        /// Remove the leading zeros of text that is all ASCII digits:
        /// `000123` is `123`, `000` is `0`. Text with anything else in it
        /// (`-007`, `12a`, ` 007` without `trim`, an empty text) is left as
        /// it is.
        #[serde(default)]
        strip_leading_zeros: bool,
        /// Change letter case: `lower`, `upper`, or `fold` (full Unicode
        /// case folding, for comparing: `STRASSE` and `Straße` fold alike).
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
    /// Unicode full case folding (`Straße` and `STRASSE` are both
    /// `strasse`): for comparing, not for showing.
    Fold,
}

/// The digits a `scale` step shifts: one number for every row, or each
/// row's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Digits {
    /// The same for every row, `digits: 2` (-18..=18, not 0): positive
    /// divides, negative multiplies; the result keeps every digit of the
    /// input.
    Fixed(i8),
    /// Each row's digits from an integer column, `digits: { column:
    /// fractionDigit }` (0 or more).
    Column {
        /// The column that holds each row's digits.
        column: String,
        /// Scale of the result (0..=18; default 4); a row with more digits
        /// stops the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_digits: Option<i64>,
    },
    /// Each row's digits from the ISO 4217 minor units of its currency
    /// code, `digits: { currency: currencyCode }`: CHF and EUR 2, JPY 0,
    /// KWD 3. Codes are matched trimmed and in any letter case; an unknown
    /// code stops the step.
    Currency {
        /// The column that holds each row's currency code.
        currency: String,
        /// Codes to add or override, `{ XTS: 2 }` (digits 0..=18).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        table: BTreeMap<String, i64>,
        /// Scale of the result (0..=18); default the most digits a code can
        /// have: ISO 4217's (4) or the table's, if more.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_digits: Option<i64>,
    },
}

impl Digits {
    /// The column the digits are read from, if they are each row's own.
    pub fn column(&self) -> Option<&str> {
        match self {
            Self::Fixed(_) => None,
            Self::Column { column, .. } => Some(column),
            Self::Currency { currency, .. } => Some(currency),
        }
    }
}

impl From<i8> for Digits {
    fn from(n: i8) -> Self {
        Self::Fixed(n)
    }
}

/// `digits:` is a number or a mapping with `column` or `currency`; the
/// mapping's keys are read one by one, so an unknown key is named.
impl<'de> Deserialize<'de> for Digits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};

        const FORMS: &str = "a number of digits such as 2, { column: NAME } or { currency: NAME, table: { CODE: digits } }";
        const KEYS: &[&str] = &["column", "currency", "table", "max_digits"];

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Digits;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(FORMS)
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Digits, E> {
                i8::try_from(n)
                    .map(Digits::Fixed)
                    .map_err(|_| E::custom(format!("{n} is out of range -18..=18")))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Digits, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Digits, A::Error> {
                let (mut column, mut currency, mut table, mut max_digits) =
                    (None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "column" => column = Some(map.next_value::<String>()?),
                        "currency" => currency = Some(map.next_value::<String>()?),
                        "table" => table = Some(map.next_value::<BTreeMap<String, i64>>()?),
                        "max_digits" => max_digits = Some(map.next_value::<i64>()?),
                        other => return Err(de::Error::unknown_field(other, KEYS)),
                    }
                }
                match (column, currency) {
                    (Some(column), None) if table.is_none() => {
                        Ok(Digits::Column { column, max_digits })
                    }
                    (Some(_), None) => Err(de::Error::custom(
                        "`table` goes with `currency`, not with `column`",
                    )),
                    (None, Some(currency)) => Ok(Digits::Currency {
                        currency,
                        table: table.unwrap_or_default(),
                        max_digits,
                    }),
                    (Some(_), Some(_)) => Err(de::Error::custom(
                        "set either `column` or `currency`, not both",
                    )),
                    (None, None) => Err(de::Error::custom(format!("write {FORMS}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
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
