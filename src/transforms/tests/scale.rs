//! The `scale` step with each row's own digits: from a digits column or a currency's ISO 4217 minor units, exact, and every way a row can fail.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::super::{CurrencyTable, NoDigits, apply};
use crate::pipeline::{Digits, Transform};

fn currency(code_column: &str, table: &[(&str, i64)], max_digits: Option<i64>) -> Digits {
    Digits::Currency {
        currency: code_column.into(),
        table: table.iter().map(|(c, d)| (c.to_string(), *d)).collect(),
        max_digits,
    }
}

fn scale(columns: &[&str], digits: Digits) -> Transform {
    Transform::Scale {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        digits,
    }
}

fn run(df: DataFrame, steps: &[Transform]) -> PolarsResult<DataFrame> {
    apply(df.lazy(), steps).unwrap().collect()
}

/// The column's values as text at its scale (`400.00`), `None` for null.
fn texts(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    let c = df.column(name).unwrap();
    (0..c.len())
        .map(|i| match c.get(i).unwrap() {
            AnyValue::Null => None,
            AnyValue::Decimal(v, _, s) => {
                Some(crate::reconcile::values::format_decimal(v, s as u32))
            }
            other => Some(other.to_string()),
        })
        .collect()
}

fn error(df: DataFrame, steps: &[Transform]) -> String {
    match run(df, steps) {
        Ok(out) => panic!("expected an error, got {out}"),
        Err(e) => e.to_string(),
    }
}

fn amounts_in(codes: &[Option<&str>], amounts: &[Option<i64>]) -> DataFrame {
    polars::df!(
        "saleAmount" => amounts,
        "currencyCode" => codes,
    )
    .unwrap()
}

#[test]
fn currency_minor_units_give_chf_jpy_and_kwd_exactly() {
    let df = amounts_in(
        &[Some("CHF"), Some("jpy"), Some(" KWD "), None, Some("EUR")],
        &[Some(40000), Some(1500), Some(12345), None, Some(-150)],
    );
    let out = run(
        df.clone(),
        &[scale(
            &["saleAmount"],
            currency("currencyCode", &[], Some(3)),
        )],
    )
    .unwrap();
    assert_eq!(
        out.column("saleAmount").unwrap().dtype(),
        &DataType::Decimal(38, 3)
    );
    assert_eq!(
        texts(&out, "saleAmount"),
        vec![
            Some("400.000".into()),
            Some("1500.000".into()),
            Some("12.345".into()),
            None,
            Some("-1.500".into()),
        ]
    );
    // The default scale is the most digits a code can have (4: CLF, UYW).
    let out = run(
        df,
        &[scale(&["saleAmount"], currency("currencyCode", &[], None))],
    )
    .unwrap();
    assert_eq!(
        out.column("saleAmount").unwrap().dtype(),
        &DataType::Decimal(38, 4)
    );
    assert_eq!(texts(&out, "saleAmount")[2], Some("12.3450".into()));
}

#[test]
fn a_digits_column_gives_each_row_its_digits() {
    let df = polars::df!(
        "amount" => [Some(40000i64), Some(1500), Some(12345), None],
        "unitPrice" => [Some(100i64), Some(7), Some(5), None],
        "fractionDigit" => [Some(2i32), Some(0), Some(3), None],
    )
    .unwrap();
    let step = scale(
        &["amount", "unitPrice"],
        Digits::Column {
            column: "fractionDigit".into(),
            max_digits: None,
        },
    );
    let out = run(df.clone(), &[step]).unwrap();
    assert_eq!(
        out.column("amount").unwrap().dtype(),
        &DataType::Decimal(38, 4)
    );
    assert_eq!(
        texts(&out, "amount"),
        vec![
            Some("400.0000".into()),
            Some("1500.0000".into()),
            Some("12.3450".into()),
            None,
        ]
    );
    assert_eq!(
        texts(&out, "unitPrice"),
        vec![
            Some("1.0000".into()),
            Some("7.0000".into()),
            Some("0.0050".into()),
            None,
        ]
    );
    // A null amount needs no digits; a non-null one does.
    let df = polars::df!(
        "unitPrice" => [Some(100i64), Some(1)],
        "fractionDigit" => [Some(2i32), None],
    )
    .unwrap();
    let e = error(
        df,
        &[scale(
            &["unitPrice"],
            Digits::Column {
                column: "fractionDigit".into(),
                max_digits: Some(3),
            },
        )],
    );
    assert!(e.contains("transforms[0] (scale): column unitPrice: null digits in column fractionDigit for the amount 1"), "{e}");
}

