//! An `aggregate` step fed batch by batch from a streaming scan.
//!
//! [`super::aggregate`] hands Polars' group-by the whole input: on a CRM
//! export of 9M order lines that is every line's key and values in memory at
//! once, which set the consistency check's peak. Here the steps before the
//! aggregate are run by Polars' streaming engine into a callback sink, and
//! each batch is folded into a hash table of the groups as it arrives: a
//! batch's rows are gone once it is folded. What stays is one row per group:
//! the key, the running sums and counts, and the `first` values.
//!
//! Only what can be folded exactly in arrival order streams: one `by` column
//! of text or integers, and `sum` (integers and decimals, summed in `i128`),
//! `count` and `first`. Anything else ([`Streamed::new`] gives `None`) runs
//! through [`super::aggregate`]. The result equals Polars' `group_by_stable`:
//! groups in the order of their first row, a null key a group of its own,
//! `first` the value of the group's first row (null included), `sum` of only
//! nulls 0. An integer sum that does not fit the column's type is an error
//! naming the column, where Polars would wrap around.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use hashbrown::HashTable;
use polars::prelude::*;
use polars_plan::prelude::PlanCallback;

use crate::pipeline::parse_aggregation;

/// What is folded into one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// An exact sum in `i128` (integers, and decimals at their scale).
    Sum,
    /// The count of non-null values.
    Count,
    /// The value of the group's first row.
    First,
}

/// One output column: its name, fold and input column.
#[derive(Debug, Clone)]
struct Spec {
    out: String,
    fold: Fold,
    column: String,
}

/// A streamed `aggregate`: [`Streamed::sink`] the plan of the steps before
/// it, collect that (alone or with other plans), then [`Streamed::finish`].
#[derive(Clone)]
pub struct Streamed {
    by: String,
    specs: Arc<[Spec]>,
    /// The output schema: what [`super::aggregate`] gives.
    schema: SchemaRef,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("by", &self.by)
            .field("specs", &self.specs)
            .finish_non_exhaustive()
    }
}

impl Streamed {
    /// The streamed form of an `aggregate` of `by` with `aggregations` over
    /// an input of `input`'s schema, or `None` when it cannot stream (see the
    /// module's documentation) or names a column `input` lacks.
    pub fn new(
        by: &[String],
        aggregations: &BTreeMap<String, String>,
        input: &Schema,
    ) -> Option<Self> {
        let [by] = by else { return None };
        let key_type = input.get(by)?;
        if !(matches!(key_type, DataType::String) || key_type.is_integer()) {
            return None;
        }
        let mut specs = Vec::with_capacity(aggregations.len());
        for (out, spec) in aggregations {
            let (func, column) = parse_aggregation(spec)?;
            let dtype = input.get(column)?;
            let fold = match func {
                "sum" if dtype.is_integer() || matches!(dtype, DataType::Decimal(..)) => Fold::Sum,
                "count" => Fold::Count,
                "first" => Fold::First,
                _ => return None,
            };
            specs.push(Spec {
                out: out.clone(),
                fold,
                column: column.to_string(),
            });
        }
        let schema = super::aggregate(
            DataFrame::empty_with_schema(input).lazy(),
            std::slice::from_ref(by),
            aggregations,
            true,
        )
        .collect_schema()
        .ok()?;
        Some(Self {
            by: by.clone(),
            state: Arc::new(Mutex::new(State::new(&specs))),
            specs: specs.into(),
            schema,
        })
    }

    /// The output schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `lf` (the steps before the aggregate) sunk into this aggregate, batch
    /// by batch in the rows' order: a plan to collect, giving no rows.
    pub fn sink(&self, lf: LazyFrame) -> PolarsResult<LazyFrame> {
        let mut needed: Vec<&str> = vec![self.by.as_str()];
        for s in self.specs.iter() {
            if !needed.contains(&s.column.as_str()) {
                needed.push(&s.column);
            }
        }
        let this = self.clone();
        lf.select(needed.iter().map(|c| col(*c)).collect::<Vec<_>>())
            .sink_batches(
                PlanCallback::Rust(SpecialEq::new(Arc::new(move |df: DataFrame| {
                    this.fold(&df).map(|()| false)
                }))),
                true,
                None,
            )
    }

