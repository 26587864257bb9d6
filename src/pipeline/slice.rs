//! `output.slices`: the columns a check's counts are broken down by (a sales channel, the month an order was created).

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a date or timestamp slice column is cut to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SliceBy {
    /// `2026-03-14`.
    Day,
    /// `2026-03`.
    Month,
    /// `2026`.
    Year,
}

impl SliceBy {
    /// The name a pipeline writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The strftime format of a slice value.
    pub fn format(self) -> &'static str {
        match self {
            Self::Day => "%Y-%m-%d",
            Self::Month => "%Y-%m",
            Self::Year => "%Y",
        }
    }
}

/// One slice column: counts per category for each of its values. Written
/// as the column alone (`sales_channel`) or as a map
/// (`{ column: created_at, by: month }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceSpec {
    /// The left (S-360) column after transforms; also the slice's name.
    pub column: String,
    /// The right (CRM) column, when it is named differently.
    pub right: Option<String>,
    /// Cut a date or timestamp column to its day, month or year.
    pub by: Option<SliceBy>,
}

impl SliceSpec {
    /// A slice by the column `column` on both sides.
    pub fn of(column: &str) -> Self {
        Self {
            column: column.to_string(),
            right: None,
            by: None,
        }
    }

    /// The right column: `right`, or the same name as on the left.
    pub fn right_column(&self) -> &str {
        self.right.as_deref().unwrap_or(&self.column)
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SliceWithOptions")]
struct LongSpec {
    /// The left (S-360) column after transforms; also the slice's name.
    column: String,
    /// The right (CRM) column, when it is named differently. Without it, a
    /// right side that has no column of that name gives keys found only on
    /// the right no value (shown as null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    right: Option<String>,
    /// Cut a date or timestamp column to its `day`, `month` or `year`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<SliceBy>,
}

impl<'de> Deserialize<'de> for SliceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SliceSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column name, or a map with `column`, `right` and `by`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SliceSpec, E> {
                Ok(SliceSpec::of(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SliceSpec, A::Error> {
                let l = LongSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SliceSpec {
                    column: l.column,
                    right: l.right,
                    by: l.by,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for SliceSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.right.is_none() && self.by.is_none() {
            return self.column.serialize(s);
        }
        LongSpec {
            column: self.column.clone(),
            right: self.right.clone(),
            by: self.by,
        }
        .serialize(s)
    }
}

impl JsonSchema for SliceSpec {
    fn schema_name() -> Cow<'static, str> {
        "SliceSpec".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let short = g.subschema_for::<String>();
        let long = g.subschema_for::<LongSpec>();
        schemars::json_schema!({ "anyOf": [short, long] })
    }
}
