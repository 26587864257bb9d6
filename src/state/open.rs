//! Opening a state database: refusing a file that is not this pipeline's
//! state before anything is written to it, stamping a new one, migrating
//! an old one, and keeping it readable by its owner only.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{StateError, StateStore, schema};

/// SQLite `application_id` of s360-sync state databases ("S360").
pub const APPLICATION_ID: i32 = 0x5333_3630;

/// Create `dir` and its missing parents, readable by the owner only (the
/// state holds customers' orders).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Make a file the tool wrote readable by its owner only.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl StateStore {
    /// Open (creating and migrating if needed) the state database of
    /// `pipeline` at `path`. A file that is not an s360-sync state database,
    /// or is another pipeline's, is refused before anything is written to it.
    pub fn open(path: &Path, pipeline: &str) -> Result<Self, StateError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            create_private_dir(dir).map_err(|source| StateError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let err = |source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            // Created here, with the owner-only mode SQLite then gives its
            // -wal and -shm files too.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let conn = Connection::open(path).map_err(err)?;
        identify(&conn, path, pipeline)?;
        make_private(path).map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        store.stamp(pipeline)?;
        Ok(store)
    }

    /// Open an existing database without creating it; `None` if absent.
    pub fn open_existing(path: &Path, pipeline: &str) -> Result<Option<Self>, StateError> {
        if !path.exists() {
            return Ok(None);
        }
        Self::open(path, pipeline).map(Some)
    }

    /// Record the owner: the `application_id` and the pipeline's name.
    fn stamp(&mut self, pipeline: &str) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        // Written only when missing: a run that changes nothing leaves the
        // file's bytes as they were.
        let app: i32 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(err)?;
        if app != APPLICATION_ID {
            self.conn
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
        }
        let owner: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'pipeline'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if owner.is_none() {
            self.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('pipeline', ?1)",
                    [pipeline],
                )
                .map_err(err)?;
        }
        Ok(())
    }

    pub(super) fn err(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(err)? as usize;
        if version > schema::MIGRATIONS.len() {
            return Err(StateError::TooNew {
                path,
                found: version,
                known: schema::MIGRATIONS.len(),
            });
        }
        if version == schema::MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(err)?;
        for m in &schema::MIGRATIONS[version..] {
            tx.execute_batch(m).map_err(err)?;
        }
        tx.pragma_update(None, "user_version", schema::MIGRATIONS.len() as i64)
            .map_err(err)?;
        tx.commit().map_err(err)
    }
}

/// Tell a new file, or an s360-sync state database of `pipeline` (stamped,
/// or from a build before the stamp), from anything else, by reading only: a
/// refused file is left exactly as it was.
fn identify(conn: &Connection, path: &Path, pipeline: &str) -> Result<(), StateError> {
    let foreign = |why: String| StateError::Foreign {
        path: path.to_path_buf(),
        why,
    };
    let read = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            foreign("the file is not an SQLite database".into())
        }
        _ => StateError::Sqlite {
            path: path.to_path_buf(),
            source: e,
        },
    };
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(read)?;
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .map_err(read)?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    if app != APPLICATION_ID && app != 0 {
        return Err(foreign(format!(
            "the file belongs to another program (SQLite application_id {app:#x})"
        )));
    }
    if tables.is_empty() {
        return Ok(());
    }
    let has = |t: &str| tables.iter().any(|n| n == t);
    if !(has("meta") && has("outbox") && has("ledger") && has("cursor")) {
        return Err(foreign(format!(
            "the file is an SQLite database of another program (tables: {})",
            tables.join(", ")
        )));
    }
    let owner: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'pipeline'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(read)?;
    match owner {
        Some(owner) if owner != pipeline => Err(foreign(format!(
            "it is the state of pipeline `{owner}`, not of `{pipeline}`"
        ))),
        _ => Ok(()),
    }
}
