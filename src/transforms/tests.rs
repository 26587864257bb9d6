//! Tests of the reconcile-oriented steps: scale, text, truncate, aggregate.

use std::collections::BTreeMap;

use super::*;
use crate::pipeline::HumanDuration;

fn run(df: DataFrame, steps: &[Transform]) -> DataFrame {
    apply(df.lazy(), steps).unwrap().collect().unwrap()
}

fn texts(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    let c = df.column(name).unwrap();
    (0..c.len())
        .map(|i| match c.get(i).unwrap() {
            AnyValue::Null => None,
            AnyValue::Decimal(v, _, s) => Some(crate::reconcile::compare::format_decimal(v, s as u32)),
            AnyValue::String(s) => Some(s.to_string()),
            other => Some(other.to_string()),
        })
        .collect()
}

#[test]
fn scale_turns_minor_units_into_exact_decimals() {
    let df = polars::df!("amount" => [Some(40000i64), Some(-150), None, Some(5)]).unwrap();
    let out = run(
        df,
        &[Transform::Scale {
            columns: vec!["amount".into()],
            digits: 2,
        }],
    );
    assert_eq!(out.column("amount").unwrap().dtype(), &DataType::Decimal(38, 2));
    assert_eq!(
        texts(&out, "amount"),
        vec![Some("400.00".into()), Some("-1.50".into()), None, Some("0.05".into())]
    );
}

#[test]
fn scale_of_decimals_and_text_keeps_every_digit() {
    let df = polars::df!("a" => ["1.25", "-3"]).unwrap();
    let out = run(
        df.clone(),
        &[
            Transform::Cast {
                columns: BTreeMap::from([("a".to_string(), ColumnType::Decimal(18, 2))]),
            },
            Transform::Scale {
                columns: vec!["a".into()],
                digits: -2,
            },
        ],
    );
    assert_eq!(texts(&out, "a"), vec![Some("125".into()), Some("-300".into())]);
    let out = run(
        df,
        &[Transform::Scale {
            columns: vec!["a".into()],
            digits: 1,
        }],
    );
    assert_eq!(
        texts(&out, "a"),
        vec![Some("0.1250000000".into()), Some("-0.3000000000".into())]
    );
}

#[test]
fn scale_refuses_floats() {
    let df = polars::df!("a" => [1.5f64]).unwrap();
    let r = apply(
        df.lazy(),
        &[Transform::Scale {
            columns: vec!["a".into()],
            digits: 2,
        }],
    )
    .unwrap()
    .collect();
    assert!(r.is_err());
}

#[test]
fn text_trims_and_changes_case() {
    let df = polars::df!("c" => [Some(" Chf "), None, Some("eur")]).unwrap();
    let out = run(
        df,
        &[Transform::Text {
            columns: vec!["c".into()],
            trim: true,
            case: Some(LetterCase::Upper),
        }],
    );
    assert_eq!(
        texts(&out, "c"),
        vec![Some("CHF".into()), None, Some("EUR".into())]
    );
}

#[test]
fn truncate_drops_milliseconds_including_before_1970() {
    let ca = Int64Chunked::new("t".into(), &[Some(1_760_350_167_503i64), Some(-1), None]);
    let s = ca
        .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        .into_series();
    let df = DataFrame::new(3, vec![s.into_column()]).unwrap();
    let out = run(
        df,
        &[Transform::Truncate {
            columns: vec!["t".into()],
            every: HumanDuration::secs(1),
        }],
    );
    let phys: Vec<_> = out
        .column("t")
        .unwrap()
        .as_materialized_series()
        .datetime()
        .unwrap()
        .physical()
        .iter()
        .collect();
    assert_eq!(phys, vec![Some(1_760_350_167_000), Some(-1000), None]);
}

#[test]
fn aggregate_lines_into_orders_with_exact_sums() {
    let df = polars::df!(
        "order" => ["1", "1", "2"],
        "amount" => ["0.10", "0.20", "5.00"],
        "currency" => ["CHF", "CHF", "EUR"],
    )
    .unwrap();
    let out = run(
        df,
        &[
            Transform::Cast {
                columns: BTreeMap::from([("amount".to_string(), ColumnType::Decimal(18, 2))]),
            },
            Transform::Aggregate {
                by: vec!["order".into()],
                aggregations: BTreeMap::from([
                    ("total".to_string(), "sum(amount)".to_string()),
                    ("currency".to_string(), "first(currency)".to_string()),
                    ("lines".to_string(), "count(amount)".to_string()),
                ]),
            },
        ],
    );
    assert_eq!(out.height(), 2);
    assert_eq!(texts(&out, "order"), vec![Some("1".into()), Some("2".into())]);
    assert_eq!(texts(&out, "total"), vec![Some("0.30".into()), Some("5.00".into())]);
    assert_eq!(texts(&out, "currency"), vec![Some("CHF".into()), Some("EUR".into())]);
}
