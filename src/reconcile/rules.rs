//! How fields are compared: each field's rule decided from the pipeline and the column types, values brought to a comparable form (exact decimals, UTC milliseconds, folded text), whether two values differ, and how values and differences read in the reports.

use polars::prelude::*;

use super::columns::{Columns, IN_LEFT, IN_RIGHT, Side};
use super::values::{
    Spelling, decimal_places, format_decimal, numbers_equal, parse_decimal, to_epoch_ms, to_scaled,
};
use crate::pipeline::{FieldComparison, UnicodeForm};
use crate::transforms::unicode;

/// Decimal places used for numbers whose scale the schema does not tell
/// (floats, numeric text).
pub const UNKNOWN_SCALE: u32 = 6;
/// Largest scale numbers are compared at; leaves headroom in `i128`.
pub const MAX_SCALE: u32 = 18;

/// How a field's values are compared, decided from the rule and the column types.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum Rule {
    /// Exact decimals at `scale` places (as `i128` units).
    Number {
        /// Decimal places both sides are brought to.
        scale: u32,
        /// Absolute tolerance, in units of `scale`.
        #[serde(skip)]
        absolute: i128,
        /// Relative tolerance as (units, scale): `0.001` is (1, 3).
        #[serde(skip)]
        relative: Option<(i128, u32)>,
    },
    /// Instants in UTC milliseconds.
    Time {
        /// Largest difference still equal, in milliseconds.
        tolerance_ms: i64,
    },
    /// Text, optionally trimmed, normalised and case-folded.
    Text {
        /// Trim before comparing.
        trim: bool,
        /// Compare without letter case (Unicode case folding).
        ignore_case: bool,
        /// Unicode normalisation before comparing.
        #[serde(skip_serializing_if = "Option::is_none")]
        normalize: Option<UnicodeForm>,
    },
}

/// One compared field, resolved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldPlan {
    /// Report name (left column).
    pub field: String,
    /// Right column.
    pub right: String,
    /// The comparison.
    pub rule: Rule,
    /// Whether null on both sides counts as equal.
    pub null_equals_null: bool,
    /// An amount: compared with a numeric tolerance, or decimal on both
    /// sides. Amounts get control totals.
    pub amount: bool,
}

fn scale_of(dt: &DataType) -> u32 {
    match dt {
        DataType::Decimal(_, s) => *s as u32,
        dt if dt.is_integer() => 0,
        _ => UNKNOWN_SCALE,
    }
}

/// Whether a column of type `dt` is compared as a number by default.
pub(super) fn is_number(dt: &DataType) -> bool {
    dt.is_integer() || dt.is_float() || matches!(dt, DataType::Decimal(_, _))
}

fn is_time(dt: &DataType) -> bool {
    matches!(dt, DataType::Datetime(_, _) | DataType::Date)
}

/// Decide how a field is compared.
pub fn resolve_field(f: &FieldComparison, left: &DataType, right: &DataType) -> FieldPlan {
    let rule = if let Some(t) = f.time_tolerance {
        Rule::Time {
            tolerance_ms: t.get().as_millis().min(i64::MAX as u128) as i64,
        }
    } else if f.absolute.is_some() || f.relative.is_some() || (is_number(left) && is_number(right))
    {
        let tol_places = f.absolute.as_deref().map(decimal_places).unwrap_or(0);
        let scale = scale_of(left)
            .max(scale_of(right))
            .max(tol_places)
            .min(MAX_SCALE);
        let absolute = f
            .absolute
            .as_deref()
            .and_then(|a| parse_decimal(a, scale).ok())
            .unwrap_or(0);
        let relative = f.relative.as_deref().and_then(|r| {
            let places = decimal_places(r).min(MAX_SCALE);
            parse_decimal(r, places).ok().map(|u| (u, places))
        });
        Rule::Number {
            scale,
            absolute,
            relative,
        }
    } else if is_time(left) && is_time(right) {
        Rule::Time { tolerance_ms: 0 }
    } else {
        Rule::Text {
            trim: f.trim,
            ignore_case: f.ignore_case,
            normalize: f.normalize,
        }
    };
    let decimal = |dt: &DataType| matches!(dt, DataType::Decimal(_, _));
    let amount = matches!(rule, Rule::Number { .. })
        && (f.absolute.is_some() || f.relative.is_some() || (decimal(left) && decimal(right)));
    FieldPlan {
        field: f.field.clone(),
        right: f.right.clone().unwrap_or_else(|| f.field.clone()),
        rule,
        null_equals_null: f.null_equals_null,
        amount,
    }
}

