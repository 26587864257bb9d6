//! The spellings case (`pipelines/reconcile-spellings.yaml`): only the real differences are reported, in either direction, and each spelling setting is what keeps its orders matched (taking one away reports or refuses exactly its orders).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{categories, code, committed, reconcile, stderr, summary};
use crate::support::root;

/// `(category, key)` pairs from string slices.
fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// `(key, field)` of every row of `field_mismatches.csv`.
fn field_mismatches(out: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(out.join("field_mismatches.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let field = header.iter().position(|h| *h == "field").unwrap();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[field].to_string())
        })
        .collect()
}

/// The committed pipeline's text with `edit` applied, written into `dir`
/// with its data paths made absolute.
fn variant(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(committed("reconcile-spellings.yaml")).unwrap();
    let data = root().join("testdata");
    let text = text.replace("../testdata", &data.display().to_string());
    let edited = edit(&text);
    let p = dir.join("variant.yaml");
    std::fs::write(&p, edited).unwrap();
    p
}

/// `text` with `from` replaced, which must be there (a test that edits
/// nothing proves nothing).
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in the pipeline");
    text.replacen(from, to, 1)
}

const WANT: [(&str, &str); 5] = [
    ("mismatched", "1005"),
    ("mismatched", "1006"),
    ("mismatched", "1008"),
    ("missing_in_crm", "1009"),
    ("missing_in_s360", "1010"),
];

#[test]
fn spellings_case_reports_only_the_real_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&committed("reconcile-spellings.yaml"), &out, &[]);
    assert_eq!(code(&o), 0, "within fail_if: {}", stderr(&o));
    assert_eq!(categories(&out), set(&WANT));
    assert_eq!(
        field_mismatches(&out),
        set(&[
            ("1005", "created"),
            ("1006", "amount"),
            ("1006", "city"),
            ("1008", "contact"),
        ])
    );
    let s = summary(&out);
    assert_eq!(s["counts"]["matched"], 5, "{s}");
    let long = std::fs::read_to_string(out.join("field_mismatches.csv")).unwrap();
    // The real differences, as the analyst reads them.
    assert!(
        long.contains("1006,amount,2500.000,2499.000,1.000"),
        "{long}"
    );
    assert!(long.contains("1008,contact,000049,49"), "{long}");
}

#[test]
fn spellings_case_in_three_partitions_gives_the_same_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(
        &committed("reconcile-spellings.yaml"),
        &out,
        &["--partitions", "3"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(categories(&out), set(&WANT));
}

/// The same files with the CRM on the left and S-360 on the right: every
/// spelling is read the same on either side, and the answer mirrors.
#[test]
fn spellings_case_mirrored_gives_the_mirrored_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let p = variant(tmp.path(), |t| {
        let (head, rest) = t.split_once("\nleft:\n").unwrap();
        let (left, rest) = rest.split_once("\nright:\n").unwrap();
        let (right, tail) = rest.split_once("\ncompare:\n").unwrap();
        format!("{head}\nleft:\n{right}\nright:\n{left}\ncompare:\n{tail}")
    });
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        categories(&out),
        set(&[
            ("mismatched", "1005"),
            ("mismatched", "1006"),
            ("mismatched", "1008"),
            ("missing_in_crm", "1010"),
            ("missing_in_s360", "1009"),
        ])
    );
    assert_eq!(summary(&out)["counts"]["matched"], 5);
}

/// Each setting, taken away, reports (or refuses) exactly the orders it
/// kept matched.
/// An edit of the pipeline's text.
type Edit = Box<dyn Fn(&str) -> String>;

/// What an edit is, the edit, and the `(key, field)` mismatches it adds.
type Case = (&'static str, Edit, Vec<(&'static str, &'static str)>);

#[test]
fn each_spelling_setting_is_what_keeps_its_orders_matched() {
    let cases: Vec<Case> = vec![
        (
            // One fixed offset is wrong half the year: the summer orders
            // (and the repeated hour) are an hour off.
            "fixed +01:00 instead of Europe/Zurich",
            Box::new(|t| replaced(t, "timezone: Europe/Zurich", "timezone: \"+01:00\"")),
            vec![
                ("1002", "created"),
                ("1003", "created"),
                ("1007", "created"),
                ("1008", "created"),
            ],
        ),
        (
            "the repeated hour read as the second one",
            Box::new(|t| replaced(t, "repeated: before", "repeated: after")),
            vec![("1003", "created")],
        ),
        (
            "the skipped hour read at the summer offset",
            Box::new(|t| replaced(t, "skipped: before", "skipped: after")),
            vec![("1004", "created")],
        ),
        (
            "no Unicode normalisation",
            Box::new(|t| replaced(t, "    normalize: nfc\n", "")),
            vec![("1001", "city")],
        ),
        (
            "letter case compared",
            Box::new(|t| {
                replaced(
                    t,
                    "  - field: street\n    ignore_case: true\n",
                    "  - field: street\n",
                )
            }),
            vec![("1001", "street"), ("1002", "street"), ("1003", "street")],
        ),
        (
            "two digits for every currency",
            Box::new(|t| {
                replaced(
                    t,
                    "digits: { currency: currencyCode, max_digits: 3 }",
                    "digits: 2",
                )
            }),
            vec![("1003", "amount"), ("1004", "amount")],
        ),
    ];
    for (what, edit, extra) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let p = variant(tmp.path(), edit);
        let out = tmp.path().join("report");
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), 5, "{what}: over fail_if: {}", stderr(&o));
        let mut want: BTreeSet<(String, String)> = set(&[
            ("1005", "created"),
            ("1006", "amount"),
            ("1006", "city"),
            ("1008", "contact"),
        ]);
        want.extend(extra.iter().map(|(k, f)| (k.to_string(), f.to_string())));
        assert_eq!(field_mismatches(&out), want, "{what}");
    }
}

