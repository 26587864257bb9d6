//! What a check does, decided once: how many partitions (as told, or as the memory limit calls for; a side whose steps cannot run per partition refuses more than one), the compared fields resolved against both sides' columns, and how each side is narrowed to its key and compared columns.

use polars::prelude::*;

use super::columns::{Columns, Side};
use super::error::ReconcileError;
use super::options::RunOptions;
use super::partition::Input;
use super::rules::{
    FieldPlan, is_number, key_text, normalize, renders_from_normalised, resolve_field,
};
use super::scan::Fetched;
use super::values::Spelling;
use crate::pipeline::spelling::Zone;
use crate::pipeline::{
    ByteSize, DuplicatePolicy, FieldComparison, MAX_PARTITIONS, ReconcilePipeline, SliceSpec,
};

/// The inputs of a comparison ([`super::check::compare`]), independent of files.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Left key columns.
    pub left_key: Vec<String>,
    /// Right key columns, same length.
    pub right_key: Vec<String>,
    /// Fields to compare.
    pub fields: Vec<FieldComparison>,
    /// What duplicates do.
    pub duplicates: DuplicatePolicy,
    /// How the left side writes values: zone of naive timestamps, and the
    /// number format of text compared as numbers.
    pub left_spelling: Spelling,
    /// See `left_spelling`.
    pub right_spelling: Spelling,
    /// Names used in messages for each side (its location).
    pub left_name: String,
    /// See `left_name`.
    pub right_name: String,
    /// Partitions by key hash compared one at a time (1: all at once).
    pub partitions: usize,
    /// Columns the counts are broken down by.
    pub slices: Vec<SliceSpec>,
}

/// How many partitions the check uses: as told (command line, then
/// pipeline), else as many as the memory limit calls for, given a rough
/// estimate of what both sides need all at once. A side whose steps cannot
/// run per partition refuses partitions that were asked for, and turns an
/// estimate's into one partition, with a warning.
pub(super) fn partitions(
    spec: &ReconcilePipeline,
    opts: &RunOptions,
    left: &Fetched,
    right: &Fetched,
) -> Result<usize, ReconcileError> {
    let blocker = [("left", &spec.left), ("right", &spec.right)]
        .into_iter()
        .find_map(|(name, side)| {
            crate::transforms::partition_point(&side.transforms)
                .err()
                .map(|(i, why)| format!("{name}.transforms[{i}]: {why}"))
        });
    if let Some(n) = opts.partitions.or(spec.partitions) {
        let n = n.clamp(1, MAX_PARTITIONS);
        return match blocker {
            Some(why) if n > 1 => Err(ReconcileError::Partitions(why)),
            _ => Ok(n),
        };
    }
    let limit = opts
        .memory_limit
        .or(spec.memory_limit)
        .map(ByteSize::bytes)
        .unwrap_or_else(default_memory_limit)
        .max(1);
    let need = left
        .memory_estimate()
        .saturating_add(right.memory_estimate());
    let n = need.div_ceil(limit).clamp(1, MAX_PARTITIONS as u64) as usize;
    tracing::debug!(need, limit, partitions = n, "partitions");
    match blocker {
        Some(why) if n > 1 => {
            tracing::warn!(
                "the exports may need {n} partitions to fit in {}, but {why}; comparing all at once",
                ByteSize(limit)
            );
            Ok(1)
        }
        _ => Ok(n),
    }
}

/// Half of this machine's memory (`MemTotal`), or 4 GiB when unknown.
pub fn default_memory_limit() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

/// A comparison planned against both sides' columns.
pub(super) struct Plan<'a> {
    /// What was asked for.
    pub(super) spec: &'a Spec,
    /// The compared fields, resolved.
    pub(super) fields: Vec<FieldPlan>,
    /// The internal column names.
    pub(super) columns: Columns,
    /// Partitions compared one at a time (1: all at once).
    pub(super) partitions: usize,
    /// Each slice's value on the left and on the right, as text (null where
    /// a side has no such column).
    slices: Vec<[Expr; 2]>,
    left_schema: SchemaRef,
    right_schema: SchemaRef,
}

