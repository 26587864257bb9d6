//! Why a source could not be listed, fetched or read: each error names the file and, where known, the row or column.

use super::redact;

/// Why a source could not be listed or read. Each names the file and, where
/// known, the row or column.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The location is not usable.
    #[error("{location}: {message}")]
    Location {
        /// As written.
        location: String,
        /// Why.
        message: String,
    },
    /// Listing or fetching failed.
    #[error("{location}: {}", redact::redacted_chain(error))]
    Store {
        /// Location or file.
        location: String,
        /// Cause. Shown in the message with every URL in it redacted, and
        /// not exposed as the error's source: object_store's own messages
        /// carry request URLs with their credentials and queries.
        error: object_store::Error,
    },
    /// Reading from local disk failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file's content is malformed.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What is wrong, with row/column where the parser knows them.
        message: String,
    },
    /// A required or declared column is absent.
    #[error("{file}: missing column `{column}` (columns present: {present})")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Columns the file has.
        present: String,
    },
    /// No file matches the location.
    #[error("{location}: no file matches")]
    NoFiles {
        /// As written.
        location: String,
    },
    /// A CSV or NDJSON file is empty: not even a header line.
    #[error("{file}: the file is empty (0 bytes); it may still be being written")]
    Empty {
        /// The file.
        file: String,
    },
    /// A CSV or NDJSON file does not end with a line break, so its last row
    /// may be cut short (a half-written export).
    #[error(
        "{file}: the file does not end with a line break, so its last row may be cut short; \
         it may still be being written (it is read once it ends with a line break)"
    )]
    Unfinished {
        /// The file.
        file: String,
    },
    /// Polars could not scan or read the file (consistency checks).
    #[error("{context}: {source}")]
    Polars {
        /// The file.
        context: String,
        /// Cause.
        source: polars::prelude::PolarsError,
    },
    /// A server answered with a redirect, which is never followed.
    #[error(
        "{url}: the server answered {status}, redirecting to {to}; redirects are not followed \
         (point the location at the final address)"
    )]
    Redirect {
        /// The requested URL, without credentials or query.
        url: String,
        /// HTTP status.
        status: u16,
        /// The redirect target, without credentials or query.
        to: String,
    },
}

impl SourceError {
    /// A [`SourceError::Parse`] with the message of `e`.
    pub(crate) fn parse(file: &str, e: impl std::fmt::Display) -> Self {
        Self::Parse {
            file: file.to_string(),
            message: e.to_string(),
        }
    }

    /// A store error, or [`SourceError::Redirect`] when the store was answered with one.
    pub(crate) fn store(location: &str, source: object_store::Error) -> Self {
        match redact::redirect_in(&source) {
            Some(r) => Self::Redirect {
                url: r.url.clone(),
                status: r.status,
                to: r.to.clone(),
            },
            None => Self::Store {
                location: location.to_string(),
                error: source,
            },
        }
    }
}
