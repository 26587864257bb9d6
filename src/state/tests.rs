//! State store tests: offers, coalescing, versions, in-flight batches, outcomes.

use std::collections::HashSet;

use super::*;

fn change(key: &str, content: &str) -> Change {
    Change {
        key: key.into(),
        modified_ms: Some(1_000),
        fingerprint: format!("fp-{content}"),
        record: format!("{{\"id\":\"{key}\",\"c\":\"{content}\"}}"),
    }
}

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = StateStore::open(&dir.path().join("state").join("p.db")).unwrap();
    (dir, s)
}

fn offer(s: &mut StateStore, c: &Change) -> Offer {
    let st = s.stage().unwrap();
    let o = st.offer(c, Reason::Change, false).unwrap();
    st.commit().unwrap();
    o
}

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
    let batch = s.next_batch(50, &none(), &none()).unwrap();
    assert_eq!(batch.len(), 1);
    assert!(batch[0].record.contains("\"b\""));
    assert_eq!(batch[0].version, 1);
    s.mark_in_flight(&[batch[0].seq], "msg_x").unwrap();
    s.record_outcome(&[batch[0].seq], &[]).unwrap();
    assert_eq!(s.backlog().unwrap(), 0);
    // Acknowledged content is not sent again; new content gets version 2.
    assert_eq!(offer(&mut s, &change("1", "b")), Offer::Unchanged);
    assert_eq!(offer(&mut s, &change("1", "c")), Offer::Queued);
    assert_eq!(s.next_batch(50, &none(), &none()).unwrap()[0].version, 2);
}

#[test]
fn in_flight_batch_is_resent_first_with_same_members() {
    let (_d, mut s) = store();
    for k in 0..5 {
        offer(&mut s, &change(&k.to_string(), "a"));
    }
    let first = s.next_batch(2, &none(), &none()).unwrap();
    let seqs: Vec<i64> = first.iter().map(|e| e.seq).collect();
    s.mark_in_flight(&seqs, "msg_1").unwrap();
    // A newer version of an in-flight order is queued behind it, not merged.
    assert_eq!(offer(&mut s, &change("0", "z")), Offer::Queued);
    let again = s.next_batch(2, &none(), &none()).unwrap();
    assert_eq!(again.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert!(again.iter().all(|e| e.batch_id.as_deref() == Some("msg_1")));
    s.record_outcome(&seqs, &[]).unwrap();
    let next = s.next_batch(50, &none(), &none()).unwrap();
    let keys: Vec<&str> = next.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["2", "3", "4", "0"]);
    assert_eq!(next[3].version, 2);
}

#[test]
fn newer_version_waits_while_older_is_in_flight() {
    let (_d, mut s) = store();
    offer(&mut s, &change("7", "a"));
    let b = s.next_batch(1, &none(), &none()).unwrap();
    s.mark_in_flight(&[b[0].seq], "msg_a").unwrap();
    offer(&mut s, &change("7", "b"));
    let busy_batches: HashSet<String> = ["msg_a".to_string()].into();
    let next = s.next_batch(50, &none(), &busy_batches).unwrap();
    assert!(next.is_empty(), "key 7 must wait for its in-flight version");
}

#[test]
fn dead_letters_are_kept_and_replayed() {
    let (_d, mut s) = store();
    offer(&mut s, &change("9", "bad"));
    let b = s.next_batch(1, &none(), &none()).unwrap();
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
    let again = s.next_batch(1, &none(), &none()).unwrap();
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
        let mut s = StateStore::open(&path).unwrap();
        offer(&mut s, &change("1", "a"));
    }
    let s = StateStore::open(&path).unwrap();
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
    let b = s.next_batch(5, &none(), &none()).unwrap();
    s.mark_in_flight(&[b[0].seq], "m").unwrap();
    s.record_outcome(&[b[0].seq], &[]).unwrap();
    // Also once the newer one is acknowledged.
    assert_eq!(offer(&mut s, &older), Offer::Stale);
    assert_eq!(s.backlog().unwrap(), 0);
}
