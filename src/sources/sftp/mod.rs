//! `sftp://user@host[:port]/path` sources: an [`ObjectStore`] over one SSH connection (russh, russh-sftp) that lists, stats and reads files and refuses every write.
//!
//! The connection is opened on the first request and reused by the
//! listing and every read of the store. Paths in the URL are absolute on
//! the server (`sftp://u@h/data/out/*.csv` lists `/data/out`). A listing
//! walks the folders under the prefix (following links to files, not to
//! folders) and gives each file its size and modification time (SFTP has no
//! ETag), which is what new-file detection compares.

mod connect;

use std::collections::BTreeMap;
use std::fmt;
use std::io::SeekFrom;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::OnceCell;

pub use crate::pipeline::sftp::SftpOptions;
use crate::pipeline::sftp::joined;
pub use connect::ConnectError;
use connect::Connection;

const STORE: &str = "SFTP";

/// Bytes asked of the server per read of a file's stream.
const CHUNK: u64 = 256 * 1024;

/// A read-only object store over SFTP.
#[derive(Debug)]
pub struct SftpStore {
    /// `sftp://host:port`, for messages.
    shown: String,
    /// Shared with the streams of listings, which outlive `&self`.
    server: Arc<Server>,
}

/// A server and the one connection to it, made on first use.
#[derive(Debug)]
struct Server {
    options: SftpOptions,
    /// How many folder levels a listing descends; all when `None`.
    depth: Option<usize>,
    connection: OnceCell<Arc<Connection>>,
}

impl Server {
    async fn connection(&self) -> object_store::Result<Arc<Connection>> {
        self.connection
            .get_or_try_init(|| async {
                let c = connect::connect(&self.options).await.map_err(generic)?;
                tracing::debug!(
                    server = %self.options.server(),
                    user = %self.options.user,
                    "SFTP connected"
                );
                Ok(Arc::new(c))
            })
            .await
            .cloned()
    }
}

impl fmt::Display for SftpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SFTP({})", self.shown)
    }
}

impl SftpStore {
    /// The store for an `sftp://` URL and the path under it. Touches neither
    /// the network nor the environment: the connection is made, and secrets
    /// are read, on the first request.
    ///
    /// A listing descends at most `depth` folder levels below its prefix
    /// (1: the prefix's own files), all of them when `None`: a glob without
    /// `**` says how deep its files can be, and a server's tree is not
    /// walked further than that.
    pub fn new(
        url: &url::Url,
        storage: &BTreeMap<String, String>,
        depth: Option<usize>,
    ) -> Result<(Self, StorePath), String> {
        let options = SftpOptions::parse(url, storage).map_err(|p| joined(&p))?;
        let path = StorePath::from_url_path(url.path()).map_err(|e| e.to_string())?;
        let shown = format!("sftp://{}", options.server());
        Ok((
            Self {
                shown,
                server: Arc::new(Server {
                    options,
                    depth,
                    connection: OnceCell::new(),
                }),
            },
            path,
        ))
    }
}

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

/// The server's path of a store path: absolute (object_store paths have
/// no leading `/` and percent-encode a few characters), or, for a URL path
/// that starts with `/~/` (`sftp://host/~/exports/`, as curl reads it),
/// relative to the folder the server logs the user into, their home.
fn remote(path: &StorePath) -> String {
    let decoded = percent_encoding::percent_decode_str(path.as_ref()).decode_utf8_lossy();
    match decoded.strip_prefix('~') {
        Some("") => ".".to_string(),
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/').to_string(),
        _ => format!("/{decoded}"),
    }
}

/// A failed SFTP request on `path` as object_store's error of that kind.
fn request_error(path: &str, e: SftpError) -> object_store::Error {
    let path = path.to_string();
    match &e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => {
            object_store::Error::NotFound {
                path,
                source: Box::new(e),
            }
        }
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
            object_store::Error::PermissionDenied {
                path,
                source: Box::new(e),
            }
        }
        _ => object_store::Error::Generic {
            store: STORE,
            source: format!("{path}: {e}").into(),
        },
    }
}

// Types are read with `file_type()`: russh-sftp's `is_regular()` and
// `is_dir()` test single bits, which a link or a socket also has.
fn meta_of(location: StorePath, attrs: &FileAttributes) -> ObjectMeta {
    ObjectMeta {
        location,
        last_modified: attrs
            .mtime
            .and_then(|s| DateTime::<Utc>::from_timestamp(i64::from(s), 0))
            .unwrap_or(DateTime::UNIX_EPOCH),
        size: attrs.size.unwrap_or(0),
        e_tag: None,
        version: None,
    }
}

