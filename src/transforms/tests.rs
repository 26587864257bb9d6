//! Tests of the transform steps on small arrow-rs batches, through Polars and back.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type};

use super::*;

fn orders() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "orderId",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        ),
        (
            "orderState",
            Arc::new(StringArray::from(vec!["CLOSED", "ABANDONED", "CLOSED"])),
        ),
        ("saleAmount", Arc::new(Int64Array::from(vec![40000, 0, 12550]))),
        (
            "contactReference",
            Arc::new(StringArray::from(vec!["3346662", "3346670", "x"])),
        ),
    ])
    .unwrap()
}

fn names(b: &RecordBatch) -> Vec<String> {
    b.schema().fields().iter().map(|f| f.name().clone()).collect()
}

#[test]
fn rename_filter_derive_select() {
    let steps = vec![
        Transform::Rename {
            columns: BTreeMap::from([("saleAmount".to_string(), "amount".to_string())]),
        },
        Transform::Filter {
            expr: "orderState <> 'ABANDONED'".into(),
        },
        Transform::Derive {
            column: "double".into(),
            expr: "amount * 2".into(),
        },
        Transform::Select {
            columns: vec!["orderId".into(), "double".into()],
        },
    ];
    let out = apply_to_batch(&orders(), &steps).unwrap();
    assert_eq!(names(&out), vec!["orderId", "double"]);
    assert_eq!(out.num_rows(), 2);
    let d = out.column(1).as_primitive::<Int64Type>();
    assert_eq!(d.values().to_vec(), vec![80000, 25100]);
}

#[test]
fn sql_select_over_source() {
    let steps = vec![Transform::Sql {
        query: "SELECT orderId, saleAmount FROM source WHERE saleAmount > 100 ORDER BY orderId DESC"
            .into(),
    }];
    let out = apply_to_batch(&orders(), &steps).unwrap();
    let ids = out.column(0).as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![3, 1]);
}

#[test]
fn drop_removes_columns() {
    let steps = vec![Transform::Drop {
        columns: vec!["contactReference".into()],
    }];
    let out = apply_to_batch(&orders(), &steps).unwrap();
    assert_eq!(names(&out), vec!["orderId", "orderState", "saleAmount"]);
}

#[test]
fn failing_cast_is_an_error_naming_the_column() {
    let steps = vec![Transform::Cast {
        columns: BTreeMap::from([("contactReference".to_string(), ColumnType::Int64)]),
    }];
    let err = apply_to_batch(&orders(), &steps).unwrap_err().to_string();
    assert!(err.contains("contactReference"), "{err}");
}

#[test]
fn bad_sql_names_the_step() {
    let steps = vec![Transform::Filter {
        expr: "orderState <> ".into(),
    }];
    let err = apply_to_batch(&orders(), &steps).unwrap_err().to_string();
    assert!(err.starts_with("transforms[0] (filter)"), "{err}");
}

#[test]
fn unknown_column_in_rename_is_an_error() {
    let steps = vec![Transform::Rename {
        columns: BTreeMap::from([("nope".to_string(), "x".to_string())]),
    }];
    assert!(apply_to_batch(&orders(), &steps).is_err());
}

#[test]
fn cast_to_string_keeps_values() {
    let steps = vec![Transform::Cast {
        columns: BTreeMap::from([("orderId".to_string(), ColumnType::String)]),
    }];
    let out = apply_to_batch(&orders(), &steps).unwrap();
    let ids = arrow::compute::cast(out.column(0), &DataType::Utf8).unwrap();
    let ids = ids.as_string::<i32>();
    assert_eq!(ids.value(2), "3");
    assert!(!ids.is_null(0));
}
