//! `gen`: deterministic S-360 exports (orders, order lines) and a CRM export of them, at any size.
//!
//! The same seed and size always give the same bytes. The CRM export differs
//! from the S-360 one in representation only (one row per line, major units,
//! text ids, ISO dates with lost milliseconds) plus, on request, injected
//! discrepancies that are listed in `manifest.json`, the independent answer
//! key for tests of the consistency check.

mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::pipeline::Format;
use write::TableWriter;

/// What `s360-sync gen` writes.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Output folder (created if missing).
    pub out: PathBuf,
    /// Number of orders.
    pub orders: usize,
    /// Days the modifications are spread over; one orders file and one lines file per day.
    pub days: usize,
    /// First day, YYYY-MM-DD.
    pub start: NaiveDate,
    /// Seed of the generator; the same seed gives the same files.
    pub seed: u64,
    /// Format of the S-360 exports.
    pub format: GenFormat,
    /// Also write `crm/crm_orders.csv`, the CRM's export of the same orders.
    pub crm: bool,
    /// Discrepancies to inject into the CRM export (listed in manifest.json).
    pub discrepancies: usize,
}

/// Export formats `gen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    /// `;`-separated CSV, dates as `YYYY-MM-DD HH:MM:SS`.
    Csv,
    /// Parquet, timestamps as UTC milliseconds.
    Parquet,
    /// One JSON object per line.
    Ndjson,
}

impl From<GenFormat> for Format {
    fn from(f: GenFormat) -> Self {
        match f {
            GenFormat::Csv => Format::Csv,
            GenFormat::Parquet => Format::Parquet,
            GenFormat::Ndjson => Format::Ndjson,
        }
    }
}

/// Writing the files failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// File system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Encoding Parquet failed.
    #[error("{}: {message}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Cause.
        message: String,
    },
}

/// SplitMix64: tiny, fast, and stable across library versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

struct Product {
    id: i64,
    name: &'static str,
    code: &'static str,
    price: i64,
    performance: i64,
    event: i64,
}

const PRODUCTS: &[Product] = &[
    Product {
        id: 10228231101001,
        name: "Arena Suite Dining",
        code: "ASTDN",
        price: 20000,
        performance: 10228231109243,
        event: 10228231100500,
    },
    Product {
        id: 10228231101002,
        name: "Standing Ticket",
        code: "STAND",
        price: 4550,
        performance: 10228231109244,
        event: 10228231100500,
    },
    Product {
        id: 10228231101003,
        name: "Seated Category 1",
        code: "CAT1",
        price: 12000,
        performance: 10228231109245,
        event: 10228231100501,
    },
    Product {
        id: 10228231101004,
        name: "Seated Category 2",
        code: "CAT2",
        price: 7500,
        performance: 10228231109245,
        event: 10228231100501,
    },
    Product {
        id: 10228231101005,
        name: "Museum Day Pass",
        code: "MUSDP",
        price: 2500,
        performance: 10228231109300,
        event: 10228231100600,
    },
    Product {
        id: 10228231101006,
        name: "Concert Premium",
        code: "CPREM",
        price: 18990,
        performance: 10228231109310,
        event: 10228231100610,
    },
    Product {
        id: 10228231101007,
        name: "Parking",
        code: "PARK",
        price: 1500,
        performance: 10228231109243,
        event: 10228231100500,
    },
    Product {
        id: 10228231101008,
        name: "Season Pass Zürich",
        code: "SEASZH",
        price: 49000,
        performance: 10228231109400,
        event: 10228231100700,
    },
];

const AUDIENCES: &[&str] = &["Adult", "Child", "Senior", "Student"];

/// One generated order line.
#[derive(Debug, Clone)]
pub struct Line {
    /// S-360 operation id.
    pub operation_id: i64,
    /// Product index in the catalogue.
    product: usize,
    /// Number of tickets.
    pub quantity: i64,
    /// Unit price, minor units.
    pub unit_price: i64,
    audience: &'static str,
}

impl Line {
    /// Line total, minor units.
    pub fn total(&self) -> i64 {
        self.quantity * self.unit_price
    }
}

/// One generated order.
#[derive(Debug, Clone)]
pub struct Order {
    /// S-360 order id.
    pub order_id: i64,
    /// CLOSED or ABANDONED.
    pub state: &'static str,
    originator: &'static str,
    channel: &'static str,
    /// Contact reference (text in S-360's JSON, a number in exports).
    pub contact: i64,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Last modification time.
    pub modified: DateTime<Utc>,
    /// Currency code.
    pub currency: &'static str,
    /// Lines (none for abandoned orders).
    pub lines: Vec<Line>,
}

impl Order {
    /// Sale amount in minor units.
    pub fn amount(&self) -> i64 {
        self.lines.iter().map(Line::total).sum()
    }
}

