//! One partition (or the whole check) compared: key quality, the pairing of rows by key (in step where the keys are in order, by one hash grouping of both sides' keys where not), per-field verdicts and differences, statistics and control totals, as a typed [`Part`].

use polars::prelude::*;

use super::columns::{
    CATEGORY, Columns, IN_LEFT, IN_RIGHT, MATCHED, NULL_KEY, ROW, ROW_LEFT, ROW_RIGHT, ROWS_LEFT,
    ROWS_RIGHT, Side, Stat,
};
use super::error::ReconcileError;
use super::exec::{collect, collect_all, int_at, texts};
use super::model::{Category, Discrepancy, SideRows, SliceCounts};
use super::plan::Plan;
use super::progress::Steps;
use super::rules::{FieldPlan, diff_expr, difference_text, differs_expr, render_normalised};
use crate::engine::pairing::{Pairs, in_key_order, paired_rows};
use crate::pipeline::DuplicatePolicy;

/// What one partition (or the whole check) yields.
pub(super) struct Part {
    /// Discrepant paired rows (missing and mismatched).
    pub(super) found: Option<Found>,
    /// Counts and difference extremes per field.
    pub(super) stats: Option<PartStats>,
    /// Sums of amount fields per side.
    pub(super) totals: Option<Totals>,
    /// Counts per value of each slice column.
    pub(super) slices: Option<PartSlices>,
    /// The left side's row counts and key findings.
    pub(super) left: KeyQuality,
    /// The right side's row counts and key findings.
    pub(super) right: KeyQuality,
}

/// One side's row counts and its duplicate and null key findings.
pub(super) struct KeyQuality {
    pub(super) rows: SideRows,
    pub(super) findings: Vec<Discrepancy>,
}

/// Counts and difference extremes of one compared field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FieldCounts {
    /// Keys on both sides.
    pub(super) compared: u64,
    /// Equal under the rule.
    pub(super) equal: u64,
    /// Different under the rule.
    pub(super) unequal: u64,
    /// Null on the left only.
    pub(super) null_only_left: u64,
    /// Null on the right only.
    pub(super) null_only_right: u64,
    /// Largest `left - right`, in units of the rule.
    pub(super) diff_max: Option<i128>,
    /// Smallest `left - right`, in units of the rule.
    pub(super) diff_min: Option<i128>,
}

/// The statistics of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartStats {
    /// Keys on both sides with every field equal.
    pub(super) matched: u64,
    /// Per compared field, in field order.
    pub(super) fields: Vec<FieldCounts>,
}

/// Sums of the amount fields per side, one per compared field (0 for the
/// fields that are not amounts), in units of each field's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Totals {
    /// Left sums.
    pub(super) left: Vec<i128>,
    /// Right sums.
    pub(super) right: Vec<i128>,
}

/// Counts per value of each slice column, in slice order.
pub(super) type PartSlices = Vec<std::collections::BTreeMap<Option<String>, SliceCounts>>;

/// The discrepant paired rows of a partition, as the comparison left them:
/// turned into report rows once every partition is compared.
pub(super) struct Found {
    frame: DataFrame,
    columns: Columns,
}

/// Key checks, the pairing, statistics and control totals of one partition
/// (or of the whole check), from both sides' narrow frames: keys walked in
/// step where they are in order ([`in_key_order`]) and grouped by key where
/// not ([`grouped_by_key`]). `steps` is told of each step when given.
pub(super) fn part(
    kl: DataFrame,
    kr: DataFrame,
    plan: &Plan<'_>,
    steps: Option<&Steps>,
) -> Result<Part, ReconcileError> {
    let (g, pairs) = group_keys(&kl, &kr, &plan.columns)?;
    let (mut ql, mut qr) = check_keys(&g, plan)?;
    ql.rows.rows = kl.height() as u64;
    qr.rows.rows = kr.height() as u64;
    let fails = |q: &KeyQuality| {
        q.findings
            .iter()
            .any(|f| f.category == Category::DuplicateKey)
    };
    if plan.spec.duplicates == DuplicatePolicy::Fail && (fails(&ql) || fails(&qr)) {
        // The check stops once all keys are checked; no need to compare.
        return Ok(Part {
            found: None,
            stats: None,
            totals: None,
            slices: None,
            left: ql,
            right: qr,
        });
    }

    if let Some(steps) = steps {
        steps("pairing and comparing");
    }
    let totals = control_totals(&kl, &kr, plan)?;
    let (ls, rs) = (kl.schema().clone(), kr.schema().clone());
    // The pairs hold the left side and a copy of the right side's values:
    // the right side goes before the comparison.
    let started = std::time::Instant::now();
    let keys = plan.columns.key_names();
    let paired_df =
        paired_rows(&g, plan.columns.groups(&keys), pairs, kl, kr).map_err(|source| {
            ReconcileError::Polars {
                context: "pairing rows by key".into(),
                source,
            }
        })?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        rows = paired_df.height(),
        "rows paired"
    );
    drop(g);
    let (found, stats, slices) = compare_pairs(paired_df, &ls, &rs, plan)?;
    Ok(Part {
        found: Some(Found {
            frame: found,
            columns: plan.columns,
        }),
        stats: Some(stats),
        totals,
        slices: Some(slices),
        left: ql,
        right: qr,
    })
}

