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
        (
            "saleAmount",
            Arc::new(Int64Array::from(vec![40000, 0, 12550])),
        ),
        (
            "contactReference",
            Arc::new(StringArray::from(vec!["3346662", "3346670", "x"])),
        ),
    ])
    .unwrap()
}

/// What Polars' own `group_by_stable` gives for `aggregate`'s aggregations.
fn group_by_stable(
    df: &DataFrame,
    by: &[&str],
    aggregations: &BTreeMap<String, Aggregation>,
) -> DataFrame {
    df.clone()
        .lazy()
        .group_by_stable(by.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .agg(
            aggregations
                .iter()
                .map(|(out, spec)| {
                    let (func, column) = spec.get().unwrap();
                    reduction(func, column).alias(out.as_str())
                })
                .collect::<Vec<_>>(),
        )
        .collect()
        .unwrap()
}

/// The columns of `reference` that `out` has otherwise.
fn differing(out: &DataFrame, reference: &DataFrame) -> Vec<PlSmallStr> {
    reference
        .columns()
        .iter()
        .filter(|c| !out.column(c.name()).unwrap().equals_missing(c))
        .map(|c| c.name().clone())
        .collect()
}

fn names(b: &RecordBatch) -> Vec<String> {
    b.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
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
        query:
            "SELECT orderId, saleAmount FROM source WHERE saleAmount > 100 ORDER BY orderId DESC"
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

/// The reconcile-oriented steps (scale, text, truncate, aggregate) on Polars frames.
mod reconcile_steps {

    use std::collections::BTreeMap;

    use super::super::*;
    use super::{differing, group_by_stable};
    use crate::pipeline::{Digits, HumanDuration, LetterCase};
    use polars::prelude::DataType;

    fn run(df: DataFrame, steps: &[Transform]) -> DataFrame {
        apply(df.lazy(), steps).unwrap().collect().unwrap()
    }

    fn texts(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        let c = df.column(name).unwrap();
        (0..c.len())
            .map(|i| match c.get(i).unwrap() {
                AnyValue::Null => None,
                AnyValue::Decimal(v, _, s) => {
                    Some(crate::reconcile::values::format_decimal(v, s as u32))
                }
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
                digits: Digits::Fixed(2),
            }],
        );
        assert_eq!(
            out.column("amount").unwrap().dtype(),
            &DataType::Decimal(38, 2)
        );
        assert_eq!(
            texts(&out, "amount"),
            vec![
                Some("400.00".into()),
                Some("-1.50".into()),
                None,
                Some("0.05".into())
            ]
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
                    digits: Digits::Fixed(-2),
                },
            ],
        );
        assert_eq!(
            texts(&out, "a"),
            vec![Some("125".into()), Some("-300".into())]
        );
        let out = run(
            df,
            &[Transform::Scale {
                columns: vec!["a".into()],
                digits: Digits::Fixed(1),
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
                digits: Digits::Fixed(2),
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
                normalize: None,
                strip_leading_zeros: false,
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
                        ("total".to_string(), "sum(amount)".into()),
                        ("currency".to_string(), "first(currency)".into()),
                        ("lines".to_string(), "count(amount)".into()),
                    ]),
                },
            ],
        );
        assert_eq!(out.height(), 2);
        assert_eq!(
            texts(&out, "order"),
            vec![Some("1".into()), Some("2".into())]
        );
        assert_eq!(
            texts(&out, "total"),
            vec![Some("0.30".into()), Some("5.00".into())]
        );
        assert_eq!(
            texts(&out, "currency"),
            vec![Some("CHF".into()), Some("EUR".into())]
        );
    }

    /// `aggregate` gathers `first` and `last` by row number rather than
    /// through Polars' reductions: it must give exactly what Polars'
    /// `group_by_stable` gives, nulls and group order included, on frames
    /// with null keys, null values and groups of one.
    #[test]
    fn aggregate_equals_polars_group_by_stable() {
        let n = 2_000usize;
        // A small deterministic generator: keys repeat, some parts are null.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut region = Vec::new();
        let mut order = Vec::new();
        let mut amount = Vec::new();
        let mut price = Vec::new();
        let mut label = Vec::new();
        let mut qty = Vec::new();
        for _ in 0..n {
            let r = next();
            region.push((r % 7 != 0).then(|| format!("r{}", r % 3)));
            order.push((r % 11 != 0).then_some(((r >> 8) % 300) as i64));
            // Integers: a float sum's last digits depend on the order of
            // addition, which differs between Polars' engines.
            amount.push((r % 5 != 0).then_some(((r >> 16) % 100_000) as i64));
            price.push((r % 3 != 0).then(|| ((r >> 40) % 10_000) as f64 / 100.0));
            label.push((r % 4 != 0).then(|| format!("label-{}-a-long-text", (r >> 24) % 50)));
            qty.push((r % 6 != 0).then_some(((r >> 32) % 9) as i32));
        }
        let df = polars::df!(
            "region" => region,
            "order" => order,
            "amount" => amount,
            "price" => price,
            "label" => label,
            "qty" => qty,
        )
        .unwrap();
        let aggregations: BTreeMap<String, Aggregation> = [
            ("a_first_label", "first(label)"),
            ("b_last_label", "last(label)"),
            ("c_first_qty", "first(qty)"),
            ("d_last_price", "last(price)"),
            ("e_sum", "sum(amount)"),
            ("f_min", "min(label)"),
            ("g_max", "max(qty)"),
            ("h_count", "count(label)"),
            ("i_mean", "mean(qty)"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.into()))
        .collect();
        let by = vec!["region".to_string(), "order".to_string()];
        let reference = group_by_stable(&df, &["region", "order"], &aggregations);
        let step = Transform::Aggregate {
            by: by.clone(),
            aggregations,
        };
        let mut lf = apply(df.clone().lazy(), std::slice::from_ref(&step)).unwrap();
        assert_eq!(lf.collect_schema().unwrap(), reference.schema().clone());
        assert!(reference.height() > 300, "{}", reference.height());
        for engine in [Engine::InMemory, Engine::Streaming] {
            let out = apply(df.clone().lazy(), std::slice::from_ref(&step))
                .unwrap()
                .collect_with_engine(engine)
                .unwrap()
                .unwrap_single();
            let differing = differing(&out, &reference);
            assert!(differing.is_empty(), "{engine:?}: {differing:?} differ");
        }
        // In any order (a consistency check): the same rows.
        let by_key = |df: DataFrame| {
            df.sort(
                ["region", "order"],
                SortMultipleOptions::default().with_nulls_last(true),
            )
            .unwrap()
        };
        let any = apply_with(
            df.clone().lazy(),
            std::slice::from_ref(&step),
            RowOrder::Any,
        )
        .unwrap()
        .collect()
        .unwrap();
        assert!(by_key(any).equals_missing(&by_key(reference.clone())));
        // A step after the aggregate may depend on the order: it is kept.
        let rename = Transform::Rename {
            columns: BTreeMap::from([("e_sum".to_string(), "total".to_string())]),
        };
        let kept = apply_with(df.clone().lazy(), &[step.clone(), rename], RowOrder::Any)
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(
            kept.column("total").unwrap(),
            &reference
                .column("e_sum")
                .unwrap()
                .clone()
                .with_name("total".into())
        );
        assert!(
            kept.column("region")
                .unwrap()
                .equals_missing(reference.column("region").unwrap())
        );
        // Groups of one row and an empty frame.
        let one = df.head(Some(1));
        let out = run(one.clone(), std::slice::from_ref(&step));
        assert_eq!(out.height(), 1);
        let out = run(one.clear(), std::slice::from_ref(&step));
        assert_eq!(out.height(), 0);
        assert_eq!(out.schema(), reference.schema());
    }
}

