//! Declarative transform steps, applied in Polars to a lazy frame (sync batches cross over through [`bridge`]).

use std::collections::BTreeMap;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::pipeline::sql;
use crate::pipeline::{AggFn, Aggregation, ColumnType, Transform};

mod scale;
mod text;
pub mod unicode;

/// Kept at this path for the consistency check; defined with the step types.
pub use crate::pipeline::{Cut, partition_point};
use scale::scale_expr;
pub use scale::{CurrencyTable, DEFAULT_COLUMN_DIGITS, MAX_ROW_DIGITS, NoDigits};
use text::{TextRule, text_expr};

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
    /// A step's SQL reads something other than its input (a table function
    /// such as `read_csv('/etc/passwd')`); see [`sql::check_sql_query`].
    #[error("transforms[{index}] ({kind}): {reason}")]
    Forbidden {
        /// Position in the `transforms` list.
        index: usize,
        /// Step type.
        kind: &'static str,
        /// What was found.
        reason: String,
    },
    /// An `aggregate` step's aggregation is not `FUNCTION(column)` with a
    /// known function; validation refuses such a file first.
    #[error(
        "transforms[{index}] (aggregate): aggregations.{output}: {text:?}: write FUNCTION(column) with sum, min, max, first, last, count or mean"
    )]
    Aggregation {
        /// Position in the `transforms` list.
        index: usize,
        /// The output column.
        output: String,
        /// The aggregation as written.
        text: String,
    },
    /// Running the steps failed (a cast that does not fit, a missing column).
    #[error("applying transforms: {0}")]
    Run(#[source] PolarsError),
    /// The batch could not cross to or from Polars.
    #[error(transparent)]
    Bridge(#[from] crate::engine::bridge::BridgeError),
}

/// The Polars type a declared column type maps to.
pub fn polars_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::String,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date,
        ColumnType::Timestamp => DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
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

/// The table-function refusal of a step, for steps built without
/// validation; text that does not parse is left to Polars to report.
fn forbidden_in(step: &Transform) -> Option<String> {
    match step {
        Transform::Sql { query } => sql::table_function_in_query(query),
        Transform::Derive { expr, .. } | Transform::Filter { expr } => {
            sql::table_function_in_expr(expr)
        }
        _ => None,
    }
}

/// Whether the rows coming out of the steps must keep their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// As the source has them (sync: payloads in source order); an
    /// `aggregate` gives its groups in the order of their first row.
    Kept,
    /// Any order (a consistency check, whose reports are sorted): an
    /// `aggregate` that is the last step skips putting its groups in order
    /// (5M rows per side: about 0.2 s of a 4 s check, alternating runs).
    Any,
}

/// Add the steps to a lazy plan. Building is cheap; errors in SQL text are
/// found here, errors in data when the plan is collected.
pub fn apply(lf: LazyFrame, steps: &[Transform]) -> Result<LazyFrame, TransformError> {
    apply_with(lf, steps, RowOrder::Kept)
}

/// [`apply`], with the rows' order kept or not.
pub fn apply_with(
    mut lf: LazyFrame,
    steps: &[Transform],
    order: RowOrder,
) -> Result<LazyFrame, TransformError> {
    for (index, step) in steps.iter().enumerate() {
        let err = |source| TransformError::Step {
            index,
            kind: kind(step),
            source,
        };
        // Validation refuses these already; a plan built without it must not
        // read files either.
        if let Some(reason) = forbidden_in(step) {
            return Err(TransformError::Forbidden {
                index,
                kind: kind(step),
                reason,
            });
        }
        lf = match step {
            Transform::Rename { columns } => lf.rename(columns.keys(), columns.values(), true),
            Transform::Cast { columns } => lf.with_columns(
                columns
                    .iter()
                    .map(|(c, t)| cast_expr(col(c.as_str()), *t))
                    .collect::<Vec<_>>(),
            ),
            Transform::Derive { column, expr } => lf.with_column(
                polars::sql::sql_expr(expr)
                    .map_err(err)?
                    .alias(column.as_str()),
            ),
            Transform::Filter { expr } => lf.filter(polars::sql::sql_expr(expr).map_err(err)?),
            Transform::Select { columns } => {
                lf.select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
            }
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
                    .map(|c| scale_expr(index, c, digits))
                    .collect::<Vec<_>>(),
            ),
            Transform::Text {
                columns,
                trim,
                normalize,
                strip_leading_zeros,
                case,
            } => {
                let rule = TextRule {
                    trim: *trim,
                    normalize: *normalize,
                    strip_leading_zeros: *strip_leading_zeros,
                    case: *case,
                };
                lf.with_columns(
                    columns
                        .iter()
                        .map(|c| text_expr(c, rule))
                        .collect::<Vec<_>>(),
                )
            }
            Transform::Truncate { columns, every } => {
                let every_ms = every.get().as_millis().min(i64::MAX as u128) as i64;
                lf.with_columns(
                    columns
                        .iter()
                        .map(|c| truncate_expr(c, every_ms))
                        .collect::<Vec<_>>(),
                )
            }
            Transform::Aggregate { by, aggregations } => {
                // Later steps may depend on the order (an `sql` with LIMIT).
                let ordered = order == RowOrder::Kept || index + 1 < steps.len();
                aggregate(lf, by, typed_aggregations(index, aggregations)?, ordered)
            }
        };
    }
    Ok(lf)
}

