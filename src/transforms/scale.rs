//! The `scale` step: minor units to exact decimals, by a fixed number of digits or by each row's own (a digits column, a currency's ISO 4217 minor units).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use polars::prelude::*;

use crate::pipeline::Digits;

/// Scale digits of text read as decimals by `scale`.
const TEXT_SCALE: usize = 9;

/// The largest scale a `scale` step may produce with each row's own digits
/// (`max_digits`), and the largest digits a table entry may give.
pub const MAX_ROW_DIGITS: i64 = 18;

/// The default `max_digits` of `digits: { column }`.
pub const DEFAULT_COLUMN_DIGITS: u32 = 4;

/// The step's expression for column `name`: `index` is the step's position
/// in its `transforms` list, for messages.
pub(super) fn scale_expr(index: usize, name: &str, digits: &Digits) -> Expr {
    match digits {
        Digits::Fixed(d) => {
            let d = *d;
            col(name).map(
                move |c| scale_column(c, d),
                move |_, f| {
                    let (_, scale) = scales(f.dtype(), d);
                    Ok(Field::new(f.name().clone(), DataType::Decimal(38, scale)))
                },
            )
        }
        Digits::Column { column, max_digits } => {
            let rule = RowDigits {
                step: index,
                column: column.clone(),
                source: DigitsSource::Column,
                max: max_digits.map_or(Ok(DEFAULT_COLUMN_DIGITS), max_from),
            };
            rows_expr(name, column, rule)
        }
        Digits::Currency {
            currency,
            table,
            max_digits,
        } => {
            let table = CurrencyTable::new(table);
            let max = match max_digits {
                Some(m) => max_from(*m),
                None => Ok(table.most_digits()),
            };
            let rule = RowDigits {
                step: index,
                column: currency.clone(),
                source: DigitsSource::Currency(table),
                max,
            };
            rows_expr(name, currency, rule)
        }
    }
}

/// `max_digits` as a scale, or why it is not one (validation refuses it
/// first; a step built without validation stops when it runs).
fn max_from(m: i64) -> Result<u32, String> {
    u32::try_from(m)
        .ok()
        .filter(|m| i64::from(*m) <= MAX_ROW_DIGITS)
        .ok_or_else(|| format!("max_digits {m} is out of range 0..=18"))
}

/// (scale of the input's units, scale of the output).
fn scales(dtype: &DataType, digits: i8) -> (usize, usize) {
    let from = input_scale(dtype);
    (from, (from as i64 + digits as i64).max(0) as usize)
}

fn input_scale(dtype: &DataType) -> usize {
    match dtype {
        DataType::Decimal(_, s) => *s,
        DataType::String => TEXT_SCALE,
        _ => 0,
    }
}

/// The unscaled integer units of a column: a decimal's physical i128, not
/// its value; integers as they are; numeric text at [`TEXT_SCALE`].
fn units_of(s: &Series) -> PolarsResult<Int128Chunked> {
    Ok(match s.dtype() {
        DataType::Decimal(_, _) => s.decimal()?.physical().clone(),
        dt if dt.is_integer() => s.cast(&DataType::Int128)?.i128()?.clone(),
        DataType::String => s
            .strict_cast(&DataType::Decimal(38, TEXT_SCALE))?
            .decimal()?
            .physical()
            .clone(),
        other => {
            polars_bail!(InvalidOperation: "scale needs an integer, decimal or numeric text column, `{}` is {other}", s.name())
        }
    })
}

/// Shift the decimal point by `digits` exactly: integers, decimals and
/// numeric text become decimals with a new scale, never passing through floats.
pub(super) fn scale_column(c: Column, digits: i8) -> PolarsResult<Column> {
    let s = c.as_materialized_series();
    let units = units_of(s)?;
    let (from, to) = scales(s.dtype(), digits);
    let shift = from as i64 + digits as i64;
    let units = if shift < 0 {
        // Multiplying past scale 0: multiply the units instead.
        let factor = 10i128.pow((-shift) as u32);
        let mut overflow = false;
        let out: Int128Chunked = units
            .iter()
            .map(|v| {
                v.and_then(|v| {
                    let r = v.checked_mul(factor);
                    overflow |= r.is_none();
                    r
                })
            })
            .collect();
        polars_ensure!(!overflow, ComputeError: "scale: `{}` overflows when multiplied by 10^{}", s.name(), -digits);
        out
    } else {
        units
    };
    Ok(units
        .into_decimal(38, to)?
        .into_series()
        .with_name(s.name().clone())
        .into_column())
}