/// `aggregate` by one key whose rows come in runs, mostly in key order
/// (see `runs`): it must give exactly what Polars' `group_by_stable`
/// gives, with keys out of place, split groups, null keys, groups without
/// values, runs across chunks, and short text, long text and integer keys.
mod runs {
    use std::collections::BTreeMap;

    use polars::prelude::*;

    use super::super::{Aggregations, RowOrder, apply, apply_with};
    use crate::engine::runs::settled;
    use crate::pipeline::{AggFn, Aggregation, Transform};

    #[derive(Clone, Copy, Debug)]
    enum Keys {
        ShortText,
        LongText,
        Integer,
    }

    /// Order lines, 1 to 4 per order, in order-key order except: an
    /// outlier key after order 100, a line of order 42 after order 500,
    /// null keys after orders 700 and 1500; order 900 has no amounts. In
    /// chunks that cut runs.
    fn lines(keys: Keys) -> DataFrame {
        let mut order: Vec<Option<i64>> = Vec::new();
        let mut amount: Vec<Option<i64>> = Vec::new();
        let mut qty: Vec<Option<i32>> = Vec::new();
        let mut label: Vec<Option<String>> = Vec::new();
        let mut push = |o: Option<i64>, n: usize| {
            for line in 0..n {
                let r = order.len() as i64;
                order.push(o);
                amount.push((o != Some(900) && r % 9 != 4).then_some(r * 37 % 100_000 - 500));
                qty.push((r % 7 != 3).then_some((r % 11) as i32 - 2));
                label.push((r % 5 != 1).then(|| format!("line {line} of {o:?}")));
            }
        };
        for o in 0..3000i64 {
            push(Some(o), 1 + (o as usize * 7919) % 4);
            match o {
                100 => push(Some(9_000_000), 1),
                500 => push(Some(42), 2),
                700 | 1500 => push(None, 2),
                _ => {}
            }
        }
        let order: Column = match keys {
            Keys::ShortText => Column::new(
                "order".into(),
                order
                    .iter()
                    .map(|o| o.map(|o| format!("{}", 10_000_700_000 + o)))
                    .collect::<Vec<_>>(),
            ),
            Keys::LongText => Column::new(
                "order".into(),
                order
                    .iter()
                    .map(|o| o.map(|o| format!("ORDER-{o:020}")))
                    .collect::<Vec<_>>(),
            ),
            Keys::Integer => Column::new("order".into(), order),
        };
        let amount = Column::new("amount".into(), amount)
            .cast(&DataType::Decimal(18, 2))
            .unwrap();
        let df = DataFrame::new(
            order.len(),
            vec![
                order,
                amount,
                Column::new("qty".into(), qty),
                Column::new("label".into(), label),
            ],
        )
        .unwrap();
        // Chunks of uneven sizes.
        let mut chunked = df.slice(0, 1001);
        for (start, len) in [(1001, 1), (1002, 2500), (3502, 4000), (7502, usize::MAX)] {
            chunked.vstack_mut(&df.slice(start, len)).unwrap();
        }
        assert!(chunked.max_n_chunks() >= 4);
        chunked
    }

