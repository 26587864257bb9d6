//! The results of a check's partitions (or of its one pass) added up into
//! one [`Comparison`]: counts summed, largest differences kept, control
//! totals summed, discrepancy rows gathered and sorted.

use polars::prelude::*;

use super::ReconcileError;
use super::compare::{
    Category, ColumnStats, Comparison, ControlTotal, Discrepancy, FieldPlan, KeyQuality, Rule,
    SideRows, Spec, collect, difference_text, discrepancies, int_at, sort_rows,
};
use super::values::format_decimal;
use crate::pipeline::DuplicatePolicy;

/// What one partition (or the whole check) yields.
pub(super) struct Part {
    /// Discrepant paired rows (missing and mismatched).
    pub(super) found: Option<DataFrame>,
    /// One row of counts and difference extremes per field.
    pub(super) stats: Option<DataFrame>,
    /// Sums of amount fields per side.
    pub(super) totals: Option<(DataFrame, DataFrame)>,
    pub(super) left: KeyQuality,
    pub(super) right: KeyQuality,
}

/// The parts added up.
#[derive(Default)]
pub(super) struct Merged {
    found: Vec<DataFrame>,
    stats: Vec<DataFrame>,
    totals_l: Vec<DataFrame>,
    totals_r: Vec<DataFrame>,
    left_rows: SideRows,
    right_rows: SideRows,
    findings: Vec<Discrepancy>,
}

impl Merged {
    pub(super) fn add(&mut self, part: Part) {
        self.found.extend(part.found);
        self.stats.extend(part.stats);
        if let Some((l, r)) = part.totals {
            self.totals_l.push(l);
            self.totals_r.push(r);
        }
        for (acc, q) in [
            (&mut self.left_rows, &part.left.rows),
            (&mut self.right_rows, &part.right.rows),
        ] {
            acc.rows += q.rows;
            acc.duplicate_rows += q.duplicate_rows;
            acc.null_key_rows += q.null_key_rows;
        }
        self.findings.extend(part.left.findings);
        self.findings.extend(part.right.findings);
    }

    pub(super) fn finish(
        mut self,
        spec: &Spec,
        fields: Vec<FieldPlan>,
    ) -> Result<Comparison, ReconcileError> {
        sort_rows(&mut self.findings);
        if spec.duplicates == DuplicatePolicy::Fail
            && let Some(first) = self
                .findings
                .iter()
                .find(|f| f.category == Category::DuplicateKey)
        {
            return Err(ReconcileError::Duplicates {
                side: first.side.unwrap_or_default().to_string(),
                key: first
                    .key
                    .iter()
                    .map(|k| k.clone().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("|"),
                count: first.count.unwrap_or(0),
                keys: self
                    .findings
                    .iter()
                    .filter(|f| f.category == Category::DuplicateKey)
                    .count(),
            });
        }
        let nk = spec.left_key.len();
        let stats = fold(self.stats, "computing statistics")?;
        let totals = if self.totals_l.is_empty() {
            Vec::new()
        } else {
            let tl = fold(self.totals_l, "computing control totals")?;
            let tr = fold(self.totals_r, "computing control totals")?;
            fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.amount)
                .map(|(i, f)| {
                    let Rule::Number { scale, .. } = f.rule else {
                        return None;
                    };
                    let l = int_at(&tl, &format!("t{i}"), 0).unwrap_or(0);
                    let r = int_at(&tr, &format!("t{i}"), 0).unwrap_or(0);
                    Some(ControlTotal {
                        field: f.field.clone(),
                        left: format_decimal(l, scale),
                        right: format_decimal(r, scale),
                        delta: format_decimal(l - r, scale),
                    })
                })
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default()
        };

        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let get = |name: &str| int_at(&stats, &format!("{name}{i}"), 0).unwrap_or(0) as u64;
                let dmax = int_at(&stats, &format!("dmax{i}"), 0);
                let dmin = int_at(&stats, &format!("dmin{i}"), 0);
                let max_abs = match (dmax, dmin) {
                    (Some(a), Some(b)) => Some(a.abs().max(b.abs())),
                    (a, b) => a.or(b).map(i128::abs),
                };
                ColumnStats {
                    field: f.field.clone(),
                    right: f.right.clone(),
                    compared: get("compared"),
                    equal: get("equal"),
                    unequal: get("unequal"),
                    null_only_left: get("nol"),
                    null_only_right: get("nor"),
                    max_difference: max_abs.and_then(|m| difference_text(&f.rule, m)),
                }
            })
            .collect();

        let mut rows = Vec::new();
        for found in &self.found {
            rows.extend(discrepancies(found, nk, &fields)?);
        }
        rows.append(&mut self.findings);
        sort_rows(&mut rows);
        Ok(Comparison {
            key_names: spec.left_key.clone(),
            matched: int_at(&stats, "matched", 0).unwrap_or(0) as u64,
            fields,
            rows,
            columns,
            totals,
            left_rows: self.left_rows,
            right_rows: self.right_rows,
        })
    }
}

/// One-row frames of the parts folded into one row: `dmax*` by maximum,
/// `dmin*` by minimum, everything else summed.
fn fold(frames: Vec<DataFrame>, context: &str) -> Result<DataFrame, ReconcileError> {
    let mut frames = frames;
    if frames.len() <= 1 {
        return Ok(frames.pop().unwrap_or_default());
    }
    let names: Vec<PlSmallStr> = frames[0].get_column_names_owned();
    let all = concat(
        frames.into_iter().map(|f| f.lazy()).collect::<Vec<_>>(),
        UnionArgs {
            to_supertypes: true,
            ..Default::default()
        },
    )
    .map_err(|source| ReconcileError::Polars {
        context: context.to_string(),
        source,
    })?;
    let exprs: Vec<Expr> = names
        .iter()
        .map(|n| {
            let c = col(n.clone());
            if n.starts_with("dmax") {
                c.max()
            } else if n.starts_with("dmin") {
                c.min()
            } else {
                c.sum()
            }
        })
        .collect();
    collect(all.select(exprs), context)
}