/// ISO 4217 minor units of every code that has them, from `iso_currency`.
static ISO_4217: LazyLock<BTreeMap<String, u32>> = LazyLock::new(|| {
    let mut codes = BTreeMap::new();
    let letters = b'A'..=b'Z';
    for a in letters.clone() {
        for b in letters.clone() {
            for c in letters.clone() {
                let code = String::from_utf8_lossy(&[a, b, c]).into_owned();
                if let Some(e) = iso_currency::Currency::from_code(&code).and_then(|c| c.exponent())
                {
                    codes.insert(code, u32::from(e));
                }
            }
        }
    }
    codes
});

/// What a currency code's digits are: the step's `table` first, then ISO
/// 4217.
#[derive(Debug, Clone)]
pub struct CurrencyTable {
    /// The table's codes, upper case, with digits as written.
    table: BTreeMap<String, i64>,
}

/// Why a currency code gives no digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDigits {
    /// Neither the table nor ISO 4217 knows it.
    Unknown,
    /// ISO 4217 knows it but gives it no minor units (gold, `XAU`).
    NoMinorUnits,
    /// The table gives it digits out of range.
    OutOfRange(i64),
}

impl CurrencyTable {
    /// The table of a step, its codes matched as [`Self::digits`] matches.
    pub fn new(table: &BTreeMap<String, i64>) -> Self {
        Self {
            table: table
                .iter()
                .map(|(code, d)| (code.trim().to_ascii_uppercase(), *d))
                .collect(),
        }
    }

    /// The digits of `code`, trimmed and in any ASCII letter case.
    pub fn digits(&self, code: &str) -> Result<u32, NoDigits> {
        let code = code.trim().to_ascii_uppercase();
        if let Some(d) = self.table.get(&code) {
            return u32::try_from(*d)
                .ok()
                .filter(|d| i64::from(*d) <= MAX_ROW_DIGITS)
                .ok_or(NoDigits::OutOfRange(*d));
        }
        match ISO_4217.get(&code) {
            Some(d) => Ok(*d),
            None if iso_currency::Currency::from_code(&code).is_some() => {
                Err(NoDigits::NoMinorUnits)
            }
            None => Err(NoDigits::Unknown),
        }
    }

    /// The most digits any code has, ISO 4217's codes as the table leaves
    /// them and the table's own.
    pub fn most_digits(&self) -> u32 {
        let iso = ISO_4217
            .iter()
            .filter(|(code, _)| !self.table.contains_key(*code))
            .map(|(_, d)| *d);
        let own = self
            .table
            .values()
            .filter_map(|d| u32::try_from(*d).ok())
            .filter(|d| i64::from(*d) <= MAX_ROW_DIGITS);
        iso.chain(own).max().unwrap_or(0)
    }
}

/// Where each row's digits come from.
#[derive(Debug, Clone)]
enum DigitsSource {
    /// An integer column.
    Column,
    /// A currency code column.
    Currency(CurrencyTable),
}

/// Each row's digits for one `scale` step.
#[derive(Debug, Clone)]
struct RowDigits {
    /// The step's position, for messages.
    step: usize,
    /// The digits or currency column.
    column: String,
    source: DigitsSource,
    /// The output scale, or why `max_digits` is not one.
    max: Result<u32, String>,
}

impl RowDigits {
    fn fail(&self, amount: &str, what: String) -> PolarsError {
        polars_err!(ComputeError: "transforms[{}] (scale): column {amount}: {what}", self.step)
    }

