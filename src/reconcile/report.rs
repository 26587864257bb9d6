//! Report files: discrepancies and field mismatches (Parquet and spreadsheet-safe CSV), `summary.json`, written all-or-nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use super::ReconcileError;
use super::compare::{Category, ColumnStats, Comparison, ControlTotal, Discrepancy, SideRows};
use super::scan::InputFile;
use crate::pipeline::{FailIf, FieldComparison, ReconcilePipeline};

/// Counts per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Keys on both sides with every compared field equal.
    pub matched: u64,
    /// Keys only in the left (S-360) export.
    pub missing_in_crm: u64,
    /// Keys only in the right (CRM) export.
    pub missing_in_s360: u64,
    /// Keys on both sides with at least one differing field.
    pub mismatched: u64,
    /// Keys found more than once on one side (one per side and key).
    pub duplicate_key: u64,
    /// Distinct null or partly null keys (one per side and key).
    pub null_key: u64,
}

impl Counts {
    /// Count of a discrepancy category.
    pub fn get(&self, c: Category) -> u64 {
        match c {
            Category::DuplicateKey => self.duplicate_key,
            Category::Mismatched => self.mismatched,
            Category::MissingInCrm => self.missing_in_crm,
            Category::MissingInS360 => self.missing_in_s360,
            Category::NullKey => self.null_key,
        }
    }
}

/// The tool that wrote the report.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// Always `s360-sync`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Row counts of both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Sides {
    /// The S-360 side.
    pub left: SideRows,
    /// The CRM side.
    pub right: SideRows,
}

/// One compared field in the settings: as written, and as resolved.
#[derive(Debug, Clone, Serialize)]
pub struct CompareSetting {
    /// The rule as written in the pipeline.
    #[serde(flatten)]
    pub written: FieldComparison,
    /// How it was applied (number at a scale, time, text).
    pub applied: super::compare::Rule,
}

/// The settings the check ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Left key columns.
    pub left_key: Vec<String>,
    /// Right key columns.
    pub right_key: Vec<String>,
    /// Left location as written.
    pub left_location: String,
    /// Right location as written.
    pub right_location: String,
    /// Time zone of naive timestamps, left.
    pub left_timezone: String,
    /// Time zone of naive timestamps, right.
    pub right_timezone: String,
    /// Transform steps per side.
    pub left_transforms: usize,
    /// Transform steps per side.
    pub right_transforms: usize,
    /// Compared fields.
    pub compare: Vec<CompareSetting>,
    /// Duplicate policy.
    pub duplicates: crate::pipeline::DuplicatePolicy,
    /// Thresholds, absent ones as 0.
    pub fail_if: Thresholds,
    /// Sample rows per category.
    pub sample: usize,
}

/// Thresholds with defaults applied.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    /// See [`FailIf`].
    pub missing_in_crm: u64,
    /// See [`FailIf`].
    pub missing_in_s360: u64,
    /// See [`FailIf`].
    pub mismatched: u64,
    /// See [`FailIf`].
    pub duplicate_key: u64,
    /// See [`FailIf`].
    pub null_key: u64,
}

impl From<&FailIf> for Thresholds {
    fn from(f: &FailIf) -> Self {
        Self {
            missing_in_crm: f.missing_in_crm.unwrap_or(0),
            missing_in_s360: f.missing_in_s360.unwrap_or(0),
            mismatched: f.mismatched.unwrap_or(0),
            duplicate_key: f.duplicate_key.unwrap_or(0),
            null_key: f.null_key.unwrap_or(0),
        }
    }
}

impl Thresholds {
    fn get(&self, c: Category) -> u64 {
        match c {
            Category::DuplicateKey => self.duplicate_key,
            Category::Mismatched => self.mismatched,
            Category::MissingInCrm => self.missing_in_crm,
            Category::MissingInS360 => self.missing_in_s360,
            Category::NullKey => self.null_key,
        }
    }
}

/// `summary.json`: deterministic (no clock), everything needed to trust the result.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Who wrote it.
    pub tool: Tool,
    /// Pipeline name.
    pub pipeline: String,
    /// Whether every count is within its threshold.
    pub passed: bool,
    /// Categories whose count exceeds the threshold.
    pub exceeded: Vec<String>,
    /// Counts per category.
    pub counts: Counts,
    /// Row counts per side.
    pub sides: Sides,
    /// Per compared column.
    pub columns: Vec<ColumnStats>,
    /// Sums of amount fields per side.
    pub control_totals: Vec<ControlTotal>,
    /// Settings used.
    pub settings: Settings,
    /// Input files and fingerprints.
    pub inputs: Vec<InputFile>,
    /// Up to `sample` discrepancy rows per category.
    pub samples: BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>,
}

