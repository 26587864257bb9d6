//! `aggregate` without hashing where the rows allow it: a CRM export lists
//! an order's lines one after another, and mostly in the order of the
//! order ids.
//!
//! One pass over the `by` column finds the runs of rows with equal keys.
//! The runs whose key is above the key of the last such run and below the
//! next run's form a strictly increasing sequence: their keys are all
//! different, so each of these runs is a whole group, unless a run outside
//! the sequence has its key too. Those settled groups are reduced run by
//! run in one sequential pass; the rows of all other runs go through
//! Polars' group-by as before. A 9M-line CRM export of 4.5M orders with a
//! few hundred keys out of place: 0.37 s for this pass and the few rows
//! left, where the group-by of all lines took 0.65 s.
//!
//! The consistency check pairs keys in order the same way ([`sequence`],
//! [`exclude`], used by `reconcile::compare`).
//!
//! Only what a run gives exactly is done this way: `first` and `last`
//! (each group's first and last row number), `count`, and `sum`, `min` and
//! `max` of integers and decimals. Any other aggregation, several `by`
//! columns, a key that is neither text nor an integer, or more than one
//! run in 16 out of place leave the whole step to the group-by.

use polars::prelude::*;
use polars_arrow::array::Array;
use polars_arrow::array::BooleanArray;
use polars_arrow::bitmap::{Bitmap, MutableBitmap};

use crate::pipeline::AggFn;

/// One `aggregate` step's aggregations: output column, function, input column.
pub(crate) type Aggregations = Vec<(String, AggFn, String)>;

/// Internal columns of `aggregate`: each group's first and last row number.
pub(crate) const FIRST_ROW: &str = "__s360_first_row";
pub(crate) const LAST_ROW: &str = "__s360_last_row";

/// At most one run in this many may be out of place (else the group-by is
/// faster than sorting them out).
const OUT_OF_PLACE: usize = 16;

/// Runs looked at before giving up on out-of-place keys.
const PROBE_RUNS: usize = 1 << 16;

