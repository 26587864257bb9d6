//! What a check finds on the committed test data: the answer key, the snapshot, the edge cases, determinism, Parquet copies, `--json`, progress.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::{REPORTS, categories, code, committed, reconcile, stderr, summary};
use crate::support::reconcile::ReconcilePipeline;
use crate::support::root;

#[test]
fn presets_give_the_reports_of_the_committed_pipelines() {
    // The builder's presets stand for the committed pipelines in the tests
    // that change one thing of them: they must find what those find.
    let tmp = tempfile::tempdir().unwrap();
    for (name, preset) in [
        ("reconcile-edge.yaml", ReconcilePipeline::edge()),
        ("reconcile-orders.yaml", ReconcilePipeline::orders()),
    ] {
        let built = preset.write_as(tmp.path(), name);
        let (a, b) = (tmp.path().join("committed"), tmp.path().join("built"));
        let o = reconcile(&committed(name), &a, &[]);
        let want = code(&o);
        assert!(want == 0 || want == 5, "{name}: {}", stderr(&o));
        let o = reconcile(&built, &b, &[]);
        assert_eq!(code(&o), want, "{name}: {}", stderr(&o));
        for n in ["discrepancies.csv", "field_mismatches.csv"] {
            assert_eq!(
                std::fs::read(a.join(n)).unwrap(),
                std::fs::read(b.join(n)).unwrap(),
                "{name}: {n}"
            );
        }
        let (sa, sb) = (summary(&a), summary(&b));
        for k in ["counts", "columns", "control_totals", "fail_if"] {
            assert_eq!(sa[k], sb[k], "{name}: summary `{k}`");
        }
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }
}