/// Build the summary of a finished comparison.
pub fn summarize(
    spec: &ReconcilePipeline,
    cmp: &Comparison,
    inputs: Vec<InputFile>,
    sample: usize,
) -> Summary {
    let counts = Counts {
        matched: cmp.matched,
        missing_in_crm: cmp.count(Category::MissingInCrm),
        missing_in_s360: cmp.count(Category::MissingInS360),
        mismatched: cmp.count(Category::Mismatched),
        duplicate_key: cmp.count(Category::DuplicateKey),
        null_key: cmp.count(Category::NullKey),
    };
    let thresholds = Thresholds::from(&spec.fail_if);
    let exceeded: Vec<String> = Category::ALL
        .iter()
        .filter(|c| counts.get(**c) > thresholds.get(**c))
        .map(|c| c.as_str().to_string())
        .collect();
    let mut samples = BTreeMap::new();
    for c in Category::ALL {
        let rows: Vec<_> = cmp
            .rows
            .iter()
            .filter(|r| r.category == c)
            .take(sample)
            .map(|r| sample_row(cmp, r))
            .collect();
        if !rows.is_empty() {
            samples.insert(c.as_str().to_string(), rows);
        }
    }
    let key = |s: &crate::pipeline::ReconcileSide| {
        s.source
            .key
            .as_ref()
            .map(|k| k.columns())
            .unwrap_or_default()
    };
    Summary {
        tool: Tool {
            name: "s360-sync",
            version: env!("CARGO_PKG_VERSION"),
        },
        pipeline: spec.name.clone(),
        passed: exceeded.is_empty(),
        exceeded,
        counts,
        sides: Sides {
            left: cmp.left_rows,
            right: cmp.right_rows,
        },
        columns: cmp.columns.clone(),
        control_totals: cmp.totals.clone(),
        settings: Settings {
            left_key: key(&spec.left),
            right_key: key(&spec.right),
            left_location: shown_location(&spec.left.source.location),
            right_location: shown_location(&spec.right.source.location),
            left_timezone: spec.left.source.timezone.clone(),
            right_timezone: spec.right.source.timezone.clone(),
            left_transforms: spec.left.transforms.len(),
            right_transforms: spec.right.transforms.len(),
            compare: spec
                .compare
                .iter()
                .zip(&cmp.fields)
                .map(|(w, f)| CompareSetting {
                    written: w.clone(),
                    applied: f.rule.clone(),
                })
                .collect(),
            duplicates: spec.duplicates,
            fail_if: thresholds,
            sample,
        },
        inputs,
        samples,
    }
}

fn sample_row(cmp: &Comparison, r: &Discrepancy) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    let text = |v: &Option<String>| {
        v.clone()
            .map_or(serde_json::Value::Null, serde_json::Value::from)
    };
    for (name, v) in cmp.key_names.iter().zip(&r.key) {
        m.insert(name.clone(), text(v));
    }
    m.insert("category".into(), r.category.as_str().into());
    if let Some(side) = r.side {
        m.insert("side".into(), side.into());
    }
    if let Some(c) = r.count {
        m.insert("count".into(), c.into());
    }
    if !r.fields.is_empty() {
        m.insert("fields".into(), r.fields.join(",").into());
    }
    for (i, f) in cmp.fields.iter().enumerate() {
        if r.left[i].is_some() {
            m.insert(format!("left_{}", f.field), text(&r.left[i]));
        }
        if r.right[i].is_some() {
            m.insert(format!("right_{}", f.field), text(&r.right[i]));
        }
    }
    m
}

/// A table of text cells (nulls as `None`).
struct Table {
    names: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

fn discrepancy_table(cmp: &Comparison) -> Table {
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

fn mismatch_table(cmp: &Comparison) -> Table {
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

/// Create a new report file, readable by its owner only on unix (reports
/// hold customers' data).
pub fn create_private(path: &Path) -> Result<std::fs::File, ReconcileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| ReconcileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a whole new report file (see [`create_private`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ReconcileError> {
    let mut file = create_private(path)?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|source| ReconcileError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn write_csv(path: &Path, t: &Table) -> Result<(), ReconcileError> {
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

fn write_parquet(path: &Path, t: &Table) -> Result<(), ReconcileError> {
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

/// Write every report file (see [`FILES`]) into the existing, empty folder `dir`.
pub fn write_files(dir: &Path, cmp: &Comparison, summary: &Summary) -> Result<(), ReconcileError> {
    let disc = discrepancy_table(cmp);
    let mism = mismatch_table(cmp);
    write_parquet(&dir.join("discrepancies.parquet"), &disc)?;
    write_csv(&dir.join("discrepancies.csv"), &disc)?;
    write_parquet(&dir.join("field_mismatches.parquet"), &mism)?;
    write_csv(&dir.join("field_mismatches.csv"), &mism)?;
    let html = super::html::render(summary, cmp);
    write_private(&dir.join("summary.html"), html.as_bytes())?;
    let json = serde_json::to_string_pretty(summary).map_err(|e| ReconcileError::Io {
        path: dir.join("summary.json"),
        source: e.into(),
    })?;
    write_private(&dir.join("summary.json"), (json + "\n").as_bytes())
}

/// A location as the summary records it: a URL without its user info and
/// with its query values masked (a presigned URL's signature, a token), its
/// path kept; a local path as it is.
pub(crate) fn shown_location(location: &str) -> String {
    let Ok(mut url) = url::Url::parse(location) else {
        return location.to_string();
    };
    if !url.has_host()
        || (url.username().is_empty() && url.password().is_none() && url.query().is_none())
    {
        return location.to_string();
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(n, _)| n.into_owned()).collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|n| (n.as_str(), "***")));
    }
    url.to_string()
}
