//! `s360-sync reconcile` through the real binary on the committed test data, checked against gen's independent answer key.

mod answers;
mod html_page;
mod object_store;
mod out_folder;
mod partitions;
mod refusals;
mod s3;
mod slices;
mod spellings;
mod xlsx;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::cli::Cmd;
use crate::support::root;

/// `reconcile <pipeline> --out <out>` plus `extra`, run in the crate's folder.
fn reconcile(pipeline: &Path, out: impl AsRef<OsStr>, extra: &[&str]) -> Output {
    Cmd::new(&root())
        .arg("reconcile")
        .arg(pipeline)
        .arg("--out")
        .arg(out.as_ref())
        .args(extra)
        .run()
}

/// A committed pipeline, `pipelines/<name>`.
fn committed(name: &str) -> PathBuf {
    root().join("pipelines").join(name)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    crate::support::stderr(o)
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

/// The marker file the tool writes into every report.
const MARKER: &str = ".s360-sync-report";

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
