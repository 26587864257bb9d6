//! Unit tests of the comparison rules (decimals, times, text, nulls), CSV and HTML safety, report markers, and the join on small frames.

use polars::prelude::*;

use super::compare::*;
use super::html::escape;
use super::report::{csv_field, csv_safe};
use crate::pipeline::{DuplicatePolicy, FieldComparison, HumanDuration};

fn field(name: &str) -> FieldComparison {
    FieldComparison {
        field: name.into(),
        right: None,
        absolute: None,
        relative: None,
        time_tolerance: None,
        trim: false,
        ignore_case: false,
        null_equals_null: true,
    }
}

#[test]
fn decimal_text_is_parsed_exactly() {
    assert_eq!(parse_decimal("400.00", 2), Ok(40000));
    assert_eq!(parse_decimal("-1.5", 2), Ok(-150));
    assert_eq!(parse_decimal("+3", 2), Ok(300));
    assert_eq!(parse_decimal("0.10", 1), Ok(1));
    assert!(
        parse_decimal("0.15", 1).is_err(),
        "digits beyond the scale are not rounded away"
    );
    assert!(parse_decimal("1e3", 2).is_err());
    assert!(parse_decimal("", 2).is_err());
    assert!(parse_decimal("-", 2).is_err());
    assert!(parse_decimal("999999999999999999999999999999999999999", 2).is_err());
    assert_eq!(format_decimal(-150, 2), "-1.50");
    assert_eq!(format_decimal(5, 2), "0.05");
    assert_eq!(format_decimal(-5, 2), "-0.05");
    assert_eq!(format_decimal(42, 0), "42");
    assert_eq!(decimal_places("0.010"), 2);
    assert_eq!(decimal_places("1"), 0);
}

#[test]
fn absolute_tolerance_edges_are_inclusive_and_exact() {
    // Scale 2: 0.01 is one unit.
    assert!(numbers_equal(40000, 40001, 1, None));
    assert!(numbers_equal(40001, 40000, 1, None));
    assert!(!numbers_equal(40000, 40002, 1, None));
    assert!(numbers_equal(40000, 40000, 0, None));
    assert!(!numbers_equal(40000, 40001, 0, None));
    // A float would say 0.1 + 0.2 != 0.3; decimals do not.
    let a = parse_decimal("0.1", 2).unwrap() + parse_decimal("0.2", 2).unwrap();
    assert!(numbers_equal(a, parse_decimal("0.3", 2).unwrap(), 0, None));
    // Extremes do not overflow.
    assert!(!numbers_equal(i128::MAX, i128::MIN, 1, None));
}

#[test]
fn relative_tolerance_uses_the_larger_magnitude() {
    // 0.001 relative: 1000.00 vs 1001.00 is exactly 0.000999.. of 1001 -> equal.
    let rel = Some((1, 3));
    assert!(numbers_equal(100000, 100100, 0, rel));
    assert!(!numbers_equal(100000, 100200, 0, rel));
    // Either tolerance is enough.
    assert!(numbers_equal(100, 102, 2, rel));
    assert!(!numbers_equal(0, 1, 0, rel));
    assert!(numbers_equal(-100000, -100100, 0, rel));
}

#[test]
fn timestamps_in_every_export_form() {
    let utc = parse_timestamp("2026-10-13T10:09:27.000Z", 0).unwrap();
    assert_eq!(parse_timestamp("2026-10-13 10:09:27", 0), Some(utc));
    assert_eq!(parse_timestamp("2026-10-13T10:09:27+00:00", 0), Some(utc));
    assert_eq!(parse_timestamp("2026-10-13T11:09:27+01:00", 0), Some(utc));
    assert_eq!(
        parse_timestamp("2026-10-13T11:09:27.000+0100", 0),
        Some(utc)
    );
    // A naive time is read in the side's zone.
    assert_eq!(parse_timestamp("2026-10-13 11:09:27", 3600), Some(utc));
    assert_eq!(
        parse_timestamp("2020-10-13T10:09:27.503+00:00", 0),
        parse_timestamp("2020-10-13 10:09:27.503", 0)
    );
    assert_eq!(
        parse_timestamp("2026-10-13", 0),
        Some(utc - (10 * 3600 + 9 * 60 + 27) * 1000)
    );
    assert_eq!(parse_timestamp("13/10/2026", 0), None);
}

