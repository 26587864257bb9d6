//! State store tests: offers, coalescing, versions, in-flight batches, outcomes.

use std::collections::HashSet;

use super::*;

fn change(key: &str, content: &str) -> Change {
    Change {
        key: key.into(),
        modified_ms: Some(1_000),
        fingerprint: format!("fp-{content}"),
        record: format!("{{\"id\":\"{key}\",\"c\":\"{content}\"}}"),
        hold_until_ms: None,
    }
}

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = StateStore::open(&dir.path().join("state").join("p.db"), "p").unwrap();
    (dir, s)
}

fn offer(s: &mut StateStore, c: &Change) -> Offer {
    let st = s.stage().unwrap();
    let o = st.offer(c, Reason::Change, false).unwrap();
    st.commit().unwrap();
    o
}

/// The clock for `next_batch`, UTC ms.
const NOW: i64 = 1_000_000;

fn none() -> HashSet<String> {
    HashSet::new()
}

#[test]
fn offers_queue_coalesce_and_skip_unchanged() {
    let (_d, mut s) = store();
    assert_eq!(offer(&mut s, &change("1", "a")), Offer::Queued);
    assert_eq!(offer(&mut s, &change("1", "a")), Offer::AlreadyQueued);
    assert_eq!(offer(&mut s, &change("1", "b")), Offer::Coalesced);
    assert_eq!(s.backlog().unwrap(), 1);
    let batch = s.next_batch(50, &none(), &none(), NOW).unwrap();
    assert_eq!(batch.len(), 1);
    assert!(batch[0].record.contains("\"b\""));
    assert_eq!(batch[0].version, 1);
    s.mark_in_flight(&[batch[0].seq], "msg_x").unwrap();
    s.record_outcome(&[batch[0].seq], &[]).unwrap();
    assert_eq!(s.backlog().unwrap(), 0);
    // Acknowledged content is not sent again; new content gets version 2.
    assert_eq!(offer(&mut s, &change("1", "b")), Offer::Unchanged);
    assert_eq!(offer(&mut s, &change("1", "c")), Offer::Queued);
    assert_eq!(
        s.next_batch(50, &none(), &none(), NOW).unwrap()[0].version,
        2
    );
}

#[test]
fn in_flight_batch_is_resent_first_with_same_members() {
    let (_d, mut s) = store();
    for k in 0..5 {
        offer(&mut s, &change(&k.to_string(), "a"));
    }
    let first = s.next_batch(2, &none(), &none(), NOW).unwrap();
    let seqs: Vec<i64> = first.iter().map(|e| e.seq).collect();
    s.mark_in_flight(&seqs, "msg_1").unwrap();
    // A newer version of an in-flight order is queued behind it, not merged.
    assert_eq!(offer(&mut s, &change("0", "z")), Offer::Queued);
    let again = s.next_batch(2, &none(), &none(), NOW).unwrap();
    assert_eq!(again.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert!(again.iter().all(|e| e.batch_id.as_deref() == Some("msg_1")));
    s.record_outcome(&seqs, &[]).unwrap();
    let next = s.next_batch(50, &none(), &none(), NOW).unwrap();
    let keys: Vec<&str> = next.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["2", "3", "4", "0"]);
    assert_eq!(next[3].version, 2);
}

#[test]
fn newer_version_waits_while_older_is_in_flight() {
    let (_d, mut s) = store();
    offer(&mut s, &change("7", "a"));
    let b = s.next_batch(1, &none(), &none(), NOW).unwrap();
    s.mark_in_flight(&[b[0].seq], "msg_a").unwrap();
    offer(&mut s, &change("7", "b"));
    let busy_batches: HashSet<String> = ["msg_a".to_string()].into();
    let next = s.next_batch(50, &none(), &busy_batches, NOW).unwrap();
    assert!(next.is_empty(), "key 7 must wait for its in-flight version");
}