use crate::engine::runs::{self, Aggregations, FIRST_ROW, LAST_ROW};

/// Internal column of [`aggregate`]: each row's number.
const ROW: &str = "__s360_row";

/// The Polars reduction of an aggregation; `first` and `last` are
/// `Expr::first` and `Expr::last` here, gathered by row number in
/// [`aggregate`].
fn reduction(func: AggFn, column: &str) -> Expr {
    let e = col(column);
    match func {
        AggFn::Sum => e.sum(),
        AggFn::Min => e.min(),
        AggFn::Max => e.max(),
        AggFn::First => e.first(),
        AggFn::Last => e.last(),
        AggFn::Count => e.count(),
        AggFn::Mean => e.mean(),
    }
}

/// The typed aggregations of an `aggregate` step, or the first that is not
/// `FUNCTION(column)` with a known function (validation reports those with
/// their position; a step built without validation stops here).
fn typed_aggregations(
    index: usize,
    aggregations: &BTreeMap<String, Aggregation>,
) -> Result<Aggregations, TransformError> {
    aggregations
        .iter()
        .map(|(out, spec)| match spec.get() {
            Some((func, column)) => Ok((out.clone(), func, column.to_string())),
            None => Err(TransformError::Aggregation {
                index,
                output: out.clone(),
                text: spec.text().to_string(),
            }),
        })
        .collect()
}

/// `aggregate`: one row per group of `by`, in the order of each group's
/// first row (as Polars' `group_by_stable`) when `ordered`, with the
/// aggregations in the order of their output names.
///
/// Sums, counts and the like are Polars' group-by reductions. `first` and
/// `last` are not: the group-by keeps each group's first and last row
/// number, and the values are gathered from those rows afterwards. Polars'
/// own `first` on text keeps a heap buffer per group, and on a CRM export of
/// 9M order lines (4.5M orders, 4 `first` columns) this took the
/// aggregation from 2.8 s and 2.4 GB to 1.6 s and 1.8 GB (`docs/ARCHITECTURE.md`).
/// The cost: the step's input columns are held in memory while it runs.
fn aggregate(lf: LazyFrame, by: &[String], specs: Aggregations, ordered: bool) -> LazyFrame {
    let mut needed: Vec<&str> = by.iter().map(String::as_str).collect();
    for (_, _, column) in &specs {
        if !needed.contains(&column.as_str()) {
            needed.push(column);
        }
    }
    let input = lf.select(needed.iter().map(|c| col(*c)).collect::<Vec<_>>());
    let keys: Vec<Expr> = by.iter().map(|c| col(c.as_str())).collect();
    let polars_aggs: Vec<Expr> = specs
        .iter()
        .map(|(out, func, column)| reduction(*func, column).alias(out.as_str()))
        .collect();
    // The output schema is the one Polars' own group-by would have.
    let schema = {
        let (keys, aggs) = (keys.clone(), polars_aggs);
        move |input: &Schema| -> PolarsResult<SchemaRef> {
            DataFrame::empty_with_schema(input)
                .lazy()
                .group_by(keys.clone())
                .agg(aggs.clone())
                .collect_schema()
        }
    };
    let by = by.to_vec();
    input.map(
        move |df| aggregate_frame(df, &by, &keys, &specs, ordered),
        OptFlags::empty(),
        Some(Arc::new(schema)),
        Some("aggregate"),
    )
}