#[test]
fn the_fast_timestamp_path_agrees_with_chrono() {
    // A deterministic walk over dates (leap days, month ends, centuries),
    // times, fractions and offsets: both parsers must give the same instant.
    let mut x: u64 = 0x5eed;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let fracs = ["", ".5", ".05", ".123", ".1234", ".999999999"];
    let zones = [
        "", "Z", "+00:00", "+01:00", "-05:30", "+0100", "-1145", "+23:59",
    ];
    for _ in 0..20_000 {
        let y = 1900 + next(250);
        let m = 1 + next(12);
        let d = 1 + next(31);
        let (h, mi, s) = (next(24), next(60), next(60));
        let sep = if next(2) == 0 { 'T' } else { ' ' };
        let frac = fracs[next(fracs.len() as u64) as usize];
        let zone = zones[next(zones.len() as u64) as usize];
        let t = format!("{y:04}-{m:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}");
        let offset = [0, 3600, -18000][next(3) as usize];
        assert_eq!(
            parse_timestamp(&t, offset),
            super::compare::chrono_timestamp(&t, offset),
            "{t} at offset {offset}"
        );
    }
    // Out-of-range parts are refused by both.
    for t in [
        "2026-02-30 00:00:00",
        "2026-13-01 00:00:00",
        "2026-10-13 24:00:00",
        "2026-10-13 10:09:27+24:00",
    ] {
        assert_eq!(parse_timestamp(t, 0), None, "{t}");
    }
    assert_eq!(
        parse_timestamp("2024-02-29 00:00:00", 0),
        Some(1_709_164_800_000)
    );
}

#[test]
fn columns_convert_to_units_and_instants() {
    let s = Series::new("a".into(), &[Some("1.50"), None, Some(" -2 ")]);
    let v: Vec<_> = to_scaled(&s, 2).unwrap().iter().collect();
    assert_eq!(v, vec![Some(150), None, Some(-200)]);
    let s = Series::new("a".into(), &[Some(400i64), None]);
    let v: Vec<_> = to_scaled(&s, 2).unwrap().iter().collect();
    assert_eq!(v, vec![Some(40000), None]);
    let s = Series::new("a".into(), &["abc"]);
    let e = to_scaled(&s, 2).unwrap_err();
    assert!(e.contains("\"abc\""), "{e}");
    let s = Series::new(
        "t".into(),
        &["2026-10-13 10:09:27", "2026-10-13T10:09:27.000Z"],
    );
    let v: Vec<_> = to_epoch_ms(&s, 0).unwrap().iter().collect();
    assert_eq!(v[0], v[1]);
}

#[test]
fn formula_cells_are_defused_but_numbers_are_not() {
    assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    assert_eq!(csv_safe("+1+2"), "'+1+2");
    assert_eq!(csv_safe("-2+3"), "'-2+3");
    assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(csv_safe("\tx"), "'\tx");
    assert_eq!(csv_safe("\rx"), "'\rx");
    assert_eq!(csv_safe("-1.50"), "-1.50");
    assert_eq!(csv_safe("+3"), "+3");
    assert_eq!(csv_safe("-"), "'-");
    assert_eq!(csv_safe("CHF"), "CHF");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("=1,2"), "\"'=1,2\"");
    assert_eq!(escape("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
}

/// The cells a spreadsheet makes of one CSV line split on `sep`: honouring
/// quotes, or, like a naive import, ignoring them.
fn spreadsheet_cells(line: &str, sep: char, quotes: bool) -> Vec<String> {
    if !quotes {
        return line.split(sep).map(str::to_string).collect();
    }
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cell = cells.last_mut().unwrap();
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => cells.push(String::new()),
            c => cell.push(c),
        }
    }
    cells
}

