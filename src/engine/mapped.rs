//! Input files read by Polars from memory maps that this crate owns, so
//! their pages can be given back while they are read.
//!
//! Polars reads a local CSV or Parquet file through a read-only memory map,
//! and every page of it the reader has touched counts in the process's
//! resident memory until the whole file is read, although it is a clean copy
//! of the page cache the reader is done with. On a check of 5M orders per
//! side, 1,173 MiB of the 1,992 MiB peak were the CSV exports' mapped pages.
//!
//! Here each file is mapped by us and handed to Polars as a buffer, where
//! Polars would map a path itself. While the check runs, a thread
//! calls `madvise(MADV_DONTNEED)` on the maps every [`EVERY`]: that drops the
//! pages from the process without changing what it reads, as a page touched
//! again is mapped again from the page cache (a minor fault). The thread
//! holds the maps, so none can be unmapped (and its addresses reused) under
//! it. Linux only; elsewhere Polars is given the paths, as before.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use polars::prelude::*;
use polars_buffer::Buffer;

/// Build-time guard of the vendored polars-io (`vendor/polars-io/PATCHED.md`):
/// the CSV exports mapped here are split into lines by its patched counter
/// (5M-order check: 8.1 s to 6.1 s). If the registry's polars-io were used
/// instead (after a Polars upgrade Cargo only warns "patch not used"), the
/// check would silently be slower; this reference fails the build instead.
const _POLARS_IO_PATCHED: &str = polars_io::S360_SYNC_PATCHED;

/// How often the maps' pages are given back.
pub const EVERY: Duration = Duration::from_millis(50);

/// Polars' scan sources of the local file at `path`, and its map: on Linux
/// the file is mapped here (see the module's documentation); elsewhere
/// Polars is given the path, and maps and unmaps the file itself.
pub fn scan_sources(path: &Path) -> std::io::Result<(ScanSources, Option<MappedFile>)> {
    if cfg!(target_os = "linux") {
        let map = MappedFile::open(path)?;
        Ok((MappedFile::sources(map.as_ref()), map))
    } else {
        let path = PlRefPath::new(path.to_string_lossy().as_ref());
        Ok((ScanSources::Paths(Buffer::from_iter([path])), None))
    }
}

/// A file mapped read-only, shared by Polars' buffers and the releaser.
#[derive(Clone)]
pub struct MappedFile(Arc<memmap2::Mmap>);

/// What a Polars buffer holds to keep the map alive.
struct Owner(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedFile {
    /// Maps `path`; `None` for an empty file (nothing to map).
    pub fn open(path: &Path) -> std::io::Result<Option<Self>> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(None);
        }
        // SAFETY: the map is read-only. As with Polars' own maps, a file
        // truncated by another process while it is read is undefined (SIGBUS
        // on Linux); exports are not written while a check reads them.
        let map = match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => map,
            // A file system without shared maps: a private read-only one,
            // as Polars falls back to.
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => unsafe {
                memmap2::MmapOptions::new().map_copy_read_only(&file)?
            },
            Err(e) => return Err(e),
        };
        Ok(Some(Self(Arc::new(map))))
    }

    /// Polars' scan sources of the file (an empty buffer if `map` is `None`).
    pub fn sources(map: Option<&Self>) -> ScanSources {
        let buffer = match map {
            Some(m) => Buffer::from_owner(Owner(m.0.clone())),
            None => Buffer::new(),
        };
        ScanSources::Buffers(Arc::from([buffer]))
    }

    /// Drops the map's resident pages from the process (see the module's
    /// documentation). Returns whether `madvise` accepted it.
    fn release(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `self` keeps the map alive for the call, and the map is
            // read-only and backed by a file: no data is lost, pages are read
            // again from the file when touched.
            unsafe { self.0.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) }.is_ok()
        }
        #[cfg(not(target_os = "linux"))]
        false
    }
}

/// While alive, gives back the pages of the maps every [`EVERY`].
pub struct Releaser {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Releaser {
    /// Starts giving back the pages of `maps` (nothing to do: no thread).
    pub fn start(maps: Vec<MappedFile>) -> Self {
        if maps.is_empty() || !cfg!(target_os = "linux") {
            return Self {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s360-mapped-pages".into())
            .spawn(move || {
                let mut passes = 0u64;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(EVERY)
                {
                    for m in &maps {
                        m.release();
                    }
                    passes += 1;
                }
                tracing::debug!(passes, files = maps.len(), "mapped input pages given back");
            })
            .ok();
        Self {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Releaser {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident kB of the map in this process (`Rss` in `/proc/self/smaps`;
    /// `mincore` would tell the page cache's, not the process's).
    #[cfg(target_os = "linux")]
    fn resident(m: &MappedFile) -> u64 {
        let start = format!("{:x}-", m.0.as_ptr() as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        // The first `Rss:` line after the map's header line is the map's.
        let rss = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&start))
            .find(|l| l.starts_with("Rss:"))
            .expect("the map is listed");
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn polars_reads_the_map_and_its_pages_are_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut text = String::from("k;v\n");
        for i in 0..200_000 {
            text.push_str(&format!("{i};value-{i}\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let map = MappedFile::open(&path).unwrap().unwrap();
        let df = LazyCsvReader::new_with_sources(MappedFile::sources(Some(&map)))
            .with_separator(b';')
            .finish()
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(df.height(), 200_000);
        assert_eq!(
            df.column("v").unwrap().str().unwrap().get(199_999),
            Some("value-199999")
        );
        #[cfg(target_os = "linux")]
        {
            assert!(resident(&map) > 100, "{}", resident(&map));
            assert!(map.release());
            assert_eq!(resident(&map), 0);
            // Read again, the same.
            let again = LazyCsvReader::new_with_sources(MappedFile::sources(Some(&map)))
                .with_separator(b';')
                .finish()
                .unwrap()
                .collect()
                .unwrap();
            assert!(again.equals_missing(&df));
        }
        // The releaser stops when dropped.
        drop(Releaser::start(vec![map]));
    }

    #[test]
    fn an_empty_file_is_an_empty_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.csv");
        std::fs::write(&path, "").unwrap();
        assert!(MappedFile::open(&path).unwrap().is_none());
        assert!(MappedFile::open(&dir.path().join("missing.csv")).is_err());
    }
}
