//! Why a test could not run as written, and the small helpers every kind of test shares (its temporary folder, an error's chain in one line).

use std::path::{Path, PathBuf};

/// Why a test could not run as written.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// An input of the test is wrong (a file that cannot be read, a file
    /// to remove that is not there).
    #[error("{field}: {message}")]
    Input {
        /// The field of the test file.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A temporary file or folder could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl TestError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A temporary folder for one test, removed when dropped.
pub(crate) fn temp_dir() -> Result<tempfile::TempDir, TestError> {
    tempfile::Builder::new()
        .prefix("s360-sync-test-")
        .tempdir()
        .map_err(|e| TestError::io(&std::env::temp_dir(), e))
}

/// An error and its sources, in one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
