//! The results of a check's partitions (or of its one pass) added up into
//! one [`Comparison`]: counts summed, largest differences kept, control
//! totals summed, discrepancy rows gathered and sorted.

use super::compare::{FieldCounts, Found, Part, PartSlices, PartStats, Totals};
use super::error::ReconcileError;
use super::model::{
    Category, ColumnStats, Comparison, ControlTotal, Discrepancy, SideRows, Slice, sort_rows,
};
use super::plan::Plan;
use super::rules::{Rule, difference_text};
use super::values::format_decimal;
use crate::pipeline::DuplicatePolicy;

/// The parts added up.
#[derive(Default)]
pub(super) struct Accumulated {
    found: Vec<Found>,
    stats: Option<PartStats>,
    totals: Option<Totals>,
    slices: PartSlices,
    left_rows: SideRows,
    right_rows: SideRows,
    findings: Vec<Discrepancy>,
}

impl Accumulated {
    /// Add one part.
    pub(super) fn add(&mut self, part: Part) {
        self.found.extend(part.found);
        if let Some(stats) = part.stats {
            self.stats = Some(match self.stats.take() {
                None => stats,
                Some(acc) => acc.plus(stats),
            });
        }
        if let Some(totals) = part.totals {
            self.totals = Some(match self.totals.take() {
                None => totals,
                Some(acc) => acc.plus(totals),
            });
        }
        for (j, values) in part.slices.into_iter().flatten().enumerate() {
            if self.slices.len() <= j {
                self.slices.push(Default::default());
            }
            for (value, counts) in values {
                let acc = self.slices[j].entry(value).or_default();
                *acc = acc.plus(counts);
            }
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

    /// The comparison, or the duplicate key that stops it under
    /// `duplicates: fail`.
    pub(super) fn finish(mut self, plan: Plan<'_>) -> Result<Comparison, ReconcileError> {
        let spec = plan.spec;
        let fields = plan.fields;
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
        let totals = match &self.totals {
            None => Vec::new(),
            Some(t) => fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.amount)
                .map(|(i, f)| {
                    let Rule::Number { scale, .. } = f.rule else {
                        return None;
                    };
                    let (l, r) = (t.left[i], t.right[i]);
                    Some(ControlTotal {
                        field: f.field.clone(),
                        left: format_decimal(l, scale),
                        right: format_decimal(r, scale),
                        delta: format_decimal(l - r, scale),
                    })
                })
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
        };

        let none = FieldCounts::default();
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let c = self
                    .stats
                    .as_ref()
                    .and_then(|s| s.fields.get(i))
                    .unwrap_or(&none);
                let max_abs = match (c.diff_max, c.diff_min) {
                    (Some(a), Some(b)) => Some(a.abs().max(b.abs())),
                    (a, b) => a.or(b).map(i128::abs),
                };
                ColumnStats {
                    field: f.field.clone(),
                    right: f.right.clone(),
                    compared: c.compared,
                    equal: c.equal,
                    unequal: c.unequal,
                    null_only_left: c.null_only_left,
                    null_only_right: c.null_only_right,
                    max_difference: max_abs.and_then(|m| difference_text(&f.rule, m)),
                }
            })
            .collect();

        let mut rows = Vec::new();
        for found in &self.found {
            rows.extend(found.rows(&fields)?);
        }
        rows.append(&mut self.findings);
        sort_rows(&mut rows);
        let mut counted = self.slices.into_iter();
        let slices = spec
            .slices
            .iter()
            .map(|s| Slice {
                spec: s.clone(),
                values: counted.next().unwrap_or_default(),
            })
            .collect();
        Ok(Comparison {
            key_names: spec.left_key.clone(),
            matched: self.stats.as_ref().map_or(0, |s| s.matched),
            fields,
            rows,
            columns,
            totals,
            left_rows: self.left_rows,
            right_rows: self.right_rows,
            slices,
        })
    }
}

impl PartStats {
    /// Two parts' statistics as one: counts summed, the largest and
    /// smallest differences kept.
    fn plus(mut self, other: PartStats) -> PartStats {
        self.matched += other.matched;
        for (a, b) in self.fields.iter_mut().zip(other.fields) {
            a.compared += b.compared;
            a.equal += b.equal;
            a.unequal += b.unequal;
            a.null_only_left += b.null_only_left;
            a.null_only_right += b.null_only_right;
            a.diff_max = a.diff_max.max(b.diff_max);
            a.diff_min = match (a.diff_min, b.diff_min) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
        }
        self
    }
}

impl Totals {
    /// Two parts' sums as one.
    fn plus(mut self, other: Totals) -> Totals {
        for (a, b) in self.left.iter_mut().zip(other.left) {
            *a = a.wrapping_add(b);
        }
        for (a, b) in self.right.iter_mut().zip(other.right) {
            *a = a.wrapping_add(b);
        }
        self
    }
}
