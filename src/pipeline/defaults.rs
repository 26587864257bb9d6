//! Defaults and limits of pipeline files, kept in one place.

use super::duration::HumanDuration;

/// Orders per webhook payload, and its ceiling.
pub const BATCH_SIZE: u32 = 50;
/// Orders per scheduled run, and its ceiling.
pub const MAX_PER_RUN: u32 = 500;
/// Minutes between scheduled runs.
pub const INTERVAL: HumanDuration = HumanDuration::mins(15);
/// Shortest schedule interval, in minutes.
pub const INTERVAL_MIN_MINUTES: u64 = 1;
/// Longest schedule interval, in minutes.
pub const INTERVAL_MAX_MINUTES: u64 = 1440;
/// How far back from the cursor a run re-reads rows.
pub const LOOKBACK: HumanDuration = HumanDuration::mins(60);
/// How far past the clock a row's last-modified time may lie before it
/// is refused as implausible (a typo, a `9999-12-31` sentinel).
pub const MAX_FUTURE: HumanDuration = HumanDuration::mins(24 * 60);
/// How long an order waits for lines that have not arrived yet.
pub const LINES_WAIT: HumanDuration = HumanDuration::mins(60);
/// Whole request timeout.
pub const TIMEOUT: HumanDuration = HumanDuration::secs(30);
/// TCP/TLS connect timeout.
pub const CONNECT_TIMEOUT: HumanDuration = HumanDuration::secs(10);
/// A run stops retrying and leaves the rest queued after this long.
pub const DEADLINE: HumanDuration = HumanDuration::mins(10);
/// First retry delay.
pub const INITIAL_BACKOFF: HumanDuration = HumanDuration::secs(1);
/// Longest retry delay.
pub const MAX_BACKOFF: HumanDuration = HumanDuration::mins(5);
/// Bytes of a response body that are read at most.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// Requests in flight during `import run`.
pub const CONCURRENCY: u32 = 4;

/// Serde's default for flags that are on unless switched off.
pub(super) fn yes() -> bool {
    true
}
