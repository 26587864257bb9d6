//! Property tests of the delivery core on a real SQLite state: any mix of offers, batch sizes, caps, crashes and refusals loses nothing, sends nothing twice beyond the batches in flight at a crash, and keeps each order's version order.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::{outgoing, take_batch};
use crate::sinks::batch_id as webhook_id;
use crate::state::{Change, Reason, StateStore};

/// One step of a pipeline's life.
#[derive(Debug, Clone)]
enum Step {
    /// An export row: order `key` now has content `content`.
    Offer { key: u8, content: u8 },
    /// A run that sends batches of at most `batch` orders, at most `cap`
    /// in all; it is killed after `crash_after` batches (the last one in
    /// flight, unanswered), and the CRM refuses the orders in `refuse`.
    Run {
        batch: usize,
        cap: usize,
        crash_after: Option<usize>,
        refuse: Vec<u8>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..6, 0u8..4).prop_map(|(key, content)| Step::Offer { key, content }),
        2 => (1usize..7, 1usize..12, proptest::option::of(0usize..4), proptest::collection::vec(0u8..6, 0..2))
            .prop_map(|(batch, cap, crash_after, refuse)| Step::Run { batch, cap, crash_after, refuse }),
    ]
}

/// What the CRM saw.
#[derive(Default)]
struct Crm {
    /// Every order of every request, in order: (key, version, content).
    received: Vec<(String, i64, String)>,
    /// Newest version acknowledged per key, and its content.
    newest: HashMap<String, (i64, String)>,
    /// Orders of the batches in flight at a crash.
    in_flight_at_crashes: usize,
}

const NOW: i64 = 1_000;

fn none() -> HashSet<String> {
    HashSet::new()
}

