//! Integration tests of `s360-sync reconcile`: the real binary on the committed test data, checked against gen's independent answer key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s360-sync"))
}

fn reconcile(pipeline: &Path, out: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Output {
    bin()
        .arg("reconcile")
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run s360-sync")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn summary(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// The report files a check writes.
const REPORTS: [&str; 6] = [
    "discrepancies.parquet",
    "discrepancies.csv",
    "field_mismatches.parquet",
    "field_mismatches.csv",
    "summary.json",
    "summary.html",
];

/// A copy of a committed pipeline in `dir`, its relative test data paths made absolute.
fn pipeline_copy(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join("pipelines").join(name)).unwrap();
    let text = text.replace("../testdata/", &format!("{}/testdata/", root().display()));
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// `discrepancies.csv` as (category, key) pairs.
fn categories(out: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(out.join("discrepancies.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cat = header.iter().position(|h| *h == "category").unwrap();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[cat].to_string(), cells[..cat].join("|"))
        })
        .collect()
}

#[test]
fn orders_counts_equal_the_generators_answer_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&root().join("pipelines/reconcile-orders.yaml"), &out, &[]);
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
    let o = reconcile(&root().join("pipelines/reconcile-orders.yaml"), &out, &[]);
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
    let o = reconcile(&root().join("pipelines/reconcile-edge.yaml"), &out, &[]);
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
    assert!(!html.contains("<script"));
}

#[test]
fn duplicates_fail_policy_exits_1_without_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", |t| {
        t.replace("compare:\n", "duplicates: fail\ncompare:\n")
    });
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
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", |t| {
        t.replace(
            &format!(
                "{}/testdata/reconcile/edge/s360_operations.csv",
                root().display()
            ),
            &bad.display().to_string(),
        )
    });
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
    for (from, to, needle) in [
        ("s360_operations.csv", "nope.csv", "nope.csv"),
        (
            "key: [orderId, operationId]",
            "key: [orderId, lineId]",
            "lineId",
        ),
    ] {
        let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", |t| t.replace(from, to));
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
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", |t| {
        t.replace(
            &format!(
                "{}/testdata/reconcile/edge/s360_operations.csv",
                root().display()
            ),
            &cut.display().to_string(),
        )
    });
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
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", |t| {
        t.replace("absolute: \"0.01\"", "absolute: \"one cent\"")
    });
    let o = reconcile(&p, tmp.path().join("report"), &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("compare[0].absolute"), "{}", stderr(&o));
}

#[test]
fn two_runs_give_byte_identical_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let p = root().join("pipelines/reconcile-edge.yaml");
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
    let p = pipeline_copy(tmp.path(), "reconcile-orders.yaml", |t| {
        t.replace(&format!("{}/testdata/reconcile", root().display()), &pq)
            .replace(".csv", ".parquet")
    });
    let (a, b) = (tmp.path().join("csv"), tmp.path().join("parquet"));
    assert_eq!(
        code(&reconcile(
            &root().join("pipelines/reconcile-orders.yaml"),
            &a,
            &[]
        )),
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
        &root().join("pipelines/reconcile-edge.yaml"),
        &out,
        &["--json", "--sample", "1"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["counts"]["mismatched"], 3);
    assert_eq!(v["samples"]["mismatched"].as_array().unwrap().len(), 1);
    assert_eq!(v, summary(&out));
}

/// An object store over HTTP on 127.0.0.1: PUT stores a body under its path
/// (what object_store's HTTP client sends), GET and HEAD return it, DELETE
/// removes it.
struct PutStore {
    url: String,
    objects: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<u8>>>>,
    _rt: tokio::runtime::Runtime,
}

fn put_store() -> PutStore {
    use axum::body::Bytes;
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    type Objects = std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<u8>>>>;
    async fn put(
        State(objects): State<Objects>,
        UrlPath(path): UrlPath<String>,
        body: Bytes,
    ) -> StatusCode {
        if path.starts_with("forbidden/") {
            return StatusCode::FORBIDDEN;
        }
        objects.lock().unwrap().insert(path, body.to_vec());
        StatusCode::CREATED
    }
    async fn delete(State(objects): State<Objects>, UrlPath(path): UrlPath<String>) -> StatusCode {
        match objects.lock().unwrap().remove(&path) {
            Some(_) => StatusCode::NO_CONTENT,
            None => StatusCode::NOT_FOUND,
        }
    }
    async fn get(
        State(objects): State<Objects>,
        method: axum::http::Method,
        UrlPath(path): UrlPath<String>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        use axum::http::{HeaderValue, header};
        let Some(body) = objects.lock().unwrap().get(&path).cloned() else {
            return (StatusCode::NOT_FOUND, Default::default(), Vec::new());
        };
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        h.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Tue, 13 Oct 2026 10:00:00 GMT"),
        );
        let body = if method == axum::http::Method::HEAD {
            Vec::new()
        } else {
            body
        };
        (StatusCode::OK, h, body)
    }
    let objects = Objects::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = axum::Router::new()
        .route(
            "/{*path}",
            axum::routing::put(put).get(get).head(get).delete(delete),
        )
        .with_state(objects.clone());
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    PutStore {
        url: format!("http://{addr}"),
        objects,
        _rt: rt,
    }
}

