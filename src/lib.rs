//! s360-sync: keeps an external CRM in step with S-360 orders, and proves it.
//!
//! The binary (`main.rs`) is a thin shell over this library: [`app`] parses
//! arguments, runs a command and decides its exit code; the components below
//! know nothing of the terminal. `docs/ARCHITECTURE.md` maps the folders.

pub mod app;
pub mod engine;
pub mod extract;
pub mod formats;
pub mod metrics;
pub mod pipeline;
pub mod reconcile;
pub mod rehearsal;
pub mod schedule;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod sync;
pub mod testing;
pub mod transforms;
