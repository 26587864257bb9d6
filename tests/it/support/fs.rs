//! Where the committed files are, and writing files of a test.

use std::path::{Path, PathBuf};

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
