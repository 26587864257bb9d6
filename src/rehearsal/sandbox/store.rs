//! SQLite store of the sandbox: newest order versions, the CRM's line ids, and the request log.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::SandboxError;
use super::record::{lines, sync_id};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    key       TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    record    TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
-- The CRM's own id of each line it ever stored: stable across new versions.
CREATE TABLE IF NOT EXISTS crm_lines (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_key TEXT NOT NULL,
    sync_id   TEXT NOT NULL,
    UNIQUE (order_key, sync_id)
);
CREATE TABLE IF NOT EXISTS requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  TEXT,
    received_at TEXT NOT NULL,
    status      INTEGER NOT NULL,
    orders      INTEGER NOT NULL,
    accepted    INTEGER NOT NULL,
    stale       INTEGER NOT NULL
);
";

/// One order as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOrder {
    /// The sync key the order was sent with.
    pub key: String,
    /// The newest version received.
    pub version: i64,
    /// The record, as received.
    pub record: serde_json::Value,
    /// When the sandbox stored this version (UTC, ISO 8601 with milliseconds).
    pub stored_at: String,
}

/// Totals of the request log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Webhook requests by HTTP status answered (`"200"`, `"503"`, ...).
    pub requests: BTreeMap<String, u64>,
    /// Orders stored (new keys or higher versions).
    pub accepted: u64,
    /// Orders ignored because their version was not newer.
    pub stale: u64,
    /// Distinct `webhook-id`s over all requests.
    pub distinct_webhook_ids: u64,
    /// Distinct `webhook-id`s of acknowledged (2xx) requests.
    pub distinct_webhook_ids_ok: u64,
    /// Orders held now.
    pub orders: u64,
}

/// An order of an incoming request, already checked for shape.
#[derive(Debug, Clone)]
pub(super) struct Incoming {
    pub key: String,
    pub version: i64,
    pub record: serde_json::Value,
}

/// One line of the request log.
#[derive(Debug, Clone)]
pub(super) struct RequestLog {
    pub webhook_id: Option<String>,
    pub received_at: String,
    pub status: u16,
    pub orders: usize,
}

/// What a stored request changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct Outcome {
    pub accepted: u64,
    pub stale: u64,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> SandboxError + '_ {
    move |source| SandboxError::Db {
        path: path.to_path_buf(),
        source,
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    // A 2xx promises the orders are on disk, so no relaxed syncing.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)
}

/// Open (creating if missing) the sandbox database.
pub(super) fn open(path: &Path) -> Result<Connection, SandboxError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(db_err(path))?;
    configure(&conn).map_err(db_err(path))?;
    Ok(conn)
}

/// Open an existing sandbox database; a missing file is an error, not a new empty store.
pub(super) fn open_existing(path: &Path) -> Result<Connection, SandboxError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err(path))?;
    configure(&conn).map_err(db_err(path))?;
    Ok(conn)
}

/// Upsert the orders of one request and log it, all in one transaction.
///
/// An order is stored when its key is new or its version is higher than the
/// stored one; otherwise it counts as stale. Orders are applied in request
/// order, so a key repeated within a request behaves as if sent twice.
pub(super) fn store_request(
    conn: &mut Connection,
    orders: &[Incoming],
    log: &RequestLog,
) -> rusqlite::Result<Outcome> {
    // IMMEDIATE: take the write lock up front instead of failing on upgrade.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Outcome {
        accepted: 0,
        stale: 0,
    };
    for o in orders {
        let current: Option<i64> = tx
            .query_row("SELECT version FROM orders WHERE key = ?1", [&o.key], |r| {
                r.get(0)
            })
            .optional()?;
        if current.is_some_and(|v| v >= o.version) {
            out.stale += 1;
            continue;
        }
        tx.execute(
            "INSERT INTO orders (key, version, record, stored_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET version = excluded.version,
                 record = excluded.record, stored_at = excluded.stored_at",
            params![o.key, o.version, o.record.to_string(), log.received_at],
        )?;
        for (i, line) in lines(&o.record).iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO crm_lines (order_key, sync_id) VALUES (?1, ?2)",
                params![o.key, sync_id(line, i)],
            )?;
        }
        out.accepted += 1;
    }
    insert_log(&tx, log, out)?;
    tx.commit()?;
    Ok(out)
}

/// Log a request that stored nothing.
pub(super) fn log_request(conn: &Connection, log: &RequestLog) -> rusqlite::Result<()> {
    insert_log(
        conn,
        log,
        Outcome {
            accepted: 0,
            stale: 0,
        },
    )
}

fn insert_log(conn: &Connection, log: &RequestLog, out: Outcome) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO requests (webhook_id, received_at, status, orders, accepted, stale)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            log.webhook_id,
            log.received_at,
            log.status,
            log.orders as i64,
            out.accepted as i64,
            out.stale as i64
        ],
    )?;
    Ok(())
}

/// All orders, by key.
pub(super) fn list_orders(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<StoredOrder>, SandboxError> {
    let mut stmt = conn
        .prepare("SELECT key, version, record, stored_at FROM orders ORDER BY key")
        .map_err(db_err(path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(db_err(path))?;
    let mut out = Vec::new();
    for row in rows {
        let (key, version, record, stored_at) = row.map_err(db_err(path))?;
        let record = serde_json::from_str(&record).map_err(|source| SandboxError::BadRecord {
            path: path.to_path_buf(),
            key: key.clone(),
            source,
        })?;
        out.push(StoredOrder {
            key,
            version,
            record,
            stored_at,
        });
    }
    Ok(out)
}

/// CRM ids of all stored lines, by (order key, sync id).
pub(super) fn line_ids(conn: &Connection) -> rusqlite::Result<BTreeMap<(String, String), i64>> {
    let mut stmt = conn.prepare("SELECT order_key, sync_id, id FROM crm_lines")?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.collect()
}

/// Totals of the request log.
pub(super) fn stats(conn: &Connection) -> rusqlite::Result<Stats> {
    let mut stats = Stats::default();
    let mut stmt =
        conn.prepare("SELECT status, COUNT(*) FROM requests GROUP BY status ORDER BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        stats.requests.insert(status.to_string(), n as u64);
    }
    let (accepted, stale, ids, ids_ok): (i64, i64, i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(accepted), 0), COALESCE(SUM(stale), 0), COUNT(DISTINCT webhook_id),
                (SELECT COUNT(DISTINCT webhook_id) FROM requests WHERE status BETWEEN 200 AND 299)
         FROM requests",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    stats.accepted = accepted as u64;
    stats.stale = stale as u64;
    stats.distinct_webhook_ids = ids as u64;
    stats.distinct_webhook_ids_ok = ids_ok as u64;
    stats.orders =
        conn.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get::<_, i64>(0))? as u64;
    Ok(stats)
}
