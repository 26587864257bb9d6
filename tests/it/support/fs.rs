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

/// The modification time of a file.
pub fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Set the modification time of a file (what a same-second rewrite, or an
/// export written long before the run, looks like to a listing).
pub fn set_mtime(path: &Path, at: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// Make a file look written an hour before the run, as exports usually
/// are: a file read within a minute of its mtime is read again next run
/// (`sync::detect::RACY_MS`), which tests of "only new files are read"
/// must not trip over.
pub fn settle(path: &Path) {
    set_mtime(
        path,
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
    );
}
