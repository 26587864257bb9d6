//! Where the reports go: a local folder, replaced all at once and only when it is an earlier report; or an object store prefix, where `summary.json` is removed first and written last.
//!
//! Every report carries a marker file, [`MARKER`], that names the files the
//! tool wrote beside it. The tool replaces or removes those files only: a
//! local folder is replaced only when it holds nothing else, and on an
//! object store only objects an earlier marker names are ever removed.

use std::path::{Path, PathBuf};

use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::files::{FILES, ReportStyle, write_files};
use super::private::{create_private_dir, private_tempdir, write_private};
use super::summary::Summary;
use crate::pipeline::Pipeline;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::model::Comparison;
use crate::reconcile::options::RunOptions;
use crate::sources::location::Location;

/// The marker file of a report folder or prefix.
pub const MARKER: &str = ".s360-sync-report";

/// The report file whose presence means the report is complete.
const SUMMARY: &str = "summary.json";

/// The content of [`MARKER`]: which tool wrote the report, and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Always `s360-sync`.
    pub tool: String,
    /// The version that wrote the report.
    pub version: String,
    /// The report files beside the marker (the marker itself not included).
    pub files: Vec<String>,
}

impl Marker {
    /// The marker of a report this version writes in `style`.
    pub fn current(style: &ReportStyle) -> Self {
        Self {
            tool: "s360-sync".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            files: style.files().into_iter().map(String::from).collect(),
        }
    }

    /// As stored: pretty JSON and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }

    /// Read a marker, or say why the bytes are not one this tool wrote.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let marker: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if marker.tool != "s360-sync" {
            return Err(format!("written by {:?}", marker.tool));
        }
        if let Some(bad) = marker.files.iter().find(|n| !is_plain_name(n)) {
            return Err(format!("it lists {bad:?}, which is not a file name"));
        }
        Ok(marker)
    }

    /// Whether the marker names this file.
    pub fn lists(&self, name: &str) -> bool {
        self.files.iter().any(|f| f == name)
    }

    /// The files of both markers, this one's first.
    fn union(&self, other: &Self) -> Self {
        let mut files = self.files.clone();
        files.extend(other.files.iter().filter(|f| !self.lists(f)).cloned());
        Self {
            files,
            ..other.clone()
        }
    }
}

/// A single file name: no folder part, not `.` or `..`, not the marker.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != MARKER
        && !name.contains(['/', '\\', '\0'])
}

/// A resolved output location.
#[derive(Debug, Clone)]
pub enum Target {
    /// A folder on this machine.
    Local(PathBuf),
    /// A prefix in an object store (`s3://bucket/reports/orders`).
    Remote(Location),
}

impl Target {
    /// The output of a pipeline: `--out`, else `output.dir`, else
    /// `reports/<name>` beside the pipeline file.
    pub fn resolve(p: &Pipeline, opts: &RunOptions) -> Result<Self, ReconcileError> {
        let spec = p.as_reconcile()?;
        let written = match (&opts.out, &spec.output.dir) {
            (Some(out), _) => out.clone(),
            (None, Some(dir)) => p.resolve(dir),
            (None, None) => {
                return Ok(Self::Local(p.base_dir.join("reports").join(&spec.name)));
            }
        };
        if let Some(path) = written.strip_prefix("file://") {
            return Ok(Self::Local(PathBuf::from(path)));
        }
        if !written.contains("://") {
            return Ok(Self::Local(PathBuf::from(written)));
        }
        let bad = |message: String| ReconcileError::Output {
            dir: crate::sources::redact::without_credentials(&written),
            message,
        };
        let trimmed = written.trim_end_matches('/');
        let location = Location::parse(trimmed, &spec.output.storage).map_err(|e| match e {
            crate::sources::SourceError::Location { message, .. } => bad(message),
            other => bad(other.to_string()),
        })?;
        if location.glob.is_some() {
            return Err(bad("an output location cannot contain a glob".into()));
        }
        if location.prefix.as_ref().is_empty() {
            return Err(bad(
                "name a folder below the bucket or host (`s3://bucket/reports/orders`)".into(),
            ));
        }
        Ok(Self::Remote(location))
    }

    /// As shown to people.
    pub fn display(&self) -> String {
        match self {
            Self::Local(p) => p.display().to_string(),
            Self::Remote(l) => l.display.clone(),
        }
    }
}

/// What is at a local output path before the reports are written.
enum Existing {
    /// Nothing.
    Absent,
    /// An empty folder.
    Empty,
    /// An earlier report, holding nothing but the files its marker names.
    Report(Marker),
}

