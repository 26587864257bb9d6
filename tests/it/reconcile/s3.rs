//! Reports uploaded to S3 (a moto server on 127.0.0.1): the upload, a re-run, a failure midway.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{MARKER, REPORTS, code, reconcile, report_names, stderr};
use crate::support::reconcile::ReconcilePipeline;
use crate::support::s3::{S3Server, moto_user, s3_get, s3_put, s3_server, s3_store};

#[test]
fn reports_can_go_to_s3() {
    let Some(server) = s3_server() else {
        return;
    };
    let store = s3_store(&server, "test", "test");
    server.create_bucket("reports");
    let tmp = tempfile::tempdir().unwrap();
    let p = edge_to_s3(tmp.path(), &server, "test", "test");
    let o = reconcile(&p, "s3://reports/checks/edge", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let local = tmp.path().join("local");
    assert_eq!(code(&reconcile(&p, &local, &[])), 0);
    for n in REPORTS {
        let bytes = s3_get(&store, &format!("checks/edge/{n}"))
            .unwrap_or_else(|| panic!("{n}: not uploaded"));
        assert_eq!(bytes, std::fs::read(local.join(n)).unwrap(), "{n}");
    }
    // A bucket that does not exist: exit 1, the error names the object.
    let o = reconcile(&p, "s3://no-such-bucket/edge", &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://no-such-bucket/edge/"),
        "{}",
        stderr(&o)
    );
}

/// The report under `checks/edge/` is, file for file, what the same check
/// writes into the local folder `local`.
fn same_as_local(store: &object_store::aws::AmazonS3, p: &Path, local: &Path) {
    assert_eq!(code(&reconcile(p, local, &[])), 0);
    for n in report_names() {
        assert_eq!(
            s3_get(store, &format!("checks/edge/{n}")),
            Some(std::fs::read(local.join(&n)).unwrap()),
            "{n}"
        );
    }
}

/// The edge pipeline in `dir`, its reports going to moto with these keys.
fn edge_to_s3(dir: &Path, server: &S3Server, key: &str, secret: &str) -> PathBuf {
    ReconcilePipeline::edge()
        .output_storage("aws_endpoint", &server.endpoint)
        .output_storage("aws_allow_http", "true")
        .output_storage("aws_region", "us-east-1")
        .output_storage("aws_access_key_id", key)
        .output_storage("aws_secret_access_key", secret)
        .write_as(dir, "reconcile-edge.yaml")
}

#[test]
fn s3_report_rerun_removes_only_files_its_earlier_report_wrote() {
    let Some(server) = s3_server() else {
        return;
    };
    server.create_bucket("reports");
    let store = s3_store(&server, "test", "test");
    let tmp = tempfile::tempdir().unwrap();
    let p = edge_to_s3(tmp.path(), &server, "test", "test");
    let url = "s3://reports/checks/edge";
    assert_eq!(code(&reconcile(&p, url, &[])), 0);
    // As if an earlier version had also written `old_table.csv`; and a file
    // of someone else's beside the report.
    let marker_at = format!("checks/edge/{MARKER}");
    let mut marker: Value = serde_json::from_slice(&s3_get(&store, &marker_at).unwrap()).unwrap();
    marker["files"]
        .as_array_mut()
        .unwrap()
        .push("old_table.csv".into());
    s3_put(&store, &marker_at, marker.to_string().into_bytes());
    s3_put(&store, "checks/edge/old_table.csv", b"stale".to_vec());
    s3_put(&store, "checks/edge/notes.txt", b"keep me".to_vec());

    let o = reconcile(&p, url, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(s3_get(&store, "checks/edge/old_table.csv"), None);
    assert_eq!(
        s3_get(&store, "checks/edge/notes.txt").as_deref(),
        Some(&b"keep me"[..])
    );
    same_as_local(&store, &p, &tmp.path().join("local"));
    // A marker the tool did not write: exit 2, and the report stays.
    s3_put(&store, &marker_at, br#"{"tool": "other"}"#.to_vec());
    let before = s3_get(&store, "checks/edge/summary.json");
    let o = reconcile(&p, url, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{url}/{MARKER}")),
        "{}",
        stderr(&o)
    );
    assert!(before.is_some());
    assert_eq!(s3_get(&store, "checks/edge/summary.json"), before);
}

#[test]
fn s3_upload_failing_midway_leaves_no_summary() {
    let Some(server) = s3_server() else {
        return;
    };
    server.create_bucket("reports");
    // A user that may do anything but write `field_mismatches.csv`, the
    // fourth of the five data files.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::reports/checks/edge/field_mismatches.csv"}
        ]
    });
    let (key, secret) = moto_user(&server, &policy);
    let store = s3_store(&server, &key, &secret);
    let tmp = tempfile::tempdir().unwrap();
    let p = edge_to_s3(tmp.path(), &server, &key, &secret);
    let url = "s3://reports/checks/edge";
    // Until moto is told to check credentials, the policy does not apply.
    let o = reconcile(&p, url, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(s3_get(&store, "checks/edge/summary.json").is_some());

    let status = server.request("POST /moto-api/reset-auth", "0");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let o = reconcile(&p, url, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("uploading {url}/field_mismatches.csv")),
        "{}",
        stderr(&o)
    );
    // The earlier summary is gone, while data files were being replaced.
    assert!(
        s3_get(&store, "checks/edge/summary.json").is_none(),
        "an incomplete report has no summary.json"
    );
    assert!(s3_get(&store, "checks/edge/discrepancies.parquet").is_some());
    assert!(s3_get(&store, &format!("checks/edge/{MARKER}")).is_some());

    // Allowed again, the next run publishes the whole report.
    let status = server.request("POST /moto-api/reset-auth", "inf");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let o = reconcile(&p, url, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    same_as_local(&store, &p, &tmp.path().join("local"));
}
