//! Reports written to, and exports read from, an HTTP object store on 127.0.0.1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{code, committed, reconcile, stderr, summary};
use crate::support::cli::Cmd;
use crate::support::receiver::{Act, Receiver, When};
use crate::support::reconcile::ReconcilePipeline;
use crate::support::root;

/// The edge-case pipeline, allowed to write to a plain-http store.
fn edge_with_http_output(dir: &Path) -> PathBuf {
    ReconcilePipeline::edge()
        .output_storage("allow_http", "true")
        .write_as(dir, "reconcile-edge.yaml")
}

/// An object store over HTTP on 127.0.0.1 (PUT, GET, HEAD, DELETE) that
/// refuses writes below `forbidden/` with 403.
fn put_store() -> crate::support::receiver::Background {
    Receiver::builder()
        .rule(When::PutStarts("/forbidden/".into()), Act::Status(403))
        .start_in_background()
}

#[test]
fn reports_can_go_to_an_object_store_url() {
    let store = put_store();
    let tmp = tempfile::tempdir().unwrap();
    let p = edge_with_http_output(tmp.path());
    let url = format!("{}/reports/edge/", store.base());
    let o = reconcile(&p, &url, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&url.trim_end_matches('/').to_string()),
        "the summary names where the reports went"
    );
    // The same run into a local folder gives the same bytes.
    let local = tmp.path().join("local");
    assert_eq!(code(&reconcile(&p, &local, &[])), 0);
    let objects = store.objects();
    let names: BTreeSet<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "reports/edge/.s360-sync-report",
            "reports/edge/discrepancies.csv",
            "reports/edge/discrepancies.parquet",
            "reports/edge/field_mismatches.csv",
            "reports/edge/field_mismatches.parquet",
            "reports/edge/summary.html",
            "reports/edge/summary.json",
        ])
    );
    for (name, bytes) in &objects {
        let file = name.trim_start_matches("reports/edge/");
        assert_eq!(
            bytes,
            &std::fs::read(local.join(file)).unwrap(),
            "{file} uploaded as written locally"
        );
    }
}

#[test]
fn exports_on_an_object_store_give_the_local_answer() {
    // Both exports of the edge pipeline (the CRM one in Windows-1252) served
    // from an HTTP object store: downloaded, then read like local files.
    let store = put_store();
    let tmp = tempfile::tempdir().unwrap();
    let edge = root().join("testdata/reconcile/edge");
    for name in ["s360_operations.csv", "crm_operations.csv"] {
        store.put_object(
            &format!("exports/{name}"),
            std::fs::read(edge.join(name)).unwrap(),
        );
    }
    let url = store.base();
    let mut remote_edge = ReconcilePipeline::edge();
    for (side, name) in [
        (&mut remote_edge.left, "s360_operations.csv"),
        (&mut remote_edge.right, "crm_operations.csv"),
    ] {
        side.source.location = format!("{url}/exports/{name}");
        side.source
            .storage
            .push(("allow_http".into(), "true".into()));
    }
    let p = remote_edge.write_as(tmp.path(), "reconcile-edge.yaml");
    assert!(
        std::fs::read_to_string(&p)
            .unwrap()
            .contains("/exports/crm_operations.csv")
    );
    let remote = tmp.path().join("remote");
    // Downloaded into TMPDIR, and removed from there at the end.
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let o = Cmd::new(&root())
        .env("TMPDIR", &spool)
        .args(&["-vv", "reconcile"])
        .arg(&p)
        .arg("--out")
        .arg(&remote)
        .run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let downloads = stderr(&o)
        .lines()
        .filter(|l| l.contains("downloaded") && l.contains(spool.to_str().unwrap()))
        .count();
    assert_eq!(downloads, 2, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "copies removed"
    );
    let local = tmp.path().join("local");
    let o = reconcile(&committed("reconcile-edge.yaml"), &local, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for n in [
        "discrepancies.csv",
        "field_mismatches.csv",
        "discrepancies.parquet",
    ] {
        assert_eq!(
            std::fs::read(remote.join(n)).unwrap(),
            std::fs::read(local.join(n)).unwrap(),
            "{n}"
        );
    }
    let (r, l) = (summary(&remote), summary(&local));
    assert_eq!(r["counts"], l["counts"]);
    assert_eq!(r["columns"], l["columns"]);
    // The inputs are named by URL, with the fingerprints of their bytes.
    let inputs = r["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    for (i, input) in inputs.iter().enumerate() {
        assert!(
            input["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/exports/", store.base())),
            "{input}"
        );
        assert_eq!(input["size"], l["inputs"][i]["size"]);
        assert_eq!(input["blake3"], l["inputs"][i]["blake3"]);
    }
    // A missing object is an error naming its URL, and writes no report.
    let mut gone_edge = ReconcilePipeline::edge();
    gone_edge.right.source = gone_edge.right.source.storage("allow_http", "true");
    gone_edge.right.source.location = format!("{url}/exports/gone.csv");
    let p = gone_edge.write_as(tmp.path(), "reconcile-edge.yaml");
    let gone = tmp.path().join("gone");
    let o = reconcile(&p, &gone, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("/exports/gone.csv"), "{}", stderr(&o));
    assert!(!gone.exists());
}

#[test]
fn a_refused_or_bad_output_url_is_an_error() {
    let store = put_store();
    let tmp = tempfile::tempdir().unwrap();
    let p = edge_with_http_output(tmp.path());
    // The store refuses the upload (403): exit 1, the error names the object.
    let url = format!("{}/forbidden/edge", store.base());
    let o = reconcile(&p, &url, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{url}/discrepancies.parquet")),
        "{}",
        stderr(&o)
    );
    assert!(store.objects().is_empty());
    // A glob or an unknown scheme is a usage error.
    for bad in ["s3://bucket/reports/*", "ftp://host/reports"] {
        let o = reconcile(&p, bad, &[]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
    }
}
