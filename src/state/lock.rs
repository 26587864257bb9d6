//! One run per pipeline at a time: an OS file lock beside the state database.
//!
//! The kernel releases the lock when its process dies, so a killed run never
//! blocks the next one; the pid it wrote is then reported as stale.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live run holds it.
    #[error("another run of this pipeline is in progress ({holder}); lock file {}", path.display())]
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote (pid and start time).
        holder: String,
    },
    /// The lock file could not be opened or written.
    #[error("lock file {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A held run lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    /// The lock file.
    pub path: PathBuf,
    /// Holder info left by a run that died without releasing, if any.
    pub stale: Option<String>,
}

impl RunLock {
    /// The lock file used for a state database.
    pub fn path_for(state_db: &Path) -> PathBuf {
        let mut p = state_db.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Take the lock for `state_db` or fail at once with [`LockError::Held`].
    pub fn acquire(state_db: &Path) -> Result<Self, LockError> {
        let path = Self::path_for(state_db);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut previous = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let _ = file.read_to_string(&mut previous);
                return Err(LockError::Held {
                    path,
                    holder: previous.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.read_to_string(&mut previous).map_err(io)?;
        let stale = Some(previous.trim().to_string()).filter(|s| !s.is_empty());
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(
            file,
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { file, path, stale })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // An empty file tells the next run that this one ended cleanly.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let first = RunLock::acquire(&db).unwrap();
        assert!(first.stale.is_none());
        match RunLock::acquire(&db) {
            Err(LockError::Held { holder, .. }) => {
                assert!(holder.contains(&format!("pid {}", std::process::id())))
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        let again = RunLock::acquire(&db).unwrap();
        assert!(
            again.stale.is_none(),
            "clean release leaves no stale holder"
        );
    }

    #[test]
    fn lock_left_by_a_dead_process_is_detected_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        // A killed process leaves its text but no OS lock.
        std::fs::write(
            RunLock::path_for(&db),
            "pid 999999 since 2026-01-01T00:00:00Z",
        )
        .unwrap();
        let lock = RunLock::acquire(&db).unwrap();
        assert_eq!(
            lock.stale.as_deref(),
            Some("pid 999999 since 2026-01-01T00:00:00Z")
        );
    }
}