    /// Folds one batch in.
    fn fold(&self, df: &DataFrame) -> PolarsResult<()> {
        let mut guard = self.state.lock().map_err(|_| {
            polars_err!(ComputeError: "aggregate: an earlier batch failed while being folded")
        })?;
        let state = &mut *guard;
        let key = df.column(&self.by)?.as_materialized_series();
        state.ids.clear();
        state.new_rows.clear();
        state.assign(key)?;
        let groups = state.groups.len();
        if !state.new_rows.is_empty() {
            let rows = IdxCa::from_vec(PlSmallStr::EMPTY, state.new_rows.clone());
            state.keys.push(key.take(&rows)?);
            for (spec, acc) in self.specs.iter().zip(&mut state.accs) {
                if let Acc::First(parts) = acc {
                    parts.push(df.column(&spec.column)?.as_materialized_series().take(&rows)?);
                }
            }
        }
        for (spec, acc) in self.specs.iter().zip(&mut state.accs) {
            let column = df.column(&spec.column)?.as_materialized_series();
            match acc {
                Acc::Sum(sums) => {
                    sums.resize(groups, 0);
                    add_sums(sums, &state.ids, column, &spec.column)?;
                }
                Acc::Count(counts) => {
                    counts.resize(groups, 0);
                    add_counts(counts, &state.ids, column);
                }
                Acc::First(_) => {}
            }
        }
        Ok(())
    }

    /// The aggregate's rows, after the sink's plan has been collected.
    pub fn finish(self) -> PolarsResult<DataFrame> {
        let state = std::mem::replace(
            &mut *self.state.lock().map_err(|_| {
                polars_err!(ComputeError: "aggregate: a batch failed while being folded")
            })?,
            State::new(&[]),
        );
        let height = state.groups.len();
        let dtype = |name: &str| -> PolarsResult<DataType> {
            self.schema
                .get(name)
                .cloned()
                .ok_or_else(|| polars_err!(ColumnNotFound: "{name}"))
        };
        let mut columns = Vec::with_capacity(1 + self.specs.len());
        columns.push(stacked(&self.by, state.keys, &dtype(&self.by)?)?);
        for (spec, acc) in self.specs.iter().zip(state.accs) {
            let out = dtype(&spec.out)?;
            let column = match acc {
                Acc::First(parts) => stacked(&spec.out, parts, &out)?,
                Acc::Count(mut counts) => {
                    counts.resize(height, 0);
                    IdxCa::from_vec(spec.out.as_str().into(), counts)
                        .into_series()
                        .into_column()
                }
                Acc::Sum(mut sums) => {
                    sums.resize(height, 0);
                    let sums = Int128Chunked::from_vec(spec.out.as_str().into(), sums);
                    let series = match out {
                        DataType::Decimal(precision, scale) => sums
                            .into_decimal(precision, scale)
                            .map(IntoSeries::into_series),
                        _ => sums.into_series().strict_cast(&out),
                    };
                    series
                        .map_err(|e| {
                            polars_err!(ComputeError:
                                "aggregate: the sum of `{}` does not fit {out}: {e}", spec.column)
                        })?
                        .into_column()
                }
            };
            columns.push(column);
        }
        DataFrame::new(height, columns)
    }
}

/// The rows' parts stacked into one column named `name` of type `dtype`.
fn stacked(name: &str, parts: Vec<Series>, dtype: &DataType) -> PolarsResult<Column> {
    let mut parts = parts.into_iter();
    let mut s = match parts.next() {
        Some(s) => s,
        None => Series::new_empty(name.into(), dtype),
    };
    for p in parts {
        s.append_owned(p)?;
    }
    let s = s.rechunk().with_name(name.into());
    Ok(if s.dtype() == dtype {
        s
    } else {
        s.strict_cast(dtype)?
    }
    .into_column())
}

/// The running values of one output column.
enum Acc {
    Sum(Vec<i128>),
    Count(Vec<IdxSize>),
    /// Each batch's new groups' values, in group order.
    First(Vec<Series>),
}

struct State {
    groups: Groups,
    /// The key of each group, from the batch of its first row.
    keys: Vec<Series>,
    accs: Vec<Acc>,
    /// Per batch: each row's group, and the rows that opened a group.
    ids: Vec<u32>,
    new_rows: Vec<IdxSize>,
}