/// Refuse to write the reports to `out` unless it is absent, an empty
/// folder, or an earlier report holding only the files its marker names.
/// Changes nothing.
pub fn check_local(out: &Path) -> Result<(), ReconcileError> {
    inspect(out).map(drop)
}

fn inspect(out: &Path) -> Result<Existing, ReconcileError> {
    // Why, then what to do instead, around the promise that nothing changed.
    let refuse = |why: String, advice: &str| ReconcileError::Output {
        dir: out.display().to_string(),
        message: format!("{why}, so it is left as it is{advice}"),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReconcileError::Io { path, source }
    };
    let meta = match std::fs::symlink_metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(source) => return Err(io(out)(source)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(
            "is a symbolic link".into(),
            "; name the report folder itself",
        ));
    }
    if !meta.is_dir() {
        return Err(refuse(
            "is a file, not a folder".into(),
            "; the reports are written into a folder of their own",
        ));
    }
    // Each entry, and whether it is a plain file.
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(out).map_err(io(out))? {
        let entry = entry.map_err(io(out))?;
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        entries.push((entry.file_name(), kind.is_file()));
    }
    entries.sort();
    if entries.is_empty() {
        return Ok(Existing::Empty);
    }
    let shown = |names: Vec<(std::ffi::OsString, bool)>| {
        let all: Vec<String> = names
            .iter()
            .map(|(n, file)| {
                let slash = if *file { "" } else { "/" };
                format!("`{}{slash}`", n.to_string_lossy())
            })
            .collect();
        match all.len() {
            0..=5 => all.join(", "),
            n => format!("{}, and {} more", all[..5].join(", "), n - 5),
        }
    };
    let Some((_, marker_is_file)) = entries.iter().find(|(n, _)| n == MARKER) else {
        let looks_like_a_report = entries
            .iter()
            .all(|(n, file)| *file && FILES.iter().any(|f| n == f))
            && entries.iter().any(|(n, _)| n == SUMMARY);
        return Err(if looks_like_a_report {
            refuse(
                format!(
                    "looks like a report of an earlier version, which wrote no `{MARKER}` marker"
                ),
                "; remove it yourself, or choose another folder",
            )
        } else {
            refuse(
                format!(
                    "holds files s360-sync did not write ({}) and no `{MARKER}` marker",
                    shown(entries)
                ),
                "; choose a new or empty folder",
            )
        });
    };
    if !marker_is_file {
        return Err(refuse(format!("holds a `{MARKER}` that is not a file"), ""));
    }
    let path = out.join(MARKER);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let marker = Marker::parse(&bytes).map_err(|why| {
        refuse(
            format!("holds a `{MARKER}` that s360-sync did not write ({why})"),
            "",
        )
    })?;
    let foreign: Vec<_> = entries
        .into_iter()
        .filter(|(n, file)| n != MARKER && !(*file && n.to_str().is_some_and(|n| marker.lists(n))))
        .collect();
    if !foreign.is_empty() {
        return Err(refuse(
            format!(
                "is a report, but also holds {}, which s360-sync did not write",
                shown(foreign)
            ),
            "; move them out, or choose another folder",
        ));
    }
    Ok(Existing::Report(marker))
}

/// A private staging folder for reports to upload.
pub fn staging() -> Result<tempfile::TempDir, ReconcileError> {
    private_tempdir(&std::env::temp_dir())
}

/// Remove the files a marker names, and the marker, from `dir`, then `dir`
/// itself if that left it empty. Whether `dir` is gone.
fn remove_report(dir: &Path, marker: &Marker) -> bool {
    for name in marker.files.iter().map(String::as_str).chain([MARKER]) {
        let _ = std::fs::remove_file(dir.join(name));
    }
    std::fs::remove_dir(dir).is_ok()
}

/// Write every report file and the marker into a fresh folder beside
/// `out`, then move it into place: readers never see half a report, and a
/// failure leaves the previous report (or nothing) where it was. `out` is
/// replaced only as [`check_local`] allows, and of an earlier report only
/// the files its marker names are removed.
pub fn write_local(
    out: &Path,
    cmp: &Comparison,
    summary: &Summary,
    style: ReportStyle,
) -> Result<(), ReconcileError> {
    let existing = inspect(out)?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(parent, true)?;
    let stage = private_tempdir(parent)?;
    let new = stage.path().join("report");
    create_private_dir(&new, false)?;
    let current = Marker::current(&style);
    write_files(&new, cmp, summary, style)?;
    write_private(&new.join(MARKER), &current.to_bytes())?;

    // From here on the stage may hold the earlier report, so it is never
    // removed as a whole: only file by file, as markers name them.
    let stage = stage.keep();
    let old = stage.join("old");
    let swapped = swap(out, &new, &old, &existing);
    if swapped.is_err() {
        remove_report(&new, &current);
    }
    if let Existing::Report(marker) = &existing
        && old.exists()
    {
        if swapped.is_err() {
            // The earlier report could not be put back: say where it is.
            tracing::error!(
                "the earlier report in {} was moved to {} and could not be put back",
                out.display(),
                old.display()
            );
            return swapped;
        }
        if !remove_report(&old, marker) {
            tracing::warn!(
                "kept {}: files appeared in the earlier report while the check ran",
                old.display()
            );
            return swapped;
        }
    }
    let _ = std::fs::remove_dir(&stage);
    swapped
}