/// The edge-case pipeline, allowed to write to a plain-http store.
fn edge_with_http_output(dir: &Path) -> PathBuf {
    pipeline_copy(dir, "reconcile-edge.yaml", |t| {
        format!("{t}\noutput:\n  storage: {{ allow_http: \"true\" }}\n")
    })
}

#[test]
fn reports_can_go_to_an_object_store_url() {
    let store = put_store();
    let tmp = tempfile::tempdir().unwrap();
    let p = edge_with_http_output(tmp.path());
    let url = format!("{}/reports/edge/", store.url);
    let o = reconcile(&p, &url, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&url.trim_end_matches('/').to_string()),
        "the summary names where the reports went"
    );
    // The same run into a local folder gives the same bytes.
    let local = tmp.path().join("local");
    assert_eq!(code(&reconcile(&p, &local, &[])), 0);
    let objects = store.objects.lock().unwrap().clone();
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
        store.objects.lock().unwrap().insert(
            format!("exports/{name}"),
            std::fs::read(edge.join(name)).unwrap(),
        );
    }
    let url = store.url.clone();
    let edge_dir = format!("location: {}/", edge.display());
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", move |t| {
        t.replace(
            &edge_dir,
            &format!("storage: {{ allow_http: \"true\" }}\n    location: {url}/exports/"),
        )
    });
    assert!(
        std::fs::read_to_string(&p)
            .unwrap()
            .contains("/exports/crm_operations.csv")
    );
    let remote = tmp.path().join("remote");
    // Downloaded into TMPDIR, and removed from there at the end.
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let o = bin()
        .env("TMPDIR", &spool)
        .args(["-vv", "reconcile"])
        .arg(&p)
        .arg("--out")
        .arg(&remote)
        .output()
        .unwrap();
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
    let o = reconcile(&root().join("pipelines/reconcile-edge.yaml"), &local, &[]);
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
                .starts_with(&format!("{}/exports/", store.url)),
            "{input}"
        );
        assert_eq!(input["size"], l["inputs"][i]["size"]);
        assert_eq!(input["blake3"], l["inputs"][i]["blake3"]);
    }
    // A missing object is an error naming its URL, and writes no report.
    let (store_url, crm) = (store.url.clone(), edge.join("crm_operations.csv"));
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", move |t| {
        t.replace(
            &format!("location: {}", crm.display()),
            &format!(
                "storage: {{ allow_http: \"true\" }}\n    location: {store_url}/exports/gone.csv"
            ),
        )
    });
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
    let url = format!("{}/forbidden/edge", store.url);
    let o = reconcile(&p, &url, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{url}/discrepancies.parquet")),
        "{}",
        stderr(&o)
    );
    assert!(store.objects.lock().unwrap().is_empty());
    // A glob or an unknown scheme is a usage error.
    for bad in ["s3://bucket/reports/*", "ftp://host/reports"] {
        let o = reconcile(&p, bad, &[]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
    }
}