/// The settled groups of the step's input `df` (see the module text) and
/// the rows of all other runs, in order, for the group-by; `None` when the
/// step does not qualify. The groups have the `by` column, [`FIRST_ROW`],
/// [`LAST_ROW`] and one column per aggregation not gathered by row number,
/// named and typed as in `expected` (the step's output schema).
pub(crate) fn settled(
    df: &DataFrame,
    by: &[String],
    specs: &Aggregations,
    expected: &Schema,
) -> PolarsResult<Option<(DataFrame, Vec<IdxSize>)>> {
    let rows = df.height();
    let [name] = by else {
        return Ok(None);
    };
    if rows == 0 || !specs.iter().all(|(_, f, c)| mergeable(df, *f, c)) {
        return Ok(None);
    }
    let key = df.column(name)?.as_materialized_series();
    let lens: Vec<usize> = key.chunks().iter().map(|a| a.len()).collect();
    macro_rules! runs_of {
        ($ca:expr, $first_rows:expr) => {{
            let ca = $ca;
            let first_rows: Vec<IdxSize> = $first_rows(ca);
            let arrays: Vec<_> = ca.downcast_iter().collect();
            let settled = settle(|| run_keys(&lens, &first_rows, |c, i| arrays[c].get(i)));
            settled.map(|settled| (first_rows, settled))
        }};
    }
    let runs = match key.dtype() {
        DataType::String => runs_of!(key.str()?, text_runs),
        DataType::Int8 => runs_of!(key.i8()?, value_runs),
        DataType::Int16 => runs_of!(key.i16()?, value_runs),
        DataType::Int32 => runs_of!(key.i32()?, value_runs),
        DataType::Int64 => runs_of!(key.i64()?, value_runs),
        DataType::UInt8 => runs_of!(key.u8()?, value_runs),
        DataType::UInt16 => runs_of!(key.u16()?, value_runs),
        DataType::UInt32 => runs_of!(key.u32()?, value_runs),
        DataType::UInt64 => runs_of!(key.u64()?, value_runs),
        _ => None,
    };
    let Some((first_rows, settled)) = runs else {
        return Ok(None);
    };
    // The settled groups' first and last rows, and the other rows.
    let groups = settled.iter().filter(|s| **s).count();
    let mut starts = MutableBitmap::from_len_zeroed(rows);
    let mut first: Vec<IdxSize> = Vec::with_capacity(groups);
    let mut last: Vec<IdxSize> = Vec::with_capacity(groups);
    let mut rest: Vec<IdxSize> = Vec::new();
    for (r, &start) in first_rows.iter().enumerate() {
        let end = first_rows.get(r + 1).map_or(rows as IdxSize, |&e| e);
        if settled[r] {
            starts.set(start as usize, true);
            first.push(start);
            last.push(end - 1);
        } else {
            rest.extend(start..end);
        }
    }
    drop((first_rows, settled));
    let mask = BooleanChunked::from_chunk_iter(
        PlSmallStr::EMPTY,
        [BooleanArray::from_data_default(starts.into(), None)],
    );
    // In one chunk: the filter keeps the input's chunks, and a narrow frame
    // whose columns are cut differently is read in smaller pieces later
    // (5M orders per side: 121 chunks instead of 47, and a 140 MB higher
    // peak in the key check).
    let mut columns = vec![key.filter(&mask)?.rechunk().into_column()];
    for (out, func, column) in specs {
        let values = df.column(column)?;
        let reduced = match func {
            AggFn::First | AggFn::Last => continue,
            AggFn::Count => counts(values, &first, &last),
            AggFn::Sum => reduce(values, &first, &last, Reduce::Sum)?,
            AggFn::Min => reduce(values, &first, &last, Reduce::Min)?,
            AggFn::Max => reduce(values, &first, &last, Reduce::Max)?,
            AggFn::Mean => unreachable!("`mean` is not mergeable"),
        };
        columns.push(reduced.with_name(out.as_str().into()));
    }
    columns.push(IdxCa::from_vec(FIRST_ROW.into(), first).into_column());
    columns.push(IdxCa::from_vec(LAST_ROW.into(), last).into_column());
    let typed = columns
        .into_iter()
        .map(|c| {
            let dtype = expected.get(c.name()).unwrap_or(&IDX_DTYPE);
            match (c.dtype(), dtype) {
                // Units to a decimal of the output's scale (the input's).
                (DataType::Int128, DataType::Decimal(p, s)) => Ok(c
                    .i128()?
                    .clone()
                    .into_decimal(*p, *s)?
                    .into_series()
                    .into_column()),
                _ => c.strict_cast(dtype),
            }
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(Some((DataFrame::new(groups, typed)?, rest)))
}

/// Whether `func` over `column` can be done run by run, exactly.
fn mergeable(df: &DataFrame, func: AggFn, column: &str) -> bool {
    let Ok(c) = df.column(column) else {
        return false;
    };
    match func {
        AggFn::First | AggFn::Last | AggFn::Count => true,
        AggFn::Sum | AggFn::Min | AggFn::Max => c.dtype().is_integer() || c.dtype().is_decimal(),
        AggFn::Mean => false,
    }
}

/// The first row of each run of equal values (null equal to null).
fn value_runs<T>(ca: &ChunkedArray<T>) -> Vec<IdxSize>
where
    T: PolarsNumericType,
{
    let mut first_rows = Vec::new();
    let mut before = None;
    for (row, v) in ca.iter().enumerate() {
        if before != Some(v) {
            first_rows.push(row as IdxSize);
            before = Some(v);
        }
    }
    first_rows
}

/// [`value_runs`] for text: neighbours are compared by their views (16
/// bytes; a text of up to 12 bytes is held in its view, padded with
/// zeros), and by their bytes only when longer texts of one length have
/// unlike views.
fn text_runs(ca: &StringChunked) -> Vec<IdxSize> {
    let mut first_rows = Vec::new();
    let mut offset = 0;
    let mut before: Option<Option<&str>> = None;
    for arr in ca.downcast_iter() {
        let n = arr.len();
        if n == 0 {
            continue;
        }
        if before != Some(arr.get(0)) {
            first_rows.push(offset as IdxSize);
        }
        if arr.null_count() == 0 {
            let views = arr.views();
            for i in 1..n {
                let (a, b) = (views[i - 1], views[i]);
                let same = a == b
                    || (a.length == b.length
                        && !a.is_inline()
                        // SAFETY: i - 1 and i are below the array's length.
                        && unsafe { arr.value_unchecked(i - 1) == arr.value_unchecked(i) });
                if !same {
                    first_rows.push((offset + i) as IdxSize);
                }
            }
        } else {
            for i in 1..n {
                if arr.get(i - 1) != arr.get(i) {
                    first_rows.push((offset + i) as IdxSize);
                }
            }
        }
        before = Some(arr.get(n - 1));
        offset += n;
    }
    first_rows
}

/// The key of each run, from `get(chunk, index in chunk)` with the chunks'
/// lengths `lens`.
fn run_keys<'a, K>(
    lens: &'a [usize],
    first_rows: &'a [IdxSize],
    get: impl Fn(usize, usize) -> Option<K> + 'a,
) -> impl Iterator<Item = Option<K>> + 'a {
    let (mut chunk, mut offset) = (0, 0);
    first_rows.iter().map(move |&row| {
        let row = row as usize;
        while row >= offset + lens[chunk] {
            offset += lens[chunk];
            chunk += 1;
        }
        get(chunk, row - offset)
    })
}

