//! Sources: where export files are (local disk, object storage, HTTP, SFTP): listing, fetching, and reading them as Arrow batches through [`crate::formats`].
//!
//! A [`Source`] lists its files ([`Source::list`]), fetches one
//! ([`Source::fetch`], async) and parses it into a stream of batches on the
//! calling (blocking) thread ([`Source::batches`]). Local files are streamed
//! from disk; remote objects are fetched whole, then parsed, or downloaded to
//! a local file first ([`Source::download`], as consistency checks do).

mod aws_profile;
pub(crate) mod error;
pub mod location;
pub mod nest;
pub(crate) mod redact;
pub mod sftp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use tokio::io::AsyncWriteExt;

pub use crate::formats::{Batches, FileData, MAX_VALUE_BYTES, ReadOptions, UTC};
use crate::pipeline::{Format, LinesConfig, SourceConfig, Zone};
pub use error::SourceError;
pub use location::Location;

/// One export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path inside the store.
    pub path: StorePath,
    /// Human name (local path or URL).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag when the store has one.
    pub etag: Option<String>,
    /// Last modification time.
    pub modified: DateTime<Utc>,
}

/// A configured source of export files.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where the files are.
    pub location: Location,
    /// How to read them.
    pub options: ReadOptions,
}

/// The source's zone; a `timezone` that names none is refused here too,
/// for sources built without validation.
fn zone_of(cfg: &SourceConfig, location: &str) -> Result<Zone, SourceError> {
    Zone::parse(&cfg.timezone, cfg.dst).map_err(|message| SourceError::Location {
        location: redact::without_credentials(location),
        message: format!("timezone {message}"),
    })
}

impl Source {
    /// A source for an orders export; `location` must already be resolved.
    pub fn new(cfg: &SourceConfig, location: &str) -> Result<Self, SourceError> {
        let keys = cfg.key.as_ref().map(|k| k.columns()).unwrap_or_default();
        let mut required = keys.clone();
        required.extend(cfg.cursor.clone());
        Self::build(
            location,
            &cfg.storage,
            cfg.format,
            ReadOptions {
                format: Format::Csv,
                csv: cfg.csv.clone(),
                columns: cfg.columns.clone(),
                zone: zone_of(cfg, location)?,
                numbers: cfg.numbers,
                required,
                text: keys,
                batch_size: 8192,
            },
        )
    }

    /// A source for a lines export; `location` must already be resolved.
    pub fn for_lines(
        cfg: &LinesConfig,
        location: &str,
        orders: &SourceConfig,
    ) -> Result<Self, SourceError> {
        Self::build(
            location,
            &cfg.storage,
            cfg.format,
            ReadOptions {
                format: Format::Csv,
                csv: cfg.csv.clone(),
                columns: cfg.columns.clone(),
                zone: zone_of(orders, location)?,
                numbers: orders.numbers,
                required: vec![cfg.key.clone()],
                text: vec![cfg.key.clone()],
                batch_size: 8192,
            },
        )
    }

    fn build(
        location: &str,
        storage: &BTreeMap<String, String>,
        format: Option<Format>,
        mut options: ReadOptions,
    ) -> Result<Self, SourceError> {
        options.format = format
            .or_else(|| Format::from_extension(location))
            .ok_or_else(|| SourceError::Location {
                location: redact::without_credentials(location),
                message: "cannot tell the format from the extension; set `format`".into(),
            })?;
        Ok(Self {
            location: Location::parse(location, storage)?,
            options,
        })
    }

    /// The files of this source, sorted by path. Without a glob the location
    /// names one file, which must exist.
    pub async fn list(&self) -> Result<Vec<SourceFile>, SourceError> {
        let loc = &self.location;
        let store_err = |source| SourceError::store(&loc.display, source);
        let mut files = Vec::new();
        match &loc.glob {
            None => {
                let meta = loc.store.head(&loc.prefix).await.map_err(store_err)?;
                files.push(self.file_of(meta));
            }
            Some(glob) => {
                let listed: Vec<_> = loc
                    .store
                    .list(Some(&loc.prefix))
                    .try_collect()
                    .await
                    .map_err(store_err)?;
                for meta in listed {
                    if glob.is_match(meta.location.as_ref()) {
                        files.push(self.file_of(meta));
                    }
                }
                if files.is_empty() {
                    return Err(SourceError::NoFiles {
                        location: loc.display.clone(),
                    });
                }
            }
        }
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        Ok(files)
    }

    fn file_of(&self, meta: object_store::ObjectMeta) -> SourceFile {
        SourceFile {
            name: self.location.name_of(&meta.location),
            path: meta.location,
            size: meta.size,
            etag: meta.e_tag,
            modified: meta.last_modified,
        }
    }

    /// A file's path on local disk, for a local source.
    pub fn local_path(&self, file: &SourceFile) -> Option<PathBuf> {
        self.location
            .local
            .then(|| PathBuf::from(format!("/{}", file.path.as_ref())))
    }

    /// Get a file's bytes (remote) or its path (local).
    pub async fn fetch(&self, file: &SourceFile) -> Result<FileData, SourceError> {
        if let Some(path) = self.local_path(file) {
            return Ok(FileData::Local(path));
        }
        let got = self
            .location
            .store
            .get(&file.path)
            .await
            .map_err(|source| SourceError::store(&file.name, source))?;
        let bytes = got
            .bytes()
            .await
            .map_err(|source| SourceError::store(&file.name, source))?;
        Ok(FileData::Bytes(bytes))
    }

    /// Copy a (remote) file into `dest` chunk by chunk, so that an export
    /// larger than memory never has to fit in it. `dest` is created (or
    /// truncated).
    pub async fn download(&self, file: &SourceFile, dest: &Path) -> Result<(), SourceError> {
        let store_err = |source| SourceError::store(&file.name, source);
        let io_err = |source| SourceError::Io {
            file: format!("{} (downloading {})", dest.display(), file.name),
            source,
        };
        let got = self
            .location
            .store
            .get(&file.path)
            .await
            .map_err(store_err)?;
        let mut out = tokio::io::BufWriter::with_capacity(
            1 << 20,
            tokio::fs::File::create(dest).await.map_err(io_err)?,
        );
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.try_next().await.map_err(store_err)? {
            out.write_all(&chunk).await.map_err(io_err)?;
        }
        out.flush().await.map_err(io_err)
    }

    /// Parse a fetched file into batches. Blocking: call from a blocking thread.
    /// Every batch has the declared types, timestamps in UTC, and the required columns.
    pub fn batches(&self, file: &SourceFile, data: FileData) -> Result<Batches, SourceError> {
        crate::formats::read(&file.name, data, &self.options)
    }

    /// Read every file of the source (listing, fetching, parsing), in path order.
    /// For previews and small lines exports; sync runs read file by file.
    pub async fn read_all(&self) -> Result<Vec<RecordBatch>, SourceError> {
        let mut out = Vec::new();
        for file in self.list().await? {
            let data = self.fetch(&file).await?;
            let this = self.clone();
            let batches = tokio::task::spawn_blocking(move || {
                this.batches(&file, data)?.collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| SourceError::Parse {
                file: self.location.display.clone(),
                message: format!("reader thread failed: {e}"),
            })??;
            out.extend(batches);
        }
        Ok(out)
    }
}
