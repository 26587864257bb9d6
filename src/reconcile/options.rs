//! The command-line overrides of a check's settings.

use super::progress::Steps;
use crate::pipeline::ByteSize;

/// Command-line overrides.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Output folder or object store URL instead of `output.dir`.
    pub out: Option<String>,
    /// Sample rows per category instead of `output.sample`.
    pub sample: Option<usize>,
    /// Told each step of the check as it starts.
    pub steps: Option<Steps>,
    /// Partitions instead of `partitions`.
    pub partitions: Option<usize>,
    /// Memory limit instead of `memory_limit`.
    pub memory_limit: Option<ByteSize>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("out", &self.out)
            .field("sample", &self.sample)
            .field("steps", &self.steps.is_some())
            .field("partitions", &self.partitions)
            .field("memory_limit", &self.memory_limit)
            .finish()
    }
}
