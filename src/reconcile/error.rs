//! Why a check could not finish.

use std::path::PathBuf;

use polars::prelude::PolarsError;

use crate::pipeline::PipelineError;
use crate::sources::SourceError;
use crate::transforms::TransformError;

/// Why a check could not finish. Every variant but `Output` is bad input or
/// an I/O failure (exit 1); no report file is written in either case.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The pipeline is not a reconcile pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Listing, fetching or parsing an export failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A transform step could not be built.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// A key, declared or compared column is absent.
    #[error("{file}: missing column `{column}` (columns present: {present})")]
    MissingColumn {
        /// The file, or the side after its transforms.
        file: String,
        /// The column.
        column: String,
        /// Columns that are there.
        present: String,
    },
    /// Reading or comparing failed in Polars (unparsable values name file and column).
    #[error("{context}: {source}")]
    Polars {
        /// Where.
        context: String,
        /// Cause.
        source: PolarsError,
    },
    /// `duplicates: fail` and a key appears more than once.
    #[error(
        "duplicate key on the {side} side: `{key}` appears {count} times ({keys} duplicated key(s) in all); `duplicates: fail` stops the check"
    )]
    Duplicates {
        /// `left` or `right`.
        side: String,
        /// The first duplicated key (parts joined by `|`).
        key: String,
        /// Rows with that key.
        count: u64,
        /// Duplicated keys on both sides.
        keys: usize,
    },
    /// A side has no rows at all to read.
    #[error("{side}: no records")]
    Empty {
        /// Side.
        side: String,
    },
    /// File system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The output location is not usable.
    #[error("output {dir:?}: {message}")]
    Output {
        /// As written.
        dir: String,
        /// Why.
        message: String,
    },
    /// Publishing a report object to the store failed.
    #[error("{action} {url}: {}", crate::sources::redact::redacted_chain(error))]
    Upload {
        /// `reading`, `deleting` or `uploading`.
        action: &'static str,
        /// The object.
        url: String,
        /// Cause. Shown with every URL in it redacted, and not exposed as
        /// the error's source: object_store's messages carry request URLs
        /// with their user info.
        error: object_store::Error,
    },
    /// An `output.slices` column cannot be sliced as asked.
    #[error("output.slices: {0}")]
    Slice(String),
    /// Partitions were asked for, but a side's steps cannot run per partition.
    #[error("partitions: {0}")]
    Partitions(String),
    /// A report table could not be written.
    #[error("{}: {source}", path.display())]
    Table {
        /// The report file.
        path: PathBuf,
        /// Cause.
        source: crate::formats::table::TableError,
    },
    /// The blocking worker failed.
    #[error("reconcile worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}
