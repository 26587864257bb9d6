//! The reports of a check: `summary.json` ([`summary`]), the discrepancy and field mismatch tables as Parquet and spreadsheet-safe CSV ([`tables`]), `summary.html` ([`html`]) with its inline SVG [`charts`], all written into one folder ([`files`]) and published to a local folder or an object store all-or-nothing ([`destination`]).

pub mod charts;
pub mod destination;
pub mod files;
pub mod html;
pub mod private;
pub mod summary;
pub mod tables;
pub mod xlsx;

pub use destination::Target;
pub use files::{FILES, ReportStyle, write_files};
pub use summary::{Counts, Summary, summarize};