/// [`aggregate`] on the step's input, in memory: the groups that are whole
/// runs of rows in key order without hashing (see [`runs`]), the other
/// rows, or all, through Polars' group-by.
fn aggregate_frame(
    df: DataFrame,
    by: &[String],
    keys: &[Expr],
    specs: &Aggregations,
    ordered: bool,
) -> PolarsResult<DataFrame> {
    // The output types of Polars' own group-by, which the result keeps.
    let expected = DataFrame::empty_with_schema(df.schema())
        .lazy()
        .group_by(keys)
        .agg(
            specs
                .iter()
                .map(|(out, func, column)| reduction(*func, column).alias(out.as_str()))
                .collect::<Vec<_>>(),
        )
        .collect_schema()?;
    // Only the columns of `first` and `last` outlive the group-by.
    let mut kept: Vec<&str> = Vec::new();
    for (_, func, column) in specs {
        if func.is_gathered() && !kept.contains(&column.as_str()) {
            kept.push(column);
        }
    }
    let values = df.select(kept)?;
    // The group-by, on all rows or on those `runs` leaves to it.
    let group_by = |input: DataFrame| -> PolarsResult<DataFrame> {
        let mut aggs: Vec<Expr> = specs
            .iter()
            .filter(|(_, func, _)| !func.is_gathered())
            .map(|(out, func, column)| reduction(*func, column).alias(out.as_str()))
            .collect();
        aggs.push(col(ROW).min().alias(FIRST_ROW));
        aggs.push(col(ROW).max().alias(LAST_ROW));
        input
            .lazy()
            .group_by(keys)
            .agg(aggs)
            .collect_with_engine(Engine::Streaming)?
            .unwrap_single()
            .select(
                by.iter()
                    .map(String::as_str)
                    .chain([FIRST_ROW, LAST_ROW])
                    .chain(
                        specs
                            .iter()
                            .filter(|(_, func, _)| !func.is_gathered())
                            .map(|(out, _, _)| out.as_str()),
                    ),
            )
    };
    let groups = match runs::settled(&df, by, specs, &expected) {
        Ok(Some((mut groups, rest))) => {
            tracing::debug!(
                groups = groups.height(),
                rows_left = rest.len(),
                "aggregate: runs settled"
            );
            let rest = if rest.is_empty() {
                None
            } else {
                let rows = IdxCa::from_vec(ROW.into(), rest);
                let mut input = crate::engine::gather::gather_rows(&df, &rows)?;
                input.with_column(rows.into_column())?;
                Some(input)
            };
            drop(df);
            if let Some(input) = rest {
                let merged = group_by(input)?;
                // In the settled groups' order and types.
                let merged = groups
                    .columns()
                    .iter()
                    .map(|like| merged.column(like.name())?.strict_cast(like.dtype()))
                    .collect::<PolarsResult<Vec<_>>>()?;
                groups.vstack_mut_owned(DataFrame::new(merged[0].len(), merged)?)?;
            }
            groups
        }
        other => {
            // A result that does not fit its type (`runs` sums exactly):
            // the group-by gives Polars' own answer or error.
            if let Err(e) = other {
                tracing::debug!(error = %e, "aggregate: runs not used");
            }
            let input = df.with_row_index(ROW.into(), None)?;
            drop(df);
            group_by(input)?
        }
    };
    let groups = if ordered {
        groups.sort([FIRST_ROW], SortMultipleOptions::default())?
    } else {
        groups
    };
    let (first, last) = (
        groups.column(FIRST_ROW)?.idx()?,
        groups.column(LAST_ROW)?.idx()?,
    );
    // Each row kind's columns gathered together.
    let gather = |kind: AggFn, rows: &IdxCa| -> PolarsResult<DataFrame> {
        let mut names: Vec<&str> = Vec::new();
        for (_, func, column) in specs {
            if *func == kind && !names.contains(&column.as_str()) {
                names.push(column);
            }
        }
        crate::engine::gather::gather_rows(&values.select(names)?, rows)
    };
    let (firsts, lasts) = (gather(AggFn::First, first)?, gather(AggFn::Last, last)?);
    let mut columns = Vec::with_capacity(by.len() + specs.len());
    for c in by {
        columns.push(groups.column(c)?.clone());
    }
    for (out, func, column) in specs {
        let c = match func {
            AggFn::First => firsts.column(column)?.clone(),
            AggFn::Last => lasts.column(column)?.clone(),
            AggFn::Sum | AggFn::Min | AggFn::Max | AggFn::Count | AggFn::Mean => groups
                .column(out)?
                .strict_cast(expected.try_get(out.as_str())?)?,
        };
        columns.push(c.with_name(out.as_str().into()));
    }
    DataFrame::new(groups.height(), columns)
}

fn cast_expr(e: Expr, t: ColumnType) -> Expr {
    match t {
        // Text timestamps in either S-360 form, with or without offset.
        ColumnType::Timestamp => e.strict_cast(polars_type(t)),
        _ => e.strict_cast(polars_type(t)),
    }
}

/// Floor timestamps to a multiple of `every_ms` since the epoch (in UTC, so
/// `1s` drops milliseconds whatever the zone). Dates and other types fail.
fn truncate_expr(name: &str, every_ms: i64) -> Expr {
    col(name).map(
        move |c| {
            let s = c.as_materialized_series();
            let DataType::Datetime(tu, tz) = s.dtype().clone() else {
                polars_bail!(InvalidOperation: "truncate needs a timestamp column, `{}` is {}", s.name(), s.dtype());
            };
            let per_ms = match tu {
                TimeUnit::Nanoseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1,
            };
            let every = every_ms.saturating_mul(per_ms).max(1);
            let out: Int64Chunked = s
                .datetime()?
                .physical()
                .iter()
                .map(|v| v.map(|v| v - v.rem_euclid(every)))
                .collect();
            Ok(out
                .into_datetime(tu, tz)
                .into_series()
                .with_name(s.name().clone())
                .into_column())
        },
        |_, f| Ok(f.clone()),
    )
}

/// Apply `steps` to one arrow-rs batch through Polars and return the result.
pub fn apply_to_batch(
    batch: &arrow::array::RecordBatch,
    steps: &[Transform],
) -> Result<arrow::array::RecordBatch, TransformError> {
    if steps.is_empty() {
        return Ok(batch.clone());
    }
    let df = crate::engine::bridge::to_polars(batch)?;
    let df = apply(df.lazy(), steps)?
        .collect()
        .map_err(TransformError::Run)?;
    Ok(crate::engine::bridge::to_arrow(&df)?)
}

#[cfg(test)]
mod tests;
