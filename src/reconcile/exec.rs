//! Running a check's Polars plans in the streaming engine, and reading their results back as text and integers.

use polars::prelude::*;

use super::error::ReconcileError;
use super::rules::value_text;

/// Run a plan in the streaming engine; a failure names `context`.
pub(super) fn collect(lf: LazyFrame, context: &str) -> Result<DataFrame, ReconcileError> {
    // One plan, one sink: the result is always `Single` (the enum itself is
    // not exported by `polars`, so it cannot be matched here).
    if tracing::enabled!(tracing::Level::TRACE) {
        let plan = lf
            .describe_optimized_plan()
            .unwrap_or_else(|e| e.to_string());
        tracing::trace!(step = context, "optimised plan:\n{plan}");
    }
    let started = std::time::Instant::now();
    let result = lf
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single());
    tracing::debug!(
        step = context,
        seconds = started.elapsed().as_secs_f64(),
        "polars plan"
    );
    result.map_err(|source| ReconcileError::Polars {
        context: context.to_string(),
        source,
    })
}

/// Plans run together in one run of the streaming engine: a cached part
/// they share is computed once, and their work overlaps. One frame per
/// plan, in order.
pub(super) fn collect_all(
    plans: Vec<LazyFrame>,
    context: &str,
) -> Result<Vec<DataFrame>, ReconcileError> {
    let started = std::time::Instant::now();
    let n = plans.len();
    let Some(opt) = plans.first().map(|p| p.get_current_optimizations()) else {
        return Ok(Vec::new());
    };
    let result = LazyFrame::collect_all_with_engine(
        plans.into_iter().map(|p| p.logical_plan).collect(),
        Engine::Streaming,
        opt,
    );
    tracing::debug!(
        step = context,
        seconds = started.elapsed().as_secs_f64(),
        "polars plans"
    );
    let err = |source| ReconcileError::Polars {
        context: context.to_string(),
        source,
    };
    let frames = result.map_err(err)?;
    if frames.len() != n {
        return Err(err(polars_err!(ComputeError: "expected {n} results")));
    }
    Ok(frames)
}

/// Two plans run together (see [`collect_all`]).
pub(super) fn collect_two(
    a: LazyFrame,
    b: LazyFrame,
    context: &str,
) -> Result<(DataFrame, DataFrame), ReconcileError> {
    let [a, b] = <[DataFrame; 2]>::try_from(collect_all(vec![a, b], context)?).map_err(|_| {
        ReconcileError::Polars {
            context: context.to_string(),
            source: polars_err!(ComputeError: "expected two results"),
        }
    })?;
    Ok((a, b))
}

/// A column of a result as report text, one value per row.
pub(super) fn texts(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, ReconcileError> {
    let c = df.column(name).map_err(|source| ReconcileError::Polars {
        context: "reading results".into(),
        source,
    })?;
    Ok((0..c.len())
        .map(|i| c.get(i).ok().and_then(|av| value_text(&av)))
        .collect())
}

/// An integer cell of a result (null as `None`).
pub(super) fn int_at(df: &DataFrame, name: &str, row: usize) -> Option<i128> {
    let av = df.column(name).ok()?.get(row).ok()?;
    match av {
        AnyValue::Int128(v) => Some(v),
        AnyValue::Null => None,
        other => other.extract::<i64>().map(i128::from),
    }
}
