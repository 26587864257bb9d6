//! Rehearsal tools: everything needed to try s360-sync without a real CRM
//! or real exports. None of it is used by a production sync or check.
//!
//! - [`sandbox`]: a CRM stand-in that receives webhooks into SQLite and exports them;
//! - [`generate`]: deterministic S-360 and CRM sample exports;
//! - [`demo`]: the whole flow on sample data in one command.

pub mod demo;
pub mod generate;
pub mod sandbox;
