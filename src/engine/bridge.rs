//! Zero-copy hand-over of columns between arrow-rs and Polars through the Arrow C Data Interface.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, make_array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::{Column, CompatLevel, DataFrame, PlSmallStr, PolarsError, Series};

/// A column could not cross between the two Arrow implementations.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// arrow-rs refused the column.
    #[error("column `{column}`: {source}")]
    Arrow {
        /// Column name.
        column: String,
        /// Cause.
        source: ArrowError,
    },
    /// Polars refused the column.
    #[error("column `{column}`: {source}")]
    Polars {
        /// Column name.
        column: String,
        /// Cause.
        source: PolarsError,
    },
}

// Both crates declare the C Data Interface structs as `#[repr(C)]` with the
// fields the specification lists, so they are the same layout.
const _: () = assert!(
    std::mem::size_of::<FFI_ArrowArray>() == std::mem::size_of::<polars_arrow::ffi::ArrowArray>()
);
const _: () = assert!(
    std::mem::size_of::<FFI_ArrowSchema>() == std::mem::size_of::<polars_arrow::ffi::ArrowSchema>()
);

/// Move an arrow-rs batch into a Polars frame without copying buffers.
pub fn to_polars(batch: &RecordBatch) -> Result<DataFrame, BridgeError> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let name = field.name().clone();
        let (ffi_array, ffi_schema) =
            arrow::ffi::to_ffi(&array.to_data()).map_err(|source| BridgeError::Arrow {
                column: name.clone(),
                source,
            })?;
        // SAFETY: identical #[repr(C)] layouts (checked above); ownership of
        // the release callbacks moves with the values.
        let (pl_array, pl_schema) = unsafe {
            (
                std::mem::transmute::<FFI_ArrowArray, polars_arrow::ffi::ArrowArray>(ffi_array),
                std::mem::transmute::<FFI_ArrowSchema, polars_arrow::ffi::ArrowSchema>(ffi_schema),
            )
        };
        let polars_err = |source| BridgeError::Polars {
            column: name.clone(),
            source,
        };
        // SAFETY: the structs were just produced by arrow-rs' exporter.
        let pl_field =
            unsafe { polars_arrow::ffi::import_field_from_c(&pl_schema) }.map_err(polars_err)?;
        let pl_array = unsafe { polars_arrow::ffi::import_array_from_c(pl_array, pl_field.dtype) }
            .map_err(polars_err)?;
        let series =
            Series::from_arrow(PlSmallStr::from(name.as_str()), pl_array).map_err(polars_err)?;
        columns.push(Column::from(series));
    }
    DataFrame::new(batch.num_rows(), columns).map_err(|source| BridgeError::Polars {
        column: String::new(),
        source,
    })
}

/// Move a Polars frame back into an arrow-rs batch (one batch, rechunked).
///
/// Polars' large and view types are exported in their classic forms
/// (`CompatLevel::oldest`), which every arrow-rs kernel understands.
pub fn to_arrow(df: &DataFrame) -> Result<RecordBatch, BridgeError> {
    let mut df = df.clone();
    df.rechunk_mut();
    let mut fields = Vec::with_capacity(df.width());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(df.width());
    for column in df.columns() {
        let name = column.name().to_string();
        let series = column.as_materialized_series();
        let series = if series.n_chunks() == 0 {
            Series::full_null(series.name().clone(), 0, series.dtype())
        } else {
            series.clone()
        };
        let array = series.to_arrow(0, CompatLevel::oldest());
        let pl_field = series
            .field()
            .to_arrow(CompatLevel::oldest())
            .with_dtype(array.dtype().clone());
        let pl_schema = polars_arrow::ffi::export_field_to_c(&pl_field);
        let pl_array = polars_arrow::ffi::export_array_to_c(array);
        // SAFETY: identical #[repr(C)] layouts (checked above).
        let (ffi_array, ffi_schema) = unsafe {
            (
                std::mem::transmute::<polars_arrow::ffi::ArrowArray, FFI_ArrowArray>(pl_array),
                std::mem::transmute::<polars_arrow::ffi::ArrowSchema, FFI_ArrowSchema>(pl_schema),
            )
        };
        // SAFETY: produced by Polars' exporter just above.
        let data = unsafe { arrow::ffi::from_ffi(ffi_array, &ffi_schema) }.map_err(|source| {
            BridgeError::Arrow {
                column: name.clone(),
                source,
            }
        })?;
        let mut array = make_array(data);
        // Polars names UTC "UTC"; arrow-rs without a time zone database
        // reads only offsets, so UTC crosses back as "+00:00".
        if let DataType::Timestamp(unit, Some(tz)) = array.data_type()
            && (tz.as_ref() == "UTC" || tz.as_ref() == "Etc/UTC")
        {
            let target = DataType::Timestamp(*unit, Some("+00:00".into()));
            array = arrow::compute::cast(&array, &target).map_err(|source| BridgeError::Arrow {
                column: name.clone(),
                source,
            })?;
        }
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(df.height()));
    RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|source| {
        BridgeError::Arrow {
            column: String::new(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray, TimestampMillisecondArray};

    #[test]
    fn round_trip_keeps_values_and_nulls() {
        let batch = RecordBatch::try_from_iter([
            (
                "orderId",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
            ),
            (
                "state",
                Arc::new(StringArray::from(vec![
                    Some("CLOSED"),
                    Some("ABANDONED"),
                    None,
                ])),
            ),
            (
                "at",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_000, 2_000, 3_000])
                        .with_timezone("+00:00"),
                ),
            ),
        ])
        .unwrap();
        let df = to_polars(&batch).unwrap();
        assert_eq!(df.height(), 3);
        let back = to_arrow(&df).unwrap();
        assert_eq!(back.num_rows(), 3);
        let ids = back
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.value(0), 1);
        assert!(ids.is_null(1));
        let state =
            arrow::compute::cast(back.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
        let state = state.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(state.value(1), "ABANDONED");
        assert!(state.is_null(2));
    }
}
