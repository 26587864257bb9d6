//! The sandbox's CRM export: one row per order line, SecuTix Salesforce field names, CSV or Parquet.
//!
//! Values are written the way such a CRM exports them (see
//! `crate::rehearsal::generate::crm_values`): ids as text, amounts in major units with two
//! decimals, dates as `YYYY-MM-DDTHH:MM:SS.000Z` in UTC with the
//! milliseconds lost. Records are read leniently: a field a pipeline renamed
//! or dropped gives an empty cell, never an error.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::SandboxError;
use super::record::{lines, sync_id, text};
use super::store;
use crate::formats::table::{self, CsvStyle, CsvWriter, TableError};
use crate::rehearsal::generate::CRM_COLUMNS;

/// One export row: a cell per `CRM_COLUMNS` entry, `None` when the record lacks the field.
type Row = Vec<Option<String>>;

/// First present field among dotted paths, e.g. `catalogCurrency.currencyCode`.
fn field<'a>(obj: &'a Map<String, Value>, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|p| {
        let mut parts = p.split('.');
        let mut v = obj.get(parts.next()?)?;
        for part in parts {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    })
}

fn integer(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Minor units as major units with two decimals (`40000` -> `400.00`).
fn major(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        minor.unsigned_abs() / 100,
        minor.unsigned_abs() % 100
    )
}

/// An amount cell: integers are minor units; anything else (already a
/// decimal, say) is kept as the record has it.
fn amount(v: Option<&Value>) -> Option<String> {
    integer(v).map(major).or_else(|| text(v))
}

/// Parse the date forms S-360 exports and our extraction write; offsets are honoured.
fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let s = match v {
        Value::Number(n) => return n.as_i64().and_then(DateTime::from_timestamp_millis),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // Without an offset the time is taken as UTC, as S-360 exports write it.
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// A CRM date: UTC, milliseconds dropped.
fn crm_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

fn date(v: Option<&Value>) -> Option<String> {
    let v = v?;
    parse_time(v).map(crm_time).or_else(|| text(Some(v)))
}

/// Sorts numbers numerically, before any non-numeric text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Num(i128),
    Text(String),
}

impl SortKey {
    fn of(s: Option<&str>) -> Self {
        let s = s.unwrap_or("");
        s.parse()
            .map(Self::Num)
            .unwrap_or_else(|_| Self::Text(s.to_string()))
    }
}

/// All export rows, sorted by order id then operation id.
fn rows(db: &Path) -> Result<Vec<Row>, SandboxError> {
    let conn = store::open_existing(db)?;
    let db_err = |source| SandboxError::Db {
        path: db.to_path_buf(),
        source,
    };
    // One read transaction: orders and line ids from the same snapshot.
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let orders = store::list_orders(&conn, db);
    let ids = store::line_ids(&conn).map_err(db_err);
    conn.execute_batch("COMMIT").map_err(db_err)?;
    let (orders, ids) = (orders?, ids?);
    let mut rows = Vec::new();
    for o in &orders {
        let Some(rec) = o.record.as_object() else {
            continue;
        };
        let order_id = text(field(rec, &["orderId"])).unwrap_or_else(|| o.key.clone());
        let stored = DateTime::parse_from_rfc3339(&o.stored_at)
            .map(|t| crm_time(t.with_timezone(&Utc)))
            .unwrap_or_else(|_| o.stored_at.clone());
        for (i, line) in lines(&o.record).into_iter().enumerate() {
            let sid = sync_id(line, i);
            let Some(id) = ids.get(&(o.key.clone(), sid.clone())) else {
                return Err(SandboxError::MissingLineId {
                    path: db.to_path_buf(),
                    key: o.key.clone(),
                    sync_id: sid,
                });
            };
            let total = field(line, &["totalAmount"])
                .and_then(|v| amount(Some(v)))
                .or_else(|| {
                    let q = integer(field(line, &["quantity"]))?;
                    let u = integer(field(line, &["unitPrice"]))?;
                    Some(major(q.checked_mul(u)?))
                });
            rows.push(vec![
                Some(format!("a0B5g{id:013}")),
                text(line.get("operationId")),
                Some(order_id.clone()),
                text(field(rec, &["contactReference"])),
                text(field(rec, &["orderType"])),
                date(field(rec, &["creationDateTime"])),
                total,
                text(field(
                    rec,
                    &["currencyCode", "catalogCurrency.currencyCode"],
                )),
                text(field(line, &["quantity"])),
                amount(field(line, &["unitPrice"])),
                text(field(rec, &["salesChannelCode"])),
                Some(stored.clone()),
            ]);
        }
    }
    // Ties (same order and operation id) keep the CRM id order: deterministic.
    rows.sort_by_cached_key(|r| {
        (
            SortKey::of(r[2].as_deref()),
            SortKey::of(r[1].as_deref()),
            r[0].clone(),
        )
    });
    Ok(rows)
}

