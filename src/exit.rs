//! Process exit codes, one per thing a caller (cron, CI, an operator) does next.

/// Everything went as asked.
pub const OK: u8 = 0;
/// A runtime failure: I/O, bad input data, an internal error.
pub const FAILURE: u8 = 1;
/// Usage error or invalid pipeline file; nothing was done.
pub const USAGE: u8 = 2;
/// The CRM refused the configuration (401/403/404/410 or a redirect):
/// delivery stopped, everything is still queued.
pub const DELIVERY_STOPPED: u8 = 3;
/// Another run of the same pipeline holds the lock; this one did nothing.
pub const LOCKED: u8 = 4;
/// `reconcile` found discrepancies above the pipeline's `fail_if` thresholds.
pub const DISCREPANCIES: u8 = 5;
/// The run ended with work left that needs attention: orders dead-lettered
/// or still queued when the run's deadline passed.
pub const INCOMPLETE: u8 = 6;
