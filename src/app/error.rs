//! The command line's error: what went wrong, and the exit code it gives.

use super::exit;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct AppError {
    /// Process exit code.
    pub code: u8,
    /// What went wrong.
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl AppError {
    /// A runtime failure (exit 1).
    pub fn failure(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: exit::FAILURE,
            error: e.into(),
        }
    }

    /// A usage or configuration error (exit 2).
    pub fn usage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: exit::USAGE,
            error: e.into(),
        }
    }

    fn with(code: u8, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code,
            error: e.into(),
        }
    }
}

impl From<crate::pipeline::PipelineError> for AppError {
    fn from(e: crate::pipeline::PipelineError) -> Self {
        Self::usage(e)
    }
}

impl From<crate::sync::SyncError> for AppError {
    fn from(e: crate::sync::SyncError) -> Self {
        Self::with(exit::of_sync_error(&e), e)
    }
}

impl From<crate::reconcile::ReconcileError> for AppError {
    fn from(e: crate::reconcile::ReconcileError) -> Self {
        Self::with(exit::of_reconcile_error(&e), e)
    }
}

impl From<crate::rehearsal::sandbox::SandboxError> for AppError {
    fn from(e: crate::rehearsal::sandbox::SandboxError) -> Self {
        Self::with(exit::of_sandbox_error(&e), e)
    }
}

impl From<crate::rehearsal::demo::DemoError> for AppError {
    fn from(e: crate::rehearsal::demo::DemoError) -> Self {
        Self::with(exit::of_demo_error(&e), e)
    }
}