/// Which runs, of the keys read through `keys` (twice when some are out of
/// place), are settled groups (see the module text); `None` as for
/// [`sequence`].
fn settle<K, I>(keys: impl Fn() -> I) -> Option<Vec<bool>>
where
    K: Ord + Copy,
    I: Iterator<Item = Option<K>>,
{
    let (mut settled, outside) = sequence(keys())?;
    // A run of the sequence whose key is also outside it is not settled.
    if !outside.is_empty() {
        exclude(keys(), &mut settled, &outside);
    }
    Some(settled)
}

/// The strictly increasing sequence in `keys`: each key above the last key
/// in the sequence and below the next key is in it. Returns, for each key,
/// whether it is in the sequence, and the keys out of it (null keys
/// aside), sorted and distinct; `None` when, from [`PROBE_RUNS`] keys on,
/// more than one in [`OUT_OF_PLACE`] is out of it (fewer keys are quick to
/// hash either way).
pub(crate) fn sequence<K, I>(keys: I) -> Option<(Vec<bool>, Vec<K>)>
where
    K: Ord + Copy,
    I: Iterator<Item = Option<K>>,
{
    let mut inside: Vec<bool> = Vec::new();
    let mut outside: Vec<K> = Vec::new();
    let mut out_of_place = 0usize;
    // The key of the sequence's last run.
    let mut last: Option<K> = None;
    let mut it = keys.peekable();
    while let Some(key) = it.next() {
        let next = it.peek().copied().flatten();
        let is_in = key.is_some_and(|k| last.is_none_or(|l| k > l) && next.is_none_or(|n| k < n));
        if is_in {
            last = key;
        } else {
            outside.extend(key);
            out_of_place += 1;
            if inside.len() >= PROBE_RUNS && out_of_place * OUT_OF_PLACE > inside.len() {
                return None;
            }
        }
        inside.push(is_in);
    }
    if inside.len() >= PROBE_RUNS && out_of_place * OUT_OF_PLACE > inside.len() {
        return None;
    }
    outside.sort_unstable();
    outside.dedup();
    Some((inside, outside))
}

