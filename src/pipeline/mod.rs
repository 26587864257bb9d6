//! Pipeline files: reading, interpolating and validating them, purely.
//!
//! [`parse`] touches no file, network or clock; [`load`] only reads the
//! pipeline file itself. Both return every problem found, each with its
//! `file:line:column` and field path.

pub mod column;
pub mod config;
pub mod defaults;
pub mod duration;
pub mod redact;
pub mod sftp;
pub mod sink;
pub mod size;
pub mod slice;
pub mod source;
pub mod spelling;
pub mod sql;
pub mod test_file;
pub mod transform;
mod validate;
pub use column::ColumnSpec;
pub use slice::{SliceBy, SliceSpec};
pub use spelling::{
    DstChoice, DstPolicy, NumberFormat, UnicodeForm, Zone, ZoneError, parse_offset,
};
pub use validate::MAX_PARTITIONS;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use config::*;
pub use duration::HumanDuration;
pub use sink::*;
pub use size::ByteSize;
pub use source::*;
pub use transform::*;
use yaml::{Pos, Positions};

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The pipeline file.
    pub file: PathBuf,
    /// Line and column.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// Field path such as `sink.batch_size`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read.
    #[error("cannot read pipeline file {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid pipeline.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A validated pipeline and where it came from.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline file.
    pub file: PathBuf,
    /// The folder relative paths resolve against.
    pub base_dir: PathBuf,
    /// What the file says.
    pub spec: PipelineSpec,
}

impl Pipeline {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// Resolve a path written in the pipeline file: URLs stay as they are,
    /// relative paths are taken from the pipeline file's folder.
    pub fn resolve(&self, location: &str) -> String {
        resolve_location(&self.base_dir, location)
    }

    /// The sync pipeline, or an error naming the kind found.
    pub fn as_sync(&self) -> Result<&SyncPipeline, PipelineError> {
        match &self.spec {
            PipelineSpec::Sync(s) => Ok(s),
            PipelineSpec::Reconcile(_) => Err(self.wrong_kind("sync", "reconcile")),
        }
    }

    /// The reconcile pipeline, or an error naming the kind found.
    pub fn as_reconcile(&self) -> Result<&ReconcilePipeline, PipelineError> {
        match &self.spec {
            PipelineSpec::Reconcile(r) => Ok(r),
            PipelineSpec::Sync(_) => Err(self.wrong_kind("reconcile", "sync")),
        }
    }

    fn wrong_kind(&self, want: &str, got: &str) -> PipelineError {
        PipelineError::Invalid(vec![Problem {
            file: self.file.clone(),
            line: 1,
            col: 1,
            path: "kind".into(),
            message: format!("this command needs a `{want}` pipeline, this one is `{got}`"),
        }])
    }
}

/// Resolve `location` against `base`: URLs (`scheme://`) are kept, absolute
/// paths are kept, relative paths are joined to `base`.
pub fn resolve_location(base: &Path, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let p = Path::new(location);
    if p.is_absolute() {
        location.to_string()
    } else {
        base.join(p).to_string_lossy().into_owned()
    }
}

/// Read and validate a pipeline file, interpolating from the process environment.
pub fn load(file: &Path) -> Result<Pipeline, PipelineError> {
    let env = |name: &str| std::env::var(name).ok();
    load_with_env(file, &env)
}