#[test]
fn progress_names_each_step_on_stderr_unless_json() {
    let tmp = tempfile::tempdir().unwrap();
    let p = root().join("pipelines/reconcile-edge.yaml");
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

#[test]
fn partitioned_checks_give_byte_identical_reports() {
    let tmp = tempfile::tempdir().unwrap();
    // A step after the aggregate: the CRM side is split twice, before the
    // aggregate by its columns, then after it by key.
    let after = tmp.path().join("after");
    std::fs::create_dir_all(&after).unwrap();
    let twice = pipeline_copy(&after, "reconcile-orders.yaml", |t| {
        let created = "        created: first(secutix__CreationDate__c)\n";
        assert!(t.contains(created));
        t.replace(
            created,
            &format!("{created}    - {{ type: text, columns: [currency], trim: true }}\n"),
        )
    });
    // Composite keys, duplicates and null keys (edge, no aggregate); order
    // lines aggregated by the key, the last step, so split once before the
    // aggregate (orders); and the same split twice.
    for (name, p, aggregated) in [
        ("edge", root().join("pipelines/reconcile-edge.yaml"), None),
        (
            "orders",
            root().join("pipelines/reconcile-orders.yaml"),
            Some(true),
        ),
        ("orders-twice", twice, Some(false)),
    ] {
        let whole = tmp.path().join(format!("{name}-1"));
        let o = reconcile(&p, &whole, &["--partitions", "1"]);
        let expected = code(&o);
        assert!(expected == 0 || expected == 5, "{}", stderr(&o));
        assert!(!stderr(&o).contains("partitions"), "{}", stderr(&o));
        for parts in ["2", "7"] {
            let out = tmp.path().join(format!("{name}-{parts}"));
            let o = reconcile(&p, &out, &["--partitions", parts]);
            assert_eq!(code(&o), expected, "{}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains(&format!("into {parts} partitions")), "{e}");
            assert!(
                e.contains(&format!("comparing partition {parts}/{parts}")),
                "{e}"
            );
            if let Some(once) = aggregated {
                assert_eq!(e.contains("rows before the aggregate"), once, "{e}");
            }
            for n in REPORTS {
                assert_eq!(
                    std::fs::read(whole.join(n)).unwrap(),
                    std::fs::read(out.join(n)).unwrap(),
                    "{name} in {parts} partitions: {n}"
                );
            }
        }
    }
}

#[test]
fn a_small_memory_limit_splits_the_check_and_changes_no_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let p = root().join("pipelines/reconcile-orders.yaml");
    let whole = tmp.path().join("whole");
    let code_whole = code(&reconcile(&p, &whole, &[]));
    // The test exports are a few KiB: 8KiB cannot hold both sides at once.
    let small = tmp.path().join("small");
    let o = reconcile(&p, &small, &["--memory-limit", "8KiB"]);
    assert_eq!(code(&o), code_whole, "{}", stderr(&o));
    assert!(stderr(&o).contains(" partitions"), "{}", stderr(&o));
    for n in REPORTS {
        assert_eq!(
            std::fs::read(whole.join(n)).unwrap(),
            std::fs::read(small.join(n)).unwrap(),
            "{n}"
        );
    }
    // The same from the pipeline file.
    let q = pipeline_copy(tmp.path(), "reconcile-orders.yaml", |t| {
        t.replace("compare:\n", "memory_limit: 8KiB\ncompare:\n")
    });
    let o = reconcile(&q, tmp.path().join("from-file"), &[]);
    assert!(stderr(&o).contains(" partitions"), "{}", stderr(&o));
    let o = reconcile(&p, tmp.path().join("bad"), &["--memory-limit", "lots"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid size"), "{}", stderr(&o));
}

#[test]
fn steps_that_cannot_run_per_partition_refuse_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    // An `sql` step after the aggregate could look across groups.
    let sql = "    - { type: sql, query: \"SELECT * FROM source\" }\ncompare:\n";
    let p = pipeline_copy(tmp.path(), "reconcile-orders.yaml", |t| {
        t.replace("compare:\n", sql)
    });
    let o = reconcile(&p, tmp.path().join("a"), &["--partitions", "3"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("right.transforms["), "{}", stderr(&o));
    assert!(!tmp.path().join("a").exists());
    // Asked for in the file, `validate` finds it too.
    let other = tempfile::tempdir().unwrap();
    let q = pipeline_copy(other.path(), "reconcile-orders.yaml", |t| {
        t.replace(
            "compare:\n",
            &sql.replace("compare:\n", "partitions: 3\ncompare:\n"),
        )
    });
    let o = bin().arg("validate").arg(&q).output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("right.transforms["), "{}", stderr(&o));
    // Without a request, a tiny memory limit falls back to one pass.
    let o = reconcile(&p, tmp.path().join("b"), &["--memory-limit", "8KiB"]);
    assert!(code(&o) == 0 || code(&o) == 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("comparing all at once"),
        "{}",
        stderr(&o)
    );
}

/// A real S3-compatible server (moto) on 127.0.0.1, stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// One plain HTTP request to the server; its status line.
    fn request(&self, head: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.endpoint.trim_start_matches("http://"))
            .expect("connect to moto");
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(
            s,
            "{head} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply.lines().next().unwrap_or_default().to_string()
    }

    /// Create a bucket: a plain S3 `PUT /name`.
    fn create_bucket(&self, name: &str) {
        let status = self.request(&format!("PUT /{name}"), "");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
}

/// Start moto's S3 server, or `None` where it is not installed (CI installs
/// it, and there its absence fails the test).
fn s3_server() -> Option<S3Server> {
    let present = Command::new("python3")
        .args(["-c", "import moto.server, flask"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "moto[server] is missing: .ci/run installs it"
        );
        eprintln!("skipped: python3 -m pip install 'moto[server]' to run the S3 test");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start moto");
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // Bounded wait for the port: 20 s at most.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto did not listen on {port} within 20 s");
}

#[test]
fn reports_can_go_to_s3() {
    use object_store::ObjectStoreExt;
    use object_store::aws::AmazonS3Builder;
    let Some(server) = s3_server() else {
        return;
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_allow_http(true)
        .with_bucket_name("reports")
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    server.create_bucket("reports");
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = server.endpoint.clone();
    let p = pipeline_copy(tmp.path(), "reconcile-edge.yaml", move |t| {
        format!(
            "{t}\noutput:\n  storage: {{ aws_endpoint: \"{endpoint}\", aws_allow_http: \"true\", aws_region: us-east-1, aws_access_key_id: test, aws_secret_access_key: test }}\n"
        )
    });
    let o = reconcile(&p, "s3://reports/checks/edge", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let local = tmp.path().join("local");
    assert_eq!(code(&reconcile(&p, &local, &[])), 0);
    for n in REPORTS {
        let path = object_store::path::Path::from(format!("checks/edge/{n}"));
        let bytes = rt
            .block_on(async { store.get(&path).await?.bytes().await })
            .unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(bytes.to_vec(), std::fs::read(local.join(n)).unwrap(), "{n}");
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

/// The marker file the tool writes into every report.
const MARKER: &str = ".s360-sync-report";

/// Every entry below `dir`, by relative path: a file's bytes, a link's
/// target, a folder as `/`. Compared before and after to show nothing changed.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, target.to_string_lossy().as_bytes().to_vec());
            } else if kind.is_dir() {
                out.insert(rel, b"/".to_vec());
                walk(base, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The report files and the marker.
fn report_names() -> BTreeSet<String> {
    REPORTS
        .iter()
        .chain(&[MARKER])
        .map(|n| n.to_string())
        .collect()
}

#[test]
fn reconcile_out_refuses_a_folder_that_is_not_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let p = root().join("pipelines/reconcile-edge.yaml");
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
    let p = root().join("pipelines/reconcile-edge.yaml");
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
    let edge = root().join("pipelines/reconcile-edge.yaml");
    let orders = root().join("pipelines/reconcile-orders.yaml");
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
    let p = root().join("pipelines/reconcile-edge.yaml");
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

/// An S3 client of the `reports` bucket on a moto server.
fn s3_store(server: &S3Server, key: &str, secret: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_allow_http(true)
        .with_bucket_name("reports")
        .with_region("us-east-1")
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .build()
        .unwrap()
}

/// The edge pipeline in `dir`, its reports going to moto with these keys.
fn edge_to_s3(dir: &Path, server: &S3Server, key: &str, secret: &str) -> PathBuf {
    let storage = format!(
        "{{ aws_endpoint: \"{}\", aws_allow_http: \"true\", aws_region: us-east-1, aws_access_key_id: \"{key}\", aws_secret_access_key: \"{secret}\" }}",
        server.endpoint
    );
    pipeline_copy(dir, "reconcile-edge.yaml", move |t| {
        format!("{t}\noutput:\n  storage: {storage}\n")
    })
}

/// An object's bytes, `None` when it is not there.
fn s3_get(store: &object_store::aws::AmazonS3, name: &str) -> Option<Vec<u8>> {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = object_store::path::Path::from(name);
    match rt.block_on(async { store.get(&path).await?.bytes().await }) {
        Ok(bytes) => Some(bytes.to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn s3_put(store: &object_store::aws::AmazonS3, name: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = object_store::path::Path::from(name);
    rt.block_on(store.put(&path, bytes.into())).unwrap();
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
    let local = tmp.path().join("local");
    assert_eq!(code(&reconcile(&p, &local, &[])), 0);
    for n in report_names() {
        assert_eq!(
            s3_get(&store, &format!("checks/edge/{n}")),
            Some(std::fs::read(local.join(&n)).unwrap()),
            "{n}"
        );
    }
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

/// Create an IAM user on moto whose policy is `policy`; its access key and secret.
fn moto_user(server: &S3Server, policy: &Value) -> (String, String) {
    const SCRIPT: &str = r#"
import sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
iam.create_user(UserName="reporter")
iam.put_user_policy(UserName="reporter", PolicyName="reports", PolicyDocument=sys.argv[2])
key = iam.create_access_key(UserName="reporter")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
    let o = Command::new("python3")
        .args(["-c", SCRIPT, &server.endpoint, &policy.to_string()])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let (key, secret) = out.trim().split_once(' ').unwrap();
    (key.to_string(), secret.to_string())
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
    let local = tmp.path().join("local");
    assert_eq!(code(&reconcile(&p, &local, &[])), 0);
    for n in report_names() {
        assert_eq!(
            s3_get(&store, &format!("checks/edge/{n}")),
            Some(std::fs::read(local.join(&n)).unwrap()),
            "{n}"
        );
    }
}