#[test]
fn orders_counts_equal_the_generators_answer_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&committed("reconcile-orders.yaml"), &out, &[]);
    assert_eq!(code(&o), 5, "discrepancies exceed fail_if: {}", stderr(&o));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("testdata/reconcile/crm/manifest.json")).unwrap(),
    )
    .unwrap();
    let ids = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i.to_string())
            .collect()
    };
    let mut expected = BTreeSet::new();
    for id in ids(&manifest["missing_in_crm"]) {
        expected.insert(("missing_in_crm".to_string(), id));
    }
    for id in ids(&manifest["missing_in_s360"]) {
        expected.insert(("missing_in_s360".to_string(), id));
    }
    let mut mismatched_fields = BTreeMap::new();
    for (field, list) in manifest["mismatched"].as_object().unwrap() {
        for id in ids(list) {
            expected.insert(("mismatched".to_string(), id.clone()));
            mismatched_fields.insert(id, field.clone());
        }
    }
    assert!(
        expected.len() >= 8,
        "the test data holds discrepancies of every kind"
    );
    // Exactly the injected discrepancies: representation-only differences
    // (lines vs orders, minor vs major units, text ids, lost milliseconds,
    // ISO dates) are not reported.
    assert_eq!(categories(&out), expected);
    let s = summary(&out);
    let counts = &s["counts"];
    assert_eq!(
        counts["missing_in_crm"],
        manifest["missing_in_crm"].as_array().unwrap().len()
    );
    assert_eq!(
        counts["missing_in_s360"],
        manifest["missing_in_s360"].as_array().unwrap().len()
    );
    assert_eq!(counts["mismatched"], mismatched_fields.len());
    assert_eq!(counts["duplicate_key"], 0);
    assert_eq!(counts["null_key"], 0);
    for c in s["columns"].as_array().unwrap() {
        let field = c["field"].as_str().unwrap();
        let want = mismatched_fields.values().filter(|f| *f == field).count();
        assert_eq!(c["unequal"], want, "{field}: {c}");
    }
    // The long table names the differing field of each mismatched order.
    let long = std::fs::read_to_string(out.join("field_mismatches.csv")).unwrap();
    let got: BTreeMap<String, String> = long
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[1].to_string())
        })
        .collect();
    assert_eq!(got, mismatched_fields);
    assert!(long.contains(",amount,") && long.contains("1.00"), "{long}");
    assert_eq!(s["tool"]["version"], env!("CARGO_PKG_VERSION"));
    // Each input's size and hash are those of the whole file, as `b3sum` prints it.
    for f in s["inputs"].as_array().unwrap() {
        let path = root().join("pipelines").join(f["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(f["size"], bytes.len() as u64, "{}", path.display());
        assert_eq!(
            f["blake3"].as_str().unwrap(),
            blake3::hash(&bytes).to_hex().as_str(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn summary_matches_the_committed_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&committed("reconcile-orders.yaml"), &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let got = summary(&out);
    let snap = root().join("testdata/reconcile/expected/reconcile-orders.summary.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
        std::fs::write(&snap, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    // Field by field, so a failure names the part that changed.
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "summary.json field `{k}` changed");
    }
    assert_eq!(
        got.as_object().unwrap().len(),
        want.as_object().unwrap().len()
    );
}

#[test]
fn edge_cases_are_each_reported_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&committed("reconcile-edge.yaml"), &out, &[]);
    assert_eq!(code(&o), 0, "within fail_if: {}", stderr(&o));
    let got = categories(&out);
    let want: BTreeSet<(String, String)> = [
        ("duplicate_key", "105|1"),
        ("mismatched", "102|1"),
        ("mismatched", "106|1"),
        ("mismatched", "107|1"),
        ("missing_in_crm", "103|1"),
        ("missing_in_s360", "104|1"),
        ("null_key", "|3"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    let s = summary(&out);
    assert_eq!(s["counts"]["matched"], 4);
    assert_eq!(s["control_totals"][0]["left"], "1402.90");
    assert_eq!(s["control_totals"][0]["right"], "1401.93");
    assert_eq!(s["control_totals"][0]["delta"], "0.97");
    let csv = std::fs::read_to_string(out.join("discrepancies.csv")).unwrap();
    // Duplicate and null keys carry their side and count.
    assert!(csv.contains("105,1,duplicate_key,right,2,"), "{csv}");
    assert!(csv.contains(",3,null_key,left,1,"), "{csv}");
    // A cell that a spreadsheet would run is defused; a negative number is not.
    assert!(csv.contains(",'@Zug"), "{csv}");
    assert!(csv.contains("\"currency,city\""), "{csv}");
    let long = std::fs::read_to_string(out.join("field_mismatches.csv")).unwrap();
    assert!(long.contains("102,1,amount,400.00,400.02,-0.02"), "{long}");
    assert!(long.contains("106,1,createdAt,"), "{long}");
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert!(html.contains("&#39;") || html.contains("@Zug"));
    // The page's own script is its only one: no value became markup.
    assert_eq!(html.matches("<script").count(), 1);
}

#[test]
fn two_runs_give_byte_identical_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let p = committed("reconcile-edge.yaml");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert_eq!(code(&reconcile(&p, &a, &[])), 0);
    assert_eq!(code(&reconcile(&p, &b, &[])), 0);
    for n in REPORTS {
        assert_eq!(
            std::fs::read(a.join(n)).unwrap(),
            std::fs::read(b.join(n)).unwrap(),
            "{n}"
        );
    }
    // Running again into the same folder replaces the report.
    assert_eq!(code(&reconcile(&p, &a, &[])), 0);
    assert_eq!(std::fs::read_dir(&a).unwrap().count(), REPORTS.len() + 1);
}

#[test]
fn parquet_copies_give_the_same_counts() {
    use polars::prelude::*;
    let tmp = tempfile::tempdir().unwrap();
    let data = root().join("testdata/reconcile");
    let convert = |from: &Path, to: &Path, sep: u8| {
        let mut df = LazyCsvReader::new(PlRefPath::new(from.to_string_lossy().as_ref()))
            .with_separator(sep)
            .finish()
            .unwrap()
            .collect()
            .unwrap();
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        ParquetWriter::new(std::fs::File::create(to).unwrap())
            .finish(&mut df)
            .unwrap();
    };
    for e in std::fs::read_dir(data.join("s360")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        convert(
            &path,
            &tmp.path().join("pq/s360").join(format!("{name}.parquet")),
            b';',
        );
    }
    convert(
        &data.join("crm/crm_orders.csv"),
        &tmp.path().join("pq/crm/crm_orders.parquet"),
        b';',
    );
    let pq = tmp.path().join("pq").display().to_string();
    let mut parquet = ReconcilePipeline::orders();
    parquet.left.source.location = format!("{pq}/s360/orders_*.parquet");
    parquet.right.source.location = format!("{pq}/crm/crm_orders.parquet");
    let p = parquet.write_as(tmp.path(), "reconcile-orders.yaml");
    let (a, b) = (tmp.path().join("csv"), tmp.path().join("parquet"));
    assert_eq!(
        code(&reconcile(&committed("reconcile-orders.yaml"), &a, &[])),
        5
    );
    let o = reconcile(&p, &b, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let (sa, sb) = (summary(&a), summary(&b));
    assert_eq!(sa["counts"], sb["counts"]);
    assert_eq!(sa["columns"], sb["columns"]);
    assert_eq!(sa["control_totals"], sb["control_totals"]);
    assert_eq!(
        std::fs::read(a.join("discrepancies.csv")).unwrap(),
        std::fs::read(b.join("discrepancies.csv")).unwrap()
    );
}

#[test]
fn json_flag_prints_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(
        &committed("reconcile-edge.yaml"),
        &out,
        &["--json", "--sample", "1"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["counts"]["mismatched"], 3);
    assert_eq!(v["samples"]["mismatched"].as_array().unwrap().len(), 1);
    assert_eq!(v, summary(&out));
}

#[test]
fn progress_names_each_step_on_stderr_unless_json() {
    let tmp = tempfile::tempdir().unwrap();
    let p = committed("reconcile-edge.yaml");
    let o = reconcile(&p, tmp.path().join("a"), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let e = stderr(&o);
    let steps = [
        "listing",
        "reading",
        "checking keys",
        "comparing",
        "writing the reports",
        "done",
    ];
    let mut at = 0;
    for step in steps {
        let found = e[at..].find(step);
        assert!(found.is_some(), "step `{step}` in order in:\n{e}");
        at += found.unwrap_or(0);
    }
    assert!(
        e.lines().all(|l| l.ends_with(" s)")),
        "each line carries the time so far:\n{e}"
    );
    let o = reconcile(&p, tmp.path().join("b"), &["--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(stderr(&o), "", "--json keeps stderr quiet");
}