/// Every file under `prefix` down to `depth` levels, with size and
/// modification time.
async fn list_files(
    c: &Connection,
    prefix: StorePath,
    depth: Option<usize>,
) -> object_store::Result<Vec<ObjectMeta>> {
    let root = remote(&prefix);
    let attrs = c
        .sftp
        .metadata(root.as_str())
        .await
        .map_err(|e| request_error(&root, e))?;
    if !attrs.file_type().is_dir() {
        return Err(object_store::Error::NotFound {
            path: root.clone(),
            source: format!("{root} is not a folder").into(),
        });
    }
    let mut out = Vec::new();
    let mut folders = vec![(prefix, 1)];
    while let Some((folder, level)) = folders.pop() {
        let dir = remote(&folder);
        let entries = c
            .sftp
            .read_dir(dir.as_str())
            .await
            .map_err(|e| request_error(&dir, e))?;
        for entry in entries {
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let location = folder.clone().join(name.as_str());
            let mut attrs = entry.metadata();
            if attrs.file_type().is_symlink() {
                // A link to a file is read as that file; a link to a folder
                // is not walked (it could lead back up), nor a dangling one.
                match c.sftp.metadata(entry.path()).await {
                    Ok(target) if target.file_type().is_file() => attrs = target,
                    _ => continue,
                }
            }
            if attrs.file_type().is_dir() {
                if depth.is_none_or(|d| level < d) {
                    folders.push((location, level + 1));
                }
            } else if attrs.file_type().is_file() {
                out.push(meta_of(location, &attrs));
            }
        }
    }
    Ok(out)
}

/// The bytes of `range` of an open file, read in chunks.
fn read_stream(
    file: russh_sftp::client::fs::File,
    path: String,
    range: Range<u64>,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    let left = range.end - range.start;
    stream::try_unfold((file, left), move |(mut file, left)| {
        let path = path.clone();
        async move {
            if left == 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; left.min(CHUNK) as usize];
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: STORE,
                    source: format!("{path}: {e}").into(),
                })?;
            if n == 0 {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!(
                        "{path}: the file ended {left} byte(s) early; it changed while being read"
                    )
                    .into(),
                });
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), (file, left - n as u64))))
        }
    })
    .boxed()
}

fn read_only(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_string(),
        implementer: "the SFTP source (read-only)".to_string(),
    }
}

#[async_trait]
impl ObjectStore for SftpStore {
    async fn put_opts(
        &self,
        _location: &StorePath,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only("put"))
    }

    async fn put_multipart_opts(
        &self,
        _location: &StorePath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only("put_multipart"))
    }

    async fn get_opts(
        &self,
        location: &StorePath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let c = self.server.connection().await?;
        let path = remote(location);
        let attrs = c
            .sftp
            .metadata(path.as_str())
            .await
            .map_err(|e| request_error(&path, e))?;
        if !attrs.file_type().is_file() {
            return Err(object_store::Error::NotFound {
                path: path.clone(),
                source: format!("{path} is not a file").into(),
            });
        }
        let meta = meta_of(location.clone(), &attrs);
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(r) => r
                .as_range(meta.size)
                .map_err(|e| object_store::Error::Generic {
                    store: STORE,
                    source: format!("{path}: {e}").into(),
                })?,
            None => 0..meta.size,
        };
        let payload = if options.head {
            stream::empty().boxed()
        } else {
            let mut file = c
                .sftp
                .open(path.as_str())
                .await
                .map_err(|e| request_error(&path, e))?;
            if range.start > 0 {
                file.seek(SeekFrom::Start(range.start)).await.map_err(|e| {
                    object_store::Error::Generic {
                        store: STORE,
                        source: format!("{path}: {e}").into(),
                    }
                })?;
            }
            read_stream(file, path, range.clone())
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: Attributes::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<StorePath>>,
    ) -> BoxStream<'static, object_store::Result<StorePath>> {
        locations.map(|_| Err(read_only("delete"))).boxed()
    }

    fn list(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        let server = self.server.clone();
        stream::once(async move {
            let c = server.connection().await?;
            list_files(&c, prefix, server.depth).await
        })
        .map_ok(|files| stream::iter(files.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(
        &self,
        _prefix: Option<&StorePath>,
    ) -> object_store::Result<ListResult> {
        Err(read_only("list_with_delimiter"))
    }

    async fn copy_opts(
        &self,
        _from: &StorePath,
        _to: &StorePath,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(read_only("copy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_path_under_tilde_is_relative_to_the_login_folder() {
        let remote_of = |p: &str| remote(&StorePath::from_url_path(p).unwrap());
        assert_eq!(remote_of("/srv/exports/a.csv"), "/srv/exports/a.csv");
        assert_eq!(remote_of("/~/exports/a.csv"), "exports/a.csv");
        assert_eq!(remote_of("/~"), ".");
        // Only a whole `~` segment means the home folder.
        assert_eq!(remote_of("/~old/a.csv"), "/~old/a.csv");
        assert_eq!(remote_of("/srv/~/a.csv"), "/srv/~/a.csv");
        assert_eq!(remote_of("/out/a%20b.csv"), "/out/a b.csv");
    }
}
