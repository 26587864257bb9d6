//! Other spellings of the same order, made one by the transform steps: minor units by currency (ISO 4217 or a digits column), Unicode normalisation, case folding and leading zeros; through the real binary, in reconcile and sync.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::cli::{Cmd, run, status};
use crate::support::exports::Table;
use crate::support::pipeline::{
    Csv, RowDigits, Sink, Source, Step, SyncPipeline, TextOptions, names, pairs,
};
use crate::support::receiver::Receiver;
use crate::support::reconcile::{Field, ReconcilePipeline, Side};
use crate::support::{stderr, text};

/// The S-360 orders of these checks in minor units of their currency,
/// with the currency's `fractionDigit` beside it: CHF, JPY and KWD, a code
/// in lower case, and order 4, whose amount really differs from the CRM's.
const S360_MINOR: &[(&str, &str, &str, &str)] = &[
    ("1", "40000", "CHF", "2"),
    ("2", "1500", "JPY", "0"),
    ("3", "12345", "KWD", "3"),
    ("4", "250", "CHF", "2"),
    ("5", "999", "jpy", "0"),
    ("6", "100050", "EUR", "2"),
];

/// The same orders as a CRM holds them, in major units: 4 says 2.60, not 2.50.
const CRM_MAJOR: &[(&str, &str, &str)] = &[
    ("1", "400.00", "CHF"),
    ("2", "1500", "JPY"),
    ("3", "12.345", "KWD"),
    ("4", "2.60", "CHF"),
    ("5", "999", "JPY"),
    ("6", "1000.50", "EUR"),
];

/// Writes a `;`-separated table to `dir/<name>`; its absolute path.
fn table(dir: &Path, name: &str, columns: &[&str], rows: &[Vec<&str>]) -> String {
    let mut t = Table::new(columns);
    for r in rows {
        let cells: Vec<&dyn std::fmt::Display> =
            r.iter().map(|c| c as &dyn std::fmt::Display).collect();
        t.push(&cells);
    }
    let p = dir.join(name);
    crate::support::write(&p, t.text());
    p.display().to_string()
}

fn s360_minor(dir: &Path, rows: &[(&str, &str, &str, &str)]) -> String {
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|(a, b, c, d)| vec![*a, *b, *c, *d])
        .collect();
    table(
        dir,
        "s360.csv",
        &["orderId", "saleAmount", "currencyCode", "fractionDigit"],
        &rows,
    )
}

fn crm_major(dir: &Path) -> String {
    let rows: Vec<Vec<&str>> = CRM_MAJOR.iter().map(|(a, b, c)| vec![*a, *b, *c]).collect();
    table(dir, "crm.csv", &["orderId", "amount", "currency"], &rows)
}

fn side(location: &str, transforms: Vec<Step>) -> Side {
    Side {
        source: Source::at(location).csv(Csv::semicolon()).key("orderId"),
        transforms,
    }
}

/// A check of `left` against `right` comparing `compare` exactly.
fn check(name: &str, left: Side, right: Side, compare: &[&str]) -> ReconcilePipeline {
    let mut p = ReconcilePipeline::edge();
    p.name = name.into();
    p.left = left;
    p.right = right;
    p.compare = compare.iter().map(|f| Field::exact(f)).collect();
    p.fail_if = Vec::new();
    p
}

/// `reconcile` of `p` (written into `dir`) into `dir/<out>`.
fn reconcile(dir: &Path, p: &ReconcilePipeline, out: &str, extra: &[&str]) -> (Output, PathBuf) {
    let file = p.write_as(dir, &format!("{out}.yaml"));
    let out = dir.join(out);
    let o = Cmd::new(dir)
        .arg("reconcile")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .run();
    (o, out)
}

/// `discrepancies.csv` as (category, key) pairs.
fn findings(out: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(out.join("discrepancies.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cat = header.iter().position(|h| *h == "category").unwrap();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[cat].to_string(), cells[..cat].join("|"))
        })
        .collect()
}

fn found(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(c, k)| (c.to_string(), k.to_string()))
        .collect()
}