impl State {
    fn new(specs: &[Spec]) -> Self {
        Self {
            groups: Groups::default(),
            keys: Vec::new(),
            accs: specs
                .iter()
                .map(|s| match s.fold {
                    Fold::Sum => Acc::Sum(Vec::new()),
                    Fold::Count => Acc::Count(Vec::new()),
                    Fold::First => Acc::First(Vec::new()),
                })
                .collect(),
            ids: Vec::new(),
            new_rows: Vec::new(),
        }
    }

    /// Each row of `key` to its group (`ids`), noting the rows that open one.
    fn assign(&mut self, key: &Series) -> PolarsResult<()> {
        let Self {
            groups,
            ids,
            new_rows,
            ..
        } = self;
        let mut row: IdxSize = 0;
        let mut one = |k: Option<&[u8]>| -> PolarsResult<()> {
            let (id, new) = groups.id(k)?;
            ids.push(id);
            if new {
                new_rows.push(row);
            }
            row += 1;
            Ok(())
        };
        match key.dtype() {
            DataType::String => {
                for arr in key.str()?.downcast_iter() {
                    for k in arr.iter() {
                        one(k.map(str::as_bytes))?;
                    }
                }
            }
            DataType::UInt64 => {
                for k in key.u64()?.iter() {
                    one(k.map(u64::to_le_bytes).as_ref().map(|b| b.as_slice()))?;
                }
            }
            dt if dt.is_integer() => {
                for k in key.cast(&DataType::Int64)?.i64()?.iter() {
                    one(k.map(i64::to_le_bytes).as_ref().map(|b| b.as_slice()))?;
                }
            }
            dt => polars_bail!(ComputeError: "aggregate: cannot stream a `by` column of type {dt}"),
        }
        Ok(())
    }
}

/// Adds each row's value to its group's sum.
fn add_sums(sums: &mut [i128], ids: &[u32], column: &Series, name: &str) -> PolarsResult<()> {
    let values = match column.dtype() {
        DataType::Decimal(..) => column.decimal()?.physical().clone(),
        _ => column.cast(&DataType::Int128)?.i128()?.clone(),
    };
    let overflow = || polars_err!(ComputeError: "aggregate: the sum of `{name}` overflows 128 bits");
    let mut at = 0;
    for arr in values.downcast_iter() {
        let ids = &ids[at..at + arr.len()];
        at += arr.len();
        if polars_arrow::array::Array::null_count(arr) == 0 {
            for (v, &g) in arr.values().iter().zip(ids) {
                let s = &mut sums[g as usize];
                *s = s.checked_add(*v).ok_or_else(overflow)?;
            }
        } else {
            for (v, &g) in arr.iter().zip(ids) {
                if let Some(v) = v {
                    let s = &mut sums[g as usize];
                    *s = s.checked_add(*v).ok_or_else(overflow)?;
                }
            }
        }
    }
    Ok(())
}

/// Counts each row's non-null value in its group.
fn add_counts(counts: &mut [IdxSize], ids: &[u32], column: &Series) {
    let mut at = 0;
    for arr in column.chunks() {
        let ids = &ids[at..at + arr.len()];
        at += arr.len();
        match arr.validity() {
            None => {
                for &g in ids {
                    counts[g as usize] += 1;
                }
            }
            Some(valid) => {
                for (ok, &g) in valid.iter().zip(ids) {
                    counts[g as usize] += IdxSize::from(ok);
                }
            }
        }
    }
}

/// The groups' keys: a hash table of group numbers over the keys' bytes.
///
/// A key is kept as a 16-byte view (as Arrow's string views): up to 12 bytes
/// inline, longer ones as length, first 4 bytes and offset into `bytes`. A
/// probe compares views first, so a key of up to 12 bytes is one comparison
/// of 16 bytes, with no second look-up.
#[derive(Default)]
struct Groups {
    table: HashTable<u32>,
    views: Vec<[u8; 16]>,
    bytes: Vec<u8>,
    null: Option<u32>,
    hasher: foldhash::fast::FixedState,
}

impl Groups {
    fn len(&self) -> usize {
        self.views.len()
    }