/// Write the CRM export of the sandbox database `db` to `out` (blocking);
/// the format follows the extension (`.csv` or `.parquet`). Returns the rows
/// written. The file appears complete or not at all.
pub fn export(db: &Path, out: &Path) -> Result<usize, SandboxError> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if ext != "csv" && ext != "parquet" {
        return Err(SandboxError::UnsupportedFormat {
            path: out.to_path_buf(),
        });
    }
    let rows = rows(db)?;
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = if ext == "csv" {
        write_csv(&partial, &rows)
    } else {
        write_parquet(&partial, &rows)
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, out).map_err(|source| SandboxError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(rows.len())
}

fn create(path: &Path) -> Result<File, SandboxError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    File::create(path).map_err(|source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_csv(path: &Path, rows: &[Row]) -> Result<(), SandboxError> {
    let io = |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = CsvWriter::new(BufWriter::new(create(path)?), CsvStyle::data(b','));
    w.table(CRM_COLUMNS, rows).map_err(io)?;
    let w = w.finish().map_err(io)?;
    w.get_ref().sync_all().map_err(io)
}

fn write_parquet(path: &Path, rows: &[Row]) -> Result<(), SandboxError> {
    table::write_text_parquet(create(path)?, CRM_COLUMNS, rows).map_err(|e| match e {
        TableError::Arrow(source) => SandboxError::Arrow {
            path: path.to_path_buf(),
            source,
        },
        TableError::Parquet(source) => SandboxError::Parquet {
            path: path.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_are_utc_without_milliseconds() {
        let t = |s: &str| date(Some(&json!(s)));
        assert_eq!(
            t("2026-10-13T10:09:27.503+00:00").as_deref(),
            Some("2026-10-13T10:09:27.000Z")
        );
        assert_eq!(
            t("2026-10-13T12:09:27.503+02:00").as_deref(),
            Some("2026-10-13T10:09:27.000Z")
        );
        assert_eq!(
            t("2026-10-13 10:09:27").as_deref(),
            Some("2026-10-13T10:09:27.000Z")
        );
        assert_eq!(t("not a date").as_deref(), Some("not a date"));
    }

    #[test]
    fn amounts_are_major_units() {
        assert_eq!(amount(Some(&json!(40000))).as_deref(), Some("400.00"));
        assert_eq!(amount(Some(&json!("7550"))).as_deref(), Some("75.50"));
        assert_eq!(amount(Some(&json!(-5))).as_deref(), Some("-0.05"));
        assert_eq!(amount(Some(&json!("12.5"))).as_deref(), Some("12.5"));
        assert_eq!(amount(None), None);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let csv_field = |s| CsvStyle::data(b',').field(s).into_owned();
        assert_eq!(csv_field("B2C"), "B2C");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn numbers_sort_before_text_and_numerically() {
        let mut v = vec![
            SortKey::of(Some("b")),
            SortKey::of(Some("10")),
            SortKey::of(Some("9")),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![SortKey::Num(9), SortKey::Num(10), SortKey::Text("b".into())]
        );
    }
}