#[test]
fn dead_letters_are_kept_and_replayed() {
    let (_d, mut s) = store();
    offer(&mut s, &change("9", "bad"));
    let b = s.next_batch(1, &none(), &none(), NOW).unwrap();
    s.mark_in_flight(&[b[0].seq], "msg_d").unwrap();
    s.record_outcome(&[], &[(b[0].seq, Some(422), "invalid amount".into())])
        .unwrap();
    assert_eq!(s.backlog().unwrap(), 0);
    let dl = s.dead_letters().unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].status, Some(422));
    // Re-reading the same bad content does not loop it through again.
    assert_eq!(offer(&mut s, &change("9", "bad")), Offer::Unchanged);
    assert_eq!(s.replay_dead_letters(None).unwrap(), 1);
    assert!(s.dead_letters().unwrap().is_empty());
    let again = s.next_batch(1, &none(), &none(), NOW).unwrap();
    assert_eq!(again[0].version, 2);
}

#[test]
fn staged_changes_vanish_without_commit() {
    let (_d, mut s) = store();
    {
        let st = s.stage().unwrap();
        st.offer(&change("1", "a"), Reason::Change, false).unwrap();
        st.advance_cursor(5, "1").unwrap();
        // dropped: rolled back
    }
    assert_eq!(s.backlog().unwrap(), 0);
    assert_eq!(s.cursor().unwrap(), None);
}

#[test]
fn cursor_only_moves_forward() {
    let (_d, mut s) = store();
    let st = s.stage().unwrap();
    st.advance_cursor(10, "b").unwrap();
    st.advance_cursor(10, "a").unwrap();
    st.advance_cursor(9, "z").unwrap();
    st.commit().unwrap();
    assert_eq!(s.cursor().unwrap(), Some((10, "b".to_string())));
}

#[test]
fn reopening_keeps_state_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let mut s = StateStore::open(&path, "p").unwrap();
        offer(&mut s, &change("1", "a"));
    }
    let s = StateStore::open(&path, "p").unwrap();
    assert_eq!(s.backlog().unwrap(), 1);
}

#[test]
fn older_version_never_follows_a_newer_one() {
    let (_d, mut s) = store();
    let mut newer = change("5", "new");
    newer.modified_ms = Some(2_000);
    let mut older = change("5", "old");
    older.modified_ms = Some(1_000);
    assert_eq!(offer(&mut s, &newer), Offer::Queued);
    assert_eq!(offer(&mut s, &older), Offer::Stale);
    let b = s.next_batch(5, &none(), &none(), NOW).unwrap();
    s.mark_in_flight(&[b[0].seq], "m").unwrap();
    s.record_outcome(&[b[0].seq], &[]).unwrap();
    // Also once the newer one is acknowledged.
    assert_eq!(offer(&mut s, &older), Offer::Stale);
    assert_eq!(s.backlog().unwrap(), 0);
}

fn file_hash(path: &std::path::Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn foreign_sqlite_file_at_state_path_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total TEXT); INSERT INTO invoices VALUES (1, '9.50');")
            .unwrap();
    }
    let before = file_hash(&path);
    let err = StateStore::open(&path, "p").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StateError::Foreign { .. }), "{text}");
    assert!(
        text.contains("other.db") && text.contains("invoices"),
        "{text}"
    );
    assert_eq!(
        file_hash(&path),
        before,
        "the foreign database is untouched"
    );
    assert!(!dir.path().join("other.db-wal").exists());
}

#[test]
fn another_programs_application_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "application_id", 0x0f0f_0f0f)
            .unwrap();
    }
    let before = file_hash(&path);
    let err = StateStore::open(&path, "p").unwrap_err().to_string();
    assert!(err.contains("another program"), "{err}");
    assert_eq!(file_hash(&path), before);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are my notes, not a database, and long enough to be read as a header by SQLite.........").unwrap();
    let before = file_hash(&path);
    let err = StateStore::open(&path, "p").unwrap_err().to_string();
    assert!(err.contains("not an SQLite database"), "{err}");
    assert_eq!(file_hash(&path), before);
}

#[test]
fn another_pipelines_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(StateStore::open(&path, "orders-to-crm").unwrap());
    let err = StateStore::open(&path, "refunds-to-crm")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`orders-to-crm`") && err.contains("`refunds-to-crm`"),
        "{err}"
    );
    // Its owner still opens it.
    StateStore::open(&path, "orders-to-crm").unwrap();
}