/// Takes out of the sequence (`inside`, from [`sequence`] over the same
/// `keys`) each key that is in `outside` (sorted). The sequence's keys
/// rise: one pass beside `outside`.
pub(crate) fn exclude<K, I>(keys: I, inside: &mut [bool], outside: &[K])
where
    K: Ord + Copy,
    I: Iterator<Item = Option<K>>,
{
    let mut at = 0;
    for (s, key) in inside.iter_mut().zip(keys) {
        if !*s {
            continue;
        }
        let k = key.expect("a key in the sequence is not null");
        while at < outside.len() && outside[at] < k {
            at += 1;
        }
        if at == outside.len() {
            break;
        }
        *s = outside[at] != k;
    }
}

/// What [`for_each_chunk`] calls with each chunk.
type ChunkFn<'a> = &'a mut dyn FnMut(usize, &[i128], Option<&Bitmap>);

/// Calls `f(offset, values, validity)` for each chunk of an integer or
/// decimal column (a decimal as its unscaled units), values widened to
/// `i128`, validity only where a value is null.
fn for_each_chunk(c: &Column, f: ChunkFn<'_>) {
    fn widened<T>(ca: &ChunkedArray<T>, f: ChunkFn<'_>)
    where
        T: PolarsNumericType,
        T::Native: Into<i128>,
    {
        let mut offset = 0;
        let mut wide = Vec::new();
        for arr in ca.downcast_iter() {
            wide.clear();
            wide.extend(arr.values().iter().map(|&v| v.into()));
            f(offset, &wide, arr.validity().filter(|b| b.unset_bits() > 0));
            offset += arr.len();
        }
    }
    let s = c.as_materialized_series();
    match s.dtype() {
        DataType::Decimal(_, _) => {
            let mut offset = 0;
            for arr in s.decimal().expect("decimal").physical().downcast_iter() {
                f(
                    offset,
                    arr.values(),
                    arr.validity().filter(|b| b.unset_bits() > 0),
                );
                offset += arr.len();
            }
        }
        DataType::Int8 => widened(s.i8().expect("i8"), f),
        DataType::Int16 => widened(s.i16().expect("i16"), f),
        DataType::Int32 => widened(s.i32().expect("i32"), f),
        DataType::Int64 => widened(s.i64().expect("i64"), f),
        DataType::UInt8 => widened(s.u8().expect("u8"), f),
        DataType::UInt16 => widened(s.u16().expect("u16"), f),
        DataType::UInt32 => widened(s.u32().expect("u32"), f),
        DataType::UInt64 => widened(s.u64().expect("u64"), f),
        other => unreachable!("{other} is checked by `mergeable`"),
    }
}

/// How a group's integers are reduced.
#[derive(Clone, Copy)]
enum Reduce {
    Sum,
    Min,
    Max,
}

/// For one chunk (rows `offset` to `offset + len`), calls `f(g, rows)`
/// for each settled group `g` from `*next` on with rows in it (`first[g]`
/// to `last[g]`), `rows` counted in the chunk; leaves `*next` at the first
/// group that goes on in the next chunk, or after the last one done.
fn chunk_groups(
    (offset, len): (usize, usize),
    (first, last): (&[IdxSize], &[IdxSize]),
    next: &mut usize,
    mut f: impl FnMut(usize, std::ops::Range<usize>),
) {
    let end = offset + len;
    let mut g = *next;
    while g < first.len() && (first[g] as usize) < end {
        let from = (first[g] as usize).max(offset);
        let to = (last[g] as usize + 1).min(end);
        f(g, from - offset..to - offset);
        if last[g] as usize + 1 > end {
            break;
        }
        g += 1;
    }
    *next = g;
}

/// Each settled group's sum (0 without values, as Polars gives), minimum
/// or maximum (null without values) of `values`, as `i128` units.
fn reduce(
    values: &Column,
    first: &[IdxSize],
    last: &[IdxSize],
    how: Reduce,
) -> PolarsResult<Column> {
    let groups = first.len();
    let start = match how {
        Reduce::Sum => 0,
        Reduce::Min => i128::MAX,
        Reduce::Max => i128::MIN,
    };
    let mut acc = vec![start; groups];
    let mut seen = vec![false; groups];
    let mut next = 0;
    for_each_chunk(values, &mut |offset, values, validity| {
        chunk_groups(
            (offset, values.len()),
            (first, last),
            &mut next,
            |g, rows| {
                for i in rows {
                    if validity.is_none_or(|v| v.get_bit(i)) {
                        let v = values[i];
                        acc[g] = match how {
                            Reduce::Sum => acc[g].wrapping_add(v),
                            Reduce::Min => acc[g].min(v),
                            Reduce::Max => acc[g].max(v),
                        };
                        seen[g] = true;
                    }
                }
            },
        );
    });
    let validity = match how {
        Reduce::Sum => None,
        Reduce::Min | Reduce::Max => Some(Bitmap::from_iter(seen.iter().copied())),
    };
    Ok(Int128Chunked::from_vec_validity(PlSmallStr::EMPTY, acc, validity).into_column())
}

/// Each settled group's count of values that are not null.
fn counts(values: &Column, first: &[IdxSize], last: &[IdxSize]) -> Column {
    let mut counts: Vec<IdxSize> = first.iter().zip(last).map(|(f, l)| l - f + 1).collect();
    if values.null_count() > 0 {
        let (mut offset, mut next) = (0, 0);
        for valid in values.is_not_null().downcast_iter() {
            chunk_groups(
                (offset, valid.len()),
                (first, last),
                &mut next,
                |g, rows| {
                    counts[g] -= rows.filter(|&i| !valid.value(i)).count() as IdxSize;
                },
            );
            offset += valid.len();
        }
    }
    IdxCa::from_vec(PlSmallStr::EMPTY, counts).into_column()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The increasing sequence, keys out of place, a key both in the
    /// sequence and outside it, and a null key, by hand.
    #[test]
    fn settle_finds_the_increasing_sequence() {
        let keys = [
            Some(1),
            Some(2),
            Some(9),
            Some(3),
            Some(4),
            Some(2),
            Some(5),
            None,
            Some(6),
        ];
        let settled = settle(|| keys.iter().copied()).unwrap();
        // 9 is above 3 (next), 4 above 2 (next), 2 below 3 (last): out of
        // place; so 2 is unsettled in the sequence too.
        assert_eq!(
            settled,
            [true, false, false, true, false, false, true, false, true]
        );
        let sorted = [Some("a"), Some("b"), Some("c")];
        assert_eq!(settle(|| sorted.iter().copied()).unwrap(), [true; 3]);
    }

    /// From `PROBE_RUNS` runs on, too many keys out of place give up.
    #[test]
    fn settle_gives_up_on_shuffled_keys() {
        let shuffled: Vec<Option<u64>> = (0..PROBE_RUNS as u64 * 2)
            .map(|i| Some(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert!(settle(|| shuffled.iter().copied()).is_none());
        let few: Vec<Option<u64>> = shuffled[..100].to_vec();
        assert!(settle(|| few.iter().copied()).is_some());
    }

    /// Runs across chunks and nulls, text and integers.
    #[test]
    fn runs_across_chunks() {
        let mut text = StringChunked::new(
            "k".into(),
            [Some("a"), Some("a"), None, None, Some("a-long-text-key-1")],
        );
        text.append(&StringChunked::new(
            "k".into(),
            [
                Some("a-long-text-key-1"),
                Some("a-long-text-key-2"),
                Some("b"),
            ],
        ))
        .unwrap();
        assert_eq!(text.chunks().len(), 2);
        assert_eq!(text_runs(&text), [0, 2, 4, 6, 7]);
        let mut ints = Int64Chunked::new("k".into(), [Some(1), None, None]);
        ints.append(&Int64Chunked::new("k".into(), [None, Some(1), Some(1)]))
            .unwrap();
        assert_eq!(value_runs(&ints), [0, 1, 4]);
    }
}