/// A column brought to its comparable form: numbers as `i128` units of the
/// rule's scale, instants as UTC epoch milliseconds, text as (trimmed,
/// lower-cased) text. The common input types use Polars' own kernels; the
/// rest (numeric text, floats, other time units) our exact conversions.
pub(super) fn normalize(
    column: &str,
    dt: &DataType,
    rule: &Rule,
    spelling: &Spelling,
    context: String,
) -> Expr {
    let e = col(column);
    match (rule, dt) {
        (Rule::Number { scale, .. }, DataType::Decimal(p, s))
            if (*s as u32) <= *scale && *p + (*scale as usize - *s) <= 38 =>
        {
            let units = e.to_physical();
            match scale - *s as u32 {
                0 => units,
                up => units * lit(10i128.pow(up)),
            }
        }
        (Rule::Number { scale, .. }, dt) if dt.is_integer() && *scale <= MAX_SCALE => {
            let units = e.cast(DataType::Int128);
            match scale {
                0 => units,
                up => units * lit(10i128.pow(*up)),
            }
        }
        (Rule::Time { .. }, DataType::Datetime(TimeUnit::Milliseconds, tz))
            if tz.is_some() || spelling.zone.fixed_offset().is_some() =>
        {
            let ms = e.to_physical();
            match spelling.zone.fixed_offset() {
                Some(offset) if tz.is_none() && offset != 0 => ms - lit(i64::from(offset) * 1000),
                _ => ms,
            }
        }
        (
            Rule::Text {
                trim,
                ignore_case,
                normalize,
            },
            dt,
        ) => {
            let mut t = if dt == &DataType::String {
                e
            } else {
                e.cast(DataType::String)
            };
            if *trim {
                t = t.str().strip_chars(lit(NULL));
            }
            if let Some(form) = *normalize {
                t = map_text(t, move |v| unicode::normalize(v, form));
            }
            if *ignore_case {
                t = map_text(t, unicode::fold);
            }
            t
        }
        _ => normalize_exact(e, rule, spelling.clone(), context),
    }
}

