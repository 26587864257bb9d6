//! The comparison on small frames: categories, counts, tolerances, nulls, duplicated and composite keys, typed and text inputs, and the pairing in key order against the hash grouping.

use polars::prelude::*;

use crate::engine::pairing::in_key_order;
use crate::pipeline::Zone;
use crate::pipeline::{DuplicatePolicy, FieldComparison, HumanDuration};
use crate::reconcile::check::compare;
use crate::reconcile::model::{Category, Comparison};
use crate::reconcile::plan::Spec;
use crate::reconcile::values::{Spelling, parse_timestamp, to_epoch_ms, to_scaled};

fn field(name: &str) -> FieldComparison {
    FieldComparison {
        field: name.into(),
        right: None,
        absolute: None,
        relative: None,
        time_tolerance: None,
        trim: false,
        ignore_case: false,
        normalize: None,
        null_equals_null: true,
    }
}

fn spec(fields: Vec<FieldComparison>) -> Spec {
    Spec {
        left_key: vec!["id".into()],
        right_key: vec!["id".into()],
        fields,
        duplicates: DuplicatePolicy::Report,
        left_spelling: Spelling::plain(Zone::UTC),
        right_spelling: Spelling::plain(Zone::UTC),
        left_name: "left".into(),
        right_name: "right".into(),
        partitions: 1,
        slices: Vec::new(),
    }
}

#[test]
fn join_categorises_and_counts() {
    let left = polars::df!(
        "id" => [Some(1i64), Some(2), Some(3), Some(4), Some(4), None],
        "amount" => ["10.00", "20.00", "30.00", "40.00", "40.00", "1.00"],
        "who" => ["ann", "Bob ", "cy", "d", "d", "e"],
    )
    .unwrap();
    let right = polars::df!(
        "id" => ["1", "2", "3 ", "5"],
        "amount" => ["10.004", "20.02", "30", "50"],
        "who" => ["ann", "bob", "cy", "x"],
    )
    .unwrap();
    let mut amount = field("amount");
    amount.absolute = Some("0.01".into());
    let mut who = field("who");
    who.trim = true;
    who.ignore_case = true;
    let cmp = compare(left.lazy(), right.lazy(), &spec(vec![amount, who])).unwrap();
    assert_eq!(cmp.matched, 2, "{:#?}", cmp.rows);
    assert_eq!(cmp.count(Category::Mismatched), 1);
    assert_eq!(cmp.count(Category::MissingInS360), 1);
    assert_eq!(
        cmp.count(Category::MissingInCrm),
        0,
        "duplicated key 4 is not paired"
    );
    assert_eq!(cmp.count(Category::DuplicateKey), 1);
    assert_eq!(cmp.count(Category::NullKey), 1);
    let m = cmp
        .rows
        .iter()
        .find(|r| r.category == Category::Mismatched)
        .unwrap();
    assert_eq!(m.key, vec![Some("2".to_string())]);
    assert_eq!(m.fields, vec!["amount".to_string()]);
    assert_eq!(m.difference[0].as_deref(), Some("-0.020000"));
    let dup = cmp
        .rows
        .iter()
        .find(|r| r.category == Category::DuplicateKey)
        .unwrap();
    assert_eq!((dup.side, dup.count), (Some("left"), Some(2)));
    assert_eq!(cmp.columns[0].unequal, 1);
    assert_eq!(cmp.columns[0].equal, 2);
    assert_eq!(cmp.columns[1].equal, 3);
    assert_eq!(cmp.totals[0].left, "141.000000");
    assert_eq!(cmp.totals[0].right, "110.024000");
    assert_eq!(cmp.left_rows.rows, 6);
    assert_eq!(cmp.left_rows.duplicate_rows, 2);
}