#[test]
fn the_table_adds_and_overrides_codes() {
    let df = amounts_in(
        &[Some("XTS"), Some("JPY"), Some("chf")],
        &[Some(1234), Some(1500), Some(40000)],
    );
    let step = scale(
        &["saleAmount"],
        currency("currencyCode", &[("xts", 1), ("JPY", 2)], Some(2)),
    );
    let out = run(df, &[step]).unwrap();
    assert_eq!(
        texts(&out, "saleAmount"),
        vec![
            Some("123.40".into()),
            Some("15.00".into()),
            Some("400.00".into())
        ]
    );
}

#[test]
fn decimal_and_text_amounts_keep_every_digit() {
    let df = polars::df!(
        "a" => ["40000", "1500.5", "12345"],
        "c" => ["CHF", "JPY", "KWD"],
    )
    .unwrap();
    let out = run(df, &[scale(&["a"], currency("c", &[], Some(3)))]).unwrap();
    assert_eq!(
        texts(&out, "a"),
        vec![
            Some("400.000".into()),
            Some("1500.500".into()),
            Some("12.345".into())
        ]
    );
}

#[test]
fn an_unknown_currency_stops_the_step_naming_column_and_code() {
    let df = amounts_in(&[Some("CHF"), Some("XYZ")], &[Some(1), Some(2)]);
    let e = error(
        df,
        &[scale(&["saleAmount"], currency("currencyCode", &[], None))],
    );
    assert!(
        e.contains(r#"transforms[0] (scale): column saleAmount: unknown currency "XYZ" in column currencyCode; add it to digits.table"#),
        "{e}"
    );
}

#[test]
fn a_null_currency_stops_the_step_unless_the_amount_is_null() {
    let df = amounts_in(&[Some("CHF"), None], &[Some(1), None]);
    let step = scale(&["saleAmount"], currency("currencyCode", &[], None));
    let out = run(df, std::slice::from_ref(&step)).unwrap();
    assert_eq!(texts(&out, "saleAmount"), vec![Some("0.0100".into()), None]);
    let df = amounts_in(&[Some("CHF"), None], &[Some(1), Some(250)]);
    let e = error(df, &[step]);
    assert!(
        e.contains("transforms[0] (scale): column saleAmount: null currency in column currencyCode for the amount 250"),
        "{e}"
    );
}

#[test]
fn a_currency_without_minor_units_stops_the_step() {
    let df = amounts_in(&[Some("XAU")], &[Some(1)]);
    let e = error(
        df.clone(),
        &[scale(&["saleAmount"], currency("currencyCode", &[], None))],
    );
    assert!(
        e.contains(r#"currency "XAU" in column currencyCode has no minor units in ISO 4217"#),
        "{e}"
    );
    let out = run(
        df,
        &[scale(
            &["saleAmount"],
            currency("currencyCode", &[("XAU", 0)], None),
        )],
    )
    .unwrap();
    assert_eq!(texts(&out, "saleAmount"), vec![Some("1.0000".into())]);
}

#[test]
fn digits_past_max_digits_stop_the_step_instead_of_rounding() {
    let df = amounts_in(&[Some("KWD")], &[Some(12345)]);
    let e = error(
        df,
        &[scale(
            &["saleAmount"],
            currency("currencyCode", &[], Some(2)),
        )],
    );
    assert!(
        e.contains(r#"transforms[0] (scale): column saleAmount: currency "KWD" in column currencyCode has 3 digits, more than max_digits 2"#),
        "{e}"
    );
    let df = polars::df!("a" => [1i64], "d" => [5i64]).unwrap();
    let e = error(
        df,
        &[scale(
            &["a"],
            Digits::Column {
                column: "d".into(),
                max_digits: None,
            },
        )],
    );
    assert!(
        e.contains("transforms[0] (scale): column a: digits 5 in column d exceed max_digits 4"),
        "{e}"
    );
}

#[test]
fn negative_digits_stop_the_step() {
    let df = polars::df!("a" => [1i64, 2], "d" => [2i64, -1]).unwrap();
    let e = error(
        df,
        &[scale(
            &["a"],
            Digits::Column {
                column: "d".into(),
                max_digits: None,
            },
        )],
    );
    assert!(
        e.contains("transforms[0] (scale): column a: negative digits -1 in column d"),
        "{e}"
    );
}

#[test]
fn a_fraction_that_does_not_fit_max_digits_stops_the_step() {
    // 123.45 minor units of CHF are 1.2345 francs: four digits, not three.
    let df = polars::df!("a" => ["123.45"], "c" => ["CHF"]).unwrap();
    let e = error(df, &[scale(&["a"], currency("c", &[], Some(3)))]);
    assert!(
        e.contains(
            "transforms[0] (scale): column a: 123.45 with 2 digits needs more than max_digits 3"
        ),
        "{e}"
    );
}

#[test]
fn a_digits_column_of_text_is_refused() {
    let df = polars::df!("a" => [1i64], "d" => ["2"]).unwrap();
    let e = error(
        df,
        &[scale(
            &["a"],
            Digits::Column {
                column: "d".into(),
                max_digits: None,
            },
        )],
    );
    assert!(e.contains("digits column d must hold integers"), "{e}");
}

#[test]
fn max_digits_out_of_range_stops_a_step_built_without_validation() {
    let df = amounts_in(&[Some("CHF")], &[Some(1)]);
    let e = error(
        df,
        &[scale(
            &["saleAmount"],
            currency("currencyCode", &[], Some(19)),
        )],
    );
    assert!(
        e.contains(
            "transforms[0] (scale): column saleAmount: max_digits 19 is out of range 0..=18"
        ),
        "{e}"
    );
}

#[test]
fn the_step_index_in_messages_is_the_steps_own() {
    let df = amounts_in(&[Some("XYZ")], &[Some(1)]);
    let steps = [
        Transform::Filter {
            expr: "saleAmount > 0".into(),
        },
        scale(&["saleAmount"], currency("currencyCode", &[], None)),
    ];
    let e = error(df, &steps);
    assert!(e.contains("transforms[1] (scale)"), "{e}");
}

#[test]
fn codes_match_trimmed_and_in_any_case_and_iso_4217_tops_out_at_4_digits() {
    let t = CurrencyTable::new(&BTreeMap::new());
    assert_eq!(t.digits(" chf "), Ok(2));
    assert_eq!(t.digits("Jpy"), Ok(0));
    assert_eq!(t.digits("KWD"), Ok(3));
    assert_eq!(t.digits("CLF"), Ok(4));
    assert_eq!(t.digits("XYZ"), Err(NoDigits::Unknown));
    assert_eq!(t.digits(""), Err(NoDigits::Unknown));
    assert_eq!(t.most_digits(), 4);
    // Overrides lower the most digits too.
    let t = CurrencyTable::new(&BTreeMap::from([("CLF".into(), 2), ("uyw".into(), 2)]));
    assert_eq!(t.most_digits(), 3);
    let t = CurrencyTable::new(&BTreeMap::from([("XTS".into(), 6)]));
    assert_eq!(t.most_digits(), 6);
}

#[test]
fn the_currency_column_is_an_input_of_the_plan() {
    // What a partitioned check keeps of the rows before the step: the
    // amount and its currency, not the unused column.
    let schema = Schema::from_iter([
        Field::new("saleAmount".into(), DataType::Int64),
        Field::new("currencyCode".into(), DataType::String),
        Field::new("unused".into(), DataType::String),
    ]);
    for digits in [
        currency("currencyCode", &[], None),
        Digits::Column {
            column: "currencyCode".into(),
            max_digits: None,
        },
    ] {
        let step = scale(&["saleAmount"], digits);
        let build = move |lf: LazyFrame| -> PolarsResult<LazyFrame> {
            Ok(apply(lf, std::slice::from_ref(&step))
                .unwrap()
                .select([col("saleAmount")]))
        };
        let mut cols = crate::engine::projection::needed_columns(&schema, &build).unwrap();
        cols.sort();
        assert_eq!(
            cols,
            vec![
                PlSmallStr::from("currencyCode"),
                PlSmallStr::from("saleAmount")
            ]
        );
    }
}

/// Pipeline text with one `scale` step of these `digits`.
fn pipeline(digits: &str) -> String {
    format!(
        "version: 1\nkind: reconcile\nname: check\nleft:\n  source:\n    location: s360.csv\n    key: orderId\n  transforms:\n    - type: scale\n      columns: [saleAmount]\n      digits: {digits}\nright:\n  source:\n    location: crm.csv\n    key: orderId\ncompare:\n  - field: saleAmount\n"
    )
}

fn parsed(digits: &str) -> Result<Digits, Vec<String>> {
    let text = pipeline(digits);
    match crate::pipeline::parse(&text, std::path::Path::new("p.yaml"), &|_| None) {
        Ok(crate::pipeline::PipelineSpec::Reconcile(r)) => match &r.left.transforms[0] {
            Transform::Scale { digits, .. } => Ok(digits.clone()),
            other => panic!("{other:?}"),
        },
        Ok(other) => panic!("{other:?}"),
        Err(ps) => Err(ps.iter().map(|p| p.to_string()).collect()),
    }
}

#[test]
fn digits_are_read_as_a_number_a_column_or_a_currency() {
    assert_eq!(parsed("2"), Ok(Digits::Fixed(2)));
    assert_eq!(
        parsed("{ column: fractionDigit, max_digits: 3 }"),
        Ok(Digits::Column {
            column: "fractionDigit".into(),
            max_digits: Some(3)
        })
    );
    assert_eq!(
        parsed("{ currency: currencyCode, table: { XTS: 1 } }"),
        Ok(currency("currencyCode", &[("XTS", 1)], None))
    );
}

#[test]
fn digits_that_are_not_one_of_the_forms_are_refused_with_their_field() {
    for (digits, expected) in [
        ("{ currency: c, tabel: {} }", "unknown field `tabel`"),
        ("{ column: a, currency: b }", "not both"),
        (
            "{ column: a, table: { CHF: 2 } }",
            "`table` goes with `currency`",
        ),
        ("{ max_digits: 2 }", "{ column: NAME }"),
        ("2.5", "a number of digits such as 2"),
        ("300", "300 is out of range -18..=18"),
    ] {
        let ps = parsed(digits).unwrap_err();
        assert_eq!(ps.len(), 1, "{digits}: {ps:#?}");
        assert!(ps[0].contains("left.transforms[0]"), "{digits}: {}", ps[0]);
        assert!(ps[0].contains(expected), "{digits}: {}", ps[0]);
    }
}

#[test]
fn validation_checks_max_digits_table_digits_and_codes() {
    let ps = parsed("{ currency: c, max_digits: 19, table: { CHFX: 2, XTS: 19, XBT: -1 } }")
        .unwrap_err();
    assert_eq!(ps.len(), 4, "{ps:#?}");
    assert!(
        ps[0].contains("left.transforms[0].digits.max_digits: 19 is out of range 0..=18"),
        "{}",
        ps[0]
    );
    assert!(
        ps[1].contains(r#"left.transforms[0].digits.table.CHFX: "CHFX" is not a currency code"#),
        "{}",
        ps[1]
    );
    assert!(
        ps[2].contains("left.transforms[0].digits.table.XBT: -1 is out of range 0..=18"),
        "{}",
        ps[2]
    );
    assert!(
        ps[3].contains("left.transforms[0].digits.table.XTS: 19 is out of range 0..=18"),
        "{}",
        ps[3]
    );
    let ps = parsed("{ column: d, max_digits: -1 }").unwrap_err();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(
        ps[0].contains("digits.max_digits: -1 is out of range 0..=18"),
        "{}",
        ps[0]
    );
    let ps = parsed("{ column: \" \" }").unwrap_err();
    assert!(
        ps[0].contains("digits.column: must name a column"),
        "{}",
        ps[0]
    );
    let ps = parsed("0").unwrap_err();
    assert!(
        ps[0].contains("digits: 0 must be within -18..=18 and not 0"),
        "{}",
        ps[0]
    );
}
