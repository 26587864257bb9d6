//! Checks that stop: the duplicates policy, unreadable and half-written exports, a missing file or column, an invalid pipeline; none writes a report.

use std::process::Output;

use super::{code, reconcile, stderr};
use crate::support::reconcile::ReconcilePipeline;
use crate::support::root;

#[test]
fn duplicates_fail_policy_exits_1_without_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let p = ReconcilePipeline {
        duplicates: Some("fail".into()),
        ..ReconcilePipeline::edge()
    }
    .write_as(tmp.path(), "reconcile-edge.yaml");
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("duplicate key on the right side"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // The same stop, with the same message, in partitions.
    let split = reconcile(&p, &out, &["--partitions", "5"]);
    assert_eq!(code(&split), 1, "{}", stderr(&split));
    let last = |o: &Output| stderr(o).lines().last().unwrap_or_default().to_string();
    assert_eq!(last(&o), last(&split));
    assert!(!out.exists());
}

#[test]
fn bad_input_exits_1_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // An unparsable timestamp in a declared column.
    let bad = tmp.path().join("bad.csv");
    let text = std::fs::read_to_string(root().join("testdata/reconcile/edge/s360_operations.csv"))
        .unwrap()
        .replace("2026-10-13 15:00:00", "yesterday");
    std::fs::write(&bad, text).unwrap();
    let mut edge = ReconcilePipeline::edge();
    edge.left.source.location = bad.display().to_string();
    let p = edge.write_as(tmp.path(), "reconcile-edge.yaml");
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("bad.csv") && e.contains("createdAt") && e.contains("yesterday"),
        "{e}"
    );
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".reconcile"))
        .collect();
    assert!(leftovers.is_empty(), "staging folders are cleaned up");

    // A missing file and a missing column.
    let mut missing_file = ReconcilePipeline::edge();
    missing_file.left.source.location = root()
        .join("testdata/reconcile/edge/nope.csv")
        .display()
        .to_string();
    let mut missing_column = ReconcilePipeline::edge();
    missing_column.left.source = missing_column.left.source.keys(&["orderId", "lineId"]);
    for (pipeline, needle) in [(missing_file, "nope.csv"), (missing_column, "lineId")] {
        let p = pipeline.write_as(tmp.path(), "reconcile-edge.yaml");
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

#[test]
fn half_written_csv_export_is_refused_not_compared_short() {
    let tmp = tempfile::tempdir().unwrap();
    // The export as it looks while S-360 is still writing it: cut inside
    // the last field, no final line break.
    let cut = tmp.path().join("cut.csv");
    let text = std::fs::read_to_string(root().join("testdata/reconcile/edge/s360_operations.csv"))
        .unwrap();
    let text = text.trim_end_matches('\n');
    std::fs::write(&cut, &text[..text.len() - 3]).unwrap();
    let mut edge = ReconcilePipeline::edge();
    edge.left.source.location = cut.display().to_string();
    let p = edge.write_as(tmp.path(), "reconcile-edge.yaml");
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("cut.csv") && e.contains("line break"), "{e}");
    assert!(!out.exists());
}

#[test]
fn invalid_pipeline_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let mut edge = ReconcilePipeline::edge();
    edge.compare[0].absolute = Some("one cent".into());
    let p = edge.write_as(tmp.path(), "reconcile-edge.yaml");
    let o = reconcile(&p, tmp.path().join("report"), &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("compare[0].absolute"), "{}", stderr(&o));
}
