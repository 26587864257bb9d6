//! Process exit codes, one per thing a caller (cron, CI, an operator) does
//! next, and which outcome of the library gives which.
//!
//! Only the command line knows these numbers: the library reports what
//! happened (an error variant, a summary's counts) and this file decides
//! what the process says about it.

use crate::reconcile::{Outcome, ReconcileError};
use crate::rehearsal::demo::DemoError;
use crate::rehearsal::sandbox::SandboxError;
use crate::state::StateError;
use crate::state::lock::LockError;
use crate::sync::{RunOutcome, RunSummary, SyncError};

/// Everything went as asked.
pub const OK: u8 = 0;
/// A runtime failure: I/O, bad input data, an internal error.
pub const FAILURE: u8 = 1;
/// Usage error or invalid pipeline file; nothing was done.
pub const USAGE: u8 = 2;
/// The CRM refused the configuration (401/403/404/410, a redirect, or every
/// order of a batch refused alone with the same 4xx before anything was
/// acknowledged): delivery stopped, everything is still queued.
pub const DELIVERY_STOPPED: u8 = 3;
/// Another run of the same pipeline holds the lock; this one did nothing.
pub const LOCKED: u8 = 4;
/// `reconcile` found discrepancies above the pipeline's `fail_if` thresholds.
pub const DISCREPANCIES: u8 = 5;
/// The run ended with work left that needs attention: orders dead-lettered;
/// left queued when retries or the deadline ran out or the run was
/// interrupted; no progress although orders could be sent; or late lines
/// whose order's export file is gone.
pub const INCOMPLETE: u8 = 6;

/// A sync, import or repair that could not run.
pub fn of_sync_error(e: &SyncError) -> u8 {
    match e {
        SyncError::Pipeline(_) | SyncError::Sink(_) => USAGE,
        // `state.path` names a file that is not this pipeline's state.
        SyncError::State(StateError::Foreign { .. }) => USAGE,
        SyncError::Locked(LockError::Held { .. }) => LOCKED,
        _ => FAILURE,
    }
}

/// A finished sync or import run: refused → 3; incomplete (dead letters,
/// stopped early, or lines that could not be attached) → 6; else 0.
pub fn of_run(s: &RunSummary) -> u8 {
    match s.outcome() {
        RunOutcome::Refused => DELIVERY_STOPPED,
        RunOutcome::Incomplete => INCOMPLETE,
        RunOutcome::Ok => OK,
    }
}

/// A consistency check that could not run: a bad pipeline, report
/// destination or partition request is the caller's to fix.
pub fn of_reconcile_error(e: &ReconcileError) -> u8 {
    match e {
        ReconcileError::Pipeline(_)
        | ReconcileError::Output { .. }
        | ReconcileError::Partitions(_) => USAGE,
        _ => FAILURE,
    }
}

/// A finished check: 0 when every count is within its threshold.
pub fn of_check(o: &Outcome) -> u8 {
    if o.summary.passed { OK } else { DISCREPANCIES }
}

/// The sandbox CRM could not start or export.
pub fn of_sandbox_error(e: &SandboxError) -> u8 {
    match e {
        SandboxError::Config { .. } | SandboxError::UnsupportedFormat { .. } => USAGE,
        _ => FAILURE,
    }
}

/// A step of the demo failed.
pub fn of_demo_error(e: &DemoError) -> u8 {
    match e {
        DemoError::Pipeline(_) | DemoError::NotOurs { .. } => USAGE,
        DemoError::Sync(e) => of_sync_error(e),
        DemoError::Reconcile(e) => of_reconcile_error(e),
        // As before: the sandbox and the generator fail the demo at run time.
        _ => FAILURE,
    }
}
