//! Where the reports go: a local folder, replaced all at once, or an object
//! store prefix, where `summary.json` is written last and marks a complete report.

use std::path::{Path, PathBuf};

use object_store::{ObjectStoreExt, PutPayload};

use super::{ReconcileError, RunOptions, report};
use crate::pipeline::Pipeline;
use crate::sources::location::Location;

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
            dir: written.clone(),
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

/// Upload the report files of `staged` below the remote prefix, in
/// [`report::FILES`] order: `summary.json` goes last, so a reader that finds
/// it finds the rest of this run's files too. Objects of an earlier run are
/// overwritten file by file.
pub async fn upload(location: &Location, staged: &Path) -> Result<(), ReconcileError> {
    for name in report::FILES {
        let path = staged.join(name);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| ReconcileError::Io {
                path: path.clone(),
                source,
            })?;
        let object = location.prefix.clone().join(name);
        location
            .store
            .put(&object, PutPayload::from(bytes))
            .await
            .map_err(|source| ReconcileError::Upload {
                url: location.name_of(&object),
                source,
            })?;
    }
    Ok(())
}
