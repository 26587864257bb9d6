//! `--out` folders: the tool replaces only a report it wrote, refuses anything else, and keeps reports private.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{
    MARKER, REPORTS, code, committed, names, reconcile, report_names, stderr, summary, tree,
};

#[test]
fn reconcile_out_refuses_a_folder_that_is_not_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let p = committed("reconcile-edge.yaml");
    let exports = tmp.path().join("exports");
    std::fs::create_dir_all(exports.join("2026")).unwrap();
    std::fs::write(exports.join("orders.csv"), "orderId;amount\n000123;40000\n").unwrap();
    std::fs::write(exports.join("2026/day1.csv"), "orderId\n7\n").unwrap();
    let before = tree(tmp.path());
    let o = reconcile(&p, &exports, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(exports.to_str().unwrap())
            && e.contains("did not write")
            && e.contains("`orders.csv`")
            && e.contains(MARKER),
        "{e}"
    );
    assert_eq!(
        tree(tmp.path()),
        before,
        "the folder is as it was, and nothing was left beside it"
    );

    // A plain file; the report of an earlier version, which had no marker;
    // a link to a report.
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "call Anna about order 103").unwrap();
    let legacy = tmp.path().join("legacy");
    assert_eq!(code(&reconcile(&p, &legacy, &[])), 0);
    std::fs::remove_file(legacy.join(MARKER)).unwrap();
    let mut refused = vec![
        (file, "is a file, not a folder"),
        (legacy, "earlier version"),
    ];
    #[cfg(unix)]
    {
        let report = tmp.path().join("report");
        assert_eq!(code(&reconcile(&p, &report, &[])), 0);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&report, &link).unwrap();
        refused.push((link, "symbolic link"));
    }
    let before = tree(tmp.path());
    for (out, why) in refused {
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), 2, "{}: {}", out.display(), stderr(&o));
        assert!(
            stderr(&o).contains(out.to_str().unwrap()) && stderr(&o).contains(why),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn reconcile_out_refuses_an_earlier_report_holding_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let p = committed("reconcile-edge.yaml");
    let out = tmp.path().join("report");
    assert_eq!(code(&reconcile(&p, &out, &[])), 0);
    // An analyst's notes beside the report, then a folder of charts.
    let notes = out.join("notes.txt");
    std::fs::write(&notes, "103 is a test order").unwrap();
    for (extra, named) in [("notes", "`notes.txt`"), ("charts", "`charts/`")] {
        if extra == "charts" {
            std::fs::remove_file(&notes).unwrap();
            std::fs::create_dir(out.join("charts")).unwrap();
            std::fs::write(out.join("charts/amounts.png"), [0x89, b'P', b'N', b'G']).unwrap();
        }
        let before = tree(tmp.path());
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), 2, "{extra}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(out.to_str().unwrap()) && e.contains(named) && e.contains("did not write"),
            "{e}"
        );
        assert_eq!(tree(tmp.path()), before, "{extra}: nothing changed");
    }
    // A marker that names a file outside the folder is not the tool's.
    std::fs::remove_dir_all(out.join("charts")).unwrap();
    let text = std::fs::read_to_string(out.join(MARKER)).unwrap();
    let mut marker: Value = serde_json::from_str(&text).unwrap();
    marker["files"]
        .as_array_mut()
        .unwrap()
        .push("../notes.txt".into());
    std::fs::write(out.join(MARKER), marker.to_string()).unwrap();
    let before = tree(tmp.path());
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("../notes.txt"), "{}", stderr(&o));
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn reconcile_out_replaces_an_earlier_report() {
    let tmp = tempfile::tempdir().unwrap();
    let edge = committed("reconcile-edge.yaml");
    let orders = committed("reconcile-orders.yaml");
    let out = tmp.path().join("report");
    assert_eq!(code(&reconcile(&edge, &out, &[])), 0);
    let first = summary(&out)["pipeline"].clone();
    assert_eq!(names(&out), report_names());
    let marker: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(MARKER)).unwrap()).unwrap();
    assert_eq!(marker["tool"], "s360-sync");
    assert_eq!(marker["version"], env!("CARGO_PKG_VERSION"));
    let listed: BTreeSet<String> = marker["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, REPORTS.map(String::from).into());
    // A file of it removed by hand: still the tool's own report.
    std::fs::remove_file(out.join("discrepancies.csv")).unwrap();
    let o = reconcile(&orders, &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_ne!(summary(&out)["pipeline"], first);
    assert_eq!(names(&out), report_names());
    assert_eq!(
        names(tmp.path()),
        BTreeSet::from(["report".to_string()]),
        "nothing is left beside it"
    );
    // An empty folder is used as it is.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(code(&reconcile(&edge, &empty, &[])), 0);
    assert_eq!(names(&empty), report_names());
}

#[cfg(unix)]
#[test]
fn report_folders_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let p = committed("reconcile-edge.yaml");
    let out = tmp.path().join("reports/edge");
    // Written afresh, then over the earlier report.
    for run in ["first", "second"] {
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(mode(&tmp.path().join("reports")), 0o700, "{run}");
        assert_eq!(mode(&out), 0o700, "{run}");
        assert_eq!(names(&out), report_names());
        for n in report_names() {
            assert_eq!(mode(&out.join(&n)), 0o600, "{run}: {n}");
        }
    }
}