#[test]
fn leading_zeros_keep_keys_apart_unless_a_step_strips_them() {
    let tmp = tempfile::tempdir().unwrap();
    let p = variant(tmp.path(), |t| {
        replaced(
            t,
            "    - type: text\n      columns: [Id]\n      strip_leading_zeros: true\n",
            "",
        )
    });
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let got = categories(&out);
    assert!(
        got.contains(&("missing_in_crm".into(), "1007".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("missing_in_s360".into(), "0001007".into())),
        "{got:?}"
    );
}

/// Spellings the pipeline does not declare stop the check with the file,
/// column and value named; nothing is reported as a difference.
#[test]
fn undeclared_spellings_and_refused_times_stop_the_check_naming_file_and_column() {
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        (
            "no number format",
            Box::new(|t| replaced(t, "    numbers: { decimal: \",\", group: \".\" }\n", "")),
            &["crm_orders.csv", "Amount", "\"400,00\""],
        ),
        (
            "no date format",
            Box::new(|t| {
                replaced(
                    t,
                    "CreatedDate: { type: timestamp, format: \"%d.%m.%Y %H:%M\" }",
                    "CreatedDate: timestamp",
                )
            }),
            &["crm_orders.csv", "CreatedDate", "\"15.01.2026 09:00\""],
        ),
        (
            "the skipped hour refused",
            Box::new(|t| replaced(t, "skipped: before", "skipped: error")),
            &[
                "s360_orders.csv",
                "createdAt",
                "2026-03-29 02:30:00 does not exist in Europe/Zurich",
            ],
        ),
        (
            "the repeated hour refused",
            Box::new(|t| replaced(t, "repeated: before", "repeated: error")),
            &[
                "s360_orders.csv",
                "createdAt",
                "2026-10-25 02:30:00 happens twice in Europe/Zurich",
            ],
        ),
    ];
    for (what, edit, needles) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let p = variant(tmp.path(), edit);
        let out = tmp.path().join("report");
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), 1, "{what}: {}", stderr(&o));
        let err = stderr(&o);
        for n in needles {
            assert!(err.contains(n), "{what}: {n:?} not in {err}");
        }
        assert!(!out.exists(), "{what}: no report from a check that stopped");
    }
}

/// A column the check typed `int64` from its first 10,000 rows, with a
/// leading-zero value after them: refused, never read as another number.
#[test]
fn a_late_leading_zero_in_a_guessed_number_column_stops_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let mut left = String::from("id;qty\n");
    let mut right = String::from("id;qty\n");
    for i in 0..10_050 {
        let qty = if i == 10_020 {
            "00777".to_string()
        } else {
            (i % 50).to_string()
        };
        left.push_str(&format!("{i};{qty}\n"));
        right.push_str(&format!("{i};{}\n", i % 50));
    }
    std::fs::write(tmp.path().join("l.csv"), left).unwrap();
    std::fs::write(tmp.path().join("r.csv"), right).unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        "version: 1\nkind: reconcile\nname: late\nleft:\n  source: { location: l.csv, csv: { delimiter: \";\" }, key: id }\nright:\n  source: { location: r.csv, csv: { delimiter: \";\" }, key: id }\ncompare:\n  - field: qty\n",
    )
    .unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("l.csv"), "{err}");
    assert!(err.contains("`qty`"), "{err}");
    assert!(err.contains("\"00777\""), "{err}");
    assert!(err.contains("declare the column's type"), "{err}");
}

/// `output.csv_delimiter: ";"`, as Excel in fr-CH and de-CH reads CSV: the
/// same rows, split on `;`; a cell with a `;` or `,` is quoted.
#[test]
fn reports_separated_by_semicolons_hold_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let p = variant(tmp.path(), |t| {
        format!("{t}output:\n  csv_delimiter: \";\"\n")
    });
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let semi = std::fs::read_to_string(out.join("field_mismatches.csv")).unwrap();
    assert!(semi.starts_with("orderId;field;"), "{semi}");
    assert!(
        semi.contains("1006;amount;2500.000;2499.000;1.000"),
        "{semi}"
    );
    let plain = tmp.path().join("plain");
    let o = reconcile(&committed("reconcile-spellings.yaml"), &plain, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let comma = std::fs::read_to_string(plain.join("field_mismatches.csv")).unwrap();
    assert_eq!(semi.replace(';', ","), comma);

    let p = variant(tmp.path(), |t| {
        format!("{t}output:\n  csv_delimiter: \"x\"\n")
    });
    let o = crate::support::bin(tmp.path(), &["validate", p.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("output.csv_delimiter"),
        "{}",
        stderr(&o)
    );
}

/// An undeclared CRM amount in `1.234,56` against S-360's decimals: the
/// side's `numbers` reads it, and only the real difference is reported.
#[test]
fn undeclared_text_in_a_local_number_spelling_is_compared_as_a_number() {
    let tmp = tempfile::tempdir().unwrap();
    let p = variant(tmp.path(), |t| {
        replaced(t, "      Amount: decimal(18,3)\n", "")
    });
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(categories(&out), set(&WANT));
    let long = std::fs::read_to_string(out.join("field_mismatches.csv")).unwrap();
    assert!(long.contains("1006,amount,"), "{long}");
}