    fn aggregations() -> BTreeMap<String, Aggregation> {
        [
            ("a_first", "first(label)"),
            ("b_last", "last(label)"),
            ("c_sum", "sum(amount)"),
            ("d_min", "min(qty)"),
            ("e_max", "max(amount)"),
            ("f_count", "count(label)"),
            ("g_sum_qty", "sum(qty)"),
            ("h_count_amount", "count(amount)"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.into()))
        .collect()
    }

    fn reference(df: &DataFrame, aggregations: &BTreeMap<String, Aggregation>) -> DataFrame {
        super::group_by_stable(df, &["order"], aggregations)
    }

    fn specs(aggregations: &BTreeMap<String, Aggregation>) -> Aggregations {
        aggregations
            .iter()
            .map(|(out, spec)| {
                let (func, column) = spec.get().unwrap();
                (out.clone(), func, column.to_string())
            })
            .collect()
    }

    fn assert_same(out: &DataFrame, reference: &DataFrame, what: &str) {
        assert_eq!(out.schema(), reference.schema(), "{what}");
        let differing = super::differing(out, reference);
        assert!(differing.is_empty(), "{what}: {differing:?} differ");
    }

    #[test]
    fn aggregate_of_runs_equals_polars_group_by_stable() {
        for keys in [Keys::ShortText, Keys::LongText, Keys::Integer] {
            let df = lines(keys);
            let aggregations = aggregations();
            let reference = reference(&df, &aggregations);
            assert_eq!(reference.height(), 3000 + 2, "{keys:?}");
            // The runs path is taken, with some rows left to the group-by:
            // the outlier, both lines of order 42 and the null keys.
            let specs = specs(&aggregations);
            let (groups, rest) = settled(&df, &["order".to_string()], &specs, reference.schema())
                .unwrap()
                .expect("runs are used");
            // Order 500 is followed by a lower key, so out of place too.
            let lines = |o: usize| 1 + (o * 7919) % 4;
            assert_eq!(rest.len(), 1 + lines(42) + 2 + lines(500) + 4, "{keys:?}");
            assert_eq!(groups.height(), 3000 - 2, "{keys:?}");

            let step = Transform::Aggregate {
                by: vec!["order".into()],
                aggregations,
            };
            let out = apply(df.clone().lazy(), std::slice::from_ref(&step))
                .unwrap()
                .collect()
                .unwrap();
            assert_same(&out, &reference, &format!("{keys:?}, in order"));
            let by_key = |df: DataFrame| {
                df.sort(
                    ["order"],
                    SortMultipleOptions::default().with_nulls_last(true),
                )
                .unwrap()
            };
            let any = apply_with(df.lazy(), std::slice::from_ref(&step), RowOrder::Any)
                .unwrap()
                .collect()
                .unwrap();
            assert_same(
                &by_key(any),
                &by_key(reference),
                &format!("{keys:?}, any order"),
            );
        }
    }

