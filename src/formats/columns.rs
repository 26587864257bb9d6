//! The one conversion of declared column types, time zones and encodings, for both readers: Arrow types, Polars conversion of a column, and the decoding of non-UTF-8 text.

use std::io::Read;

use arrow::datatypes::{DataType as ArrowType, TimeUnit as ArrowUnit};
use polars::prelude::*;

use super::ReadOptions;
use crate::pipeline::{ColumnSpec, ColumnType, Encoding};
use crate::reconcile::values::{
    Spelling, parse_date_as, parse_number, parse_texts, to_epoch_ms, to_scaled,
};
use crate::transforms::polars_type;

/// The Arrow type of a declared column once read (timestamps in UTC).
pub fn arrow_type(t: ColumnType) -> ArrowType {
    match t {
        ColumnType::String => ArrowType::Utf8,
        ColumnType::Int64 => ArrowType::Int64,
        ColumnType::Float64 => ArrowType::Float64,
        ColumnType::Bool => ArrowType::Boolean,
        ColumnType::Date => ArrowType::Date32,
        ColumnType::Timestamp => {
            ArrowType::Timestamp(ArrowUnit::Millisecond, Some(super::UTC.into()))
        }
        ColumnType::Decimal(p, s) => ArrowType::Decimal128(p, s),
    }
}

/// Whether a declared column's text is in a spelling only
/// [`crate::reconcile::values`]' parsers read: a date format, or numbers
/// with a decimal comma or grouped thousands.
pub fn spelled(spec: &ColumnSpec, options: &ReadOptions) -> bool {
    match spec.ty {
        ColumnType::Timestamp | ColumnType::Date => spec.format.is_some(),
        ColumnType::Int64 | ColumnType::Float64 | ColumnType::Decimal(..) => {
            !spec.numbers(options.numbers).is_plain()
        }
        ColumnType::String | ColumnType::Bool => false,
    }
}

/// Whether a CSV parser reads a declared column as text, for [`crate::reconcile::values`]'
/// parsers to convert: timestamps and decimals, whose text forms both
/// readers must understand alike (`2026-10-13 10:09`, no silent rounding
/// of `1.005` to two places), and any [`spelled`] column. Other declared
/// types are parsed directly.
pub fn parsed_from_text(spec: &ColumnSpec, options: &ReadOptions) -> bool {
    matches!(spec.ty, ColumnType::Timestamp | ColumnType::Decimal(..)) || spelled(spec, options)
}

/// Text in `encoding` as UTF-8: a UTF-8 byte order mark is removed (invalid
/// UTF-8 is left for the parser to report with its line); Windows-1252 and
/// ISO-8859-1 are decoded as Windows-1252, as browsers do.
pub fn decode(raw: Box<dyn Read + Send>, encoding: Encoding) -> Box<dyn Read + Send> {
    match encoding {
        Encoding::Utf8 => Box::new(SkipBom::new(raw)),
        Encoding::Windows1252 | Encoding::Iso88591 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build(raw),
        ),
    }
}

/// Skips a UTF-8 byte order mark at the start of a stream.
struct SkipBom<R> {
    inner: R,
    /// Bytes read while looking for the mark, not yet handed out.
    pending: Vec<u8>,
    checked: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            checked: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                let got = self.inner.read(&mut head[n..])?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if !(n == 3 && head == [0xEF, 0xBB, 0xBF]) {
                self.pending.extend_from_slice(&head[..n]);
            }
        }
        if !self.pending.is_empty() {
            let take = self.pending.len().min(buf.len());
            buf[..take].copy_from_slice(&self.pending[..take]);
            self.pending.drain(..take);
            return Ok(take);
        }
        self.inner.read(buf)
    }
}

/// Give declared columns of a Polars frame their types; values that do not
/// parse fail the read with the file and column named.
pub fn conform_frame(file: &str, lf: LazyFrame, options: &ReadOptions) -> LazyFrame {
    let file: Arc<str> = Arc::from(file);
    let exprs: Vec<Expr> = options
        .columns
        .iter()
        .map(|(c, spec)| conform_expr(c, spec.ty, options.spelling(spec), file.clone()))
        .collect();
    if exprs.is_empty() {
        lf
    } else {
        lf.with_columns(exprs)
    }
}

fn conform_expr(column: &str, t: ColumnType, spelling: Spelling, file: Arc<str>) -> Expr {
    let name = column.to_string();
    col(column).map(
        move |c| conform_column(&c, t, &spelling, &file, &name),
        move |_, f| Ok(Field::new(f.name().clone(), polars_type(t))),
    )
}

/// Convert one column to its declared type (timestamps to UTC milliseconds,
/// naive ones read in the side's `timezone`; text in its spelling).
pub(crate) fn conform_column(
    c: &Column,
    t: ColumnType,
    spelling: &Spelling,
    file: &str,
    name: &str,
) -> PolarsResult<Column> {
    let s = c.as_materialized_series();
    let bad = |why: String| polars_err!(ComputeError: "{file}: column `{name}`: {why}");
    let text = s.dtype() == &DataType::String;
    let out: Series = match t {
        ColumnType::Timestamp => to_epoch_ms(s, spelling)
            .map_err(bad)?
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_series(),
        ColumnType::Decimal(p, sc) => to_scaled(s, sc as u32, &spelling.numbers)
            .map_err(bad)?
            .into_decimal(p as usize, sc as usize)
            .map_err(|e| bad(e.to_string()))?
            .into_series(),
        ColumnType::Int64 if text && !spelling.numbers.is_plain() => {
            parse_texts::<Int64Type>(s.str()?, |v| {
                parse_number(v, 0, &spelling.numbers)
                    .and_then(|u| i64::try_from(u).map_err(|_| format!("{v:?} is too large")))
            })
            .map_err(bad)?
            .into_series()
        }
        ColumnType::Float64 if text && !spelling.numbers.is_plain() => {
            parse_texts::<Float64Type>(s.str()?, |v| {
                let plain = spelling.numbers.plain(v)?;
                plain
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("{v:?} is not a number"))
            })
            .map_err(bad)?
            .into_series()
        }
        ColumnType::Date if text && spelling.format.is_some() => {
            let format = spelling.format.as_deref().unwrap_or_default();
            parse_texts::<Int32Type>(s.str()?, |v| parse_date_as(v, format))
                .map_err(bad)?
                .into_date()
                .into_series()
        }
        other => {
            let target = polars_type(other);
            if s.dtype() == &target {
                s.clone()
            } else {
                s.strict_cast(&target).map_err(|e| bad(e.to_string()))?
            }
        }
    };
    Ok(out.with_name(c.name().clone()).into_column())
}
