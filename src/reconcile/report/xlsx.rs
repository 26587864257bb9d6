//! `report.xlsx` (with `output.xlsx: true`): the summary and one sheet per category of discrepancy, plus the field mismatches, in typed cells (numbers as numbers, instants as dates), for analysts who open reports in Excel.

use std::path::Path;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::private::write_private;
use super::summary::Summary;
use super::tables::Table;
use crate::formats::infer::{FLOAT, INTEGER, kind_bits};
use crate::reconcile::error::ReconcileError;

/// The file's name in the report folder.
pub const XLSX: &str = "report.xlsx";

/// Write the workbook to a new private file.
pub(super) fn write_xlsx(
    path: &Path,
    summary: &Summary,
    discrepancies: &Table,
    mismatches: &Table,
) -> Result<(), ReconcileError> {
    let fail = |e: XlsxError| ReconcileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let instant = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    summary_sheet(book.add_worksheet(), summary, &bold).map_err(fail)?;
    // One sheet per category, in the order the discrepancies come.
    let names = discrepancies.names();
    let category = names.iter().position(|n| n == "category");
    let mut categories: Vec<String> = Vec::new();
    for row in discrepancies.rows() {
        if let Some(Some(c)) = category.map(|i| &row[i])
            && !categories.contains(c)
        {
            categories.push(c.clone());
        }
    }
    for c in &categories {
        let rows = discrepancies
            .rows()
            .iter()
            .filter(|r| category.is_some_and(|i| r[i].as_deref() == Some(c.as_str())));
        table_sheet(book.add_worksheet(), c, names, rows, &bold, &instant).map_err(fail)?;
    }
    table_sheet(
        book.add_worksheet(),
        "field_mismatches",
        mismatches.names(),
        mismatches.rows().iter(),
        &bold,
        &instant,
    )
    .map_err(fail)?;
    let bytes = book.save_to_buffer().map_err(fail)?;
    write_private(path, &bytes)
}

fn summary_sheet(ws: &mut Worksheet, summary: &Summary, bold: &Format) -> Result<(), XlsxError> {
    ws.set_name("summary")?;
    let value = serde_json::to_value(summary).unwrap_or_default();
    let mut row = 0u32;
    ws.write_string_with_format(row, 0, "pipeline", bold)?;
    ws.write_string(row, 1, &summary.pipeline)?;
    row += 1;
    ws.write_string_with_format(row, 0, "passed", bold)?;
    ws.write_boolean(row, 1, summary.passed)?;
    row += 2;
    ws.write_string_with_format(row, 0, "category", bold)?;
    ws.write_string_with_format(row, 1, "count", bold)?;
    if let Some(counts) = value["counts"].as_object() {
        for (name, n) in counts {
            row += 1;
            ws.write_string(row, 0, name)?;
            ws.write_number(row, 1, n.as_f64().unwrap_or(0.0))?;
        }
    }
    if let Some(totals) = value["control_totals"].as_array().filter(|t| !t.is_empty()) {
        row += 2;
        for (col, h) in ["control total", "left", "right", "delta"]
            .iter()
            .enumerate()
        {
            ws.write_string_with_format(row, col as u16, *h, bold)?;
        }
        for t in totals {
            row += 1;
            ws.write_string(row, 0, t["field"].as_str().unwrap_or_default())?;
            for (col, k) in ["left", "right", "delta"].iter().enumerate() {
                let text = t[*k].as_str().unwrap_or_default();
                match text.parse::<f64>() {
                    Ok(v) => ws.write_number(row, col as u16 + 1, v)?,
                    Err(_) => ws.write_string(row, col as u16 + 1, text)?,
                };
            }
        }
    }
    ws.set_column_width(0, 24)?;
    Ok(())
}

fn table_sheet<'a>(
    ws: &mut Worksheet,
    name: &str,
    names: &[String],
    rows: impl Iterator<Item = &'a Vec<Option<String>>>,
    bold: &Format,
    instant: &Format,
) -> Result<(), XlsxError> {
    ws.set_name(name)?;
    for (c, n) in names.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, n, bold)?;
    }
    for (r, row) in rows.enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if let Some(text) = cell {
                typed(ws, r as u32 + 1, c as u16, text, instant)?;
            }
        }
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// A cell as what it says: a number that reads back as written (by the
/// same rule that types undeclared CSV columns: `000123` and 20-digit ids
/// stay text), an RFC 3339 instant as a date (UTC, to the second), else
/// text. Text is never a formula.
fn typed(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    text: &str,
    instant: &Format,
) -> Result<(), XlsxError> {
    let bits = kind_bits(text);
    if (bits == INTEGER || bits == FLOAT)
        && let Ok(v) = text.parse::<f64>()
    {
        ws.write_number(row, col, v)?;
        return Ok(());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text)
        && let Ok(dt) = ExcelDateTime::from_timestamp(t.timestamp())
    {
        ws.write_datetime_with_format(row, col, &dt, instant)?;
        return Ok(());
    }
    ws.write_string(row, col, text)?;
    Ok(())
}
