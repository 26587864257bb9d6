//! A test's input files: copied from the repository or written from inline tables into the temporary folder that stands in for a source's `location`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::TestError;
use crate::pipeline::test_file::Input;
use crate::pipeline::{Format, resolve_location};

/// Where a source's files are during a test, and how they are read.
#[derive(Debug, Clone)]
pub struct Folder {
    /// The folder.
    pub dir: PathBuf,
    /// The source's CSV delimiter, for inline rows.
    pub delimiter: char,
}

impl Folder {
    /// The `location` that lists every file of the folder.
    pub fn location(&self) -> String {
        self.dir.join("*").to_string_lossy().into_owned()
    }
}

/// The format of a source whose `location` is replaced: as declared, else
/// guessed from the original location, as the pipeline would.
pub fn format_of(format: Option<Format>, location: &str) -> Option<Format> {
    format.or_else(|| Format::from_extension(location))
}

/// Write `inputs` into `folder`; `at` is the field path of the list, for
/// messages, and `mtime` the modification time the files get (the run's
/// pinned clock, so a rewritten file is seen as changed).
pub fn write(
    test_dir: &Path,
    folder: &Folder,
    inputs: &[Input],
    at: &str,
    mtime: std::time::SystemTime,
) -> Result<(), TestError> {
    std::fs::create_dir_all(&folder.dir).map_err(|e| TestError::io(&folder.dir, e))?;
    for (i, input) in inputs.iter().enumerate() {
        let field = format!("{at}[{i}]");
        let (name, bytes) = content(test_dir, folder.delimiter, input, &field)?;
        let path = folder.dir.join(&name);
        std::fs::write(&path, bytes).map_err(|e| TestError::io(&path, e))?;
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .map_err(|e| TestError::io(&path, e))?;
        file.set_modified(mtime)
            .map_err(|e| TestError::io(&path, e))?;
    }
    Ok(())
}

fn content(
    test_dir: &Path,
    delimiter: char,
    input: &Input,
    field: &str,
) -> Result<(String, Vec<u8>), TestError> {
    if let Some(file) = &input.file {
        let path = PathBuf::from(resolve_location(test_dir, file));
        let bytes = std::fs::read(&path).map_err(|e| TestError::Input {
            field: format!("{field}.file"),
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        let name = match &input.name {
            Some(n) => n.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input".into()),
        };
        return Ok((name, bytes));
    }
    let name = input.name.clone().unwrap_or_else(|| "input.csv".into());
    if let Some(text) = &input.csv {
        return Ok((name, text.clone().into_bytes()));
    }
    let rows = input.rows.as_deref().unwrap_or_default();
    Ok((name, rows_csv(rows, delimiter).into_bytes()))
}

/// Rows as CSV: columns in order of first appearance, nulls empty.
fn rows_csv(rows: &[BTreeMap<String, Value>], delimiter: char) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for k in row.keys() {
            if !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    let sep = delimiter.to_string();
    let cell = |s: &str| quoted(s, delimiter);
    let mut out = columns
        .iter()
        .map(|c| cell(c))
        .collect::<Vec<_>>()
        .join(&sep);
    out.push('\n');
    for row in rows {
        let line = columns
            .iter()
            .map(|c| match row.get(*c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => cell(s),
                Some(other) => cell(&other.to_string()),
            })
            .collect::<Vec<_>>()
            .join(&sep);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A CSV field as written, quoted only where the text needs it (no
/// spreadsheet escaping: inputs are the data as an export would hold it).
fn quoted(s: &str, delimiter: char) -> String {
    if s.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
