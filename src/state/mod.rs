//! The state store: one SQLite database per sync pipeline (cursor, files seen, fingerprint ledger, outbox, dead letters, runs).
//!
//! Contract: every method that changes state does so in one transaction, so
//! a crash leaves either the old or the new state. Delivery progress is only
//! recorded from an acknowledged (or dead-lettered) batch; the outbox keeps
//! everything else. Blocking: call from a blocking thread.

pub mod lock;
mod schema;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

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

/// SQLite `application_id` of s360-sync state databases ("S360").
pub const APPLICATION_ID: i32 = 0x5333_3630;

/// Create `dir` and its missing parents, readable by the owner only (the
/// state holds customers' orders).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Make a file the tool wrote readable by its owner only.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl StateStore {
    /// Open (creating and migrating if needed) the state database of
    /// `pipeline` at `path`. A file that is not an s360-sync state database,
    /// or is another pipeline's, is refused before anything is written to it.
    pub fn open(path: &Path, pipeline: &str) -> Result<Self, StateError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            create_private_dir(dir).map_err(|source| StateError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let err = |source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            // Created here, with the owner-only mode SQLite then gives its
            // -wal and -shm files too.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let conn = Connection::open(path).map_err(err)?;
        identify(&conn, path, pipeline)?;
        make_private(path).map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        store.stamp(pipeline)?;
        Ok(store)
    }

    /// Open an existing database without creating it; `None` if absent.
    pub fn open_existing(path: &Path, pipeline: &str) -> Result<Option<Self>, StateError> {
        if !path.exists() {
            return Ok(None);
        }
        Self::open(path, pipeline).map(Some)
    }

    /// Record the owner: the `application_id` and the pipeline's name.
    fn stamp(&mut self, pipeline: &str) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        // Written only when missing: a run that changes nothing leaves the
        // file's bytes as they were.
        let app: i32 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(err)?;
        if app != APPLICATION_ID {
            self.conn
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
        }
        let owner: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'pipeline'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if owner.is_none() {
            self.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('pipeline', ?1)",
                    [pipeline],
                )
                .map_err(err)?;
        }
        Ok(())
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(err)? as usize;
        if version > schema::MIGRATIONS.len() {
            return Err(StateError::TooNew {
                path,
                found: version,
                known: schema::MIGRATIONS.len(),
            });
        }
        if version == schema::MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(err)?;
        for m in &schema::MIGRATIONS[version..] {
            tx.execute_batch(m).map_err(err)?;
        }
        tx.pragma_update(None, "user_version", schema::MIGRATIONS.len() as i64)
            .map_err(err)?;
        tx.commit().map_err(err)
    }

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
    pub fn known_files(&self, source: &str) -> Result<HashMap<String, FileRecord>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, etag, modified_ms FROM files WHERE source = ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    FileRecord {
                        size: r.get::<_, i64>(1)? as u64,
                        etag: r.get(2)?,
                        modified_ms: r.get(3)?,
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

    /// The next batch to send: first a batch left in flight by an earlier
    /// attempt (same members, so the same webhook id), else up to `max`
    /// queued entries in queue order. Keys in `busy` (in flight elsewhere in
    /// this process) and batches in `busy_batches` are skipped, and so are
    /// entries held for their lines past `now_ms`. A batch left in flight can
    /// be larger than `max` (the limits were lowered since it was sent): the
    /// caller splits it with [`StateStore::rebatch`].
    pub fn next_batch(
        &self,
        max: usize,
        busy: &HashSet<String>,
        busy_batches: &HashSet<String>,
        now_ms: i64,
    ) -> Result<Vec<OutboxEntry>, StateError> {
        let map = OutboxEntry::from_row;
        // Batches in flight, oldest first.
        let mut stmt = self
            .conn
            .prepare(
                "SELECT batch_id FROM outbox WHERE batch_id IS NOT NULL
                 GROUP BY batch_id ORDER BY MIN(seq)",
            )
            .map_err(self.err())?;
        let batch_ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        for id in batch_ids {
            if busy_batches.contains(&id) {
                continue;
            }
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM outbox WHERE batch_id = ?1 ORDER BY seq"
                ))
                .map_err(self.err())?;
            let entries: Vec<OutboxEntry> = stmt
                .query_map([&id], map)
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?;
            if entries.iter().any(|e| busy.contains(&e.key)) {
                continue;
            }
            return Ok(entries);
        }
        // Keys in flight anywhere must wait: a newer version never overtakes.
        let mut stmt = self
            .conn
            // The batch index keeps this proportional to what is in flight,
            // not to the backlog.
            .prepare("SELECT key FROM outbox INDEXED BY outbox_batch WHERE batch_id IS NOT NULL")
            .map_err(self.err())?;
        let in_flight: HashSet<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        // `+batch_id` keeps SQLite from using the batch index here: walking
        // the table in `seq` order stops after one batch, while the index
        // would sort the whole backlog on every call.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM outbox WHERE +batch_id IS NULL ORDER BY seq"
            ))
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        let mut out = Vec::with_capacity(max);
        let mut keys = HashSet::new();
        while out.len() < max {
            let Some(row) = rows.next().map_err(self.err())? else {
                break;
            };
            let e = map(row).map_err(self.err())?;
            let held = OutboxEntry::held_until(row)
                .map_err(self.err())?
                .is_some_and(|until| until > now_ms);
            if held
                || busy.contains(&e.key)
                || in_flight.contains(&e.key)
                || !keys.insert(e.key.clone())
            {
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Mark entries as sent in batch `batch_id` before sending, so a crash
    /// resends exactly this batch with the same id.
    pub fn mark_in_flight(&mut self, seqs: &[i64], batch_id: &str) -> Result<(), StateError> {
        self.set_batch(
            "UPDATE outbox SET batch_id = ?2, attempts = attempts + 1 WHERE seq = ?1",
            seqs,
            batch_id,
        )
    }

    /// Give entries in flight a new batch id without counting an attempt:
    /// how a batch left in flight that no longer fits the limits is split.
    /// Each part gets the id of its own members, so a crash during the split
    /// or after it resends each part with one stable id.
    pub fn rebatch(&mut self, seqs: &[i64], batch_id: &str) -> Result<(), StateError> {
        self.set_batch(
            "UPDATE outbox SET batch_id = ?2 WHERE seq = ?1 AND batch_id IS NOT NULL",
            seqs,
            batch_id,
        )
    }

    /// Run `update` (parameters: seq, batch id) for each of `seqs`, in one
    /// transaction.
    fn set_batch(&mut self, update: &str, seqs: &[i64], batch_id: &str) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx.prepare(update).map_err(err)?;
            for s in seqs {
                stmt.execute(params![s, batch_id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Queued orders that could be sent at `now_ms` (not held for lines).
    pub fn sendable(&self, now_ms: i64) -> Result<u64, StateError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE hold_until_ms IS NULL OR hold_until_ms <= ?1
                    OR batch_id IS NOT NULL",
                [now_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// Record a batch's outcome in one transaction: acknowledged entries move
    /// to the ledger, refused ones to the dead letters; the rest stay queued.
    pub fn record_outcome(
        &mut self,
        acked: &[i64],
        dead: &[(i64, Option<u16>, String)],
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let at = now();
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut ack = tx
                .prepare(
                    "INSERT INTO ledger (key, fingerprint, version, modified_ms, acked_at)
                     SELECT key, fingerprint, version, modified_ms, ?2 FROM outbox WHERE seq = ?1
                     ON CONFLICT (key) DO UPDATE SET
                        fingerprint = excluded.fingerprint, version = excluded.version,
                        modified_ms = excluded.modified_ms, acked_at = excluded.acked_at
                     WHERE excluded.version >= ledger.version",
                )
                .map_err(err)?;
            let mut del = tx
                .prepare("DELETE FROM outbox WHERE seq = ?1")
                .map_err(err)?;
            for s in acked {
                ack.execute(params![s, at]).map_err(err)?;
                del.execute([s]).map_err(err)?;
            }
            let mut dl = tx
                .prepare(
                    "INSERT INTO dead_letters (key, version, fingerprint, modified_ms, record, status, reason, at)
                     SELECT key, version, fingerprint, modified_ms, record, ?2, ?3, ?4 FROM outbox WHERE seq = ?1",
                )
                .map_err(err)?;
            for (s, status, reason) in dead {
                dl.execute(params![s, status, reason, at]).map_err(err)?;
                del.execute([s]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Orders queued (including in flight).
    pub fn backlog(&self) -> Result<u64, StateError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// All dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, key, version, status, reason, at FROM dead_letters ORDER BY id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    version: r.get(2)?,
                    status: r.get(3)?,
                    reason: r.get(4)?,
                    at: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Put dead letters (all, or those with the given ids) back on the outbox
    /// with a new version. Returns how many were queued.
    pub fn replay_dead_letters(&mut self, ids: Option<&[i64]>) -> Result<usize, StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let chosen: Vec<i64> = match ids {
            Some(ids) => ids.to_vec(),
            None => {
                let mut stmt = tx
                    .prepare("SELECT id FROM dead_letters ORDER BY id")
                    .map_err(err)?;
                stmt.query_map([], |r| r.get(0))
                    .map_err(err)?
                    .collect::<Result<_, _>>()
                    .map_err(err)?
            }
        };
        let mut n = 0;
        let at = now();
        for id in chosen {
            let row: Option<(String, String, Option<i64>, String)> = tx
                .query_row(
                    "SELECT key, fingerprint, modified_ms, record FROM dead_letters WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(err)?;
            let Some((key, fingerprint, modified_ms, record)) = row else {
                continue;
            };
            let change = Change {
                key,
                modified_ms,
                fingerprint,
                record,
                hold_until_ms: None,
            };
            // Offered while the dead letter still exists, so the new version
            // is above the refused one; a newer delivered version wins.
            if offer_in(&tx, &change, Reason::Replay, true, &at).map_err(err)? == Offer::Queued {
                n += 1;
            }
            tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(n)
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
        })
    }
}

/// Tell a new file, or an s360-sync state database of `pipeline` (stamped,
/// or from a build before the stamp), from anything else, by reading only: a
/// refused file is left exactly as it was.
fn identify(conn: &Connection, path: &Path, pipeline: &str) -> Result<(), StateError> {
    let foreign = |why: String| StateError::Foreign {
        path: path.to_path_buf(),
        why,
    };
    let read = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            foreign("the file is not an SQLite database".into())
        }
        _ => StateError::Sqlite {
            path: path.to_path_buf(),
            source: e,
        },
    };
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(read)?;
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .map_err(read)?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    if app != APPLICATION_ID && app != 0 {
        return Err(foreign(format!(
            "the file belongs to another program (SQLite application_id {app:#x})"
        )));
    }
    if tables.is_empty() {
        return Ok(());
    }
    let has = |t: &str| tables.iter().any(|n| n == t);
    if !(has("meta") && has("outbox") && has("ledger") && has("cursor")) {
        return Err(foreign(format!(
            "the file is an SQLite database of another program (tables: {})",
            tables.join(", ")
        )));
    }
    let owner: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'pipeline'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(read)?;
    match owner {
        Some(owner) if owner != pipeline => Err(foreign(format!(
            "it is the state of pipeline `{owner}`, not of `{pipeline}`"
        ))),
        _ => Ok(()),
    }
}

/// Changes staged in one transaction: all become visible at `commit`, or none.
pub struct Staging<'a> {
    tx: Transaction<'a>,
    path: PathBuf,
}

impl Staging<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Offer a record to the outbox. With `force`, an order the CRM already
    /// has with this content is queued again (repair, forced import).
    pub fn offer(&self, change: &Change, reason: Reason, force: bool) -> Result<Offer, StateError> {
        offer_in(&self.tx, change, reason, force, &now()).map_err(self.err())
    }

    /// Remember that a file was read.
    pub fn file_read(
        &self,
        source: &str,
        path: &str,
        record: &FileRecord,
        rows: u64,
    ) -> Result<(), StateError> {
        self.tx
            .execute(
                "INSERT INTO files (source, path, size, etag, modified_ms, rows, read_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (source, path) DO UPDATE SET size = excluded.size, etag = excluded.etag,
                    modified_ms = excluded.modified_ms, rows = excluded.rows, read_at = excluded.read_at",
                params![source, path, record.size as i64, record.etag, record.modified_ms, rows as i64, now()],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// The orders file each of `keys` was last read from, by path.
    pub fn order_files(
        &self,
        keys: &HashSet<String>,
    ) -> Result<HashMap<String, HashSet<String>>, StateError> {
        let mut stmt = self
            .tx
            .prepare("SELECT path FROM order_files WHERE key = ?1")
            .map_err(self.err())?;
        let mut out: HashMap<String, HashSet<String>> = HashMap::new();
        for key in keys {
            let path: Option<String> = stmt
                .query_row([key], |r| r.get(0))
                .optional()
                .map_err(self.err())?;
            if let Some(path) = path {
                out.entry(path).or_default().insert(key.clone());
            }
        }
        Ok(out)
    }

    /// Remember the orders file a key was read from (the newest row wins),
    /// so lines that arrive later can find the order again.
    pub fn order_file(&self, key: &str, path: &str, modified_ms: i64) -> Result<(), StateError> {
        self.tx
            .execute(
                "INSERT INTO order_files (key, path, modified_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET path = excluded.path, modified_ms = excluded.modified_ms
                 WHERE excluded.modified_ms >= order_files.modified_ms",
                params![key, path, modified_ms],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// The cursor `(modified_ms, key)` as staged.
    pub fn cursor(&self) -> Result<Option<(i64, String)>, StateError> {
        self.tx
            .query_row(
                "SELECT modified_ms, key FROM cursor WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())
    }

    /// Move the cursor forward (never back).
    pub fn advance_cursor(&self, modified_ms: i64, key: &str) -> Result<(), StateError> {
        self.tx
            .execute(
                "INSERT INTO cursor (id, modified_ms, key) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET modified_ms = excluded.modified_ms, key = excluded.key
                 WHERE (excluded.modified_ms, excluded.key) > (cursor.modified_ms, cursor.key)",
                params![modified_ms, key],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Up to `max` queued entries in sending order, as staged (for dry runs).
    pub fn peek(&self, max: usize) -> Result<Vec<OutboxEntry>, StateError> {
        let mut stmt = self
            .tx
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM outbox ORDER BY batch_id IS NULL, seq LIMIT ?1"
            ))
            .map_err(self.err())?;
        let rows = stmt
            .query_map([max as i64], OutboxEntry::from_row)
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Make everything staged visible.
    pub fn commit(self) -> Result<(), StateError> {
        let path = self.path.clone();
        self.tx
            .commit()
            .map_err(|source| StateError::Sqlite { path, source })
    }
}

fn offer_in(
    tx: &Transaction<'_>,
    c: &Change,
    reason: Reason,
    force: bool,
    at: &str,
) -> Result<Offer, rusqlite::Error> {
    // An older version of an order never replaces or follows a newer one.
    let newest_known: Option<i64> = tx.query_row(
        "SELECT MAX(m) FROM (
            SELECT MAX(modified_ms) AS m FROM outbox WHERE key = ?1
            UNION ALL SELECT modified_ms FROM ledger WHERE key = ?1)",
        [&c.key],
        |r| r.get(0),
    )?;
    if let (Some(known), Some(this)) = (newest_known, c.modified_ms)
        && this < known
    {
        return Ok(Offer::Stale);
    }
    let pending: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, fingerprint FROM outbox WHERE key = ?1 AND batch_id IS NULL",
            [&c.key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((seq, fp)) = pending {
        if fp == c.fingerprint {
            return Ok(Offer::AlreadyQueued);
        }
        tx.execute(
            // A hold only ends earlier: lines arrived (NULL), or the first
            // wait runs out.
            "UPDATE outbox SET record = ?2, fingerprint = ?3, modified_ms = ?4, reason = ?5,
                hold_until_ms = CASE WHEN ?6 IS NULL THEN NULL
                                     ELSE MIN(COALESCE(hold_until_ms, ?6), ?6) END
             WHERE seq = ?1",
            params![
                seq,
                c.record,
                c.fingerprint,
                c.modified_ms,
                reason.as_str(),
                c.hold_until_ms
            ],
        )?;
        return Ok(Offer::Coalesced);
    }
    // The newest content the CRM has or will have: in flight, else acknowledged.
    let in_flight: Option<String> = tx
        .query_row(
            "SELECT fingerprint FROM outbox WHERE key = ?1 ORDER BY seq DESC LIMIT 1",
            [&c.key],
            |r| r.get(0),
        )
        .optional()?;
    let ledger: Option<(String, i64)> = tx
        .query_row(
            "SELECT fingerprint, version FROM ledger WHERE key = ?1",
            [&c.key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let dead: Option<(String, i64)> = tx
        .query_row(
            "SELECT fingerprint, version FROM dead_letters WHERE key = ?1 ORDER BY id DESC LIMIT 1",
            [&c.key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some(fp) = &in_flight {
        if fp == &c.fingerprint {
            return Ok(Offer::AlreadyQueued);
        }
    } else if !force {
        if ledger.as_ref().is_some_and(|(fp, _)| fp == &c.fingerprint) {
            return Ok(Offer::Unchanged);
        }
        // A refused version is not retried until someone replays it.
        if dead.as_ref().is_some_and(|(fp, _)| fp == &c.fingerprint) {
            return Ok(Offer::Unchanged);
        }
    }
    let max_outbox: Option<i64> = tx.query_row(
        "SELECT MAX(version) FROM outbox WHERE key = ?1",
        [&c.key],
        |r| r.get(0),
    )?;
    let version = 1 + [ledger.map(|l| l.1), dead.map(|d| d.1), max_outbox]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
    tx.execute(
        "INSERT INTO outbox (key, version, fingerprint, modified_ms, record, reason, queued_at,
            hold_until_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            c.key,
            version,
            c.fingerprint,
            c.modified_ms,
            c.record,
            reason.as_str(),
            at,
            c.hold_until_ms
        ],
    )?;
    Ok(Offer::Queued)
}

#[cfg(test)]
mod tests;
