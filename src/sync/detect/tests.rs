//! The pure parts of change detection against a real SQLite state: which files are read again, and what makes two records the same content.

use chrono::{TimeZone, Utc};

use super::{LINES, ORDERS, file_record, fingerprint, unseen};
use crate::sources::SourceFile;
use crate::state::StateStore;

fn file(path: &str, size: u64, etag: Option<&str>, modified_s: i64) -> SourceFile {
    SourceFile {
        path: object_store::path::Path::from(path),
        name: path.to_string(),
        size,
        etag: etag.map(String::from),
        modified: Utc.timestamp_opt(modified_s, 0).unwrap(),
    }
}

fn paths(files: &[SourceFile]) -> Vec<String> {
    files.iter().map(|f| f.path.to_string()).collect()
}

#[test]
fn a_file_is_read_again_when_its_size_etag_or_mtime_changed_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StateStore::open(&dir.path().join("p.db"), "p").unwrap();
    let recorded = [
        file("exports/a.csv", 10, Some("e1"), 100),
        file("exports/b.csv", 20, None, 200),
        file("exports/c.csv", 30, Some("e3"), 300),
        file("exports/d.csv", 40, None, 400),
    ];
    let staging = s.stage().unwrap();
    for f in &recorded {
        staging
            .file_read(
                ORDERS,
                f.path.as_ref(),
                &file_record(f),
                1,
                chrono::Utc::now().timestamp_millis(),
            )
            .unwrap();
    }
    staging.commit().unwrap();
    let known = s.known_files(ORDERS).unwrap();
    let listed = vec![
        file("exports/a.csv", 10, Some("e1"), 100),
        file("exports/b.csv", 21, None, 200),
        file("exports/c.csv", 30, Some("e3-rewritten"), 300),
        file("exports/d.csv", 40, None, 401),
        file("exports/e.csv", 50, None, 500),
    ];
    assert_eq!(
        paths(&unseen(listed, &known, false)),
        [
            "exports/b.csv",
            "exports/c.csv",
            "exports/d.csv",
            "exports/e.csv"
        ]
    );
}

#[test]
fn a_file_read_within_a_minute_of_its_mtime_is_read_again_unless_its_etag_follows_content() {
    // SFTP gives whole seconds: a same-size rewrite in the second after the
    // read lists exactly as the file did when read.
    let dir = tempfile::tempdir().unwrap();
    let mut s = StateStore::open(&dir.path().join("p.db"), "p").unwrap();
    let now = Utc::now().timestamp();
    let fresh = file("exports/fresh.csv", 10, None, now - 5);
    let settled = file("exports/settled.csv", 10, None, now - 120);
    let staging = s.stage().unwrap();
    for f in [&fresh, &settled] {
        staging
            .file_read(
                ORDERS,
                f.path.as_ref(),
                &file_record(f),
                1,
                chrono::Utc::now().timestamp_millis(),
            )
            .unwrap();
    }
    staging.commit().unwrap();
    let known = s.known_files(ORDERS).unwrap();
    let listed = || vec![fresh.clone(), settled.clone()];
    assert_eq!(
        paths(&unseen(listed(), &known, false)),
        ["exports/fresh.csv"]
    );
    // An S3 ETag changes with the content: the listing is proof enough.
    assert!(unseen(listed(), &known, true).is_empty());
}

#[test]
fn files_recorded_for_the_lines_source_do_not_count_as_orders_files_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StateStore::open(&dir.path().join("p.db"), "p").unwrap();
    let f = file("exports/x.csv", 10, None, 100);
    let staging = s.stage().unwrap();
    staging
        .file_read(
            LINES,
            f.path.as_ref(),
            &file_record(&f),
            1,
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
    staging.commit().unwrap();
    let known = s.known_files(ORDERS).unwrap();
    assert_eq!(paths(&unseen(vec![f], &known, false)), ["exports/x.csv"]);
}

#[test]
fn the_fingerprint_depends_on_the_record_text_alone() {
    let a = fingerprint(r#"{"orderId":1,"state":"CLOSED"}"#);
    assert_eq!(a, fingerprint(r#"{"orderId":1,"state":"CLOSED"}"#));
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, fingerprint(r#"{"orderId":1,"state":"OPEN"}"#));
    // The text as encoded is the content: a re-ordered object is a change.
    assert_ne!(a, fingerprint(r#"{"state":"CLOSED","orderId":1}"#));
}