#[test]
fn csv_report_cell_with_semicolon_cannot_become_a_formula() {
    // fr-CH and de-CH Excel split on `;`, ignoring the commas.
    assert_eq!(csv_field("a;b"), "\"a;b\"");
    assert_eq!(csv_field("Zug;=1+2"), "\"Zug;'=1+2\"");
    assert_eq!(csv_field("=1;@SUM(A1)"), "\"'=1;'@SUM(A1)\"");
    assert_eq!(csv_field("x\t+cmd"), "\"x\t'+cmd\"");
    assert_eq!(csv_field("x\n-2+3"), "\"x\n'-2+3\"");
    assert_eq!(csv_field("x;\t=1"), "\"x;\t'=1\"");
    // Even a number: a naive split runs the piece on into the next cell.
    assert_eq!(csv_field("1;-2.50"), "\"1;'-2.50\"");
    // Numbers and text without breaks are as before.
    assert_eq!(csv_field("-2.50"), "-2.50");
    assert_eq!(csv_field("CHF"), "CHF");
    assert_eq!(csv_safe("a-b"), "a-b");
    // Whatever a spreadsheet splits on, no cell it makes runs as a formula.
    let runs = |cell: &str| {
        // The quotes the CSV added, as a naive split leaves them.
        let cell = cell.trim_matches('"');
        cell.starts_with(['=', '+', '-', '@']) && cell.parse::<f64>().is_err()
    };
    let cells = [
        "a;=HYPERLINK(\"http://x\")",
        "; -1+1;+1;-1",
        "ok;;@x",
        "q\";=1",
        "tab\t=1\r\n@2",
        "=a;b",
    ];
    let line = cells.map(csv_field).join(",");
    for sep in [',', ';', '\t', '\n', '\r'] {
        for quotes in [true, false] {
            for cell in spreadsheet_cells(&line, sep, quotes) {
                for piece in cell.split(['\n', '\r']) {
                    assert!(!runs(piece), "{piece:?} from {line:?} split on {sep:?}");
                }
            }
        }
    }
}

#[test]
fn a_marker_naming_paths_outside_its_folder_is_refused() {
    use super::output::{MARKER, Marker};
    let current = Marker::current();
    assert_eq!(Marker::parse(&current.to_bytes()), Ok(current.clone()));
    assert!(current.lists("summary.json") && !current.lists(MARKER));
    for bad in ["../notes.txt", "sub/summary.json", "..", "", MARKER, "a\\b"] {
        let mut m = current.clone();
        m.files.push(bad.into());
        assert!(Marker::parse(&m.to_bytes()).is_err(), "{bad:?}");
    }
    let mut other = current.clone();
    other.tool = "other-tool".into();
    assert!(Marker::parse(&other.to_bytes()).is_err());
    assert!(Marker::parse(b"not json").is_err());
}