impl<'a> Plan<'a> {
    /// Check that every key and compared column is there after the
    /// transforms, and decide how each field is compared.
    pub(super) fn new(
        spec: &'a Spec,
        left: &mut Input,
        right: &mut Input,
    ) -> Result<Self, ReconcileError> {
        let schema_err = |side: &str| {
            let side = side.to_string();
            move |source| ReconcileError::Polars {
                context: format!("{side}: after transforms"),
                source,
            }
        };
        let ls = left
            .lf
            .collect_schema()
            .map_err(schema_err(&spec.left_name))?;
        let rs = right
            .lf
            .collect_schema()
            .map_err(schema_err(&spec.right_name))?;
        let need =
            |schema: &Schema, side: &str, column: &str| -> Result<DataType, ReconcileError> {
                schema
                    .get(column)
                    .cloned()
                    .ok_or_else(|| ReconcileError::MissingColumn {
                        file: format!("{side} (after transforms)"),
                        column: column.to_string(),
                        present: schema
                            .iter_names()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            };
        for c in &spec.left_key {
            need(&ls, &spec.left_name, c)?;
        }
        for c in &spec.right_key {
            need(&rs, &spec.right_name, c)?;
        }
        let mut fields = Vec::with_capacity(spec.fields.len());
        for f in &spec.fields {
            let lt = need(&ls, &spec.left_name, &f.field)?;
            let rt = need(
                &rs,
                &spec.right_name,
                f.right.as_deref().unwrap_or(&f.field),
            )?;
            // Text in a side's local number spelling (`1.234,56`), against
            // a number: compared as numbers, read in that spelling.
            let spelled = |dt: &DataType, other: &DataType, s: &Spelling| {
                if dt == &DataType::String && !s.numbers.is_plain() && is_number(other) {
                    DataType::Float64
                } else {
                    dt.clone()
                }
            };
            let (l, r) = (
                spelled(&lt, &rt, &spec.left_spelling),
                spelled(&rt, &lt, &spec.right_spelling),
            );
            fields.push(resolve_field(f, &l, &r));
        }
        let slices = spec
            .slices
            .iter()
            .map(|s| {
                let left = need(&ls, &spec.left_name, &s.column)?;
                // A right column named differently must be there; one of
                // the same name may be absent (keys only on the right then
                // have no value).
                let right = match (&s.right, rs.get(s.right_column())) {
                    (Some(c), None) => Some(need(&rs, &spec.right_name, c)?),
                    (_, dt) => dt.cloned(),
                };
                let (lz, rz) = (spec.left_spelling.zone, spec.right_spelling.zone);
                Ok([
                    slice_value(s, &s.column, &spec.left_name, Some(&left), lz)?,
                    slice_value(s, s.right_column(), &spec.right_name, right.as_ref(), rz)?,
                ])
            })
            .collect::<Result<Vec<_>, ReconcileError>>()?;
        Ok(Self {
            spec,
            columns: Columns::new(spec.left_key.len(), fields.len()).with_slices(slices.len()),
            slices,
            fields,
            partitions: spec.partitions.max(1),
            left_schema: ls,
            right_schema: rs,
        })
    }

    /// A side reduced to text keys, raw values and normalised values.
    pub(super) fn narrow(&self, side: Side, lf: LazyFrame) -> LazyFrame {
        let (schema, key, offset, name) = match side {
            Side::Left => (
                &self.left_schema,
                &self.spec.left_key,
                &self.spec.left_spelling,
                &self.spec.left_name,
            ),
            Side::Right => (
                &self.right_schema,
                &self.spec.right_key,
                &self.spec.right_spelling,
                &self.spec.right_name,
            ),
        };
        let names = &self.columns;
        let dtype = |c: &str| schema.get(c).cloned().unwrap_or(DataType::Null);
        let mut exprs: Vec<Expr> = key
            .iter()
            .enumerate()
            .map(|(j, c)| key_text(c, &dtype(c)).alias(names.key(j)))
            .collect();
        for (i, f) in self.fields.iter().enumerate() {
            let column = match side {
                Side::Left => &f.field,
                Side::Right => &f.right,
            };
            // The value as the reports show it, unless it can be rendered from
            // the normalised one (most columns): half the memory per field.
            if !renders_from_normalised(&dtype(column), &f.rule) {
                exprs.push(col(column.as_str()).alias(names.raw(side, i)));
            }
            let context = format!("{name}: column `{column}`");
            exprs.push(
                normalize(column, &dtype(column), &f.rule, offset, context)
                    .alias(names.normalised(side, i)),
            );
        }
        for (j, [left, right]) in self.slices.iter().enumerate() {
            let value = match side {
                Side::Left => left,
                Side::Right => right,
            };
            exprs.push(value.clone().alias(names.slice(side, j)));
        }
        lf.select(exprs)
    }
}

/// A slice column's value as text: cut to its day, month or year with
/// `by`, which only a date or timestamp column takes (a timestamp where the
/// side's own days begin, in its `timezone`); null where the side has no
/// such column.
fn slice_value(
    slice: &SliceSpec,
    column: &str,
    side: &str,
    dtype: Option<&DataType>,
    zone: Zone,
) -> Result<Expr, ReconcileError> {
    let Some(dtype) = dtype else {
        return Ok(lit(NULL).cast(DataType::String));
    };
    match slice.by {
        None => Ok(col(column).cast(DataType::String)),
        Some(by) if matches!(dtype, DataType::Date) => Ok(col(column).dt().strftime(by.format())),
        Some(by) if matches!(dtype, DataType::Datetime(..)) => {
            Ok(wall_clock(col(column), zone).dt().strftime(by.format()))
        }
        Some(by) => Err(ReconcileError::Slice(format!(
            "{side}: column `{column}` is {dtype}, not a date or timestamp: `by: {}` cuts dates and timestamps only (declare it under `columns:`)",
            by.as_str()
        ))),
    }
}

/// A timestamp column (read as UTC instants) as the wall-clock times of
/// `zone`, without a zone of its own: what a day, month or year of the
/// export is.
fn wall_clock(e: Expr, zone: Zone) -> Expr {
    let naive = |dtype: &DataType| match dtype {
        DataType::Datetime(unit, _) => DataType::Datetime(*unit, None),
        other => other.clone(),
    };
    e.map(
        move |c: Column| {
            let s = c.as_materialized_series();
            let DataType::Datetime(unit, _) = s.dtype() else {
                return Ok(c);
            };
            let per_ms = match unit {
                TimeUnit::Milliseconds => 1,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1_000_000,
            };
            let physical = s.to_physical_repr();
            let shifted = physical.i64()?.apply_values(|v| {
                let ms = v.div_euclid(per_ms);
                v + (zone.wall_ms(ms) - ms) * per_ms
            });
            Ok(shifted
                .into_datetime(*unit, None)
                .into_series()
                .with_name(s.name().clone())
                .into_column())
        },
        move |_, f| Ok(Field::new(f.name().clone(), naive(f.dtype()))),
    )
}