/// Both sides' keys paired where they are in order, and grouped by key:
/// the groups of the keys left to hashing (all of them when the keys are
/// not in order) and the pairs so far.
fn group_keys(
    kl: &DataFrame,
    kr: &DataFrame,
    names: &Columns,
) -> Result<(DataFrame, Pairs), ReconcileError> {
    let context = "checking keys";
    // Rows in key order on both sides are paired in step; the others, or
    // all rows, through the hash grouping.
    let ordered = ordered_pairs(kl, kr, names);
    tracing::debug!(
        rows_left_to_hash = ordered.as_ref().map(|(_, l, r)| l.len() + r.len()),
        "keys in order"
    );
    let (pairs, rest) = match ordered {
        Some((pairs, l, r)) => (pairs, Some((l, r))),
        None => (Pairs::new(kl.height()), None),
    };
    let g = grouped_by_key(
        kl,
        kr,
        names,
        rest.as_ref().map(|(l, r)| (l.as_slice(), r.as_slice())),
    )
    .map_err(|source| ReconcileError::Polars {
        context: context.into(),
        source,
    })?;
    drop(rest);
    Ok((collect(g, context)?, pairs))
}

/// The pairing in step of a one-part key ([`in_key_order`]); `None` for a
/// composite key, a key that is not text, or keys too much out of order.
fn ordered_pairs(
    kl: &DataFrame,
    kr: &DataFrame,
    names: &Columns,
) -> Option<(Pairs, Vec<IdxSize>, Vec<IdxSize>)> {
    if names.key_count() != 1 {
        return None;
    }
    let key = names.key(0);
    in_key_order(
        kl.column(&key).ok()?.str().ok()?,
        kr.column(&key).ok()?.str().ok()?,
    )
}

/// The key findings of both sides, from the key groups: keys with a null
/// part, and keys with more than one row on a side.
fn check_keys(g: &DataFrame, plan: &Plan<'_>) -> Result<(KeyQuality, KeyQuality), ReconcileError> {
    let names = &plan.columns;
    let null = any_key_null(names);
    let dup = col(ROWS_LEFT)
        .gt(lit(1i64))
        .or(col(ROWS_RIGHT).gt(lit(1i64)));
    let mut flagged_cols = names.key_exprs();
    flagged_cols.extend([
        col(ROWS_LEFT),
        col(ROWS_RIGHT),
        null.clone().alias(NULL_KEY),
    ]);
    let flagged = collect(
        g.clone().lazy().filter(null.or(dup)).select(flagged_cols),
        "checking keys",
    )?;
    key_quality(&flagged, names, plan.fields.len())
}

