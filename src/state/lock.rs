//! One run per pipeline at a time: an OS file lock beside the state database.
//!
//! The kernel releases the lock when its process dies, so a killed run never
//! blocks the next one; the pid it wrote is then reported as stale. A held
//! lock therefore means a live holder: `--force` only runs without the lock
//! when the holder it names is provably dead (its pid is gone on this host),
//! as when a dead run's lock is still held through a file descriptor that
//! another process inherited; beside a live holder it is refused.

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
    /// False when `--force` went on beside a dead holder's lock.
    locked: bool,
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
        Self::take(state_db, false)
    }

    /// As [`RunLock::acquire`], but when the lock is held by a process that
    /// is provably dead, go on without it (reported in `stale`). A live
    /// holder, or one on another host, is still refused.
    pub fn acquire_force(state_db: &Path) -> Result<Self, LockError> {
        Self::take(state_db, true)
    }

    fn take(state_db: &Path, force: bool) -> Result<Self, LockError> {
        let path = Self::path_for(state_db);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            crate::state::create_private_dir(dir).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        let mut previous = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let _ = file.read_to_string(&mut previous);
                let holder = previous.trim().to_string();
                if force && holder_is_dead(&holder) {
                    return Ok(Self {
                        file,
                        path,
                        locked: false,
                        stale: Some(holder),
                    });
                }
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.read_to_string(&mut previous).map_err(io)?;
        let stale = Some(previous.trim().to_string()).filter(|s| !s.is_empty());
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(
            file,
            "pid {} on {} since {}",
            std::process::id(),
            host(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self {
            file,
            path,
            locked: true,
            stale,
        })
    }
}

/// This machine's host name, as lock files record it.
fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// True only when the holder text names a pid on this host that no longer
/// exists. Anything unreadable, another host, or a live pid: not dead.
fn holder_is_dead(holder: &str) -> bool {
    let mut words = holder.split_whitespace();
    let (Some("pid"), Some(pid), Some("on"), Some(on)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if on != host() || pid <= 0 || pid as u32 == std::process::id() {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if self.locked {
            // An empty file tells the next run that this one ended cleanly.
            let _ = self.file.set_len(0);
            let _ = self.file.unlock();
        }
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
