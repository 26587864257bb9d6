//! Sinks: where synchronised orders are delivered, and the contract every sink keeps with the run driver (`sync::drain`) and the outbox.

pub mod webhook;

use std::fmt;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// Delivers batches of orders taken from the outbox; built once per run.
///
/// The run driver takes a batch from the outbox (at most the run policy's
/// `batch_size` orders, no key twice), marks it in flight under
/// [`batch_id`], calls [`deliver`](Self::deliver), and commits the outcome
/// in one transaction. A sink guarantees:
///
/// - **Every order answered once.** Each order passed in comes back in
///   exactly one of [`BatchOutcome::acked`], [`BatchOutcome::dead`] or
///   [`BatchOutcome::pending`].
///   - `acked`: the receiver has the order. The outbox entry is done, the
///     ledger records its content, it is never sent again for this content.
///   - `dead`: the receiver refused this order on its own as a bad record.
///     It leaves the outbox as a dead letter with the reason (replayable);
///     a sink never dead-letters an order it did not send alone.
///   - `pending`: not delivered. It stays queued, in the same batch, and is
///     sent again by a later run.
/// - **Why it stopped.** [`BatchOutcome::stop`] is set when delivery cannot
///   go on in this run: [`StopReason::Refused`] is a configuration problem
///   (the run stops, exits with the "delivery stopped" code, and keeps
///   everything queued); [`StopReason::Deadline`] and
///   [`StopReason::Exhausted`] stop the run with the rest queued.
/// - **Idempotency key.** Every request for a batch carries [`batch_id`] of
///   its orders, on every attempt and after a crash, so the receiver can
///   drop a duplicate; each order carries its version, so it can drop a
///   stale one. A sub-batch gets the id of its own orders.
/// - **Deadline.** Nothing is sent once `deadline` has passed, and no wait
///   (retry backoff, `Retry-After`, rate limit) is begun that would end
///   after it.
/// - **Cancellation.** When the run is asked to stop (a sink built with the
///   run's cancel signal), waits end at once and no new request is sent;
///   the orders not yet answered come back `pending` with
///   [`BatchOutcome::cancelled`] set. A request already sent is finished
///   within its timeout, so an answer is never lost.
/// - **No secrets shown.** Nothing the sink returns (reasons, stop
///   messages) carries a configured secret.
///
/// A sink is `Send + Sync`: the driver may run several `deliver` calls at
/// once (`import run` with `concurrency` above 1), on batches with disjoint
/// keys.
pub trait Sink: Send + Sync + 'static {
    /// Delivers `orders` (at most `batch_size`, no key twice) and returns
    /// what happened to each, as the trait's contract says.
    fn deliver(
        &self,
        orders: &[OutgoingOrder],
        deadline: Instant,
    ) -> impl Future<Output = BatchOutcome> + Send;
}

/// The idempotency key of a batch: `msg_` and the first 32 hex digits of
/// the SHA-256 over `key:version\n` of each order, in order.
///
/// It depends only on the orders, so a retry, and a re-send after a crash,
/// carry the same id; the webhook sends it as `webhook-id`, and the outbox
/// keeps it for the batch in flight.
pub fn batch_id(orders: &[OutgoingOrder]) -> String {
    let mut hasher = Sha256::new();
    for o in orders {
        hasher.update(o.key.as_bytes());
        hasher.update(b":");
        hasher.update(o.version.to_string().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let mut id = String::with_capacity(4 + 32);
    id.push_str("msg_");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// One order to send. `record` is the order as a JSON object text (already encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingOrder {
    /// Outbox sequence number; outcomes refer to orders by it.
    pub seq: i64,
    /// The order's unique key.
    pub key: String,
    /// The order's version, sent along so the CRM can drop stale updates.
    pub version: i64,
    /// The order as a JSON object text; written into the body verbatim.
    pub record: String,
}

/// What happened to each order of a batch, and why delivery stopped, if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Sequence numbers of orders the receiver acknowledged.
    pub acked: Vec<i64>,
    /// Orders the receiver refused as bad records.
    pub dead: Vec<DeadLetter>,
    /// Sequence numbers of orders not delivered; they stay queued.
    pub pending: Vec<i64>,
    /// Requests sent (attempts, including retries).
    pub requests: u32,
    /// Requests that were re-sends after a transient failure.
    pub retries: u32,
    /// Why delivery stopped before every order was acked or dead-lettered.
    pub stop: Option<StopReason>,
    /// The run's cancel signal turned true:
    /// a retry wait was cut short or a request not sent, and the orders not
    /// yet answered are `pending` (with `stop` left `None`).
    pub cancelled: bool,
}

/// An order the receiver refused as a bad record (for the webhook: 400,
/// 413, 422 or another 4xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Outbox sequence number of the order.
    pub seq: i64,
    /// Status of the refusal (HTTP for the webhook), if it had one.
    pub status: Option<u16>,
    /// Status line and a bounded excerpt of the response body, every
    /// configured secret in it replaced by `***`; for a 413, the size of the
    /// order's request.
    pub reason: String,
}

/// Why a batch stopped early; the orders not yet acked are `pending`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// 401, 403, 404, 410 or a redirect, or a batch of two or more whose
    /// every order was refused alone with the same 4xx (none accepted): the
    /// sink's configuration is wrong, retrying cannot help.
    Refused {
        /// HTTP status received.
        status: u16,
        /// Status line, redirect target if any, and a bounded body excerpt.
        message: String,
    },
    /// The run's deadline passed while retrying, or the next wait
    /// (`Retry-After`, backoff, rate limit) would have ended after it.
    Deadline,
    /// `retry.max_attempts` transient failures in a row.
    Exhausted {
        /// The last failure: status and body excerpt, or the transport error.
        last_error: String,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, message } => {
                write!(
                    f,
                    "the webhook refused the request (HTTP {status}): {message}"
                )
            }
            Self::Deadline => f.write_str("the run's deadline passed while retrying"),
            Self::Exhausted { last_error } => {
                write!(
                    f,
                    "gave up after the maximum number of attempts: {last_error}"
                )
            }
        }
    }
}