/// Move the earlier report (if any) to `old`, then `new` to `out`; on
/// failure, put the earlier report back.
fn swap(out: &Path, new: &Path, old: &Path, existing: &Existing) -> Result<(), ReconcileError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReconcileError::Io { path, source }
    };
    match existing {
        Existing::Absent => {}
        // On unix a folder replaces an empty one in a single rename.
        Existing::Empty => {
            #[cfg(not(unix))]
            std::fs::remove_dir(out).map_err(io(out))?;
        }
        Existing::Report(_) => std::fs::rename(out, old).map_err(io(out))?,
    }
    std::fs::rename(new, out).map_err(|source| {
        match existing {
            Existing::Report(_) => {
                let _ = std::fs::rename(old, out);
            }
            Existing::Empty if cfg!(not(unix)) => {
                let _ = std::fs::create_dir(out);
            }
            _ => {}
        }
        io(out)(source)
    })
}

/// Publish the report files of `staged` below the remote prefix, so that
/// `summary.json` present means the report is complete: the earlier
/// `summary.json` is deleted first, the data files uploaded, files of the
/// earlier report that this one does not write removed (only those its
/// marker names), then the marker and `summary.json` written last. A run
/// that stops midway leaves no `summary.json`, and a marker naming every
/// file of both reports.
pub async fn upload(
    location: &Location,
    staged: &Path,
    style: &ReportStyle,
) -> Result<(), ReconcileError> {
    let object = |name: &str| location.prefix.clone().join(name);
    let marker_at = object(MARKER);
    let old = read_marker(location, &marker_at).await?;
    let new = Marker::current(style);
    delete(location, &object(SUMMARY)).await?;
    if let Some(old) = &old {
        put(location, &marker_at, old.union(&new).to_bytes()).await?;
    }
    for name in new.files.iter().filter(|n| *n != SUMMARY) {
        put_file(location, staged, name).await?;
    }
    if let Some(old) = &old {
        for name in old.files.iter().filter(|n| !new.lists(n)) {
            delete(location, &object(name)).await?;
        }
    }
    put(location, &marker_at, new.to_bytes()).await?;
    put_file(location, staged, SUMMARY).await
}

/// The marker below a prefix, if there is one.
async fn read_marker(
    location: &Location,
    at: &StorePath,
) -> Result<Option<Marker>, ReconcileError> {
    let failed = |error| ReconcileError::Upload {
        action: "reading",
        url: location.name_of(at),
        error,
    };
    let bytes = match location.store.get(at).await {
        Ok(got) => got.bytes().await.map_err(failed)?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => return Err(failed(source)),
    };
    Marker::parse(&bytes)
        .map(Some)
        .map_err(|why| ReconcileError::Output {
            dir: location.name_of(at),
            message: format!(
                "not a marker s360-sync wrote ({why}), so no report was uploaded there"
            ),
        })
}

/// Delete an object; one that is not there is fine.
async fn delete(location: &Location, at: &StorePath) -> Result<(), ReconcileError> {
    match location.store.delete(at).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(ReconcileError::Upload {
            action: "deleting",
            url: location.name_of(at),
            error,
        }),
    }
}

async fn put(location: &Location, at: &StorePath, bytes: Vec<u8>) -> Result<(), ReconcileError> {
    location
        .store
        .put(at, PutPayload::from(bytes))
        .await
        .map(drop)
        .map_err(|error| ReconcileError::Upload {
            action: "uploading",
            url: location.name_of(at),
            error,
        })
}

async fn put_file(location: &Location, staged: &Path, name: &str) -> Result<(), ReconcileError> {
    let path = staged.join(name);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| ReconcileError::Io {
            path: path.clone(),
            source,
        })?;
    put(location, &location.prefix.clone().join(name), bytes).await
}