fn any_key_null(names: &Columns) -> Expr {
    names
        .key_exprs()
        .into_iter()
        .map(|k| k.is_null())
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

/// The keys of both sides stacked, each key with its row number on its
/// side and a row count ([`ROWS_LEFT`] or [`ROWS_RIGHT`]), then grouped by
/// key: one row per key with the rows it has on each side and, for a side
/// with one row, its row number there. This one hash aggregation over both
/// sides finds duplicate and null keys and pairs the rows (a full outer
/// join); the values are then gathered by row number. With `rows`, only
/// those rows of each side (the others are paired in key order, see
/// [`in_key_order`]).
fn grouped_by_key(
    kl: &DataFrame,
    kr: &DataFrame,
    names: &Columns,
    rows: Option<(&[IdxSize], &[IdxSize])>,
) -> PolarsResult<LazyFrame> {
    let stacked =
        |df: &DataFrame, left: bool, rows: Option<&[IdxSize]>| -> PolarsResult<LazyFrame> {
            let keys = names.key_names();
            let (frame, row) = match rows {
                None => (
                    df.select(keys)?,
                    int_range(lit(0 as IdxSize), len(), 1, IDX_DTYPE),
                ),
                Some(rows) => {
                    let rows = IdxCa::from_vec(ROW.into(), rows.to_vec());
                    let mut frame = df.select(keys)?.take(&rows)?;
                    frame.with_column(rows.into_column())?;
                    (frame, col(ROW))
                }
            };
            let mut exprs: Vec<Expr> = names.key_exprs();
            let none = || lit(NULL).cast(IDX_DTYPE);
            exprs.extend([
                lit(left as i64).alias(ROWS_LEFT),
                lit(!left as i64).alias(ROWS_RIGHT),
                if left { row.clone() } else { none() }.alias(ROW_LEFT),
                if left { none() } else { row }.alias(ROW_RIGHT),
            ]);
            Ok(frame.lazy().select(exprs))
        };
    let (rows_l, rows_r) = match rows {
        Some((l, r)) => (Some(l), Some(r)),
        None => (None, None),
    };
    let both = concat(
        [stacked(kl, true, rows_l)?, stacked(kr, false, rows_r)?],
        UnionArgs {
            rechunk: false,
            ..Default::default()
        },
    )?;
    // A row number is used only for a key with one row on that side.
    Ok(both.group_by(names.key_exprs()).agg([
        col(ROWS_LEFT).sum(),
        col(ROWS_RIGHT).sum(),
        col(ROW_LEFT).max(),
        col(ROW_RIGHT).max(),
    ]))
}

/// The findings of keys with a null part or more than one row on a side:
/// one per side and key, with the side's row count.
fn key_quality(
    flagged: &DataFrame,
    names: &Columns,
    nf: usize,
) -> Result<(KeyQuality, KeyQuality), ReconcileError> {
    let key_values: Vec<Vec<Option<String>>> = names
        .keys()
        .iter()
        .map(|k| texts(flagged, k))
        .collect::<Result<_, _>>()?;
    let mut sides = [("left", ROWS_LEFT), ("right", ROWS_RIGHT)].map(|(side, count)| {
        (
            side,
            count,
            KeyQuality {
                rows: SideRows::default(),
                findings: Vec::new(),
            },
        )
    });
    for r in 0..flagged.height() {
        let null = matches!(
            flagged.column(NULL_KEY).ok().and_then(|c| c.get(r).ok()),
            Some(AnyValue::Boolean(true))
        );
        for (side, count, q) in sides.iter_mut() {
            let count = int_at(flagged, count, r).unwrap_or(0) as u64;
            let category = if null && count > 0 {
                q.rows.null_key_rows += count;
                Category::NullKey
            } else if !null && count > 1 {
                q.rows.duplicate_rows += count;
                Category::DuplicateKey
            } else {
                continue;
            };
            q.findings.push(Discrepancy {
                key: key_values.iter().map(|kv| kv[r].clone()).collect(),
                category,
                side: Some(side),
                count: Some(count),
                fields: Vec::new(),
                left: vec![None; nf],
                right: vec![None; nf],
                difference: vec![None; nf],
            });
        }
    }
    let [(_, _, left), (_, _, right)] = sides;
    Ok((left, right))
}

/// Control totals of every row, keys or not; `None` without amount fields.
fn control_totals(
    kl: &DataFrame,
    kr: &DataFrame,
    plan: &Plan<'_>,
) -> Result<Option<Totals>, ReconcileError> {
    let names = &plan.columns;
    let amounts: Vec<usize> = (0..plan.fields.len())
        .filter(|&i| plan.fields[i].amount)
        .collect();
    if amounts.is_empty() {
        return Ok(None);
    }
    let sums = |df: DataFrame, side: Side| -> Result<Vec<i128>, ReconcileError> {
        let sums = collect(
            df.lazy().select(
                amounts
                    .iter()
                    .map(|&i| col(names.normalised(side, i)).sum().alias(names.total(i)))
                    .collect::<Vec<_>>(),
            ),
            "computing control totals",
        )?;
        Ok((0..plan.fields.len())
            .map(|i| int_at(&sums, &names.total(i), 0).unwrap_or(0))
            .collect())
    };
    Ok(Some(Totals {
        left: sums(kl.clone(), Side::Left)?,
        right: sums(kr.clone(), Side::Right)?,
    }))
}

/// Each field's verdict and difference on the pairs, each pair's category;
/// then the discrepant pairs, the statistics and the slice counts, from one
/// pass over the pairs. `ls` and `rs` are the narrow frames' schemas.
fn compare_pairs(
    paired: DataFrame,
    ls: &Schema,
    rs: &Schema,
    plan: &Plan<'_>,
) -> Result<(DataFrame, PartStats, PartSlices), ReconcileError> {
    let names = &plan.columns;
    let fields = &plan.fields;
    let nf = fields.len();
    // Keys null or duplicated on either side are reported, never paired:
    // they are on neither side in the pairs and have no category.
    let paired_key = || col(IN_LEFT).is_not_null().and(col(IN_RIGHT).is_not_null());
    let mut with = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        with.push(differs_expr(names, i, &f.rule, f.null_equals_null).alias(names.differs(i)));
        with.push(
            when(paired_key())
                .then(diff_expr(names, i, &f.rule))
                .otherwise(lit(NULL).cast(DataType::Int128))
                .alias(names.difference(i)),
        );
    }
    let any_ne = (0..nf)
        .map(|i| col(names.differs(i)).fill_null(lit(false)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let category = when(col(IN_LEFT).is_null().and(col(IN_RIGHT).is_null()))
        .then(lit(NULL).cast(DataType::String))
        .when(col(IN_RIGHT).is_null())
        .then(lit(Category::MissingInCrm.as_str()))
        .when(col(IN_LEFT).is_null())
        .then(lit(Category::MissingInS360.as_str()))
        .when(any_ne)
        .then(lit(Category::Mismatched.as_str()))
        .otherwise(lit(MATCHED))
        .alias(CATEGORY);
    let joined = paired
        .lazy()
        .with_columns(with)
        .with_column(category)
        .cache();

    let mut out_cols: Vec<Expr> = names.key_exprs();
    out_cols.push(col(CATEGORY));
    for (i, f) in fields.iter().enumerate() {
        // A value not kept raw is rendered from its normalised column.
        let value = |side: Side, schema: &Schema| {
            let raw = names.raw(side, i);
            if schema.contains(&raw) {
                col(raw)
            } else {
                render_normalised(col(names.normalised(side, i)), &f.rule).alias(raw)
            }
        };
        out_cols.extend([
            col(names.differs(i)),
            value(Side::Left, ls),
            value(Side::Right, rs),
            col(names.difference(i)),
        ]);
    }
    let found_plan = joined
        .clone()
        .filter(col(CATEGORY).neq(lit(MATCHED)))
        .select(out_cols);

    // Every result comes from one pass over the pairs.
    let mut plans = vec![
        found_plan,
        joined.clone().select(stat_exprs(names, paired_key)),
    ];
    plans.extend((0..names.slice_count()).map(|j| slice_plan(joined.clone(), names, j)));
    let mut frames = collect_all(plans, "comparing and computing statistics")?.into_iter();
    let (Some(found), Some(stats)) = (frames.next(), frames.next()) else {
        return Err(ReconcileError::Polars {
            context: "comparing and computing statistics".into(),
            source: polars_err!(ComputeError: "missing results"),
        });
    };
    let slices = frames
        .enumerate()
        .map(|(j, df)| slice_counts(&df, names, j))
        .collect::<Result<_, _>>()?;
    Ok((found, part_stats(&stats, names), slices))
}

/// The paired keys counted per category for each value of slice `j`: the
/// left row's value, or the right row's for a key missing on the left.
/// Keys null or duplicated on a side have no category and are not counted.
fn slice_plan(joined: LazyFrame, names: &Columns, j: usize) -> LazyFrame {
    let value = when(col(IN_LEFT).is_not_null())
        .then(col(names.slice(Side::Left, j)))
        .otherwise(col(names.slice(Side::Right, j)))
        .alias(names.slice_value(j));
    let count = |c: &str| {
        col(CATEGORY)
            .eq(lit(c))
            .cast(DataType::Int64)
            .sum()
            .alias(c)
    };
    joined
        .filter(col(CATEGORY).is_not_null())
        .group_by([value])
        .agg([
            count(MATCHED),
            count(Category::Mismatched.as_str()),
            count(Category::MissingInCrm.as_str()),
            count(Category::MissingInS360.as_str()),
        ])
}

/// The counts of slice `j`, read from its plan's result.
fn slice_counts(
    df: &DataFrame,
    names: &Columns,
    j: usize,
) -> Result<std::collections::BTreeMap<Option<String>, SliceCounts>, ReconcileError> {
    let values = texts(df, &names.slice_value(j))?;
    let get = |c: &str, r: usize| int_at(df, c, r).unwrap_or(0) as u64;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(r, v)| {
            let counts = SliceCounts {
                matched: get(MATCHED, r),
                mismatched: get(Category::Mismatched.as_str(), r),
                missing_in_crm: get(Category::MissingInCrm.as_str(), r),
                missing_in_s360: get(Category::MissingInS360.as_str(), r),
            };
            (v, counts)
        })
        .collect())
}

