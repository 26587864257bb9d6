//! The state store: one SQLite database per sync pipeline (cursor, files seen, fingerprint ledger, outbox, dead letters, runs).
//!
//! Contract: every method that changes state does so in one transaction, so
//! a crash leaves either the old or the new state. Delivery progress is only
//! recorded from an acknowledged (or dead-lettered) batch; the outbox keeps
//! everything else. Blocking: call from a blocking thread.

pub mod lock;
mod open;
mod outbox;
mod schema;
mod staging;

pub use open::{APPLICATION_ID, create_private_dir, make_private};
pub use staging::Staging;
use staging::offer_in;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

/// A state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite reported an error.
    #[error("state database {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The folder for the database could not be created.
    #[error("state folder {}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file at the state path is not this pipeline's state database.
    #[error("state database {}: {why}; nothing was changed (point `state.path` at this pipeline's own database, or at a new file)", path.display())]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// What it is instead.
        why: String,
    },
    /// The database was written by a newer build.
    #[error("state database {} has schema version {found}, this build knows up to {known}: upgrade s360-sync", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: usize,
        /// Latest version known.
        known: usize,
    },
}

/// Why an order is on the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Detected as new or changed by a run.
    Change,
    /// Flagged by `import flag`.
    Import,
    /// Flagged by `repair` after a consistency check.
    Repair,
    /// A dead letter replayed.
    Replay,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Change => "change",
            Self::Import => "import",
            Self::Repair => "repair",
            Self::Replay => "replay",
        }
    }
}

/// A record offered to the outbox.
#[derive(Debug, Clone)]
pub struct Change {
    /// Order key, as text.
    pub key: String,
    /// Cursor value, UTC milliseconds.
    pub modified_ms: Option<i64>,
    /// Content hash of `record`.
    pub fingerprint: String,
    /// The order as a JSON object.
    pub record: String,
    /// Not to be sent before this instant (UTC ms): the order waits for
    /// lines that have not arrived yet. `None`: sendable now.
    pub hold_until_ms: Option<i64>,
}

/// What offering a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A new outbox entry.
    Queued,
    /// Replaced the content of a queued, never-sent entry of the same order.
    Coalesced,
    /// The same content is already queued.
    AlreadyQueued,
    /// The CRM already has this content (or it is a dead letter): nothing to do.
    Unchanged,
    /// A newer version of the order is already known: this one is ignored.
    Stale,
}

/// An outbox entry ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Queue position.
    pub seq: i64,
    /// Order key.
    pub key: String,
    /// Version sent with the order.
    pub version: i64,
    /// The order as JSON.
    pub record: String,
    /// Webhook id of the batch it was last sent in, if any.
    pub batch_id: Option<String>,
    /// It was held for its lines and the wait ran out: it goes out with the
    /// lines that have arrived, not all of them.
    pub lines_incomplete: bool,
}

/// The columns [`OutboxEntry::from_row`] reads, in order.
const ENTRY_COLUMNS: &str = "seq, key, version, record, batch_id, hold_until_ms";

impl OutboxEntry {
    /// From a row of `SELECT` [`ENTRY_COLUMNS`].
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            key: r.get(1)?,
            version: r.get(2)?,
            record: r.get(3)?,
            batch_id: r.get(4)?,
            lines_incomplete: r.get::<_, Option<i64>>(5)?.is_some(),
        })
    }

    fn held_until(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<i64>> {
        r.get(5)
    }
}

/// A file recorded as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Size in bytes.
    pub size: u64,
    /// ETag, when the store has one.
    pub etag: Option<String>,
    /// Modification time, UTC ms.
    pub modified_ms: i64,
}

/// A file as recorded when it was last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    /// What the listing said of it then.
    pub record: FileRecord,
    /// When it was read, UTC ms; `None` when the stored time does not parse.
    pub read_at_ms: Option<i64>,
}

/// A dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Id for `replay`.
    pub id: i64,
    /// Order key.
    pub key: String,
    /// Version that was refused.
    pub version: i64,
    /// HTTP status, if there was one.
    pub status: Option<u16>,
    /// Why.
    pub reason: String,
    /// When.
    pub at: String,
}

