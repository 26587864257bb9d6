//! Staging: what one detection pass changes (offers to the outbox, files
//! read, the cursor), in one transaction that is committed whole or not at all.

use super::*;

/// Changes staged in one transaction: all become visible at `commit`, or none.
pub struct Staging<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) path: PathBuf,
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

    /// Remember that a file was read, as listed at `listed_at_ms` (UTC ms):
    /// the time its listing was taken, before it was fetched, so that a
    /// slow fetch cannot make a file look read long after its mtime (see
    /// `sync::detect::RACY_MS`).
    pub fn file_read(
        &self,
        source: &str,
        path: &str,
        record: &FileRecord,
        rows: u64,
        listed_at_ms: i64,
    ) -> Result<(), StateError> {
        self.tx
            .execute(
                "INSERT INTO files (source, path, size, etag, modified_ms, rows, read_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (source, path) DO UPDATE SET size = excluded.size, etag = excluded.etag,
                    modified_ms = excluded.modified_ms, rows = excluded.rows, read_at = excluded.read_at",
                params![source, path, record.size as i64, record.etag, record.modified_ms, rows as i64, super::format_ms(listed_at_ms)],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Record an order a baseline `import flag` read and did not flag: the
    /// same content offered later is `Unchanged` (the newest row wins).
    pub fn baseline(&self, change: &Change) -> Result<(), StateError> {
        self.tx
            .execute(
                "INSERT INTO baseline (key, fingerprint, modified_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                    modified_ms = excluded.modified_ms
                 WHERE excluded.modified_ms >= baseline.modified_ms",
                params![change.key, change.fingerprint, change.modified_ms],
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

pub(super) fn offer_in(
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
            UNION ALL SELECT modified_ms FROM ledger WHERE key = ?1
            UNION ALL SELECT modified_ms FROM baseline WHERE key = ?1)",
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
        // Never sent, and as the baseline read it.
        if ledger.is_none() && dead.is_none() {
            let baseline: Option<String> = tx
                .query_row(
                    "SELECT fingerprint FROM baseline WHERE key = ?1",
                    [&c.key],
                    |r| r.get(0),
                )
                .optional()?;
            if baseline.as_ref() == Some(&c.fingerprint) {
                return Ok(Offer::Unchanged);
            }
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