fn spec(fields: Vec<FieldComparison>) -> Spec {
    Spec {
        left_key: vec!["id".into()],
        right_key: vec!["id".into()],
        fields,
        duplicates: DuplicatePolicy::Report,
        left_offset: 0,
        right_offset: 0,
        left_name: "left".into(),
        right_name: "right".into(),
        partitions: 1,
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
        let units: Int128Chunked = to_scaled(&amount, 3).unwrap();
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
        let v: Int64Chunked = to_epoch_ms(&at, 0).unwrap();
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
    east.left_offset = 3600;
    east.right_offset = 3600;
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
    s.left_offset = 3600;
    let cmp = compare(
        naive_at("2026-10-13 11:00:00", None).lazy(),
        naive_at("2026-10-13 10:00:00", Some(TimeZone::UTC)).lazy(),
        &s,
    )
    .unwrap();
    assert_eq!((cmp.matched, cmp.rows.len()), (1, 0), "{:?}", cmp.rows);
}

/// A byte-by-byte count of line ends outside quoted fields: what
/// `CountLines::analyze_chunk` computes, for a chunk starting outside a
/// quoted field ([0]) and inside one ([1]).
fn count_lines_by_bytes(bytes: &[u8], quoting: bool) -> [(usize, usize, bool); 2] {
    [false, true].map(|mut inside| {
        let (mut count, mut last) = (0, 0);
        for (i, &c) in bytes.iter().enumerate() {
            if quoting && c == b'"' {
                inside = !inside;
            } else if c == b'\n' && !inside {
                count += 1;
                last = i;
            }
        }
        (count, last, inside)
    })
}

#[test]
fn csv_line_counter_matches_a_byte_loop() {
    use polars_io::prelude::_csv_read_internal::CountLines;
    // Our patched polars-io (vendor/polars-io/PATCHED.md) scans 64-byte
    // blocks; lengths up to 300 cross up to four block boundaries and leave
    // every tail length.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in 0..20_000 {
        let alphabet: &[u8] = if n % 3 == 0 { b"a\n;" } else { b"a\"\n;b" };
        let bytes: Vec<u8> = (0..n % 300)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        for quoting in [true, false] {
            let counter = CountLines::new(quoting.then_some(b'"'), b'\n', None);
            let got = counter
                .analyze_chunk(&bytes)
                .map(|s| (s.newline_count, s.last_newline_offset, s.end_inside_string));
            let mut want = count_lines_by_bytes(&bytes, quoting);
            if !quoting {
                // Without quoting the second state is never entered.
                want[1] = (0, 0, true);
            }
            assert_eq!(
                got,
                want,
                "quoting {quoting}, input {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn quoted_line_ends_survive_a_streaming_csv_scan() {
    // Fields with quoted line ends, separators and quotes, over a file large
    // enough for the streaming reader to cut it into many batches.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quoted.csv");
    let mut text = String::from("id;note;n\n");
    let rows = 40_000;
    for i in 0..rows {
        let note = match i % 4 {
            0 => format!("\"line one\nline {i}\""),
            1 => format!("\"a;b \"\"{i}\"\"\""),
            2 => format!("plain {i}"),
            _ => String::from("\"\n\n\""),
        };
        text.push_str(&format!("{i};{note};{}\n", i * 2));
    }
    std::fs::write(&path, &text).unwrap();
    let df = LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
        .with_separator(b';')
        .finish()
        .unwrap()
        .collect_with_engine(Engine::Streaming)
        .unwrap()
        .unwrap_single();
    assert_eq!(df.height(), rows);
    let id = df.column("id").unwrap().i64().unwrap();
    let n = df.column("n").unwrap().i64().unwrap();
    let note = df.column("note").unwrap().str().unwrap();
    for i in 0..rows {
        assert_eq!(id.get(i), Some(i as i64));
        assert_eq!(n.get(i), Some(2 * i as i64), "row {i}");
        let want = match i % 4 {
            0 => format!("line one\nline {i}"),
            1 => format!("a;b \"{i}\""),
            2 => format!("plain {i}"),
            _ => String::from("\n\n"),
        };
        assert_eq!(note.get(i), Some(want.as_str()), "row {i}");
    }
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
    let keys = |ids: &[Option<String>]| polars::df!("__k0" => ids.to_vec()).unwrap();
    let (_, rest_l, rest_r) = super::compare::in_key_order(&keys(&left_id), &keys(&right_id), 1)
        .expect("keys mostly in order");
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

#[test]
fn summary_locations_show_no_credentials_or_query_secrets() {
    use super::report::shown_location;
    assert_eq!(
        shown_location(
            "https://user:s3cr3t@exports.example.com/s360/orders.csv?X-Amz-Signature=abc123&v=2"
        ),
        "https://exports.example.com/s360/orders.csv?X-Amz-Signature=***&v=***"
    );
    assert_eq!(
        shown_location("s3://bucket/exports/orders_*.csv"),
        "s3://bucket/exports/orders_*.csv"
    );
    assert_eq!(
        shown_location("../testdata/s360/orders_2026-10-13.csv"),
        "../testdata/s360/orders_2026-10-13.csv"
    );
}