/// The statistics of the pairs, as one row (see [`Stat`]).
fn stat_exprs(names: &Columns, paired: impl Fn() -> Expr) -> Vec<Expr> {
    let count = |e: Expr| e.cast(DataType::Int64).sum();
    let mut exprs = vec![count(col(CATEGORY).eq(lit(MATCHED))).alias(MATCHED)];
    for i in 0..names.field_count() {
        let (l, r) = (
            col(names.normalised(Side::Left, i)),
            col(names.normalised(Side::Right, i)),
        );
        let ne = col(names.differs(i));
        let d = col(names.difference(i));
        exprs.extend([
            count(paired()).alias(names.stat(Stat::Compared, i)),
            count(ne.clone().eq(lit(false))).alias(names.stat(Stat::Equal, i)),
            count(ne).alias(names.stat(Stat::Unequal, i)),
            count(
                paired()
                    .and(l.clone().is_null())
                    .and(r.clone().is_not_null()),
            )
            .alias(names.stat(Stat::NullOnlyLeft, i)),
            count(paired().and(l.is_not_null()).and(r.is_null()))
                .alias(names.stat(Stat::NullOnlyRight, i)),
            d.clone().max().alias(names.stat(Stat::DiffMax, i)),
            d.min().alias(names.stat(Stat::DiffMin, i)),
        ]);
    }
    exprs
}

