//! The report tables (discrepancies, field mismatches) and their writing as Parquet and as spreadsheet-safe CSV, whose cells no spreadsheet runs as a formula.

use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use super::private::create_private;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::model::{Category, Comparison};

/// A table of text cells (nulls as `None`).
pub(super) struct Table {
    names: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// One row per discrepancy, with both sides' values of every compared field.
pub(super) fn discrepancy_table(cmp: &Comparison) -> Table {
    let mut names: Vec<String> = cmp.key_names.clone();
    names.extend(["category", "side", "count", "fields"].map(String::from));
    for f in &cmp.fields {
        names.push(format!("left_{}", f.field));
        names.push(format!("right_{}", f.field));
    }
    let rows = cmp
        .rows
        .iter()
        .map(|r| {
            let mut row = r.key.clone();
            row.push(Some(r.category.as_str().to_string()));
            row.push(r.side.map(str::to_string));
            row.push(r.count.map(|c| c.to_string()));
            row.push((!r.fields.is_empty()).then(|| r.fields.join(",")));
            for i in 0..cmp.fields.len() {
                row.push(r.left[i].clone());
                row.push(r.right[i].clone());
            }
            row
        })
        .collect();
    Table { names, rows }
}

/// One row per differing field of a mismatched key.
pub(super) fn mismatch_table(cmp: &Comparison) -> Table {
    let mut names: Vec<String> = cmp.key_names.clone();
    names.extend(["field", "left", "right", "difference"].map(String::from));
    let mut rows = Vec::new();
    for r in cmp
        .rows
        .iter()
        .filter(|r| r.category == Category::Mismatched)
    {
        for (i, f) in cmp.fields.iter().enumerate() {
            if !r.fields.contains(&f.field) {
                continue;
            }
            let mut row = r.key.clone();
            row.push(Some(f.field.clone()));
            row.push(r.left[i].clone());
            row.push(r.right[i].clone());
            row.push(r.difference[i].clone());
            rows.push(row);
        }
    }
    Table { names, rows }
}

/// Whether a cell is a plain number (`-1.50`, `+3`, `12`), which spreadsheets
/// read as a number and not as a formula.
fn is_plain_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Characters after which a spreadsheet may start a new cell: `;` is the
/// list separator of fr-CH and de-CH Excel, which then ignores the commas;
/// tab and line breaks split cells in pasted or imported text.
const CELL_BREAKS: [char; 4] = [';', '\t', '\r', '\n'];

/// Defuse a cell a spreadsheet would run as a formula: prefix `'` when it
/// starts with `=`, `+`, `-`, `@`, tab or CR, unless it is a plain number.
/// Likewise after every `;`, tab or line break, where a spreadsheet that
/// splits the cell would start a new one; there even before a number, as
/// such a cell runs on into the next one.
pub fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let at_start = cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(cell);
    let mut breaks = cell
        .match_indices(CELL_BREAKS)
        .map(|(i, _)| i)
        .filter(|i| cell[i + 1..].starts_with(['=', '+', '-', '@']))
        .peekable();
    if !at_start && breaks.peek().is_none() {
        return cell.into();
    }
    let mut out = String::with_capacity(cell.len() + 2);
    if at_start {
        out.push('\'');
    }
    let mut from = 0;
    for i in breaks {
        out.push_str(&cell[from..=i]);
        out.push('\'');
        from = i + 1;
    }
    out.push_str(&cell[from..]);
    out.into()
}

/// One CSV field: defused, and quoted when it holds a comma, quote, `;`, tab
/// or line break, so that no spreadsheet splits it, whatever its separator.
pub fn csv_field(cell: &str) -> String {
    let cell = csv_safe(cell);
    if cell.contains([',', '"', ';', '\t', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.into_owned()
    }
}

/// Write a table as spreadsheet-safe CSV to a new private file.
pub(super) fn write_csv(path: &Path, t: &Table) -> Result<(), ReconcileError> {
    let io = |source| ReconcileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = std::io::BufWriter::new(create_private(path)?);
    let header: Vec<String> = t.names.iter().map(|n| csv_field(n)).collect();
    writeln!(w, "{}", header.join(",")).map_err(io)?;
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| c.as_deref().map(csv_field).unwrap_or_default())
            .collect();
        writeln!(w, "{}", cells.join(",")).map_err(io)?;
    }
    w.flush().map_err(io)
}

/// Write a table of text columns as Parquet to a new private file.
pub(super) fn write_parquet(path: &Path, t: &Table) -> Result<(), ReconcileError> {
    let columns: Vec<Column> = t
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let ca: StringChunked = t.rows.iter().map(|r| r[i].as_deref()).collect();
            ca.with_name(name.as_str().into()).into_column()
        })
        .collect();
    let polars = |source| ReconcileError::Polars {
        context: path.display().to_string(),
        source,
    };
    let mut df = DataFrame::new(t.rows.len(), columns).map_err(polars)?;
    let file = create_private(path)?;
    ParquetWriter::new(file).finish(&mut df).map_err(polars)?;
    Ok(())
}
