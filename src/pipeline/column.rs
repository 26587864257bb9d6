//! A declared column of a source: its type and, when it is not written in the plain spelling, its date format or number separators.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::source::ColumnType;
use super::spelling::NumberFormat;

/// A declared column: its type, and how its values are written when they
/// are not in the plain spelling. Written as the type alone
/// (`decimal(18,2)`) or as a map
/// (`{ type: timestamp, format: "%d.%m.%Y %H:%M" }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The type.
    pub ty: ColumnType,
    /// strftime-style format of a `timestamp` or `date` column
    /// (`%d.%m.%Y %H:%M`, `%m/%d/%Y %I:%M %p`).
    pub format: Option<String>,
    /// Decimal separator of this column, over the source's `numbers`.
    pub decimal: Option<char>,
    /// Grouping separator of this column, over the source's `numbers`.
    pub group: Option<char>,
}

impl ColumnSpec {
    /// A column of type `ty` in the plain spelling.
    pub fn of(ty: ColumnType) -> Self {
        Self {
            ty,
            format: None,
            decimal: None,
            group: None,
        }
    }

    /// The number format of this column in a source whose numbers are
    /// written `source`.
    pub fn numbers(&self, source: NumberFormat) -> NumberFormat {
        NumberFormat {
            decimal: self.decimal.unwrap_or(source.decimal),
            group: self.group.or(source.group),
        }
    }

    fn is_short(&self) -> bool {
        self.format.is_none() && self.decimal.is_none() && self.group.is_none()
    }
}

impl From<ColumnType> for ColumnSpec {
    fn from(ty: ColumnType) -> Self {
        Self::of(ty)
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ColumnWithFormat")]
struct LongSpec {
    /// The type: string, int64, float64, bool, date, timestamp or decimal(P,S).
    #[serde(rename = "type")]
    ty: ColumnType,
    /// strftime-style format of a `timestamp` or `date` column, e.g.
    /// `%d.%m.%Y %H:%M` or `%m/%d/%Y %I:%M %p`. A value that does not fit
    /// is an error naming the file, row and column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    /// Decimal separator of this number column (`.` or `,`), over the
    /// source's `numbers.decimal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decimal: Option<char>,
    /// Grouping separator of this number column, over the source's
    /// `numbers.group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<char>,
}

impl<'de> Deserialize<'de> for ColumnSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ColumnSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column type such as `timestamp`, or a map with `type` and `format`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ColumnSpec, E> {
                v.parse::<ColumnType>()
                    .map(ColumnSpec::of)
                    .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ColumnSpec, A::Error> {
                let l = LongSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ColumnSpec {
                    ty: l.ty,
                    format: l.format,
                    decimal: l.decimal,
                    group: l.group,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ColumnSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_short() {
            return self.ty.serialize(s);
        }
        LongSpec {
            ty: self.ty,
            format: self.format.clone(),
            decimal: self.decimal,
            group: self.group,
        }
        .serialize(s)
    }
}

impl JsonSchema for ColumnSpec {
    fn schema_name() -> Cow<'static, str> {
        "ColumnSpec".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let short = g.subschema_for::<ColumnType>();
        let long = g.subschema_for::<LongSpec>();
        schemars::json_schema!({ "anyOf": [short, long] })
    }
}