#[test]
fn time_tolerance_and_nulls_in_the_join() {
    let left = polars::df!(
        "id" => ["a", "b", "c", "d"],
        "at" => [Some("2026-10-13 10:09:27.400"), Some("2026-10-13 10:09:27"), None, None],
    )
    .unwrap();
    let right = polars::df!(
        "id" => ["a", "b", "c", "d"],
        "at" => [Some("2026-10-13T10:09:27.000Z"), Some("2026-10-13T11:09:29+01:00"), None, Some("2026-10-13T10:00:00Z")],
    )
    .unwrap();
    let mut at = field("at");
    at.time_tolerance = Some(HumanDuration::secs(1));
    let cmp = compare(
        left.clone().lazy(),
        right.clone().lazy(),
        &spec(vec![at.clone()]),
    )
    .unwrap();
    let mism: Vec<_> = cmp.rows.iter().map(|r| r.key[0].clone().unwrap()).collect();
    assert_eq!(mism, vec!["b".to_string(), "d".to_string()]);
    assert_eq!(cmp.columns[0].null_only_left, 1);
    assert_eq!(cmp.columns[0].max_difference.as_deref(), Some("2.000"));
    at.null_equals_null = false;
    let cmp = compare(left.lazy(), right.lazy(), &spec(vec![at])).unwrap();
    assert_eq!(cmp.count(Category::Mismatched), 3);
}

/// A key duplicated on one side is reported once, for that side, and its
/// rows on either side stay out of the pairing and of every statistic.
#[test]
fn duplicated_and_null_keys_stay_out_of_statistics() {
    let left = polars::df!(
        "id" => [Some("1"), Some("7"), Some("7"), None, Some("8")],
        "amount" => [Some("10.00"), Some("99.00"), Some("98.00"), Some("5.00"), None],
    )
    .unwrap();
    let right = polars::df!(
        "id" => [Some("1"), Some("7"), None, Some("8"), Some("8")],
        "amount" => [Some("10.005"), Some("10.00"), Some("6.00"), Some("1.00"), Some("2.00")],
    )
    .unwrap();
    let mut amount = field("amount");
    amount.absolute = Some("0.01".into());
    let cmp = compare(left.lazy(), right.lazy(), &spec(vec![amount])).unwrap();
    assert_eq!(cmp.matched, 1, "{:#?}", cmp.rows);
    let found: Vec<_> = cmp
        .rows
        .iter()
        .map(|r| {
            (
                r.category,
                r.key[0].clone(),
                r.side.map(str::to_string),
                r.count,
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Category::DuplicateKey,
                Some("7".into()),
                Some("left".into()),
                Some(2)
            ),
            (
                Category::DuplicateKey,
                Some("8".into()),
                Some("right".into()),
                Some(2)
            ),
            (Category::NullKey, None, Some("left".into()), Some(1)),
            (Category::NullKey, None, Some("right".into()), Some(1)),
        ]
    );
    let stats = &cmp.columns[0];
    assert_eq!((stats.compared, stats.equal, stats.unequal), (1, 1, 0));
    assert_eq!((stats.null_only_left, stats.null_only_right), (0, 0));
    // Only key 1 is paired: 89.00 (key 7) or 1.00 (key 8) would be larger.
    assert_eq!(stats.max_difference.as_deref(), Some("0.005000"));
    // Control totals count every row, keys or not.
    assert_eq!(cmp.totals[0].left, "212.000000");
    assert_eq!(cmp.totals[0].right, "29.005000");
    assert_eq!((cmp.left_rows.rows, cmp.right_rows.rows), (5, 5));
    assert_eq!(
        (cmp.left_rows.duplicate_rows, cmp.left_rows.null_key_rows),
        (2, 1)
    );
    assert_eq!(
        (cmp.right_rows.duplicate_rows, cmp.right_rows.null_key_rows),
        (2, 1)
    );
}

#[test]
fn duplicates_fail_policy_stops() {
    let left = polars::df!("id" => ["1", "1"], "x" => ["a", "b"]).unwrap();
    let right = polars::df!("id" => ["1"], "x" => ["a"]).unwrap();
    let mut s = spec(vec![field("x")]);
    s.duplicates = DuplicatePolicy::Fail;
    let e = compare(left.lazy(), right.lazy(), &s).unwrap_err();
    assert!(e.to_string().contains("`1` appears 2 times"), "{e}");
}

