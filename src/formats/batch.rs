//! The sync's side of the declared-type conversion: Arrow batches given their declared types (timestamps in UTC milliseconds), values no order can hold refused.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use super::columns::arrow_type;
use super::{MAX_VALUE_BYTES, ReadOptions, UTC};
use crate::reconcile::values::{
    Spelling, parse_date_as, parse_number, parse_timestamp_as, parse_timestamp_in,
};
use crate::sources::error::SourceError;

/// Check required columns, cast declared ones that the format did not type
/// (Parquet, NDJSON), put every timestamp in UTC milliseconds, and refuse
/// values no order can hold (non-finite numbers, oversized cells).
pub fn conform(
    file: &str,
    batch: RecordBatch,
    options: &ReadOptions,
    first_row: usize,
) -> Result<RecordBatch, SourceError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut changed = false;
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let spec = options.columns.get(field.name());
        let target = match spec {
            Some(spec) => arrow_type(spec.ty),
            None => array.data_type().clone(),
        };
        let target = match target {
            DataType::Timestamp(_, _) => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
            }
            t => t,
        };
        if &target == array.data_type() {
            check_values(file, field.name(), array, first_row)?;
            fields.push(field.as_ref().clone());
            arrays.push(array.clone());
            continue;
        }
        changed = true;
        let spelling = match spec {
            Some(spec) => options.spelling(spec),
            None => Spelling::plain(options.zone),
        };
        let cast = cast_checked(file, field.name(), array, &target, &spelling, first_row)?;
        check_values(file, field.name(), &cast, first_row)?;
        fields.push(Field::new(field.name(), target, true));
        arrays.push(cast);
    }
    if !changed {
        return Ok(batch);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, arrays).map_err(|e| SourceError::parse(file, e))
}