    /// The group of `key` (`None`: the null key), and whether it is new.
    fn id(&mut self, key: Option<&[u8]>) -> PolarsResult<(u32, bool)> {
        let next = u32::try_from(self.views.len())
            .ok()
            .filter(|n| IdxSize::try_from(*n).is_ok() && *n < u32::MAX)
            .ok_or_else(|| polars_err!(ComputeError: "aggregate: more than {} groups", u32::MAX - 1))?;
        let Some(key) = key else {
            if let Some(g) = self.null {
                return Ok((g, false));
            }
            self.views.push([0xff; 16]);
            self.null = Some(next);
            return Ok((next, true));
        };
        let view = view_of(key, self.bytes.len());
        let hash = self.hasher.hash_one(key);
        let Self {
            table,
            views,
            bytes,
            hasher,
            ..
        } = self;
        let stored = |g: u32| key_of(&views[g as usize], bytes);
        let entry = table.entry(
            hash,
            |&g| {
                let v = &views[g as usize];
                v[..8] == view[..8]
                    && if key.len() <= 12 {
                        v[8..] == view[8..]
                    } else {
                        stored(g) == key
                    }
            },
            |&g| hasher.hash_one(stored(g)),
        );
        Ok(match entry {
            hashbrown::hash_table::Entry::Occupied(e) => (*e.get(), false),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(next);
                if key.len() > 12 {
                    bytes.extend_from_slice(key);
                }
                views.push(view);
                (next, true)
            }
        })
    }
}

/// The view of a key: length and up to 12 inline bytes, or length, first 4
/// bytes and `offset` (where it will be stored).
fn view_of(key: &[u8], offset: usize) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
    if key.len() <= 12 {
        v[4..4 + key.len()].copy_from_slice(key);
    } else {
        v[4..8].copy_from_slice(&key[..4]);
        v[8..].copy_from_slice(&(offset as u64).to_le_bytes());
    }
    v
}

