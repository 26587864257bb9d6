//! Report files and folders created readable by their owner only (on unix): reports hold customers' data.

use std::io::Write;
use std::path::Path;

use crate::reconcile::error::ReconcileError;

/// Create a new report file, readable by its owner only on unix (reports
/// hold customers' data).
pub fn create_private(path: &Path) -> Result<std::fs::File, ReconcileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| ReconcileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a whole new report file (see [`create_private`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ReconcileError> {
    let mut file = create_private(path)?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|source| ReconcileError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Create a folder, readable by its owner only on unix (reports hold
/// customers' data); with `parents`, also the missing folders above it.
pub(super) fn create_private_dir(path: &Path, parents: bool) -> Result<(), ReconcileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| ReconcileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A new private folder (see [`create_private_dir`]) in `dir`, removed when dropped.
pub(super) fn private_tempdir(dir: &Path) -> Result<tempfile::TempDir, ReconcileError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".reconcile-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    builder
        .tempdir_in(dir)
        .map_err(|source| ReconcileError::Io {
            path: dir.to_path_buf(),
            source,
        })
}
