//! `import flag` against real export files and a real SQLite state: the first flag of a pipeline sets its baseline, a later one changes nothing but the outbox.

use std::path::Path;

use chrono::{TimeZone, Utc};

use super::{FlagOptions, flag};
use crate::pipeline::Pipeline;
use crate::state::StateStore;
use crate::sync::detect::ORDERS;
use crate::sync::state_path;

const PIPELINE: &str = "version: 1
kind: sync
name: flagged
source:
  location: exports/orders_*.csv
  csv: { delimiter: \";\" }
  key: orderId
  cursor: lastModDateTime
  columns: { orderId: int64, creationDateTime: timestamp, lastModDateTime: timestamp }
sink:
  url: http://127.0.0.1:9/hook
";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn pipeline(dir: &Path) -> Pipeline {
    write(&dir.join("sync.yaml"), PIPELINE);
    crate::pipeline::load(&dir.join("sync.yaml")).unwrap()
}

/// Orders 1..=3 created in 2026-10; order 3 modified last.
const OCTOBER: &str = "orderId;creationDateTime;lastModDateTime
1;2026-10-01 10:00:00;2026-10-02 10:00:00
2;2026-10-05 10:00:00;2026-10-06 10:00:00
3;2026-09-20 10:00:00;2026-10-07 10:00:00
";

fn october() -> FlagOptions {
    FlagOptions {
        from: Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        column: "creationDateTime".into(),
        force: false,
    }
}

fn state(p: &Pipeline) -> StateStore {
    let spec = p.as_sync().unwrap();
    StateStore::open_existing(&state_path(p, spec), &spec.name)
        .unwrap()
        .expect("state written")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_flag_sets_the_baseline_of_files_read_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("exports/orders_1.csv"), OCTOBER);
    let p = pipeline(dir.path());
    let s = flag(&p, october()).await.unwrap();
    assert!(s.baseline);
    assert_eq!((s.matched, s.flagged, s.files), (2, 2, 1));
    let st = state(&p);
    assert_eq!(st.backlog().unwrap(), 2);
    let known = st.known_files(ORDERS).unwrap();
    assert_eq!(known.len(), 1, "{known:?}");
    // The cursor is the newest row read, in or out of the timeframe.
    let (ms, key) = st.cursor().unwrap().expect("cursor set");
    assert_eq!(key, "3");
    assert_eq!(
        ms,
        Utc.with_ymd_and_hms(2026, 10, 7, 10, 0, 0)
            .unwrap()
            .timestamp_millis()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flag_on_a_pipeline_with_a_baseline_changes_only_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("exports/orders_1.csv"), OCTOBER);
    let p = pipeline(dir.path());
    flag(&p, october()).await.unwrap();
    let (known, cursor) = {
        let st = state(&p);
        (st.known_files(ORDERS).unwrap(), st.cursor().unwrap())
    };
    // A file that arrives later, with a newer order of the timeframe.
    write(
        &dir.path().join("exports/orders_2.csv"),
        "orderId;creationDateTime;lastModDateTime\n4;2026-10-20 10:00:00;2026-10-21 10:00:00\n",
    );
    let s = flag(&p, october()).await.unwrap();
    assert!(!s.baseline);
    assert_eq!((s.matched, s.flagged, s.already_queued), (3, 1, 2));
    let st = state(&p);
    // The new file is left for detection: not recorded as read, no new cursor.
    assert_eq!(st.known_files(ORDERS).unwrap(), known);
    assert_eq!(st.cursor().unwrap(), cursor);
    assert_eq!(st.backlog().unwrap(), 3);
}