/// The key bytes a view stands for.
fn key_of<'a>(view: &'a [u8; 16], bytes: &'a [u8]) -> &'a [u8] {
    let len = u32::from_le_bytes(view[..4].try_into().expect("4 bytes")) as usize;
    if len <= 12 {
        &view[4..4 + len]
    } else {
        let at = u64::from_le_bytes(view[8..].try_into().expect("8 bytes")) as usize;
        &bytes[at..at + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of order lines: text and integer keys (some null, some over
    /// 12 bytes), decimal and integer amounts (some null, some groups only
    /// null), text and time values.
    fn lines(n: usize) -> DataFrame {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut key, mut num, mut amount, mut qty, mut label, mut at) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let r = next();
            let g = (r >> 8) % 700;
            key.push((r % 13 != 0).then(|| {
                if g % 2 == 0 {
                    format!("{g}")
                } else {
                    format!("order-with-a-long-key-{g}")
                }
            }));
            num.push((r % 17 != 0).then_some(g as i32 - 350));
            // Keys under 10 never get an amount: sums of only nulls.
            amount.push((g >= 10 && r % 5 != 0).then(|| format!("{}.{:02}", r % 10_000, r % 100)));
            qty.push((r % 6 != 0).then_some(((r >> 32) % 9) as i64));
            label.push((r % 4 != 0).then(|| format!("label-{}", (r >> 24) % 50)));
            at.push((r % 3 != 0).then_some((r >> 20) as i64 % 1_000_000_000_000));
        }
        polars::df!(
            "key" => key, "num" => num, "amount" => amount, "qty" => qty,
            "label" => label, "at" => at,
        )
        .unwrap()
        .lazy()
        .with_columns([
            col("amount").cast(DataType::Decimal(18, 2)),
            col("at").cast(DataType::Datetime(TimeUnit::Milliseconds, None)),
        ])
        .collect()
        .unwrap()
    }

    fn aggregations() -> BTreeMap<String, String> {
        [
            ("a_total", "sum(amount)"),
            ("b_qty", "sum(qty)"),
            ("c_lines", "count(amount)"),
            ("d_label", "first(label)"),
            ("e_at", "first(at)"),
            ("f_num", "first(num)"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    /// What the in-memory `aggregate` gives, in `group_by_stable`'s order.
    fn reference(df: &DataFrame, by: &str) -> DataFrame {
        super::super::aggregate(df.clone().lazy(), &[by.to_string()], &aggregations(), true)
            .collect()
            .unwrap()
    }

    fn assert_same(out: &DataFrame, expected: &DataFrame, what: &str) {
        assert_eq!(out.schema(), expected.schema(), "{what}: schema");
        assert_eq!(out.height(), expected.height(), "{what}: rows");
        let differing: Vec<_> = expected
            .columns()
            .iter()
            .filter(|c| !out.column(c.name()).unwrap().equals_missing(c))
            .map(|c| c.name().clone())
            .collect();
        assert!(differing.is_empty(), "{what}: {differing:?} differ");
    }

    #[test]
    fn folding_batches_equals_the_in_memory_aggregate() {
        let df = lines(20_000);
        for by in ["key", "num"] {
            let expected = reference(&df, by);
            assert!(expected.height() > 300, "{}", expected.height());
            // Batches of every size, as a streaming engine may cut them.
            for batch in [1, 7, 1_000, 20_000] {
                let s = Streamed::new(&[by.to_string()], &aggregations(), &df.schema()).unwrap();
                let mut at = 0;
                while at < df.height() {
                    s.fold(&df.slice(at as i64, batch)).unwrap();
                    at += batch;
                }
                assert_same(&s.finish().unwrap(), &expected, &format!("by {by}, {batch}"));
            }
        }
        // Sums of only nulls are 0, as Polars gives them.
        let s = reference(&df, "key");
        assert!(s.column("a_total").unwrap().null_count() == 0);
    }

    #[test]
    fn streams_through_a_sink_plan() {
        let df = lines(20_000);
        let s = Streamed::new(&["key".to_string()], &aggregations(), &df.schema()).unwrap();
        // A frame of many chunks, filtered on the way: the sink sees the
        // steps' output.
        let mut many = df.slice(0, 5_000);
        for at in (5_000..20_000).step_by(5_000) {
            many.vstack_mut(&df.slice(at, 5_000)).unwrap();
        }
        let plan = s
            .sink(many.clone().lazy().filter(col("qty").neq(lit(3i64))))
            .unwrap();
        plan.collect_with_engine(Engine::Streaming).unwrap();
        let expected = reference(
            &many
                .lazy()
                .filter(col("qty").neq(lit(3i64)))
                .collect()
                .unwrap(),
            "key",
        );
        let out = s.finish().unwrap();
        assert_same(&out, &expected, "sink");
    }

    #[test]
    fn empty_input_gives_the_schema() {
        let df = lines(10).clear();
        let s = Streamed::new(&["key".to_string()], &aggregations(), &df.schema()).unwrap();
        s.fold(&df).unwrap();
        assert_same(&s.finish().unwrap(), &reference(&df, "key"), "empty");
    }

    #[test]
    fn only_what_folds_exactly_streams() {
        let df = lines(10);
        let schema = df.schema();
        let with = |spec: &str| BTreeMap::from([("x".to_string(), spec.to_string())]);
        let by = ["key".to_string()];
        assert!(Streamed::new(&by, &with("sum(amount)"), schema).is_some());
        for spec in ["last(label)", "min(qty)", "max(qty)", "mean(qty)", "sum(missing)"] {
            assert!(Streamed::new(&by, &with(spec), schema).is_none(), "{spec}");
        }
        let floats = df
            .clone()
            .lazy()
            .with_column(col("qty").cast(DataType::Float64))
            .collect()
            .unwrap();
        assert!(Streamed::new(&by, &with("sum(qty)"), floats.schema()).is_none());
        let two = ["key".to_string(), "num".to_string()];
        assert!(Streamed::new(&two, &with("sum(qty)"), schema).is_none());
        assert!(Streamed::new(&["at".to_string()], &with("sum(qty)"), schema).is_none());
    }

    #[test]
    fn a_sum_that_does_not_fit_names_the_column() {
        let df = polars::df!("k" => ["a", "a"], "n" => [i32::MAX, 1]).unwrap();
        let agg = BTreeMap::from([("total".to_string(), "sum(n)".to_string())]);
        let s = Streamed::new(&["k".to_string()], &agg, df.schema()).unwrap();
        s.fold(&df).unwrap();
        let err = s.finish().unwrap_err().to_string();
        assert!(err.contains("sum of `n`"), "{err}");
    }
}
