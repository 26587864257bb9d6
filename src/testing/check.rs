//! Comparing expected with actual: a failure per field, with a readable diff (expected against actual for values, missing and unexpected for sets, a unified diff for snapshots).

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pipeline::yaml::Positions;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The field of the test file, such as `runs[1].expect.batch_sizes`.
    pub field: String,
    /// Its line in the test file.
    pub line: usize,
    /// Its column.
    #[serde(rename = "column")]
    pub col: usize,
    /// What differs, in one line.
    pub message: String,
    /// Expected against actual, several lines; empty when the message says it all.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// Collects the failures of one test.
pub struct Checks<'a> {
    positions: &'a Positions,
    /// The failures so far.
    pub failures: Vec<Failure>,
    /// Snapshot files rewritten (with `--update`).
    pub updated: Vec<PathBuf>,
    /// Rewrite snapshots instead of comparing them.
    pub update: bool,
}

impl<'a> Checks<'a> {
    /// No failures yet.
    pub fn new(positions: &'a Positions, update: bool) -> Self {
        Self {
            positions,
            failures: Vec::new(),
            updated: Vec::new(),
            update,
        }
    }

    /// Record a failure of `field`.
    pub fn fail(&mut self, field: &str, message: impl Into<String>, diff: impl Into<String>) {
        let pos = self.positions.value(field);
        let (mut message, mut diff) = (message.into(), diff.into());
        // A message of several lines (a Polars plan) keeps its first line;
        // the rest goes below it with the diff.
        if let Some((first, rest)) = message.split_once('\n') {
            let rest = rest.trim_end().to_string();
            message = first.to_string();
            diff = if diff.is_empty() {
                rest
            } else {
                format!("{rest}\n{diff}")
            };
        }
        self.failures.push(Failure {
            field: field.to_string(),
            line: pos.line,
            col: pos.col,
            message,
            diff,
        });
    }

    /// `what` must equal `expected`.
    pub fn equal<T: PartialEq + Debug>(
        &mut self,
        field: &str,
        what: &str,
        expected: &T,
        actual: &T,
    ) {
        if expected != actual {
            self.fail(
                field,
                format!("{what}: expected {expected:?}, got {actual:?}"),
                "",
            );
        }
    }

    /// Like [`Self::equal`], shown with `Display`.
    pub fn same<T: PartialEq + Display + ?Sized>(
        &mut self,
        field: &str,
        what: &str,
        expected: &T,
        actual: &T,
    ) {
        if expected != actual {
            self.fail(
                field,
                format!("{what}: expected {expected}, got {actual}"),
                "",
            );
        }
    }

    /// Two sets: every missing and every unexpected member.
    pub fn set(
        &mut self,
        field: &str,
        what: &str,
        expected: &BTreeSet<String>,
        actual: &BTreeSet<String>,
    ) {
        let missing: Vec<&String> = expected.difference(actual).collect();
        let unexpected: Vec<&String> = actual.difference(expected).collect();
        if missing.is_empty() && unexpected.is_empty() {
            return;
        }
        let mut diff = String::new();
        for m in &missing {
            diff.push_str(&format!("- missing:    {m}\n"));
        }
        for u in &unexpected {
            diff.push_str(&format!("+ unexpected: {u}\n"));
        }
        self.fail(
            field,
            format!(
                "{what}: {} missing, {} unexpected (expected {}, got {})",
                missing.len(),
                unexpected.len(),
                expected.len(),
                actual.len()
            ),
            diff,
        );
    }

    /// A snapshot file against `actual` (pretty JSON): compared, or with
    /// `--update` rewritten when it differs.
    pub fn snapshot(&mut self, field: &str, file: &Path, actual: &Value) {
        let mut text = serde_json::to_string_pretty(actual).unwrap_or_default();
        text.push('\n');
        let old = std::fs::read_to_string(file).ok();
        if old.as_deref() == Some(text.as_str()) {
            return;
        }
        if self.update {
            let written = file
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(file, &text));
            match written {
                Ok(()) => self.updated.push(file.to_path_buf()),
                Err(e) => self.fail(
                    field,
                    format!("cannot write snapshot {}: {e}", file.display()),
                    "",
                ),
            }
            return;
        }
        match old {
            None => self.fail(
                field,
                format!(
                    "snapshot {} does not exist (run with --update to write it)",
                    file.display()
                ),
                "",
            ),
            Some(old) => {
                let name = file.display().to_string();
                let diff = similar::TextDiff::from_lines(&old, &text)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("{name} (expected)"), "actual")
                    .to_string();
                let changed = diff.lines().filter(|l| l.starts_with(['-', '+'])).count();
                self.fail(
                    field,
                    format!(
                        "differs from snapshot {name} ({} changed line(s); --update rewrites it)",
                        changed.saturating_sub(2)
                    ),
                    diff,
                );
            }
        }
    }
}