    /// Keys all in order: every run is a group, none is left over.
    #[test]
    fn sorted_keys_leave_nothing_to_the_group_by() {
        let df = lines(Keys::ShortText);
        let df = df
            .filter(&df.column("order").unwrap().is_not_null())
            .unwrap()
            .sort(
                ["order"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .unwrap();
        let aggregations = aggregations();
        let reference = reference(&df, &aggregations);
        let specs = specs(&aggregations);
        let (groups, rest) = settled(&df, &["order".to_string()], &specs, reference.schema())
            .unwrap()
            .expect("runs are used");
        assert!(rest.is_empty());
        assert_eq!(groups.height(), reference.height());
        let step = Transform::Aggregate {
            by: vec!["order".into()],
            aggregations,
        };
        let out = apply(df.lazy(), std::slice::from_ref(&step))
            .unwrap()
            .collect()
            .unwrap();
        assert_same(&out, &reference, "sorted");
    }

    /// A sum past the integer type's range is an error here, and the step
    /// then leaves all rows to Polars' group-by, whose answer it gives.
    #[test]
    fn an_overflowing_sum_is_not_settled() {
        let df = polars::df!(
            "order" => [1i64, 1, 2],
            "amount" => [i64::MAX, 2, 5],
        )
        .unwrap();
        let specs: Aggregations = vec![("total".into(), AggFn::Sum, "amount".into())];
        let expected = df
            .clone()
            .lazy()
            .group_by([col("order")])
            .agg([col("amount").sum().alias("total")])
            .collect_schema()
            .unwrap();
        assert!(settled(&df, &["order".to_string()], &specs, &expected).is_err());
        let fits = polars::df!("order" => [1i64, 1, 2], "amount" => [i64::MAX - 2, 2, 5]).unwrap();
        let (groups, _) = settled(&fits, &["order".to_string()], &specs, &expected)
            .unwrap()
            .unwrap();
        assert_eq!(
            groups.column("total").unwrap().i64().unwrap().to_vec(),
            [Some(i64::MAX), Some(5)]
        );
    }
}

#[test]
fn a_table_function_is_refused_when_the_plan_is_built_without_validation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.csv");
    std::fs::write(&file, "orderId,orderState\n999,LEAKED\n").unwrap();
    let steps = vec![Transform::Sql {
        query: format!(
            "SELECT orderId, orderState FROM source UNION ALL SELECT orderId, orderState FROM read_csv('{}')",
            file.display()
        ),
    }];
    let err = apply_to_batch(&orders(), &steps).unwrap_err();
    assert!(
        matches!(
            err,
            TransformError::Forbidden {
                index: 0,
                kind: "sql",
                ..
            }
        ),
        "{err}"
    );
    let steps = vec![Transform::Filter {
        expr: format!(
            "orderId IN (SELECT orderId FROM read_csv('{}'))",
            file.display()
        ),
    }];
    let err = apply_to_batch(&orders(), &steps).unwrap_err();
    assert!(matches!(err, TransformError::Forbidden { .. }), "{err}");
}

#[test]
fn an_unknown_aggregation_built_without_validation_is_an_error_not_a_silent_mean() {
    let df = polars::df!("order" => [1i64, 1, 2], "amount" => [1i64, 2, 3]).unwrap();
    let steps = [Transform::Aggregate {
        by: vec!["order".into()],
        aggregations: BTreeMap::from([
            ("total".to_string(), "sum(amount)".into()),
            ("middle".to_string(), "median(amount)".into()),
        ]),
    }];
    let Err(err) = apply(df.lazy(), &steps) else {
        panic!("an unknown aggregation was accepted");
    };
    assert!(
        matches!(
            &err,
            TransformError::Aggregation { index: 0, output, text }
                if output == "middle" && text == "median(amount)"
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "transforms[0] (aggregate): aggregations.middle: \"median(amount)\": write FUNCTION(column) with sum, min, max, first, last, count or mean"
    );
}

mod scale;
mod text;
