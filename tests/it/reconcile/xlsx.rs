//! `output.xlsx: true`: `report.xlsx` beside the other reports, read back by a real xlsx reader (Python's openpyxl): one sheet per category, numbers as numbers, instants as dates, text (a would-be formula included) as text; listed in the marker, so a later run without it removes it.

use std::process::Command;

use serde_json::Value;

use super::{code, committed, reconcile, stderr};
use crate::support::root;

/// Every sheet's cells, by header: [Python type, value as text, openpyxl's
/// data type, number format].
const READ: &str = r#"
import json, sys, datetime, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
out = {"sheets": book.sheetnames, "cells": {}}
for ws in book.worksheets:
    rows = list(ws.iter_rows())
    head = [c.value for c in rows[0]]
    cells = []
    for row in rows[1:]:
        cells.append({h: [type(c.value).__name__, str(c.value), c.data_type, c.number_format] for h, c in zip(head, row) if h is not None})
    out["cells"][ws.title] = cells
print(json.dumps(out))
"#;

/// `report.xlsx` of `pipeline` (which must find discrepancies), as
/// openpyxl reads it.
fn workbook(pipeline: &std::path::Path, out: &std::path::Path) -> Value {
    let o = reconcile(pipeline, out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let o = Command::new("python3")
        .args(["-c", READ, out.join("report.xlsx").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_cell_shows_the_value_as_the_report_has_it() {
    if !crate::support::python::has("openpyxl", "openpyxl") {
        return;
    }
    // Text that reads as a number, ids longer than a double holds, and
    // instants half a second apart: a mismatch must not look like a match.
    let tmp = tempfile::tempdir().unwrap();
    let (l, r) = (tmp.path().join("s360.csv"), tmp.path().join("crm.csv"));
    std::fs::write(
        &l,
        "id,code,at\n12345678901234567,1.10,2026-10-13T12:00:00.250Z\n",
    )
    .unwrap();
    std::fs::write(
        &r,
        "id,code,at\n12345678901234567,1.1,2026-10-13T12:00:00.750Z\n",
    )
    .unwrap();
    let p = tmp.path().join("cells.yaml");
    let side = |f: &std::path::Path| {
        format!(
            "  source:\n    location: {}\n    key: id\n    columns: {{ code: string, at: timestamp }}\n",
            f.display()
        )
    };
    std::fs::write(
        &p,
        format!(
            "version: 1\nkind: reconcile\nname: cells\nleft:\n{}right:\n{}compare:\n  - field: code\n  - field: at\noutput:\n  xlsx: true\n",
            side(&l),
            side(&r)
        ),
    )
    .unwrap();
    let v = workbook(&p, &tmp.path().join("report"));
    let row = &v["cells"]["mismatched"][0];
    assert_eq!(row["id"][0], "str", "a 17-digit id stays text: {row}");
    assert_eq!(row["id"][1], "12345678901234567", "{row}");
    assert_eq!(row["left_code"][3], "0.00", "{row}");
    assert_eq!(row["right_code"][3], "0.0", "{row}");
    assert_eq!(row["left_at"][0], "datetime", "{row}");
    assert_eq!(row["left_at"][1], "2026-10-13 12:00:00.250000", "{row}");
    assert_eq!(row["right_at"][1], "2026-10-13 12:00:00.750000", "{row}");
    assert_eq!(row["left_at"][3], "yyyy-mm-dd hh:mm:ss.000", "{row}");
}

#[test]
fn the_workbook_has_a_sheet_per_category_in_typed_cells() {
    if !crate::support::python::has("openpyxl", "openpyxl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(committed("reconcile-edge.yaml")).unwrap();
    let data = root().join("testdata");
    let text = text.replace("../testdata", &data.display().to_string());
    let p = tmp.path().join("edge.yaml");
    std::fs::write(&p, format!("{text}output:\n  xlsx: true\n")).unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let book = out.join("report.xlsx");
    let marker = std::fs::read_to_string(out.join(".s360-sync-report")).unwrap();
    assert!(marker.contains("report.xlsx"), "{marker}");
    let o = Command::new("python3")
        .args(["-c", READ, book.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let sheets: Vec<&str> = v["sheets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(sheets.first(), Some(&"summary"));
    assert_eq!(sheets.last(), Some(&"field_mismatches"));
    let mut categories = sheets[1..sheets.len() - 1].to_vec();
    categories.sort();
    assert_eq!(
        categories,
        [
            "duplicate_key",
            "mismatched",
            "missing_in_crm",
            "missing_in_s360",
            "null_key"
        ]
    );
    // Summary counts are numbers.
    let summary = v["cells"]["summary"].as_array().unwrap();
    let matched = summary
        .iter()
        .find(|r| r["pipeline"][1] == "matched")
        .unwrap_or_else(|| panic!("{summary:?}"));
    assert_eq!(matched["reconcile-edge"][0], "int", "{matched:?}");
    assert_eq!(matched["reconcile-edge"][1], "4");
    // A mismatched row: key and amounts are numbers, the instant a date,
    // `@Zug` text, never a formula.
    let rows = v["cells"]["mismatched"].as_array().unwrap();
    let zug = rows
        .iter()
        .find(|r| r["right_city"][1] == "@Zug")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(zug["right_city"][2], "s", "{zug:?}");
    assert_eq!(zug["orderId"][0], "int", "{zug:?}");
    let amount = rows
        .iter()
        .find(|r| r["left_amount"][1] == "400.0" || r["left_amount"][1] == "400")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert!(
        ["float", "int"].contains(&amount["right_amount"][0].as_str().unwrap()),
        "{amount:?}"
    );
    assert_eq!(amount["left_createdAt"][0], "datetime", "{amount:?}");

    // Without `xlsx`, the next run's report has no workbook: the marker
    // named it, so it is removed with the earlier report.
    let o = reconcile(&committed("reconcile-edge.yaml"), &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!book.exists());
}