/// Refuse a cell larger than [`MAX_VALUE_BYTES`] and a floating-point
/// number that is not finite (`1e999` read as infinity, `NaN`): neither is
/// an order's value, and JSON cannot carry the latter.
fn check_values(
    file: &str,
    column: &str,
    array: &ArrayRef,
    first_row: usize,
) -> Result<(), SourceError> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type};
    let bad = |row: usize, why: String| SourceError::Parse {
        file: file.to_string(),
        message: format!("data row {}, column `{column}`: {why}", first_row + row + 1),
    };
    let too_long = |row: usize, len: usize| {
        bad(
            row,
            format!(
                "a value of {len} bytes, over the limit of {MAX_VALUE_BYTES} bytes for one cell"
            ),
        )
    };
    // Offsets give every value's length without touching the values.
    let check_offsets = |lengths: &mut dyn Iterator<Item = usize>| match lengths
        .enumerate()
        .find(|&(_, len)| len > MAX_VALUE_BYTES)
    {
        Some((row, len)) => Err(too_long(row, len)),
        None => Ok(()),
    };
    match array.data_type() {
        DataType::Utf8 => check_offsets(&mut array.as_string::<i32>().offsets().lengths()),
        DataType::LargeUtf8 => check_offsets(&mut array.as_string::<i64>().offsets().lengths()),
        DataType::Binary => check_offsets(&mut array.as_binary::<i32>().offsets().lengths()),
        DataType::LargeBinary => check_offsets(&mut array.as_binary::<i64>().offsets().lengths()),
        DataType::Utf8View => check_offsets(
            &mut array
                .as_string_view()
                .views()
                .iter()
                .map(|v| *v as u32 as usize),
        ),
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            match (0..a.len()).find(|&i| a.is_valid(i) && !a.value(i).is_finite()) {
                Some(row) => Err(bad(
                    row,
                    format!("{} is not a finite number (out of range?)", a.value(row)),
                )),
                None => Ok(()),
            }
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            match (0..a.len()).find(|&i| a.is_valid(i) && !a.value(i).is_finite()) {
                Some(row) => Err(bad(
                    row,
                    format!("{} is not a finite number (out of range?)", a.value(row)),
                )),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Cast with errors that name the column and the first bad row.
fn cast_checked(
    file: &str,
    column: &str,
    array: &ArrayRef,
    target: &DataType,
    spelling: &Spelling,
    first_row: usize,
) -> Result<ArrayRef, SourceError> {
    if let Some(parsed) = from_text(file, column, array, target, spelling, first_row) {
        return parsed;
    }
    // A naive timestamp is a wall-clock time in the source's zone.
    if let (DataType::Timestamp(_, None), DataType::Timestamp(_, Some(_))) =
        (array.data_type(), target)
    {
        return naive_in_zone(file, column, array, spelling, first_row);
    }
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(array, target, &options).map_err(|e: ArrowError| {
        // Find the first row that does not convert, for the message.
        let safe = arrow::compute::cast(array, target).ok();
        let row = safe.and_then(|s| (0..s.len()).find(|&i| s.is_null(i) && !array.is_null(i)));
        let at = row
            .map(|r| format!(" (first bad value in data row {})", first_row + r + 1))
            .unwrap_or_default();
        SourceError::Parse {
            file: file.to_string(),
            message: format!("column `{column}`: cannot read as {target}{at}: {e}"),
        }
    })
}

/// Naive timestamps (Parquet's without a time zone) as UTC milliseconds,
/// each placed in the source's zone.
fn naive_in_zone(
    file: &str,
    column: &str,
    array: &ArrayRef,
    spelling: &Spelling,
    first_row: usize,
) -> Result<ArrayRef, SourceError> {
    let naive_ms = DataType::Timestamp(TimeUnit::Millisecond, None);
    let ms = arrow::compute::cast(array, &naive_ms).map_err(|e| SourceError::parse(file, e))?;
    let ms = arrow::array::AsArray::as_primitive::<arrow::datatypes::TimestampMillisecondType>(&ms);
    ms.iter()
        .enumerate()
        .map(|(row, v)| match v {
            None => Ok(None),
            Some(wall) => spelling
                .zone
                .to_utc_ms(wall)
                .map(Some)
                .map_err(|e| SourceError::Parse {
                    file: file.to_string(),
                    message: format!("data row {}, column `{column}`: {e}", first_row + row + 1),
                }),
        })
        .collect::<Result<TimestampMillisecondArray, _>>()
        .map(|a| Arc::new(a.with_timezone(UTC)) as ArrayRef)
}

/// Text into a declared timestamp or decimal (or a number or date in a
/// local spelling) by the check's own parsers (`None` for any other
/// conversion), so that both readers accept the same forms
/// (`2026-10-13 10:09`, `+3`, `400.`, `1.234,56`) and neither rounds
/// silently: empty text is null, and the first value that does not parse
/// fails the batch with its row.
fn from_text(
    file: &str,
    column: &str,
    array: &ArrayRef,
    target: &DataType,
    spelling: &Spelling,
    first_row: usize,
) -> Option<Result<ArrayRef, SourceError>> {
    let ours = match target {
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Decimal128(_, _) => true,
        DataType::Int64 | DataType::Float64 => !spelling.numbers.is_plain(),
        DataType::Date32 => spelling.format.is_some(),
        _ => false,
    };
    if !ours
        || !matches!(
            array.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        return None;
    }
    let text = match arrow::compute::cast(array, &DataType::Utf8) {
        Ok(t) => t,
        Err(e) => return Some(Err(SourceError::parse(file, e))),
    };
    let text = arrow::array::AsArray::as_string::<i32>(&text);
    let bad = |row: usize, value: &str, why: String| SourceError::Parse {
        file: file.to_string(),
        message: format!(
            "data row {}, column `{column}`: cannot read {value:?} as {target}: {why}",
            first_row + row + 1
        ),
    };
    let values = text
        .iter()
        .map(|v| v.map(str::trim).filter(|v| !v.is_empty()));
    // Each value through `parse`, with the row of the first that fails.
    fn each<'a, T>(
        values: impl Iterator<Item = Option<&'a str>>,
        parse: impl Fn(&str) -> Result<T, String>,
        bad: impl Fn(usize, &str, String) -> SourceError,
    ) -> Result<Vec<Option<T>>, SourceError> {
        values
            .enumerate()
            .map(|(row, v)| match v {
                None => Ok(None),
                Some(v) => parse(v).map(Some).map_err(|why| bad(row, v, why)),
            })
            .collect()
    }
    let numbers = &spelling.numbers;
    Some(match target {
        DataType::Decimal128(p, s) => each(
            values,
            |v| {
                let units = parse_number(v, *s as u32, numbers)?;
                <arrow::datatypes::Decimal128Type as arrow::datatypes::DecimalType>::validate_decimal_precision(units, *p, *s)
                    .map(|()| units)
                    .map_err(|e| e.to_string())
            },
            bad,
        )
        .and_then(|v| {
            Decimal128Array::from(v)
                .with_precision_and_scale(*p, *s)
                .map_err(|e| SourceError::parse(file, e))
        })
        .map(|a| Arc::new(a) as ArrayRef),
        DataType::Int64 => each(
            values,
            |v| {
                let units = parse_number(v, 0, numbers)?;
                i64::try_from(units).map_err(|_| "too large".to_string())
            },
            bad,
        )
        .map(|v| Arc::new(arrow::array::Int64Array::from(v)) as ArrayRef),
        DataType::Float64 => each(
            values,
            |v| {
                numbers
                    .plain(v)?
                    .parse::<f64>()
                    .map_err(|_| "not a number".to_string())
            },
            bad,
        )
        .map(|v| Arc::new(arrow::array::Float64Array::from(v)) as ArrayRef),
        DataType::Date32 => {
            let format = spelling.format.as_deref().unwrap_or_default();
            each(values, |v| parse_date_as(v, format), bad)
                .map(|v| Arc::new(arrow::array::Date32Array::from(v)) as ArrayRef)
        }
        _ => {
            let zone = &spelling.zone;
            each(
                values,
                |v| match &spelling.format {
                    Some(f) => parse_timestamp_as(v, f, zone),
                    None => parse_timestamp_in(v, zone),
                },
                bad,
            )
            .map(|v| Arc::new(TimestampMillisecondArray::from(v).with_timezone(UTC)) as ArrayRef)
        }
    })
}