/// Read and validate a pipeline file, interpolating from `env`.
pub fn load_with_env(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Pipeline, PipelineError> {
    let text = std::fs::read_to_string(file).map_err(|source| PipelineError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let mut spec = parse(&text, file, env).map_err(PipelineError::Invalid)?;
    let base_dir = file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    resolve_storage_paths(&mut spec, &base_dir);
    Ok(Pipeline {
        file: file.to_path_buf(),
        base_dir,
        spec,
    })
}

/// Storage options that name a file (an SFTP key, a known-hosts file) are
/// taken from the pipeline file's folder when relative, as locations are;
/// `~/` stays for the home folder.
fn resolve_storage_paths(spec: &mut PipelineSpec, base: &Path) {
    let maps = match spec {
        PipelineSpec::Sync(p) => {
            let mut maps = vec![&mut p.source.storage];
            if let Some(lines) = p.source.lines.as_mut() {
                maps.push(&mut lines.storage);
            }
            maps
        }
        PipelineSpec::Reconcile(r) => vec![&mut r.left.source.storage, &mut r.right.source.storage],
    };
    for map in maps {
        for (name, value) in map.iter_mut() {
            if sftp::is_path_option(name) && !value.starts_with("~/") {
                *value = resolve_location(base, value);
            }
        }
    }
}

/// Parse and validate pipeline text. Pure: `env` is the only outside input.
pub fn parse(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineSpec, Vec<Problem>> {
    let problem = |pos: Pos, path: &str, message: String| Problem {
        file: file.to_path_buf(),
        line: pos.line,
        col: pos.col,
        path: path.to_string(),
        message,
    };
    let (mut value, positions) = yaml::load(text, env).map_err(|ps| {
        ps.into_iter()
            .map(|p| problem(p.pos, &p.path, p.message))
            .collect::<Vec<_>>()
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(vec![problem(
            Pos { line: 1, col: 1 },
            "",
            "a pipeline file is a mapping with `version`, `kind`, `name`, ...".into(),
        )]);
    };
    let kind = match obj.remove("kind") {
        Some(Value::String(k)) => k,
        Some(_) => {
            return Err(vec![problem(
                positions.value("kind"),
                "kind",
                "must be `sync` or `reconcile`".into(),
            )]);
        }
        None => {
            return Err(vec![problem(
                Pos { line: 1, col: 1 },
                "kind",
                "missing field `kind` (`sync` or `reconcile`)".into(),
            )]);
        }
    };
    let spec = match kind.as_str() {
        "sync" => deserialize(value, &positions, &problem).map(PipelineSpec::Sync),
        "reconcile" => deserialize(value, &positions, &problem).map(PipelineSpec::Reconcile),
        other => Err(vec![problem(
            positions.value("kind"),
            "kind",
            format!("unknown kind `{other}`: expected `sync` or `reconcile`"),
        )]),
    }?;
    let problems = validate::validate(&spec, &positions, &problem);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(problems)
    }
}

fn deserialize<T: serde::de::DeserializeOwned>(
    value: Value,
    positions: &Positions,
    problem: &dyn Fn(Pos, &str, String) -> Problem,
) -> Result<T, Vec<Problem>> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.inner().to_string();
        // serde names an unknown field in its message; point at that key.
        let (path, pos) = match unknown_field(&message) {
            Some(field) => {
                // serde_path_to_error's path may or may not end at the field.
                let full = if path.is_empty() {
                    field.to_string()
                } else if path == field || path.ends_with(&format!(".{field}")) {
                    path.clone()
                } else {
                    format!("{path}.{field}")
                };
                let pos = positions.key(&full);
                (full, pos)
            }
            None => {
                let pos = positions.value(&path);
                (path, pos)
            }
        };
        vec![problem(pos, &path, message)]
    })
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Any file the tool reads from a pipelines folder: a pipeline of either
/// kind, or a pipeline test. The schema's view only, as [`PipelineSpec`].
#[derive(schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(dead_code)]
enum AnyFile {
    /// Pushes new and changed S-360 orders to a CRM webhook.
    Sync(SyncPipeline),
    /// Compares an S-360 export with a CRM export and reports discrepancies.
    Reconcile(ReconcilePipeline),
    /// Runs a pipeline on sample data and checks what comes out (`s360-sync test`).
    Test(test_file::TestFile),
}

/// The JSON Schema of pipeline files and pipeline test files, generated
/// from the config types.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(AnyFile);
    schema.insert(
        "title".into(),
        Value::String("s360-sync pipeline or pipeline test file".into()),
    );
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