/// One run, as `drain` makes it with one worker.
fn run(
    s: &mut StateStore,
    crm: &mut Crm,
    batch: usize,
    cap: usize,
    crash_after: Option<usize>,
    refuse: &[u8],
) -> Result<(), TestCaseError> {
    let mut reserved = 0;
    let mut batches = 0;
    while reserved < cap {
        let room = (cap - reserved).min(batch);
        let b = take_batch(s, room, &none(), &none(), NOW).unwrap();
        if b.is_empty() {
            break;
        }
        prop_assert!(b.len() <= room, "batch of {} in room {room}", b.len());
        let keys: HashSet<&String> = b.iter().map(|e| &e.key).collect();
        prop_assert_eq!(keys.len(), b.len(), "one version of an order per batch");
        let orders = outgoing(&b);
        let id = b[0].batch_id.clone().unwrap_or_else(|| webhook_id(&orders));
        let seqs: Vec<i64> = b.iter().map(|e| e.seq).collect();
        s.mark_in_flight(&seqs, &id).unwrap();
        reserved += b.len();
        for e in &b {
            crm.received
                .push((e.key.clone(), e.version, e.record.clone()));
        }
        if crash_after == Some(batches) {
            crm.in_flight_at_crashes += b.len();
            return Ok(());
        }
        batches += 1;
        let refused = |k: &str| refuse.iter().any(|r| r.to_string() == k);
        let acked: Vec<i64> = b
            .iter()
            .filter(|e| !refused(&e.key))
            .map(|e| e.seq)
            .collect();
        let dead: Vec<(i64, Option<u16>, String)> = b
            .iter()
            .filter(|e| refused(&e.key))
            .map(|e| (e.seq, Some(422), "refused".to_string()))
            .collect();
        for e in b.iter().filter(|e| !refused(&e.key)) {
            if let Some((v, _)) = crm.newest.get(&e.key) {
                prop_assert!(
                    e.version >= *v,
                    "order {} version {} acknowledged after version {v}",
                    e.key,
                    e.version
                );
            }
            crm.newest
                .insert(e.key.clone(), (e.version, e.record.clone()));
        }
        s.record_outcome(&acked, &dead).unwrap();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn nothing_lost_nothing_twice_beyond_crashes_versions_in_order(steps in proptest::collection::vec(step(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateStore::open(&dir.path().join("p.db"), "p").unwrap();
        let mut crm = Crm::default();
        let mut latest: HashMap<String, String> = HashMap::new();
        let mut dead_keys: HashSet<String> = HashSet::new();
        let mut modified = 0i64;
        for st in &steps {
            match st {
                Step::Offer { key, content } => {
                    modified += 1;
                    let record = format!("{{\"k\":{key},\"c\":{content}}}");
                    let change = Change {
                        key: key.to_string(),
                        modified_ms: Some(modified),
                        fingerprint: record.clone(),
                        record: record.clone(),
                        hold_until_ms: None,
                    };
                    let staging = s.stage().unwrap();
                    staging.offer(&change, Reason::Change, false).unwrap();
                    staging.commit().unwrap();
                    latest.insert(key.to_string(), record);
                }
                Step::Run { batch, cap, crash_after, refuse } => {
                    for r in refuse {
                        dead_keys.insert(r.to_string());
                    }
                    run(&mut s, &mut crm, *batch, *cap, *crash_after, refuse)?;
                }
            }
        }
        // Drain to the end with no more crashes or refusals (bounded).
        for _ in 0..200 {
            if s.backlog().unwrap() == 0 {
                break;
            }
            run(&mut s, &mut crm, 3, 7, None, &[])?;
        }
        prop_assert_eq!(s.backlog().unwrap(), 0, "drained");
        // Nothing lost: the CRM has each order's latest content, unless a
        // version of it was refused (then it is a dead letter, not lost).
        let dead: HashSet<String> = s.dead_letters().unwrap().into_iter().map(|d| d.key).collect();
        for (key, content) in &latest {
            if dead.contains(key) {
                prop_assert!(dead_keys.contains(key));
                continue;
            }
            let got = crm.newest.get(key).map(|(_, c)| c.clone());
            prop_assert_eq!(got.as_ref(), Some(content), "order {} lost its latest content", key);
        }
        // Duplicates bounded by what was in flight at the crashes.
        let mut seen: HashMap<(String, i64), usize> = HashMap::new();
        for (k, v, _) in &crm.received {
            *seen.entry((k.clone(), *v)).or_default() += 1;
        }
        let repeats: usize = seen.values().map(|n| n - 1).sum();
        prop_assert!(
            repeats <= crm.in_flight_at_crashes,
            "{repeats} repeats, {} in flight at crashes",
            crm.in_flight_at_crashes
        );
        // One version number means one content.
        let mut content_of: HashMap<(String, i64), String> = HashMap::new();
        for (k, v, c) in &crm.received {
            let prev = content_of.entry((k.clone(), *v)).or_insert_with(|| c.clone());
            prop_assert_eq!(&*prev, c, "order {} version {} sent with two contents", k, v);
        }
    }
}

#[test]
fn an_in_flight_batch_of_fifty_drains_through_a_room_of_seven() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StateStore::open(&dir.path().join("p.db"), "p").unwrap();
    let staging = s.stage().unwrap();
    for k in 0..50 {
        let record = format!("{{\"k\":{k}}}");
        staging
            .offer(
                &Change {
                    key: k.to_string(),
                    modified_ms: Some(1),
                    fingerprint: record.clone(),
                    record,
                    hold_until_ms: None,
                },
                Reason::Import,
                false,
            )
            .unwrap();
    }
    staging.commit().unwrap();
    let b = take_batch(&mut s, 50, &none(), &none(), NOW).unwrap();
    let seqs: Vec<i64> = b.iter().map(|e| e.seq).collect();
    s.mark_in_flight(&seqs, &webhook_id(&outgoing(&b))).unwrap();
    // Crash; the next run has room for 7 only.
    let mut sent = Vec::new();
    for _ in 0..20 {
        let b = take_batch(&mut s, 7, &none(), &none(), NOW).unwrap();
        if b.is_empty() {
            break;
        }
        assert!(b.len() <= 7);
        let id = b[0].batch_id.clone().expect("still in flight");
        assert_eq!(id, webhook_id(&outgoing(&b)), "each part has its own id");
        let seqs: Vec<i64> = b.iter().map(|e| e.seq).collect();
        s.record_outcome(&seqs, &[]).unwrap();
        sent.extend(seqs);
    }
    let mut sorted = sent.clone();
    sorted.sort();
    assert_eq!(sent, sorted, "queue order kept");
    assert_eq!(sent.len(), 50);
}
