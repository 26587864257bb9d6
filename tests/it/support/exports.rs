//! Sample exports written by the tests: S-360-like `;`-separated CSV files of orders and lines.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::fs::write;

/// The columns of the small orders exports: `orderId;orderState;saleAmount;lastModDateTime`.
pub const ORDERS: [&str; 4] = ["orderId", "orderState", "saleAmount", "lastModDateTime"];

/// A `;`-separated table: a header, then rows.
pub struct Table {
    text: String,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[&str]) -> Self {
        Table {
            text: format!("{}\n", columns.join(";")),
        }
    }

    /// Adds a row.
    pub fn row(mut self, cells: &[&dyn Display]) -> Self {
        self.push(cells);
        self
    }

    /// Adds a row in place.
    pub fn push(&mut self, cells: &[&dyn Display]) {
        let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        self.text.push_str(&cells.join(";"));
        self.text.push('\n');
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Writes it to `dir/exports/<name>`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join("exports").join(name);
        write(&p, &self.text);
        p
    }
}

/// Orders `(orderId, orderState, <third>, lastModDateTime)` in
/// `dir/exports/<name>`, the third column named `third` (`saleAmount`,
/// `operationCount`).
pub fn orders_with(
    dir: &Path,
    name: &str,
    third: &str,
    rows: &[(i64, &str, i64, &str)],
) -> PathBuf {
    let mut t = Table::new(&[ORDERS[0], ORDERS[1], third, ORDERS[3]]);
    for (id, state, n, at) in rows {
        t.push(&[id, state, n, at]);
    }
    t.write(dir, name)
}

/// Orders with [`ORDERS`] columns in `dir/exports/<name>`.
pub fn orders(dir: &Path, name: &str, rows: &[(i64, &str, i64, &str)]) -> PathBuf {
    orders_with(dir, name, ORDERS[2], rows)
}

/// `n` closed orders from `start`, amount ten times the id, modified at `at(id)`.
pub fn closed(
    n: i64,
    start: i64,
    at: impl Fn(i64) -> String,
) -> Vec<(i64, &'static str, i64, String)> {
    (start..start + n)
        .map(|i| (i, "CLOSED", i * 10, at(i)))
        .collect()
}

/// Rows of owned strings as the borrowed rows [`orders`] takes.
pub fn borrowed<'a>(
    v: &'a [(i64, &'static str, i64, String)],
) -> Vec<(i64, &'a str, i64, &'a str)> {
    v.iter()
        .map(|(a, b, c, d)| (*a, *b, *c, d.as_str()))
        .collect()
}

/// Order lines `(orderId, operationId, quantity)` in `dir/exports/<name>`.
pub fn lines(dir: &Path, name: &str, rows: &[(i64, i64, i64)]) -> PathBuf {
    let mut t = Table::new(&["orderId", "operationId", "quantity"]);
    for (order, op, qty) in rows {
        t.push(&[order, op, qty]);
    }
    t.write(dir, name)
}

/// `n` closed orders `1..=n` in `dir/exports/orders_1.csv`, all modified
/// at 2026-10-13 12:00:00, amount ten times the id.
pub fn noon_orders(dir: &Path, n: i64) -> PathBuf {
    let rows = closed(n, 1, |_| "2026-10-13 12:00:00".into());
    orders(dir, "orders_1.csv", &borrowed(&rows))
}