#[test]
fn composite_keys_compare_as_text() {
    let left = polars::df!("o" => [1i64, 1, 2], "l" => [1i64, 2, 1], "q" => [1i64, 2, 3]).unwrap();
    let right =
        polars::df!("o" => ["1", "1", "2"], "l" => ["1", "2", "2"], "q" => [1i64, 3, 3]).unwrap();
    let mut s = spec(vec![field("q")]);
    s.left_key = vec!["o".into(), "l".into()];
    s.right_key = s.left_key.clone();
    let cmp = compare(left.lazy(), right.lazy(), &s).unwrap();
    assert_eq!(cmp.matched, 1);
    let cats: Vec<_> = cmp
        .rows
        .iter()
        .map(|r| (r.category, r.key.clone()))
        .collect();
    let key = |a: &str, b: &str| vec![Some(a.to_string()), Some(b.to_string())];
    assert_eq!(
        cats,
        vec![
            (Category::Mismatched, key("1", "2")),
            (Category::MissingInCrm, key("2", "1")),
            (Category::MissingInS360, key("2", "2")),
        ]
    );
}

#[test]
fn missing_compared_column_is_named() {
    let left = polars::df!("id" => ["1"]).unwrap();
    let right = polars::df!("id" => ["1"], "x" => ["a"]).unwrap();
    let e = compare(left.lazy(), right.lazy(), &spec(vec![field("x")])).unwrap_err();
    assert!(e.to_string().contains("missing column `x`"), "{e}");
}

#[test]
fn unparsable_compared_value_names_the_column() {
    let left = polars::df!("id" => ["1"], "amount" => ["12.x"]).unwrap();
    let right = polars::df!("id" => ["1"], "amount" => ["12"]).unwrap();
    let mut amount = field("amount");
    amount.absolute = Some("0.01".into());
    let e = compare(left.lazy(), right.lazy(), &spec(vec![amount])).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("column `amount`") && msg.contains("12.x"),
        "{msg}"
    );
}