/// The `i`-th of `n` orders spread over `days` days from `start`; pure.
pub fn order(seed: u64, i: usize, n: usize, days: usize, start: NaiveDate) -> Order {
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let days = days.max(1);
    let per_day = n.div_ceil(days).max(1);
    let day = (i / per_day) as i64;
    let slot = (i % per_day) as i64;
    let day_start = start
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or_default()
        + Duration::days(day);
    // Modification times increase with `i`, leaving room for equal seconds.
    let modified = day_start + Duration::milliseconds(slot * 86_400_000 / per_day as i64);
    let modified = modified - Duration::milliseconds(modified.timestamp_subsec_millis() as i64);
    let created = modified - Duration::seconds(rng.below(3 * 86_400) as i64);
    let abandoned = rng.below(10) == 0;
    let desk = rng.below(4) == 0;
    let order_id = 10_000_700_000 + i as i64;
    let lines = if abandoned {
        Vec::new()
    } else {
        (0..1 + rng.below(3) as usize)
            .map(|j| {
                let product = rng.below(PRODUCTS.len() as u64) as usize;
                Line {
                    operation_id: 10_228_310_000_000 + (i as i64) * 4 + j as i64,
                    product,
                    quantity: 1 + rng.below(4) as i64,
                    unit_price: PRODUCTS[product].price,
                    audience: AUDIENCES[rng.below(AUDIENCES.len() as u64) as usize],
                }
            })
            .collect()
    };
    Order {
        order_id,
        state: if abandoned { "ABANDONED" } else { "CLOSED" },
        originator: if desk { "DESK" } else { "TICKETSHOP" },
        channel: if desk { "BO" } else { "B2C" },
        contact: 3_346_000 + rng.below(50_000) as i64,
        created,
        modified,
        currency: if rng.below(3) == 0 { "EUR" } else { "CHF" },
        lines,
    }
}

