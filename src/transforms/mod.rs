//! Declarative transform steps, applied in Polars to a lazy frame (sync batches cross over through [`bridge`]).

pub mod bridge;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::pipeline::{ColumnType, LetterCase, Transform, parse_aggregation};

/// A step could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// A step's SQL or column names are wrong.
    #[error("transforms[{index}] ({kind}): {source}")]
    Step {
        /// Position in the `transforms` list.
        index: usize,
        /// Step type.
        kind: &'static str,
        /// Cause.
        source: PolarsError,
    },
    /// Running the steps failed (a cast that does not fit, a missing column).
    #[error("applying transforms: {0}")]
    Run(#[source] PolarsError),
    /// The batch could not cross to or from Polars.
    #[error(transparent)]
    Bridge(#[from] bridge::BridgeError),
}

/// The Polars type a declared column type maps to.
pub fn polars_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::String,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date,
        ColumnType::Timestamp => {
            DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        }
        ColumnType::Decimal(p, s) => DataType::Decimal(p as usize, s as usize),
    }
}

fn kind(t: &Transform) -> &'static str {
    match t {
        Transform::Rename { .. } => "rename",
        Transform::Cast { .. } => "cast",
        Transform::Derive { .. } => "derive",
        Transform::Filter { .. } => "filter",
        Transform::Select { .. } => "select",
        Transform::Drop { .. } => "drop",
        Transform::Sql { .. } => "sql",
        Transform::Scale { .. } => "scale",
        Transform::Text { .. } => "text",
        Transform::Truncate { .. } => "truncate",
        Transform::Aggregate { .. } => "aggregate",
    }
}

/// Add the steps to a lazy plan. Building is cheap; errors in SQL text are
/// found here, errors in data when the plan is collected.
pub fn apply(mut lf: LazyFrame, steps: &[Transform]) -> Result<LazyFrame, TransformError> {
    for (index, step) in steps.iter().enumerate() {
        let err = |source| TransformError::Step {
            index,
            kind: kind(step),
            source,
        };
        lf = match step {
            Transform::Rename { columns } => {
                lf.rename(columns.keys(), columns.values(), true)
            }
            Transform::Cast { columns } => lf.with_columns(
                columns
                    .iter()
                    .map(|(c, t)| cast_expr(col(c.as_str()), *t))
                    .collect::<Vec<_>>(),
            ),
            Transform::Derive { column, expr } => {
                lf.with_column(polars::sql::sql_expr(expr).map_err(err)?.alias(column.as_str()))
            }
            Transform::Filter { expr } => lf.filter(polars::sql::sql_expr(expr).map_err(err)?),
            Transform::Select { columns } => lf.select(
                columns
                    .iter()
                    .map(|c| col(c.as_str()))
                    .collect::<Vec<_>>(),
            ),
            Transform::Drop { columns } => {
                lf.drop(by_name(columns.iter().map(|c| c.as_str()), true, false))
            }
            Transform::Sql { query } => {
                let mut ctx = SQLContext::new();
                ctx.register("source", lf);
                ctx.execute(query).map_err(err)?
            }
            Transform::Scale { columns, digits } => lf.with_columns(
                columns
                    .iter()
                    .map(|c| scale_expr(c, *digits))
                    .collect::<Vec<_>>(),
            ),
            Transform::Text {
                columns,
                trim,
                case,
            } => lf.with_columns(
                columns
                    .iter()
                    .map(|c| {
                        let mut e = col(c.as_str());
                        if *trim {
                            e = e.str().strip_chars(lit(NULL));
                        }
                        match case {
                            Some(LetterCase::Lower) => e = e.str().to_lowercase(),
                            Some(LetterCase::Upper) => e = e.str().to_uppercase(),
                            None => {}
                        }
                        e
                    })
                    .collect::<Vec<_>>(),
            ),
            Transform::Truncate { columns, every } => {
                let every = format!("{}ms", every.get().as_millis());
                lf.with_columns(
                    columns
                        .iter()
                        .map(|c| col(c.as_str()).dt().truncate(lit(every.clone())))
                        .collect::<Vec<_>>(),
                )
            }
            Transform::Aggregate { by, aggregations } => {
                let keys: Vec<Expr> = by.iter().map(|c| col(c.as_str())).collect();
                let aggs: Vec<Expr> = aggregations
                    .iter()
                    .filter_map(|(out, spec)| {
                        let (func, column) = parse_aggregation(spec)?;
                        let e = col(column);
                        let e = match func {
                            "sum" => e.sum(),
                            "min" => e.min(),
                            "max" => e.max(),
                            "first" => e.first(),
                            "last" => e.last(),
                            "count" => e.count(),
                            _ => e.mean(),
                        };
                        Some(e.alias(out.as_str()))
                    })
                    .collect();
                lf.group_by_stable(keys).agg(aggs)
            }
        };
    }
    Ok(lf)
}

fn cast_expr(e: Expr, t: ColumnType) -> Expr {
    match t {
        // Text timestamps in either S-360 form, with or without offset.
        ColumnType::Timestamp => e.strict_cast(polars_type(t)),
        _ => e.strict_cast(polars_type(t)),
    }
}

/// Shift the decimal point by `digits` exactly: integers and decimals are
/// reinterpreted as decimals with a new scale, never passed through floats.
fn scale_expr(name: &str, digits: i8) -> Expr {
    col(name).map(
        move |c| scale_column(c, digits),
        move |_, f| {
            let scale = match f.dtype() {
                DataType::Decimal(_, s) => (*s as i64 + digits as i64).max(0) as usize,
                _ => digits.max(0) as usize,
            };
            Ok(Field::new(f.name().clone(), DataType::Decimal(38, scale)))
        },
    )
}

fn scale_column(c: Column, digits: i8) -> PolarsResult<Column> {
    let s = c.as_materialized_series();
    let (unscaled, scale) = match s.dtype() {
        DataType::Decimal(_, scale) => (s.cast(&DataType::Int128)?, *scale as i64),
        dt if dt.is_integer() => (s.cast(&DataType::Int128)?, 0),
        DataType::String => {
            let d = s.strict_cast(&DataType::Decimal(38, 9))?;
            (d.cast(&DataType::Int128)?, 9)
        }
        other => polars_bail!(InvalidOperation: "scale needs an integer, decimal or numeric text column, `{}` is {other}", s.name()),
    };
    let new_scale = scale + digits as i64;
    let (unscaled, new_scale) = if new_scale < 0 {
        // Multiplying past scale 0: multiply the unscaled value instead.
        let factor = 10i128.pow((-new_scale) as u32);
        let ca = unscaled.i128()?;
        let out: Int128Chunked = ca.apply_values(|v| v * factor);
        (out.into_series(), 0)
    } else {
        (unscaled, new_scale)
    };
    Ok(unscaled.into_decimal(38, new_scale as usize)?.into_column())
}

/// Apply `steps` to one arrow-rs batch through Polars and return the result.
pub fn apply_to_batch(
    batch: &arrow::array::RecordBatch,
    steps: &[Transform],
) -> Result<arrow::array::RecordBatch, TransformError> {
    if steps.is_empty() {
        return Ok(batch.clone());
    }
    let df = bridge::to_polars(batch)?;
    let df = apply(df.lazy(), steps)?
        .collect()
        .map_err(TransformError::Run)?;
    Ok(bridge::to_arrow(&df)?)
}

#[cfg(test)]
mod tests;