    /// Each row's digits where the amount is not null (`None` elsewhere),
    /// or the first row that has none.
    fn per_row(
        &self,
        amount: &str,
        units: &Int128Chunked,
        units_dtype: &DataType,
        by: &Series,
    ) -> PolarsResult<Vec<Option<u32>>> {
        let max = self.max.clone().map_err(|why| self.fail(amount, why))?;
        let column = &self.column;
        let from = input_scale(units_dtype) as u32;
        match &self.source {
            DigitsSource::Column => {
                let by = match by.dtype() {
                    dt if dt.is_integer() || dt == &DataType::Null => by.cast(&DataType::Int64)?,
                    other => {
                        return Err(self.fail(
                            amount,
                            format!("digits column {column} must hold integers, it is {other}"),
                        ));
                    }
                };
                units
                    .iter()
                    .zip(by.i64()?.iter())
                    .map(|(v, d)| {
                        let Some(v) = v else { return Ok(None) };
                        let d = d.ok_or_else(|| {
                            self.fail(
                                amount,
                                format!("null digits in column {column} for the amount {}", shown(v, from)),
                            )
                        })?;
                        if d < 0 {
                            return Err(self.fail(
                                amount,
                                format!("negative digits {d} in column {column}"),
                            ));
                        }
                        if d > i64::from(max) {
                            return Err(self.fail(
                                amount,
                                format!(
                                    "digits {d} in column {column} exceed max_digits {max}; raise digits.max_digits"
                                ),
                            ));
                        }
                        Ok(Some(d as u32))
                    })
                    .collect()
            }
            DigitsSource::Currency(table) => {
                let by = by.cast(&DataType::String)?;
                units
                    .iter()
                    .zip(by.str()?.iter())
                    .map(|(v, code)| {
                        let Some(v) = v else { return Ok(None) };
                        let code = code.ok_or_else(|| {
                            self.fail(
                                amount,
                                format!("null currency in column {column} for the amount {}", shown(v, from)),
                            )
                        })?;
                        let d = table.digits(code).map_err(|why| {
                            self.fail(amount, match why {
                                NoDigits::Unknown => format!(
                                    "unknown currency {code:?} in column {column}; add it to digits.table"
                                ),
                                NoDigits::NoMinorUnits => format!(
                                    "currency {code:?} in column {column} has no minor units in ISO 4217; add it to digits.table"
                                ),
                                NoDigits::OutOfRange(d) => format!(
                                    "digits.table gives {code:?} {d} digits, out of range 0..=18"
                                ),
                            })
                        })?;
                        if d > max {
                            return Err(self.fail(
                                amount,
                                format!(
                                    "currency {code:?} in column {column} has {d} digits, more than max_digits {max}; raise digits.max_digits"
                                ),
                            ));
                        }
                        Ok(Some(d))
                    })
                    .collect()
            }
        }
    }

    /// The output scale, for the schema (0 when `max_digits` is not one:
    /// the step then stops when it runs).
    fn scale(&self) -> usize {
        self.max.clone().unwrap_or(0) as usize
    }
}

/// `scale` of column `name` by each row's digits from column `by`: the
/// digits column is an input of the expression, so a plan that reads only
/// the columns its steps need (a partitioned check) keeps it.
fn rows_expr(name: &str, by: &str, rule: RowDigits) -> Expr {
    let scale = rule.scale();
    col(name).map_many(
        move |cols: &mut [Column]| {
            let amounts = cols[0].as_materialized_series();
            let by = cols[1].as_materialized_series();
            scale_rows(amounts, by, &rule)
        },
        &[col(by)],
        move |_, fields: &[Field]| {
            Ok(Field::new(
                fields[0].name().clone(),
                DataType::Decimal(38, scale),
            ))
        },
    )
}

/// Each amount divided by 10^(its row's digits), at the step's scale,
/// exactly: an amount that would need more digits than the scale stops the
/// step.
fn scale_rows(amounts: &Series, by: &Series, rule: &RowDigits) -> PolarsResult<Column> {
    let name = amounts.name().as_str();
    let units = units_of(amounts)?;
    let from = input_scale(amounts.dtype()) as i64;
    let digits = rule.per_row(name, &units, amounts.dtype(), by)?;
    let to = rule.scale();
    let out: Int128Chunked = units
        .iter()
        .zip(digits)
        .map(|(v, d)| {
            let (Some(v), Some(d)) = (v, d) else {
                return Ok(None);
            };
            // value = v / 10^(from + d), written at scale `to`.
            let shift = to as i64 - from - i64::from(d);
            let factor = 10i128
                .checked_pow(shift.unsigned_abs() as u32)
                .ok_or_else(|| rule.fail(name, format!("{v} cannot be scaled by 10^{shift}")))?;
            if shift >= 0 {
                v.checked_mul(factor)
                    .map(Some)
                    .ok_or_else(|| rule.fail(name, format!("{v} overflows at scale {to}")))
            } else if v % factor == 0 {
                Ok(Some(v / factor))
            } else {
                Err(rule.fail(
                    name,
                    format!(
                        "{} with {d} digits needs more than max_digits {to}; raise digits.max_digits",
                        shown(v, from as u32)
                    ),
                ))
            }
        })
        .collect::<PolarsResult<_>>()?;
    Ok(out
        .into_decimal(38, to)?
        .into_series()
        .with_name(amounts.name().clone())
        .into_column())
}

/// A value in messages: its units at `scale`, without trailing zeros.
fn shown(units: i128, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let p = 10u128.pow(scale);
    let frac = format!("{:0width$}", abs % p, width = scale as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", abs / p)
    } else {
        format!("{sign}{}.{frac}", abs / p)
    }
}