/// Typed columns (decimals of two scales, integers, naive and UTC instants)
/// go through Polars' kernels, text columns through the exact parsers: both
/// must reach the same verdicts and differences.
#[test]
fn typed_and_text_inputs_give_the_same_answer() {
    let ms = |t: &str| parse_timestamp(t, 0).unwrap();
    let typed = |df: DataFrame, offset_naive: bool| -> DataFrame {
        let mut df = df;
        let amount = df
            .column("amount")
            .unwrap()
            .as_materialized_series()
            .clone();
        let units: Int128Chunked = to_scaled(&amount, 3, &Default::default()).unwrap();
        df.with_column(
            units
                .into_decimal(18, 3)
                .unwrap()
                .into_series()
                .with_name("amount".into())
                .into_column(),
        )
        .unwrap();
        let at = df.column("at").unwrap().as_materialized_series().clone();
        let v: Int64Chunked = to_epoch_ms(&at, &Spelling::plain(Zone::UTC)).unwrap();
        let tz = (!offset_naive).then_some(TimeZone::UTC);
        df.with_column(
            v.into_datetime(TimeUnit::Milliseconds, tz)
                .into_series()
                .with_name("at".into())
                .into_column(),
        )
        .unwrap();
        let qty = df
            .column("qty")
            .unwrap()
            .as_materialized_series()
            .cast(&DataType::Int64)
            .unwrap();
        df.with_column(qty.into_column()).unwrap();
        df
    };
    let left = polars::df!(
        "id" => ["1", "2", "3", "4", "5"],
        "amount" => [Some("100.000"), Some("200.000"), Some("300.000"), None, Some("1000.000")],
        "qty" => ["1", "2", "3", "4", "5"],
        "at" => ["2026-10-13 10:00:00", "2026-10-13 10:00:00", "2026-10-13 10:00:00", "2026-10-13 10:00:00", "2026-10-13 10:00:00"],
    )
    .unwrap();
    let right = polars::df!(
        "id" => ["1", "2", "3", "4", "5"],
        "amount" => [Some("100.001"), Some("200.500"), Some("300.000"), None, Some("1000.900")],
        "qty" => ["1", "2", "30", "4", "5"],
        "at" => ["2026-10-13 10:00:00", "2026-10-13 10:00:01", "2026-10-13 10:00:05", "2026-10-13 10:00:00", "2026-10-13 10:00:00"],
    )
    .unwrap();
    let mut amount = field("amount");
    amount.absolute = Some("0.001".into());
    amount.relative = Some("0.001".into());
    let mut at = field("at");
    at.time_tolerance = Some(HumanDuration::secs(1));
    let fields = vec![amount, field("qty"), at];
    // Text amounts are compared at 6 places and text quantities as text, so
    // the verdicts are compared across types, the differences within them.
    let answer = |cmp: &Comparison| {
        cmp.rows
            .iter()
            .map(|r| (r.key[0].clone(), r.fields.clone()))
            .collect::<Vec<_>>()
    };
    let text = compare(
        left.clone().lazy(),
        right.clone().lazy(),
        &spec(fields.clone()),
    )
    .unwrap();
    let utc = compare(
        typed(left.clone(), false).lazy(),
        typed(right.clone(), false).lazy(),
        &spec(fields.clone()),
    )
    .unwrap();
    // Naive instants an hour east of UTC on both sides: the same verdicts.
    let mut east = spec(fields.clone());
    east.left_spelling = Spelling::plain(Zone::fixed(3600));
    east.right_spelling = Spelling::plain(Zone::fixed(3600));
    let naive = compare(typed(left, true).lazy(), typed(right, true).lazy(), &east).unwrap();
    assert_eq!(answer(&text), answer(&utc));
    assert_eq!(answer(&text), answer(&naive));
    let diffs = |cmp: &Comparison| {
        cmp.rows
            .iter()
            .map(|r| r.difference.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(diffs(&utc), diffs(&naive));
    assert_eq!(
        diffs(&utc)[1],
        vec![
            Some("0.000".to_string()),
            Some("-27".to_string()),
            Some("-5.000".to_string())
        ]
    );
    let keys: Vec<_> = text
        .rows
        .iter()
        .map(|r| r.key[0].clone().unwrap())
        .collect();
    // 1: 0.001 apart (absolute) -> equal; 2: 0.5 of 200 > 0.001 relative, and
    // 1 s apart (tolerated); 3: qty and 5 s; 5: 0.9 of 1000.9 is within 0.001.
    assert_eq!(keys, vec!["2".to_string(), "3".to_string()]);
    assert_eq!(
        text.rows[1].fields,
        vec!["qty".to_string(), "at".to_string()]
    );
    assert_eq!(text.rows[1].difference[2].as_deref(), Some("-5.000"));
    assert_eq!(text.matched, 3);
    // A naive instant is read in its side's zone: 11:00 at +01:00 is 10:00Z.
    let naive_at = |t: &str, tz: Option<TimeZone>| {
        let v = Int64Chunked::from_slice("at".into(), &[ms(t)]);
        polars::df!("id" => ["1"])
            .unwrap()
            .hstack(&[v
                .into_datetime(TimeUnit::Milliseconds, tz)
                .into_series()
                .into_column()])
            .unwrap()
    };
    let mut s = spec(vec![field("at")]);
    s.left_spelling = Spelling::plain(Zone::fixed(3600));
    let cmp = compare(
        naive_at("2026-10-13 11:00:00", None).lazy(),
        naive_at("2026-10-13 10:00:00", Some(TimeZone::UTC)).lazy(),
        &s,
    )
    .unwrap();
    assert_eq!((cmp.matched, cmp.rows.len()), (1, 0), "{:?}", cmp.rows);
}

/// Keys in order on both sides are paired in step, the rest by hashing
/// (`in_key_order`): the answer must be the one the hash grouping alone
/// gives. The same sides are checked by `id` (paired in step) and by
/// `id` with a constant second key part (a composite key, all hashed), on
/// keys mostly in order with duplicates next to each other and far apart,
/// null keys, keys out of place on one side that are in order on the
/// other, and keys on one side only, in and out of order.
#[test]
fn keys_in_order_pair_as_the_hash_grouping_does() {
    let key = |i: usize| format!("{:06}", i * 2);
    let (mut left_id, mut left_amount): (Vec<Option<String>>, Vec<String>) = (vec![], vec![]);
    let (mut right_id, mut right_amount): (Vec<Option<String>>, Vec<String>) = (vec![], vec![]);
    for i in 0..3000 {
        let mut left = vec![Some(key(i))];
        match i {
            100 => left.push(Some(key(i))),
            300 => left.push(None),
            500 => left.push(Some("999999".into())),
            600 => left.push(Some("000001".into())),
            900 => left.push(Some(key(200))),
            _ => {}
        }
        for id in left {
            left_id.push(id);
            left_amount.push(format!("{i}.00"));
        }
        if i % 97 == 0 || i == 1000 {
            continue;
        }
        let mut right = vec![Some(key(i))];
        match i {
            10 => right.push(Some("000021".into())),
            700 => right.push(Some(key(i))),
            800 => right.push(None),
            1500 => right.push(Some(key(1700))),
            _ => {}
        }
        for id in right {
            right_id.push(id);
            let cents = if i % 50 == 0 { 1 } else { 0 };
            right_amount.push(format!("{i}.0{cents}"));
        }
    }
    right_id.push(Some(key(1000)));
    right_amount.push("1000.00".into());
    // Left rows in order after the right side's last.
    for i in 3000..3003 {
        left_id.push(Some(key(i)));
        left_amount.push(format!("{i}.00"));
    }
    let z = |n: usize| vec!["z"; n];
    let left = polars::df!(
        "id" => left_id.clone(),
        "amount" => left_amount,
        "z" => z(left_id.len()),
    )
    .unwrap();
    let right = polars::df!(
        "id" => right_id.clone(),
        "amount" => right_amount,
        "z" => z(right_id.len()),
    )
    .unwrap();
    let mut amount = field("amount");
    amount.absolute = Some("0".into());
    let by_id = spec(vec![amount]);
    let mut composite = by_id.clone();
    composite.left_key = vec!["id".into(), "z".into()];
    composite.right_key = vec!["id".into(), "z".into()];

    // The step-wise pairing is used, and leaves some rows to hashing.
    let keys =
        |ids: &[Option<String>]| StringChunked::from_iter_options("k".into(), ids.iter().cloned());
    let (_, rest_l, rest_r) =
        in_key_order(&keys(&left_id), &keys(&right_id)).expect("keys mostly in order");
    assert!(!rest_l.is_empty() && !rest_r.is_empty());
    assert!(
        rest_l.len() + rest_r.len() < 40,
        "{} {}",
        rest_l.len(),
        rest_r.len()
    );

    let one = compare(left.clone().lazy(), right.clone().lazy(), &by_id).unwrap();
    let two = compare(left.lazy(), right.lazy(), &composite).unwrap();
    assert_eq!(one.matched, two.matched);
    assert!(one.matched > 2500, "{}", one.matched);
    for c in [
        Category::MissingInCrm,
        Category::MissingInS360,
        Category::Mismatched,
        Category::DuplicateKey,
        Category::NullKey,
    ] {
        assert!(one.count(c) > 0, "{c:?}");
    }
    let rows = |cmp: &Comparison| -> Vec<_> {
        let mut rows: Vec<_> = cmp
            .rows
            .iter()
            .map(|r| {
                (
                    r.category,
                    r.key[0].clone(),
                    r.side,
                    r.count,
                    r.fields.clone(),
                    r.left.clone(),
                    r.right.clone(),
                    r.difference.clone(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(rows(&one), rows(&two));
    assert_eq!(format!("{:?}", one.columns), format!("{:?}", two.columns));
    assert_eq!(format!("{:?}", one.totals), format!("{:?}", two.totals));
    assert_eq!(
        format!("{:?}", one.left_rows),
        format!("{:?}", two.left_rows)
    );
    assert_eq!(
        format!("{:?}", one.right_rows),
        format!("{:?}", two.right_rows)
    );
}
