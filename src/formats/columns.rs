//! The one conversion of declared column types, time zones and encodings, for both readers: Arrow types, Polars conversion of a column, and the decoding of non-UTF-8 text.

use std::io::Read;

use arrow::datatypes::{DataType as ArrowType, TimeUnit as ArrowUnit};
use polars::prelude::*;

use crate::pipeline::{ColumnType, Encoding};
use crate::reconcile::values::{to_epoch_ms, to_scaled};
use crate::transforms::polars_type;

/// The Arrow type of a declared column.
pub fn arrow_type(t: ColumnType, timezone: &str) -> ArrowType {
    match t {
        ColumnType::String => ArrowType::Utf8,
        ColumnType::Int64 => ArrowType::Int64,
        ColumnType::Float64 => ArrowType::Float64,
        ColumnType::Bool => ArrowType::Boolean,
        ColumnType::Date => ArrowType::Date32,
        ColumnType::Timestamp => {
            ArrowType::Timestamp(ArrowUnit::Millisecond, Some(timezone.into()))
        }
        ColumnType::Decimal(p, s) => ArrowType::Decimal128(p, s),
    }
}

/// Whether a CSV parser reads a declared column as text, for [`crate::reconcile::values`]'
/// parsers to convert: timestamps and decimals, whose text forms both
/// readers must understand alike (`2026-10-13 10:09`, no silent rounding
/// of `1.005` to two places). Other declared types are parsed directly.
pub fn parsed_from_text(t: ColumnType) -> bool {
    matches!(t, ColumnType::Timestamp | ColumnType::Decimal(..))
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
pub fn conform_frame(
    file: &str,
    lf: LazyFrame,
    columns: &std::collections::BTreeMap<String, ColumnType>,
    offset: i32,
) -> LazyFrame {
    let file: Arc<str> = Arc::from(file);
    let exprs: Vec<Expr> = columns
        .iter()
        .map(|(c, t)| conform_expr(c, *t, offset, file.clone()))
        .collect();
    if exprs.is_empty() {
        lf
    } else {
        lf.with_columns(exprs)
    }
}

fn conform_expr(column: &str, t: ColumnType, offset: i32, file: Arc<str>) -> Expr {
    let name = column.to_string();
    col(column).map(
        move |c| conform_column(&c, t, offset, &file, &name),
        move |_, f| Ok(Field::new(f.name().clone(), polars_type(t))),
    )
}

/// Convert one column to its declared type (timestamps to UTC milliseconds,
/// naive ones read in the side's `timezone`).
pub(crate) fn conform_column(
    c: &Column,
    t: ColumnType,
    offset: i32,
    file: &str,
    name: &str,
) -> PolarsResult<Column> {
    let s = c.as_materialized_series();
    let bad = |why: String| polars_err!(ComputeError: "{file}: column `{name}`: {why}");
    let out: Series = match t {
        ColumnType::Timestamp => to_epoch_ms(s, offset)
            .map_err(bad)?
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_series(),
        ColumnType::Decimal(p, sc) => to_scaled(s, sc as u32)
            .map_err(bad)?
            .into_decimal(p as usize, sc as usize)
            .map_err(|e| bad(e.to_string()))?
            .into_series(),
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
