//! The report files of a check, written into one folder: discrepancies and field mismatches (Parquet and CSV), `summary.html`, and `summary.json` last.

use std::path::Path;

use super::html;
use super::private::write_private;
use super::summary::Summary;
use super::tables::{discrepancy_table, mismatch_table, write_csv, write_parquet};
use crate::formats::table::CsvStyle;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::model::Comparison;

/// The report files in the order they are published: data first,
/// `summary.json` last, so its presence means the report is complete.
pub const FILES: [&str; 6] = [
    "discrepancies.parquet",
    "discrepancies.csv",
    "field_mismatches.parquet",
    "field_mismatches.csv",
    "summary.html",
    "summary.json",
];

/// How the report files are written: the CSV separator, and whether an
/// Excel workbook is written too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportStyle {
    /// The CSV reports' style.
    pub csv: CsvStyle,
    /// Also `report.xlsx`.
    pub xlsx: bool,
}

impl Default for ReportStyle {
    fn default() -> Self {
        Self {
            csv: CsvStyle::SPREADSHEET,
            xlsx: false,
        }
    }
}

impl ReportStyle {
    /// The files a report in this style has, in the order they are
    /// published ([`FILES`], and `report.xlsx` before the summaries).
    pub fn files(&self) -> Vec<&'static str> {
        let mut files = FILES.to_vec();
        if self.xlsx {
            files.insert(4, super::xlsx::XLSX);
        }
        files
    }
}

/// Write every report file (see [`ReportStyle::files`]) into the existing,
/// empty folder `dir`.
pub fn write_files(
    dir: &Path,
    cmp: &Comparison,
    summary: &Summary,
    style: ReportStyle,
) -> Result<(), ReconcileError> {
    let disc = discrepancy_table(cmp);
    let mism = mismatch_table(cmp);
    write_parquet(&dir.join("discrepancies.parquet"), &disc)?;
    write_csv(&dir.join("discrepancies.csv"), &disc, style.csv)?;
    write_parquet(&dir.join("field_mismatches.parquet"), &mism)?;
    write_csv(&dir.join("field_mismatches.csv"), &mism, style.csv)?;
    if style.xlsx {
        super::xlsx::write_xlsx(&dir.join(super::xlsx::XLSX), summary, &disc, &mism)?;
    }
    let html = html::render(summary, cmp);
    write_private(&dir.join("summary.html"), html.as_bytes())?;
    let json = serde_json::to_string_pretty(summary).map_err(|e| ReconcileError::Io {
        path: dir.join("summary.json"),
        source: e.into(),
    })?;
    write_private(&dir.join("summary.json"), (json + "\n").as_bytes())
}