fn s360_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn iso_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn major(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

fn create(path: &Path) -> Result<BufWriter<File>, GenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| GenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|source| GenError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Column names of the S-360 orders export.
pub const ORDER_COLUMNS: &[&str] = &[
    "orderId",
    "orderState",
    "orderType",
    "orderOriginator",
    "salesChannelCode",
    "contactReference",
    "creationDateTime",
    "lastModDateTime",
    "currencyCode",
    "saleAmount",
    "operationCount",
];

/// Column names of the S-360 order lines export.
pub const LINE_COLUMNS: &[&str] = &[
    "orderId",
    "operationId",
    "kind",
    "quantity",
    "basePrice",
    "unitPrice",
    "totalAmount",
    "productId",
    "product",
    "productCode",
    "performanceId",
    "eventId",
    "audienceSubCategory",
];

/// Column names of the CRM export (SecuTix's Salesforce field names).
pub const CRM_COLUMNS: &[&str] = &[
    "Id",
    "secutix__SyncId__c",
    "secutix__SecuTixOrderId__c",
    "secutix__ContactSTXNumber__c",
    "secutix__OrderType__c",
    "secutix__CreationDate__c",
    "secutix__Total_Amount__c",
    "secutix__CatalogCurrency__c",
    "secutix__Quantity__c",
    "secutix__Unit_price__c",
    "secutix__SalesChannel__c",
    "LastModifiedDate",
];

fn order_values(o: &Order) -> Vec<String> {
    vec![
        o.order_id.to_string(),
        o.state.into(),
        "SALE".into(),
        o.originator.into(),
        o.channel.into(),
        o.contact.to_string(),
        s360_time(o.created),
        s360_time(o.modified),
        o.currency.into(),
        o.amount().to_string(),
        o.lines.len().to_string(),
    ]
}

fn line_values(o: &Order, l: &Line) -> Vec<String> {
    let p = &PRODUCTS[l.product];
    vec![
        o.order_id.to_string(),
        l.operation_id.to_string(),
        "SINGLE_ENTRY".into(),
        l.quantity.to_string(),
        p.price.to_string(),
        l.unit_price.to_string(),
        l.total().to_string(),
        p.id.to_string(),
        p.name.into(),
        p.code.into(),
        p.performance.to_string(),
        p.event.to_string(),
        l.audience.into(),
    ]
}

/// Injected differences, by category, as order ids (the answer key).
#[derive(Debug, Default, serde::Serialize)]
pub struct Manifest {
    /// Orders written to S-360 exports.
    pub orders: usize,
    /// Orders left out of the CRM export.
    pub missing_in_crm: Vec<i64>,
    /// Orders only in the CRM export.
    pub missing_in_s360: Vec<i64>,
    /// Orders whose amount differs by one major unit in the CRM, by field.
    pub mismatched: BTreeMap<String, Vec<i64>>,
}

/// Write the files and return a one-line summary.
pub fn run(args: &GenOptions) -> Result<String, GenError> {
    let ext = match args.format {
        GenFormat::Csv => "csv",
        GenFormat::Parquet => "parquet",
        GenFormat::Ndjson => "ndjson",
    };
    let days = args.days.max(1);
    let per_day = args.orders.div_ceil(days).max(1);
    let mut manifest = Manifest {
        orders: args.orders,
        ..Default::default()
    };
    let crm_path = args.out.join("crm").join("crm_orders.csv");
    let mut crm = if args.crm {
        Some(TableWriter::new(&crm_path, CRM_COLUMNS, GenFormat::Csv)?)
    } else {
        None
    };
    // Injected discrepancies fall on evenly spaced orders, in a fixed rotation.
    let stride = args
        .orders
        .checked_div(args.discrepancies)
        .map_or(usize::MAX, |s| s.max(1));
    let mut crm_row = 0u64;
    let mut injected = 0usize;
    let mut files = 0;
    for day in 0..days {
        let date = args.start + Duration::days(day as i64);
        let orders_path = args.out.join(format!("orders_{date}.{ext}"));
        let lines_path = args.out.join(format!("order_lines_{date}.{ext}"));
        let mut ow = TableWriter::new(&orders_path, ORDER_COLUMNS, args.format)?;
        let mut lw = TableWriter::new(&lines_path, LINE_COLUMNS, args.format)?;
        files += 2;
        let lo = day * per_day;
        let hi = ((day + 1) * per_day).min(args.orders);
        for i in lo..hi {
            let o = order(args.seed, i, args.orders, days, args.start);
            ow.row(order_values(&o), &orders_path)?;
            for l in &o.lines {
                lw.row(line_values(&o, l), &lines_path)?;
            }
            let Some(crm) = crm.as_mut() else { continue };
            let mut kind = None;
            if args.discrepancies > 0
                && injected < args.discrepancies
                && i % stride == stride / 2
                && !o.lines.is_empty()
            {
                kind = Some(injected % 4);
                injected += 1;
            }
            match kind {
                Some(0) => {
                    manifest.missing_in_crm.push(o.order_id);
                    continue;
                }
                Some(3) => {
                    // An order the CRM has and S-360 does not.
                    let mut ghost = o.clone();
                    ghost.order_id = 19_000_000_000 + o.order_id % 1_000_000;
                    manifest.missing_in_s360.push(ghost.order_id);
                    for l in &ghost.lines {
                        crm_row += 1;
                        crm.row(crm_values(&ghost, l, crm_row, 0, None), &crm_path)?;
                    }
                }
                _ => {}
            }
            for (j, l) in o.lines.iter().enumerate() {
                crm_row += 1;
                let (delta, currency) = match kind {
                    Some(1) if j == 0 => (100, None),
                    Some(2) => (0, Some(if o.currency == "CHF" { "EUR" } else { "CHF" })),
                    _ => (0, None),
                };
                crm.row(crm_values(&o, l, crm_row, delta, currency), &crm_path)?;
            }
            match kind {
                Some(1) => manifest
                    .mismatched
                    .entry("amount".into())
                    .or_default()
                    .push(o.order_id),
                Some(2) => manifest
                    .mismatched
                    .entry("currency".into())
                    .or_default()
                    .push(o.order_id),
                _ => {}
            }
        }
        ow.finish(&orders_path)?;
        lw.finish(&lines_path)?;
    }
    if let Some(crm) = crm {
        crm.finish(&crm_path)?;
        files += 1;
        let path = args.out.join("crm").join("manifest.json");
        let mut w = create(&path)?;
        serde_json::to_writer_pretty(&mut w, &manifest).map_err(|e| GenError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        w.flush().map_err(|source| GenError::Io { path, source })?;
        files += 1;
    }
    Ok(format!(
        "wrote {} orders in {files} file(s) to {}",
        args.orders,
        args.out.display()
    ))
}

fn crm_values(o: &Order, l: &Line, row: u64, delta: i64, currency: Option<&str>) -> Vec<String> {
    vec![
        format!("a0B5g{:013}", row),
        l.operation_id.to_string(),
        o.order_id.to_string(),
        o.contact.to_string(),
        "SALE".into(),
        iso_time(o.created),
        major(l.total() + delta),
        currency.unwrap_or(o.currency).into(),
        l.quantity.to_string(),
        major(l.unit_price),
        o.channel.into(),
        iso_time(o.modified + Duration::seconds(23)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_deterministic_and_ordered_by_modification() {
        let start = NaiveDate::from_ymd_opt(2026, 10, 13).unwrap();
        let a = order(7, 5, 100, 2, start);
        let b = order(7, 5, 100, 2, start);
        assert_eq!(a.order_id, b.order_id);
        assert_eq!(a.amount(), b.amount());
        let mut last = order(7, 0, 100, 2, start).modified;
        for i in 1..100 {
            let o = order(7, i, 100, 2, start);
            assert!(o.modified >= last);
            last = o.modified;
            assert!(o.created <= o.modified);
            assert_eq!(o.state == "ABANDONED", o.lines.is_empty());
        }
    }

    #[test]
    fn major_units_keep_two_digits() {
        assert_eq!(major(40000), "400.00");
        assert_eq!(major(12550), "125.50");
        assert_eq!(major(5), "0.05");
        assert_eq!(major(-150), "-1.50");
    }
}
