//! `report.xlsx` (with `output.xlsx: true`): the summary and one sheet per category of discrepancy, plus the field mismatches, in typed cells (numbers as numbers, instants as dates), for analysts who open reports in Excel.

use std::path::Path;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::private::write_private;
use super::summary::Summary;
use super::tables::Table;
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
    let styles = Styles::new();
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
        table_sheet(book.add_worksheet(), c, names, rows, &bold, &styles).map_err(fail)?;
    }
    table_sheet(
        book.add_worksheet(),
        "field_mismatches",
        mismatches.names(),
        mismatches.rows().iter(),
        &bold,
        &styles,
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
    styles: &Styles,
) -> Result<(), XlsxError> {
    ws.set_name(name)?;
    for (c, n) in names.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, n, bold)?;
    }
    for (r, row) in rows.enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if let Some(text) = cell {
                typed(ws, r as u32 + 1, c as u16, text, styles)?;
            }
        }
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// The number formats of typed cells: a number shows the digits it was
/// written with (`1.10` is not `1.1`), an instant its milliseconds when it
/// has any.
struct Styles {
    /// By digits after the point, 0 to 15.
    decimals: Vec<Format>,
    seconds: Format,
    millis: Format,
}

impl Styles {
    fn new() -> Self {
        Self {
            decimals: (0..=MAX_DIGITS)
                .map(|d| match d {
                    0 => Format::new().set_num_format("0"),
                    d => Format::new().set_num_format(format!("0.{}", "0".repeat(d))),
                })
                .collect(),
            seconds: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            millis: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
        }
    }
}

/// Significant digits a double holds exactly.
const MAX_DIGITS: usize = 15;

/// Digits after the point of a number Excel can hold and show exactly as
/// written: `-?D+(.D+)?`, 15 significant digits and 15 decimals at most,
/// no leading zero (`000123` is an id, not 123). Anything else (`1e3`,
/// `+5`, a 17-digit id a double would round) is text.
fn shown_decimals(text: &str) -> Option<usize> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    if int.len() > 1 && int.starts_with('0') {
        return None;
    }
    let frac = frac.unwrap_or("");
    let significant = format!("{int}{frac}").trim_start_matches('0').len();
    (significant <= MAX_DIGITS && frac.len() <= MAX_DIGITS).then_some(frac.len())
}

/// A cell as what it says: a number that Excel shows as written (see
/// [`shown_decimals`]), an RFC 3339 instant as a date (UTC, to the
/// millisecond), else text. Text is never a formula.
fn typed(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    text: &str,
    styles: &Styles,
) -> Result<(), XlsxError> {
    if let Some(d) = shown_decimals(text)
        && let Ok(v) = text.parse::<f64>()
    {
        ws.write_number_with_format(row, col, v, &styles.decimals[d])?;
        return Ok(());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        // Days since 1899-12-30, Excel's day 0; the Unix epoch is day 25569.
        let ms = t.timestamp_millis();
        let serial = 25_569.0 + ms as f64 / 86_400_000.0;
        if let Ok(dt) = ExcelDateTime::from_serial_datetime(serial) {
            let style = if ms.rem_euclid(1000) == 0 {
                &styles.seconds
            } else {
                &styles.millis
            };
            ws.write_datetime_with_format(row, col, &dt, style)?;
            return Ok(());
        }
    }
    ws.write_string(row, col, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shown_decimals;

    #[test]
    fn a_number_is_a_number_only_where_excel_shows_it_as_written() {
        assert_eq!(shown_decimals("400"), Some(0));
        assert_eq!(shown_decimals("-12.50"), Some(2));
        assert_eq!(shown_decimals("1.10"), Some(2));
        assert_eq!(shown_decimals("0.000123"), Some(6));
        assert_eq!(shown_decimals("0"), Some(0));
        assert_eq!(shown_decimals("123456789012345"), Some(0));
        for text in [
            "1234567890123456",
            "000123",
            "1e3",
            "+5",
            "1.",
            ".5",
            "",
            "-",
            "1.2.3",
            "12 345",
        ] {
            assert_eq!(shown_decimals(text), None, "{text:?}");
        }
    }
}
