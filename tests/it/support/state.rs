//! Snapshots of a pipeline's state, to show that a refused run changed nothing.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// SHA-256 of the state database `db` and of its WAL, where present.
pub fn db_hash(db: &Path) -> BTreeMap<String, Option<String>> {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let hash = std::fs::read(&p).ok().map(|bytes| {
                Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            });
            (p.to_string_lossy().into_owned(), hash)
        })
        .collect()
}

/// Every file of `dir/state` but the lock file (whose text every run that
/// takes the lock rewrites), with its bytes.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("state")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") {
                continue;
            }
            out.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}