#[test]
fn a_state_database_of_an_earlier_build_is_adopted_and_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // Schema version 1, as earlier builds wrote it: no stamp.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO outbox (key, version, fingerprint, record, reason, queued_at)
             VALUES ('7', 1, 'fp', '{}', 'change', 'now')",
            [],
        )
        .unwrap();
    }
    let s = StateStore::open(&path, "p").unwrap();
    assert_eq!(
        s.backlog().unwrap(),
        1,
        "queued orders survive the migration"
    );
    let app: i32 = s
        .conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(app, APPLICATION_ID);
    assert_eq!(s.next_batch(5, &none(), &none(), NOW).unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn state_database_and_its_folder_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("p.db");
    let mut s = StateStore::open(&path, "p").unwrap();
    offer(&mut s, &change("1", "a"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    let wal = dir.path().join("new").join("p.db-wal");
    assert!(wal.exists());
    assert_eq!(
        mode(&wal),
        0o600,
        "SQLite gives the WAL the database's mode"
    );
}

#[test]
fn held_order_waits_for_its_lines_then_goes_out() {
    let (_d, mut s) = store();
    let mut held = change("1", "no-lines");
    held.hold_until_ms = Some(NOW + 10);
    assert_eq!(offer(&mut s, &held), Offer::Queued);
    offer(&mut s, &change("2", "a"));
    let b = s.next_batch(50, &none(), &none(), NOW).unwrap();
    assert_eq!(
        b.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        vec!["2"]
    );
    assert_eq!(s.sendable(NOW).unwrap(), 1);
    // Once the wait runs out it goes, marked as sent without all lines.
    let later = s.next_batch(50, &none(), &none(), NOW + 10).unwrap();
    assert_eq!(later.len(), 2);
    assert!(
        later
            .iter()
            .find(|e| e.key == "1")
            .unwrap()
            .lines_incomplete
    );
    // The lines arrive: the same queued entry, complete and sendable now.
    assert_eq!(offer(&mut s, &change("1", "with-lines")), Offer::Coalesced);
    let now = s.next_batch(50, &none(), &none(), NOW).unwrap();
    let one = now.iter().find(|e| e.key == "1").unwrap();
    assert!(one.record.contains("with-lines") && !one.lines_incomplete);
}

#[test]
fn a_hold_is_never_extended_by_a_newer_incomplete_version() {
    let (_d, mut s) = store();
    let mut first = change("1", "a");
    first.hold_until_ms = Some(NOW + 10);
    offer(&mut s, &first);
    let mut second = change("1", "b");
    second.hold_until_ms = Some(NOW + 1_000);
    assert_eq!(offer(&mut s, &second), Offer::Coalesced);
    assert_eq!(
        s.next_batch(5, &none(), &none(), NOW + 10).unwrap().len(),
        1
    );
}

#[test]
fn rebatch_splits_an_in_flight_batch_without_counting_an_attempt() {
    let (_d, mut s) = store();
    for k in 0..4 {
        offer(&mut s, &change(&k.to_string(), "a"));
    }
    let b = s.next_batch(4, &none(), &none(), NOW).unwrap();
    let seqs: Vec<i64> = b.iter().map(|e| e.seq).collect();
    s.mark_in_flight(&seqs, "msg_big").unwrap();
    s.rebatch(&seqs[..3], "msg_head").unwrap();
    s.rebatch(&seqs[3..], "msg_tail").unwrap();
    let head = s.next_batch(3, &none(), &none(), NOW).unwrap();
    assert_eq!(head.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs[..3]);
    assert_eq!(head[0].batch_id.as_deref(), Some("msg_head"));
    let attempts: i64 = s
        .conn
        .query_row("SELECT MAX(attempts) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 1);
    // Queued entries are never rebatched.
    offer(&mut s, &change("9", "a"));
    let nine = s
        .conn
        .query_row("SELECT seq FROM outbox WHERE key = '9'", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    s.rebatch(&[nine], "msg_x").unwrap();
    assert_eq!(
        s.conn
            .query_row("SELECT batch_id FROM outbox WHERE key = '9'", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .unwrap(),
        None
    );
}

proptest::proptest! {
    #[test]
    fn the_cursor_is_the_largest_pair_ever_offered(pairs in proptest::collection::vec((0i64..50, 0u8..5), 1..30)) {
        let (_d, mut s) = store();
        for (ms, key) in &pairs {
            let st = s.stage().unwrap();
            st.advance_cursor(*ms, &key.to_string()).unwrap();
            st.commit().unwrap();
        }
        let max = pairs.iter().map(|(ms, k)| (*ms, k.to_string())).max();
        proptest::prop_assert_eq!(s.cursor().unwrap(), max);
    }
}