/// The amount by its currency's minor units, named as the CRM names it.
fn by_currency(amount: &str, currency: &str) -> Vec<Step> {
    vec![
        Step::ScaleBy(names(&[amount]), RowDigits::currency(currency)),
        Step::Rename(pairs(&[(amount, "amount"), (currency, "currency")])),
    ]
}

fn matched(out: &Path) -> serde_json::Value {
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    s["counts"]["matched"].clone()
}

#[test]
fn s360_minor_units_by_currency_meet_crm_major_units_and_only_a_real_difference_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let left = s360_minor(dir, S360_MINOR);
    let right = crm_major(dir);
    let p = check(
        "minor-by-currency",
        side(&left, by_currency("saleAmount", "currencyCode")),
        side(&right, Vec::new()),
        &["amount"],
    );
    let (o, out) = reconcile(dir, &p, "by-currency", &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(findings(&out), found(&[("mismatched", "4")]));
    assert_eq!(matched(&out), 5);
    // The same from the digits column.
    let mut by_column = p.clone();
    by_column.left.transforms[0] =
        Step::ScaleBy(names(&["saleAmount"]), RowDigits::column("fractionDigit"));
    let (o, out) = reconcile(dir, &by_column, "by-column", &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(findings(&out), found(&[("mismatched", "4")]));
    // One constant for every currency reports JPY and KWD, which are not
    // differences.
    let mut fixed = p;
    fixed.left.transforms[0] = Step::Scale(names(&["saleAmount"]), 2);
    let (o, out) = reconcile(dir, &fixed, "fixed", &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(
        findings(&out),
        found(&[
            ("mismatched", "2"),
            ("mismatched", "3"),
            ("mismatched", "4"),
            ("mismatched", "5"),
        ])
    );
}

#[test]
fn crm_minor_units_by_currency_meet_s360_major_units() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The mirror: the CRM export holds minor units, S-360 major ones.
    let crm: Vec<Vec<&str>> = S360_MINOR
        .iter()
        .map(|(id, minor, code, _)| vec![*id, *minor, *code])
        .collect();
    let right = table(
        dir,
        "crm_minor.csv",
        &["orderId", "Total__c", "Currency__c"],
        &crm,
    );
    let s360: Vec<Vec<&str>> = CRM_MAJOR.iter().map(|(a, b, c)| vec![*a, *b, *c]).collect();
    let left = table(
        dir,
        "s360_major.csv",
        &["orderId", "amount", "currency"],
        &s360,
    );
    let p = check(
        "minor-on-the-crm-side",
        side(&left, Vec::new()),
        side(&right, by_currency("Total__c", "Currency__c")),
        &["amount"],
    );
    let (o, out) = reconcile(dir, &p, "mirror", &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(findings(&out), found(&[("mismatched", "4")]));
    assert_eq!(matched(&out), 5);
}

#[test]
fn a_partitioned_check_with_digits_by_currency_gives_the_answer_of_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let left = s360_minor(dir, S360_MINOR);
    // CRM order lines in minor units, aggregated to orders, then scaled by
    // each order's currency: the aggregate and the steps after it run once
    // per partition.
    let lines = [
        ["1", "a", "30000", "CHF"],
        ["1", "b", "10000", "CHF"],
        ["2", "a", "1000", "JPY"],
        ["2", "b", "500", "JPY"],
        ["3", "a", "12345", "KWD"],
        ["4", "a", "260", "CHF"],
        ["5", "a", "999", "JPY"],
        ["6", "a", "100050", "EUR"],
    ];
    let lines: Vec<Vec<&str>> = lines.iter().map(|l| l.to_vec()).collect();
    let right = table(
        dir,
        "crm_lines.csv",
        &["orderId", "lineId", "lineAmount", "currency"],
        &lines,
    );
    let p = check(
        "partitioned-by-currency",
        side(
            &left,
            vec![
                Step::ScaleBy(
                    names(&["saleAmount"]),
                    RowDigits::column("fractionDigit").max(3),
                ),
                Step::Rename(pairs(&[("saleAmount", "amount")])),
            ],
        ),
        side(
            &right,
            vec![
                Step::Aggregate(
                    names(&["orderId"]),
                    pairs(&[
                        ("amount", "sum(lineAmount)"),
                        ("currency", "first(currency)"),
                    ]),
                ),
                Step::ScaleBy(names(&["amount"]), RowDigits::currency("currency").max(3)),
            ],
        ),
        &["amount"],
    );
    let (o, whole) = reconcile(dir, &p, "whole", &["--partitions", "1"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(findings(&whole), found(&[("mismatched", "4")]));
    let (o, parts) = reconcile(dir, &p, "parts", &["--partitions", "3"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        stderr(&o).contains("comparing partition 3/3"),
        "{}",
        stderr(&o)
    );
    for n in ["discrepancies.csv", "field_mismatches.csv", "summary.json"] {
        assert_eq!(
            std::fs::read(whole.join(n)).unwrap(),
            std::fs::read(parts.join(n)).unwrap(),
            "{n}"
        );
    }
}

#[test]
fn an_unknown_currency_stops_the_check_naming_code_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rows = S360_MINOR.to_vec();
    rows[2] = ("3", "12345", "XYZ", "3");
    let left = s360_minor(dir, &rows);
    let right = crm_major(dir);
    let p = check(
        "unknown-currency",
        side(&left, by_currency("saleAmount", "currencyCode")),
        side(&right, Vec::new()),
        &["amount"],
    );
    for parts in ["1", "3"] {
        let (o, out) = reconcile(
            dir,
            &p,
            &format!("unknown-{parts}"),
            &["--partitions", parts],
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let e = stderr(&o);
        assert!(
            e.contains(r#"transforms[0] (scale): column saleAmount: unknown currency "XYZ" in column currencyCode; add it to digits.table"#),
            "{e}"
        );
        assert!(!out.exists(), "no report");
    }
}

/// The findings of a check of one order whose `city` is `left` on the
/// left and `right` on the right, both sides with `steps`.
fn cities(
    dir: &Path,
    name: &str,
    left: &str,
    right: &str,
    steps: Vec<Step>,
) -> BTreeSet<(String, String)> {
    let l = table(
        dir,
        &format!("{name}-l.csv"),
        &["orderId", "city"],
        &[vec!["1", left]],
    );
    let r = table(
        dir,
        &format!("{name}-r.csv"),
        &["orderId", "city"],
        &[vec!["1", right]],
    );
    let p = check(name, side(&l, steps.clone()), side(&r, steps), &["city"]);
    let (o, out) = reconcile(dir, &p, name, &[]);
    assert!(matches!(o.status.code(), Some(0 | 5)), "{}", text(&o));
    findings(&out)
}

fn text_step(columns: &[&str], options: TextOptions) -> Vec<Step> {
    vec![Step::Text(names(columns), options)]
}

#[test]
fn zurich_typed_two_ways_is_one_city_after_nfc_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (nfd, nfc) = ("Zu\u{308}rich", "Z\u{fc}rich");
    assert_eq!(
        cities(tmp.path(), "plain", nfd, nfc, Vec::new()),
        found(&[("mismatched", "1")])
    );
    let nfc_step = TextOptions {
        normalize: Some("nfc".into()),
        ..TextOptions::default()
    };
    assert_eq!(
        cities(tmp.path(), "nfc", nfd, nfc, text_step(&["city"], nfc_step)),
        found(&[])
    );
}

#[test]
fn strasse_and_strasse_with_sharp_s_are_one_street_after_case_fold() {
    let tmp = tempfile::tempdir().unwrap();
    let (upper, sharp) = ("STRASSE", "Stra\u{df}e");
    let case = |c: &str| TextOptions {
        case: Some(c.into()),
        ..TextOptions::default()
    };
    // Lower case is not enough: `ß` has no single-letter capital.
    assert_eq!(
        cities(
            tmp.path(),
            "lower",
            upper,
            sharp,
            text_step(&["city"], case("lower"))
        ),
        found(&[("mismatched", "1")])
    );
    assert_eq!(
        cities(
            tmp.path(),
            "fold",
            upper,
            sharp,
            text_step(&["city"], case("fold"))
        ),
        found(&[])
    );
}

#[test]
fn ids_with_leading_zeros_are_other_keys_unless_stripped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let l = table(
        dir,
        "ids-l.csv",
        &["orderId", "city"],
        &[vec!["000123", "Bern"], vec!["0", "Thun"]],
    );
    let r = table(
        dir,
        "ids-r.csv",
        &["orderId", "city"],
        &[vec!["123", "Bern"], vec!["000", "Thun"]],
    );
    let p = check("ids", side(&l, Vec::new()), side(&r, Vec::new()), &["city"]);
    let (o, out) = reconcile(dir, &p, "ids-kept", &[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(
        findings(&out),
        found(&[
            ("missing_in_crm", "000123"),
            ("missing_in_crm", "0"),
            ("missing_in_s360", "123"),
            ("missing_in_s360", "000"),
        ])
    );
    let strip = TextOptions {
        strip_leading_zeros: true,
        ..TextOptions::default()
    };
    let mut stripped = p;
    stripped.left.transforms = text_step(&["orderId"], strip.clone());
    stripped.right.transforms = text_step(&["orderId"], strip);
    let (o, out) = reconcile(dir, &stripped, "ids-stripped", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(findings(&out), found(&[]));
    assert_eq!(matched(&out), 2);
}

/// The raw JSON number after `"saleAmount":` of each record in `body`, in order.
fn amounts_in(body: &str) -> Vec<String> {
    body.split("\"saleAmount\":")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_payloads_carry_amounts_scaled_by_their_currency() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    SyncPipeline::new(
        "by-currency",
        Source::orders().columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")]),
        Sink::to(&rec.url()),
    )
    .step(Step::ScaleBy(
        names(&["saleAmount"]),
        RowDigits::currency("currencyCode").max(3),
    ))
    .write(dir.path());
    Table::new(&[
        "orderId",
        "orderState",
        "saleAmount",
        "currencyCode",
        "lastModDateTime",
    ])
    .row(&[&1, &"CLOSED", &1500, &"JPY", &"2026-10-13 12:00:00"])
    .row(&[&2, &"CLOSED", &40000, &"CHF", &"2026-10-13 12:01:00"])
    .row(&[&3, &"CLOSED", &12345, &"KWD", &"2026-10-13 12:02:00"])
    .write(dir.path(), "orders_1.csv");
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = rec.log();
    assert_eq!(log.len(), 1, "{log:?}");
    let body = String::from_utf8_lossy(&log[0].body).into_owned();
    // One scale for the column (max_digits 3): JPY 1500, CHF 400.00 and
    // KWD 12.345, every digit exact.
    assert_eq!(
        amounts_in(&body),
        ["1500.000", "400.000", "12.345"],
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_order_in_an_unknown_currency_stops_the_run_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    SyncPipeline::new(
        "unknown-currency",
        Source::orders().columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")]),
        Sink::to(&rec.url()),
    )
    .step(Step::ScaleBy(
        names(&["saleAmount"]),
        RowDigits::currency("currencyCode"),
    ))
    .write(dir.path());
    Table::new(&[
        "orderId",
        "orderState",
        "saleAmount",
        "currencyCode",
        "lastModDateTime",
    ])
    .row(&[&1, &"CLOSED", &1500, &"JPY", &"2026-10-13 12:00:00"])
    .row(&[&2, &"CLOSED", &40000, &"ABC", &"2026-10-13 12:01:00"])
    .write(dir.path(), "orders_1.csv");
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains(r#"transforms[0] (scale): column saleAmount: unknown currency "ABC" in column currencyCode; add it to digits.table"#),
        "{}",
        text(&o)
    );
    assert!(rec.log().is_empty());
    // Nothing was queued: the state has no cursor and no pending order.
    let s = status(dir.path(), "sync.yaml").await;
    assert!(s["cursor"].is_null(), "{s}");
    assert_eq!(s["backlog"], 0, "{s}");
}
