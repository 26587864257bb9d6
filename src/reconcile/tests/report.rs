//! Report safety: spreadsheet-safe CSV cells, HTML escaping, report markers, and the locations the summary shows.

use crate::reconcile::report::destination::{MARKER, Marker};
use crate::reconcile::report::html::escape;
use crate::reconcile::report::summary::shown_location;
use crate::reconcile::report::tables::{csv_field, csv_safe};

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
    let current = Marker::current(&Default::default());
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

#[test]
fn summary_locations_show_no_credentials_or_query_secrets() {
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