/// Text values through `f` (normalisation, case folding), nulls kept;
/// values `f` leaves as they are are not copied.
fn map_text(
    e: Expr,
    f: impl Fn(&str) -> std::borrow::Cow<'_, str> + Send + Sync + Copy + 'static,
) -> Expr {
    e.map(
        move |c| {
            let ca = c.as_materialized_series().str()?.clone();
            let out: StringChunked = ca.iter().map(|v| v.map(|v| f(v).into_owned())).collect();
            Ok(out.with_name(c.name().clone()).into_series().into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
    )
}

/// Our exact conversions of numbers and instants, for the input types
/// Polars' kernels do not cover. Text never gets here: `normalize` handles
/// every text rule with Polars' string kernels.
fn normalize_exact(e: Expr, rule: &Rule, spelling: Spelling, context: String) -> Expr {
    let scale = match rule {
        Rule::Number { scale, .. } => Some(*scale),
        _ => None,
    };
    let out_type = if scale.is_some() {
        DataType::Int128
    } else {
        DataType::Int64
    };
    e.map(
        move |c| {
            let s = c.as_materialized_series();
            let bad = |why: String| polars_err!(ComputeError: "{context}: {why}");
            let out = match scale {
                Some(scale) => to_scaled(s, scale, &spelling.numbers)
                    .map_err(bad)?
                    .into_series(),
                None => to_epoch_ms(s, &spelling).map_err(bad)?.into_series(),
            };
            Ok(out.with_name(c.name().clone()).into_column())
        },
        move |_, f| Ok(Field::new(f.name().clone(), out_type.clone())),
    )
}

/// A key part as text: trimmed, empty as null. Integer ids and text ids
/// with the same digits meet.
pub(super) fn key_text(column: &str, dt: &DataType) -> Expr {
    let t = if dt == &DataType::String {
        col(column).str().strip_chars(lit(NULL))
    } else {
        col(column).cast(DataType::String)
    };
    when(t.clone().eq(lit("")))
        .then(lit(NULL).cast(DataType::String))
        .otherwise(t)
}

/// Whether a column's report text is exactly the text of its normalised
/// value: decimals at the compared scale, integers compared at scale 0,
/// UTC instants in milliseconds, text compared as it is.
pub(super) fn renders_from_normalised(dt: &DataType, rule: &Rule) -> bool {
    match (rule, dt) {
        (Rule::Number { scale, .. }, DataType::Decimal(_, s)) => *s as u32 == *scale,
        (Rule::Number { scale, .. }, dt) => dt.is_integer() && *scale == 0,
        (Rule::Time { .. }, DataType::Datetime(TimeUnit::Milliseconds, tz)) => tz.is_some(),
        (
            Rule::Text {
                trim: false,
                ignore_case: false,
                normalize: None,
            },
            DataType::String,
        ) => true,
        _ => false,
    }
}

/// The report text of a normalised column (see [`renders_from_normalised`]).
pub(super) fn render_normalised(e: Expr, rule: &Rule) -> Expr {
    let rule = rule.clone();
    e.map(
        move |c| {
            let out: StringChunked = match rule {
                Rule::Number { scale, .. } => c
                    .i128()?
                    .iter()
                    .map(|v| v.map(|v| format_decimal(v, scale)))
                    .collect(),
                Rule::Time { .. } => c
                    .i64()?
                    .iter()
                    .map(|v| v.map(|v| ms_text(v, true)))
                    .collect(),
                Rule::Text { .. } => c.str()?.clone(),
            };
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::String)),
    )
}

/// Whether field `i` differs: null unless the key is on both sides; then
/// a null on one side only differs, nulls on both differ unless
/// `null_equals_null`, and values differ beyond the rule's tolerance.
pub(super) fn differs_expr(names: &Columns, i: usize, rule: &Rule, null_eq: bool) -> Expr {
    let (l, r) = (
        col(names.normalised(Side::Left, i)),
        col(names.normalised(Side::Right, i)),
    );
    let paired = col(IN_LEFT).is_not_null().and(col(IN_RIGHT).is_not_null());
    let values = match rule {
        Rule::Number {
            absolute,
            relative: None,
            ..
        } => (l.clone() - r.clone()).abs().gt(lit(absolute.abs())),
        Rule::Number {
            absolute,
            relative: Some(relative),
            ..
        } => {
            let (absolute, relative) = (*absolute, *relative);
            l.clone().map_many(
                move |cols| {
                    let (a, b) = (cols[0].i128()?, cols[1].i128()?);
                    let out: BooleanChunked = a
                        .iter()
                        .zip(b.iter())
                        .map(|(a, b)| {
                            a.zip(b)
                                .map(|(a, b)| !numbers_equal(a, b, absolute, Some(relative)))
                        })
                        .collect();
                    Ok(out.with_name(cols[0].name().clone()).into_column())
                },
                std::slice::from_ref(&r),
                |_, fs| Ok(Field::new(fs[0].name().clone(), DataType::Boolean)),
            )
        }
        Rule::Time { tolerance_ms } => (l.clone() - r.clone())
            .abs()
            .gt(lit(tolerance_ms.unsigned_abs().min(i64::MAX as u64) as i64)),
        Rule::Text { .. } => l.clone().neq(r.clone()),
    };
    let both_null = l.clone().is_null().and(r.clone().is_null());
    let one_null = l.is_null().xor(r.is_null());
    let differs = both_null
        .and(lit(!null_eq))
        .or(one_null)
        .or(values.fill_null(lit(false)));
    when(paired)
        .then(differs)
        .otherwise(lit(NULL).cast(DataType::Boolean))
}

/// `left - right` of field `i` in units of its rule (null for text).
pub(super) fn diff_expr(names: &Columns, i: usize, rule: &Rule) -> Expr {
    let (l, r) = (
        col(names.normalised(Side::Left, i)),
        col(names.normalised(Side::Right, i)),
    );
    match rule {
        Rule::Number { .. } => l - r,
        Rule::Time { .. } => l.cast(DataType::Int128) - r.cast(DataType::Int128),
        Rule::Text { .. } => lit(NULL).cast(DataType::Int128),
    }
}

/// Text of one value as reports show it: decimals with their scale, instants
/// as ISO 8601 in UTC with milliseconds.
pub fn value_text(av: &AnyValue<'_>) -> Option<String> {
    Some(match av {
        AnyValue::Null => return None,
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        AnyValue::Decimal(v, _, s) => format_decimal(*v, *s as u32),
        AnyValue::Datetime(v, tu, tz) => datetime_text(*v, *tu, tz.is_some()),
        AnyValue::DatetimeOwned(v, tu, tz) => datetime_text(*v, *tu, tz.is_some()),
        AnyValue::Date(days) => chrono::DateTime::from_timestamp(i64::from(*days) * 86_400, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        other => {
            let s = other.to_string();
            s.trim_matches('"').to_string()
        }
    })
}

fn datetime_text(v: i64, tu: TimeUnit, utc: bool) -> String {
    let ms = match tu {
        TimeUnit::Nanoseconds => v.div_euclid(1_000_000),
        TimeUnit::Microseconds => v.div_euclid(1_000),
        TimeUnit::Milliseconds => v,
    };
    ms_text(ms, utc)
}

fn ms_text(ms: i64, utc: bool) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(d) if utc => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Some(d) => d.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

/// A difference as reports show it: decimal text for numbers, seconds for times.
pub fn difference_text(rule: &Rule, diff: i128) -> Option<String> {
    match rule {
        Rule::Number { scale, .. } => Some(format_decimal(diff, *scale)),
        // Seconds, as a plain number (spreadsheets read it as one).
        Rule::Time { .. } => Some(format_decimal(diff, 3)),
        Rule::Text { .. } => None,
    }
}
