//! s360-sync: keeps an external CRM in step with S-360 orders, and proves it.
//!
//! The binary (`main.rs`) is a thin shell over this library: [`cli`] parses
//! arguments and dispatches to the components below, each in its own folder.

pub mod cli;
pub mod engine;
pub mod exit;
pub mod extract;
pub mod formats;
pub mod pipeline;
pub mod preview;
pub mod reconcile;
pub mod rehearsal;
pub mod schedule;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod sync;
pub mod transforms;