/// One past run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// `run`, `import`, `dry-run`.
    pub kind: String,
    /// Start time.
    pub started_at: String,
    /// End time.
    pub finished_at: String,
    /// `ok`, `incomplete`, `stopped`, `failed`.
    pub outcome: String,
    /// The run summary as JSON.
    pub summary: serde_json::Value,
}

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Cursor `(modified_at, key)`.
    pub cursor: Option<(String, String)>,
    /// Orders queued.
    pub backlog: u64,
    /// Of which in flight (sent, not yet acknowledged).
    pub in_flight: u64,
    /// Of which held until their lines arrive (or `lines.wait` runs out).
    pub waiting_for_lines: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Orders the CRM acknowledged at least once.
    pub delivered_orders: u64,
    /// Files read.
    pub files_read: u64,
    /// Recent runs, newest first.
    pub last_runs: Vec<RunRecord>,
    /// When a run last ended `ok` (RFC 3339), however long ago: what an
    /// alert on the time since the last success needs after many failures.
    pub last_success: Option<String>,
}

/// The state database of one pipeline.
#[derive(Debug)]
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Format UTC milliseconds as RFC 3339.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

impl StateStore {
    /// The cursor `(modified_ms, key)`.
    pub fn cursor(&self) -> Result<Option<(i64, String)>, StateError> {
        self.conn
            .query_row(
                "SELECT modified_ms, key FROM cursor WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())
    }

    /// Files already read for `source`, by path.
    pub fn known_files(&self, source: &str) -> Result<HashMap<String, KnownFile>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, etag, modified_ms, read_at FROM files WHERE source = ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([source], |r| {
                let read_at: String = r.get(4)?;
                Ok((
                    r.get::<_, String>(0)?,
                    KnownFile {
                        record: FileRecord {
                            size: r.get::<_, i64>(1)? as u64,
                            etag: r.get(2)?,
                            modified_ms: r.get(3)?,
                        },
                        read_at_ms: chrono::DateTime::parse_from_rfc3339(&read_at)
                            .ok()
                            .map(|t| t.timestamp_millis()),
                    },
                ))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Start staging detected changes; nothing is visible until [`Staging::commit`].
    pub fn stage(&mut self) -> Result<Staging<'_>, StateError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| StateError::Sqlite {
                path: path.clone(),
                source,
            })?;
        Ok(Staging { tx, path })
    }

    /// Append a run to the history.
    pub fn record_run(
        &self,
        kind: &str,
        started_at: &str,
        outcome: &str,
        summary: &serde_json::Value,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO runs (kind, started_at, finished_at, outcome, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, started_at, now(), outcome, summary.to_string()],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Cursor, backlog, dead letters and the last `runs` runs.
    pub fn status(&self, runs: usize) -> Result<Status, StateError> {
        let count = |sql: &str| -> Result<u64, StateError> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(self.err())
        };
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, started_at, finished_at, outcome, summary FROM runs ORDER BY id DESC LIMIT ?1")
            .map_err(self.err())?;
        let last_runs = stmt
            .query_map([runs as i64], |r| {
                let summary: String = r.get(5)?;
                Ok(RunRecord {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    started_at: r.get(2)?,
                    finished_at: r.get(3)?,
                    outcome: r.get(4)?,
                    summary: serde_json::from_str(&summary).unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        Ok(Status {
            cursor: self.cursor()?.map(|(ms, k)| (format_ms(ms), k)),
            backlog: count("SELECT COUNT(*) FROM outbox")?,
            in_flight: count("SELECT COUNT(*) FROM outbox WHERE batch_id IS NOT NULL")?,
            waiting_for_lines: self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM outbox WHERE batch_id IS NULL AND hold_until_ms > ?1",
                    [chrono::Utc::now().timestamp_millis()],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(self.err())?,
            dead_letters: count("SELECT COUNT(*) FROM dead_letters")?,
            delivered_orders: count("SELECT COUNT(*) FROM ledger")?,
            files_read: count("SELECT COUNT(*) FROM files")?,
            last_runs,
            last_success: self
                .conn
                .query_row(
                    "SELECT MAX(finished_at) FROM runs WHERE outcome = 'ok'",
                    [],
                    |r| r.get::<_, Option<String>>(0),
                )
                .map_err(self.err())?,
        })
    }
}

#[cfg(test)]
mod tests;
