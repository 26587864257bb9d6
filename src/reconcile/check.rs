//! Comparing two sides, all at once or one partition at a time: each side read once, in one streaming pass, down to its key and compared columns; each partition compared ([`super::compare`]); the parts added up ([`super::accumulate`]).

use polars::prelude::*;

use super::accumulate::Accumulated;
use super::columns::Side;
use super::compare::part;
use super::error::ReconcileError;
use super::exec::collect_two;
use super::model::Comparison;
use super::partition::{self, Input};
use super::plan::{Plan, Spec};
use super::progress::{self, Steps};

/// Compare two sides, silently. See [`compare_with`].
pub fn compare(
    left: impl Into<Input>,
    right: impl Into<Input>,
    spec: &Spec,
) -> Result<Comparison, ReconcileError> {
    compare_with(left, right, spec, &progress::silent())
}

/// Compare two sides. Each side is read once, in one streaming pass (both
/// in one run of the engine), down to its key and compared columns (raw and
/// normalised); key checks, the pairing (a full outer join on the key),
/// statistics and control totals then run on those narrow frames: on all of
/// them at once, or with `spec.partitions` above 1, one partition by key hash
/// at a time, through files on disk (see [`super::partition`]).
pub fn compare_with(
    left: impl Into<Input>,
    right: impl Into<Input>,
    spec: &Spec,
    steps: &Steps,
) -> Result<Comparison, ReconcileError> {
    let (mut left, mut right) = (left.into(), right.into());
    let plan = Plan::new(spec, &mut left, &mut right)?;
    let mut acc = Accumulated::default();
    if plan.partitions == 1 {
        all_at_once(left, right, &plan, steps, &mut acc)?;
    } else {
        by_partition(left, right, &plan, steps, &mut acc)?;
    }
    acc.finish(plan)
}

/// Both sides narrowed in one run of the engine and compared as one part.
fn all_at_once(
    left: Input,
    right: Input,
    plan: &Plan<'_>,
    steps: &Steps,
    acc: &mut Accumulated,
) -> Result<(), ReconcileError> {
    let spec = plan.spec;
    let context = format!("reading {} and {}", spec.left_name, spec.right_name);
    steps(&context);
    // Both sides in one run of Polars' streaming engine: each side's
    // serial parts (reading, an `aggregate`) overlap with the other's.
    // 5M rows per side: 0.2 s faster and a 15% lower peak than one side
    // after the other.
    let (kl, kr) = collect_two(
        plan.narrow(Side::Left, left.lf),
        plan.narrow(Side::Right, right.lf),
        &context,
    )?;
    for (side, df) in [(&spec.left_name, &kl), (&spec.right_name, &kr)] {
        tracing::debug!(
            side = side.as_str(),
            rows = df.height(),
            mib = df.estimated_size() / (1 << 20),
            chunks = df.max_n_chunks(),
            "narrow frame"
        );
    }
    steps(&format!(
        "checking keys ({} rows on the left, {} on the right)",
        kl.height(),
        kr.height()
    ));
    acc.add(part(kl, kr, plan, Some(steps))?);
    Ok(())
}

/// Each side split by key hash into partition files, then the partitions
/// compared one at a time.
fn by_partition(
    left: Input,
    right: Input,
    plan: &Plan<'_>,
    steps: &Steps,
    acc: &mut Accumulated,
) -> Result<(), ReconcileError> {
    let (spec, parts) = (plan.spec, plan.partitions);
    let dir = tempfile::Builder::new()
        .prefix("s360-reconcile-")
        .tempdir()
        .map_err(|source| ReconcileError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let narrow_l = |lf: LazyFrame| plan.narrow(Side::Left, lf);
    let narrow_r = |lf: LazyFrame| plan.narrow(Side::Right, lf);
    let key_cols = plan.columns.keys();
    let context = format!("reading {}", spec.left_name);
    steps(&format!("{context} into {parts} partitions"));
    let sl = partition::split_side(
        left,
        &narrow_l,
        &key_cols,
        &spec.left_key,
        parts,
        dir.path(),
        "left",
        &context,
    )?;
    let context = format!("reading {}", spec.right_name);
    steps(&format!(
        "{context} into {parts} partitions ({} on the left)",
        sl.rows_text()
    ));
    let sr = partition::split_side(
        right,
        &narrow_r,
        &key_cols,
        &spec.right_key,
        parts,
        dir.path(),
        "right",
        &context,
    )?;
    for p in 0..parts {
        steps(&format!(
            "comparing partition {}/{parts} ({} on the left, {} on the right in all)",
            p + 1,
            sl.rows_text(),
            sr.rows_text()
        ));
        let (kl, kr) = (
            sl.narrow_frame(p, &narrow_l, &key_cols)?,
            sr.narrow_frame(p, &narrow_r, &key_cols)?,
        );
        acc.add(part(kl, kr, plan, None)?);
    }
    Ok(())
}
