//! The consistency check: two exports, normalised, joined on their key in Polars, every difference reported.
//!
//! [`run`] lists and fetches both sides ([`scan`]), decides the partitions
//! once ([`plan`]), then on a blocking thread compares them ([`check`]: all
//! at once or by [`partition`], each part by `compare`, added up by
//! `accumulate`) under the field [`rules`], and writes the [`report`]s
//! all-or-nothing. What a check finds is the [`model`]; why it stops, the
//! [`error`].

mod accumulate;
pub mod check;
mod columns;
mod compare;
pub mod error;
mod exec;
pub mod model;
pub mod options;
pub mod partition;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rules;
pub mod run;
pub mod scan;
pub mod values;

pub use error::ReconcileError;
pub use model::{Category, Comparison};
pub use options::RunOptions;
pub use plan::default_memory_limit;
pub use progress::Steps;
pub use report::{Counts, Summary, Target};
pub use run::{Outcome, run};

#[cfg(test)]
mod tests;
