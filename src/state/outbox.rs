//! The outbox: batches taken in queue order, marked in flight, settled by
//! the sink's outcome; dead letters listed and replayed.

use super::*;

impl StateStore {
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
}