/// The one-row statistics frame, read.
fn part_stats(stats: &DataFrame, names: &Columns) -> PartStats {
    let fields = (0..names.field_count())
        .map(|i| {
            let get = |s: Stat| int_at(stats, &names.stat(s, i), 0);
            let count = |s: Stat| get(s).unwrap_or(0) as u64;
            FieldCounts {
                compared: count(Stat::Compared),
                equal: count(Stat::Equal),
                unequal: count(Stat::Unequal),
                null_only_left: count(Stat::NullOnlyLeft),
                null_only_right: count(Stat::NullOnlyRight),
                diff_max: get(Stat::DiffMax),
                diff_min: get(Stat::DiffMin),
            }
        })
        .collect();
    PartStats {
        matched: int_at(stats, MATCHED, 0).unwrap_or(0) as u64,
        fields,
    }
}

impl Found {
    /// The discrepancy rows.
    pub(super) fn rows(&self, fields: &[FieldPlan]) -> Result<Vec<Discrepancy>, ReconcileError> {
        let (df, names) = (&self.frame, &self.columns);
        let keys: Vec<Vec<Option<String>>> = names
            .keys()
            .iter()
            .map(|k| texts(df, k))
            .collect::<Result<_, _>>()?;
        let cats = texts(df, CATEGORY)?;
        let mut lefts = Vec::new();
        let mut rights = Vec::new();
        let mut nes = Vec::new();
        for i in 0..fields.len() {
            lefts.push(texts(df, &names.raw(Side::Left, i))?);
            rights.push(texts(df, &names.raw(Side::Right, i))?);
            nes.push(texts(df, &names.differs(i))?);
        }
        let mut out = Vec::with_capacity(df.height());
        for r in 0..df.height() {
            let Some(category) = cats[r].as_deref().and_then(Category::parse) else {
                continue;
            };
            let differing: Vec<String> = fields
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    category == Category::Mismatched && nes[*i][r].as_deref() == Some("true")
                })
                .map(|(_, f)| f.field.clone())
                .collect();
            let difference = fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    int_at(df, &names.difference(i), r).and_then(|x| difference_text(&f.rule, x))
                })
                .collect();
            out.push(Discrepancy {
                key: keys.iter().map(|kv| kv[r].clone()).collect(),
                category,
                side: None,
                count: None,
                fields: differing,
                left: lefts.iter().map(|c| c[r].clone()).collect(),
                right: rights.iter().map(|c| c[r].clone()).collect(),
                difference,
            });
        }
        Ok(out)
    }
}
