//! The report tables (discrepancies, field mismatches), written as Parquet and as spreadsheet-safe CSV by the one table writer (`crate::formats::table`).

use std::path::Path;

use super::private::create_private;
use crate::formats::table::{CsvStyle, CsvWriter, write_text_parquet};
pub use crate::formats::table::{csv_field, csv_safe};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::model::{Category, Comparison};

/// A table of text cells (nulls as `None`).
pub(super) struct Table {
    names: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// The column names.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// The rows, cells in the order of [`Table::names`].
    pub(super) fn rows(&self) -> &[Vec<Option<String>>] {
        &self.rows
    }
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

/// Write a table as spreadsheet-safe CSV to a new private file.
pub(super) fn write_csv(path: &Path, t: &Table, style: CsvStyle) -> Result<(), ReconcileError> {
    let io = |source| ReconcileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = CsvWriter::new(std::io::BufWriter::new(create_private(path)?), style);
    w.table(&t.names, &t.rows).map_err(io)?;
    w.finish().map(|_| ()).map_err(io)
}

/// Write a table of text columns as Parquet to a new private file.
pub(super) fn write_parquet(path: &Path, t: &Table) -> Result<(), ReconcileError> {
    let file = std::io::BufWriter::new(create_private(path)?);
    write_text_parquet(file, &t.names, &t.rows).map_err(|source| ReconcileError::Table {
        path: path.to_path_buf(),
        source,
    })
}
