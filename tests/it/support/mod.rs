//! What the integration tests share: running the binary, the loopback receiver, pipeline builders, sample exports, state snapshots, an S3 server.

#![allow(dead_code)]

pub mod cli;
pub mod exports;
pub mod pipeline;
pub mod receiver;
pub mod reconcile;
pub mod s3;
pub mod state;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::process::Output;

pub use cli::{bin, generate};

/// The crate's folder (where `pipelines/` and `testdata/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the committed bad-input corpus, `testdata/bad/<name>`.
pub fn corpus(name: &str) -> PathBuf {
    root().join("testdata/bad").join(name)
}

/// Write a file, creating folders.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

/// stdout and stderr of an output, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout parsed as JSON (a `--json` summary), or a panic showing the output.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(o)))
}
