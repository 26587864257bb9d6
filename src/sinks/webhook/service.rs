//! Sending one request body with retries: status classes, backoff with jitter, `Retry-After` (capped), the deadline, cancellation, bounded body reads.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderValue, LOCATION, RETRY_AFTER};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::request::{build_body, snippet, webhook_id};
use super::{BatchOutcome, OutgoingOrder, RetryPolicy, StopReason, WebhookSink};
use crate::pipeline::redact::redact_url;

/// Bytes of a response body read at most; the rest is never downloaded.
pub(super) const MAX_RESPONSE_BYTES: usize = crate::pipeline::defaults::MAX_RESPONSE_BYTES as usize;

/// The longest wait a `Retry-After` answer can ask for: one hour. A longer
/// wish (in seconds or as an HTTP date) is shortened to it; a wait that would
/// end after the run's deadline is not begun at all, the batch stops with
/// [`StopReason::Deadline`] and stays queued.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Final result of sending one (sub-)batch.
pub(super) enum Sent {
    /// 2xx: every order of the request is acknowledged.
    Acked,
    /// A 4xx that means "bad record".
    Rejected {
        /// HTTP status.
        status: u16,
        /// Status line and body excerpt.
        reason: String,
        /// Size of the refused request body.
        body_bytes: usize,
    },
    /// Delivery of the whole batch stops here.
    Stopped(StopReason),
    /// The cancel signal turned true before an answer; nothing is decided.
    Cancelled,
}

/// How one attempt ended.
enum Attempt {
    Done(Sent),
    /// Worth retrying; `retry_after` is the server's wish, if it said one.
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
}

impl WebhookSink {
    /// Sends `orders` as one request, retrying transient failures with the
    /// same body and `webhook-id`; counts requests and retries into `out`.
    pub(super) async fn send(
        &self,
        orders: &[OutgoingOrder],
        deadline: Instant,
        out: &mut BatchOutcome,
    ) -> Sent {
        let id = webhook_id(orders);
        // Built once, so that every attempt carries the same bytes.
        let body = bytes::Bytes::from(build_body(self.format, orders));
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if self.is_cancelled() {
                return Sent::Cancelled;
            }
            if let Some(limiter) = &self.limiter {
                let slot = limiter.reserve().await;
                if slot >= deadline {
                    return Sent::Stopped(StopReason::Deadline);
                }
                if !self.pause_until(slot).await {
                    return Sent::Cancelled;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Sent::Stopped(StopReason::Deadline);
            }
            // A request never runs past the deadline; if it is cut short the
            // CRM may still have it, and the re-send carries the same id.
            let timeout = self.timeout.min(deadline.saturating_duration_since(now));
            out.requests += 1;
            let result = self
                .attempt(&id, &body, orders.len(), attempt, timeout)
                .await;
            let (error, retry_after) = match result {
                Attempt::Done(Sent::Rejected { status, reason, .. }) => {
                    return Sent::Rejected {
                        status,
                        reason,
                        body_bytes: body.len(),
                    };
                }
                Attempt::Done(sent) => return sent,
                Attempt::Transient { error, retry_after } => (error, retry_after),
            };
            if attempt >= self.retry.max_attempts {
                tracing::warn!(
                    webhook_id = %id,
                    attempts = attempt,
                    error = %error,
                    "webhook still failing after the maximum number of attempts; leaving the orders queued"
                );
                return Sent::Stopped(StopReason::Exhausted { last_error: error });
            }
            let delay = retry_delay(&self.retry, attempt, retry_after);
            // `checked_add`: a wait no clock can represent ends after any deadline.
            let resume = Instant::now().checked_add(delay);
            let Some(resume) = resume.filter(|at| *at < deadline) else {
                tracing::warn!(
                    webhook_id = %id,
                    attempts = attempt,
                    error = %error,
                    "the run's deadline comes before the next attempt; leaving the orders queued"
                );
                return Sent::Stopped(StopReason::Deadline);
            };
            tracing::warn!(
                webhook_id = %id,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "transient webhook failure; retrying"
            );
            out.retries += 1;
            if !self.pause_until(resume).await {
                tracing::warn!(
                    webhook_id = %id,
                    "stopping: retry wait interrupted; leaving the orders queued"
                );
                return Sent::Cancelled;
            }
        }
    }

    /// Whether the cancel signal has turned true.
    fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Sleeps until `at`; `false` when the cancel signal cut the sleep short.
    async fn pause_until(&self, at: Instant) -> bool {
        let Some(cancel) = &self.cancel else {
            tokio::time::sleep_until(at).await;
            return true;
        };
        let mut cancel = cancel.clone();
        tokio::select! {
            () = tokio::time::sleep_until(at) => true,
            () = cancelled(&mut cancel) => false,
        }
    }

    /// One HTTP request and the classification of its answer.
    async fn attempt(
        &self,
        id: &str,
        body: &bytes::Bytes,
        orders: usize,
        attempt: u32,
        timeout: Duration,
    ) -> Attempt {
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(timeout)
            .header("webhook-id", id)
            .body(body.clone());
        if let Some(key) = &self.signing {
            request = request
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", key.sign(id, timestamp, body));
        }
        let started = Instant::now();
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = transport_error(e);
                tracing::info!(
                    url = %self.url_display,
                    webhook_id = %id,
                    orders,
                    attempt,
                    duration_ms = started.elapsed().as_millis() as u64,
                    error = %error,
                    "webhook request failed"
                );
                return Attempt::Transient {
                    error,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(parse_retry_after);
        // The target is shown like the webhook URL: redacted, and resolved
        // against it so that a relative one shows its host too.
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| match self.url.join(l) {
                Ok(u) => redact_url(u.as_str()),
                Err(_) => redact_url(l),
            });
        // A failed body read does not change the verdict of the status line.
        // Secrets are replaced in the whole body read, before it is cut to
        // an excerpt, so that a cut cannot leave a secret's beginning.
        let body = self.secrets.scrub(&read_capped(&mut response).await);
        tracing::info!(
            url = %self.url_display,
            webhook_id = %id,
            orders,
            attempt,
            status = status.as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "webhook request"
        );
        classify(status, body.as_bytes(), retry_after, location)
    }
}

/// Resolves when `cancel` turns true; never, if its sender is gone.
async fn cancelled(cancel: &mut tokio::sync::watch::Receiver<bool>) {
    if cancel.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Maps a status to what the sink does next.
fn classify(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    location: Option<String>,
) -> Attempt {
    if status.is_success() {
        return Attempt::Done(Sent::Acked);
    }
    let code = status.as_u16();
    let line = status_line(status, body);
    if status.is_redirection() {
        let target =
            location.map_or_else(String::new, |l| format!(" to {}", snippet(l.as_bytes())));
        return Attempt::Done(Sent::Stopped(StopReason::Refused {
            status: code,
            message: format!("redirect{target} not followed; fix the webhook URL ({line})"),
        }));
    }
    match code {
        401 | 403 | 404 | 410 => Attempt::Done(Sent::Stopped(StopReason::Refused {
            status: code,
            message: line,
        })),
        408 | 425 | 429 | 500..=599 => Attempt::Transient {
            error: line,
            retry_after,
        },
        400..=499 => Attempt::Done(Sent::Rejected {
            status: code,
            reason: line,
            body_bytes: 0,
        }),
        // 1xx as a final answer, or codes outside the standard classes:
        // nothing says the order is bad, so try again later.
        _ => Attempt::Transient {
            error: line,
            retry_after,
        },
    }
}

/// `HTTP 422 Unprocessable Entity: <body excerpt>`.
fn status_line(status: StatusCode, body: &[u8]) -> String {
    let mut line = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        line.push(' ');
        line.push_str(reason);
    }
    let excerpt = snippet(body);
    if !excerpt.is_empty() {
        line.push_str(": ");
        line.push_str(&excerpt);
    }
    line
}

/// A transport error as text: its kind and causes, without the URL (which may
/// carry credentials).
fn transport_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the body, chunk by chunk, and
/// drops the rest unread.
pub(super) async fn read_capped(response: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// `Retry-After` as delta seconds or an HTTP date, at most [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Digits too many for a u64 are a wait beyond the cap as well.
        let secs = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The wait before attempt `failed + 1`: the server's `Retry-After` if it
/// gave one (at most [`MAX_RETRY_AFTER`], and the caller does not begin a
/// wait that ends after the run's deadline), else exponential backoff with
/// full jitter capped at `max_backoff`.
fn retry_delay(policy: &RetryPolicy, failed: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_RETRY_AFTER);
    }
    let exp = policy
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(failed.saturating_sub(1)))
        .min(policy.max_backoff);
    // Full jitter spreads the retries of many clients over the whole window.
    let nanos = u64::try_from(exp.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

/// Spaces requests evenly: each one waits for the next free slot.
pub(super) struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// `None` unless `per_second` is positive and finite. The spacing is at
    /// most the longest duration a pipeline can write (366 days), so that a
    /// tiny rate cannot make a wait no clock represents.
    pub(super) fn new(per_second: f64) -> Option<Self> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        let longest = crate::pipeline::duration::MAX;
        let interval =
            Duration::try_from_secs_f64(1.0 / per_second).map_or(longest, |d| d.min(longest));
        Some(Self {
            interval,
            next: Mutex::new(Instant::now()),
        })
    }

    /// Takes the next free slot and returns when it is; the caller waits
    /// for it (or not, if it comes after the deadline).
    pub(super) async fn reserve(&self) -> Instant {
        let mut next = self.next.lock().await;
        let slot = (*next).max(Instant::now());
        // Cannot overflow with a spacing of at most 366 days; if it did, no
        // spacing is better than a panic.
        *next = slot.checked_add(self.interval).unwrap_or(slot);
        slot
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_attempts: 5,
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for failed in 1..40 {
            let d = retry_delay(&policy(), failed, None);
            let ceiling = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(failed - 1))
                .min(Duration::from_secs(2));
            assert!(d <= ceiling, "attempt {failed}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_beyond_max_backoff() {
        let p = policy();
        assert_eq!(
            retry_delay(&p, 1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        // MAX_RETRY_AFTER and the deadline, not max_backoff, bound what the
        // server asks for.
        assert_eq!(
            retry_delay(&p, 1, Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
        assert_eq!(
            retry_delay(&p, 1, Some(Duration::from_secs(7200))),
            MAX_RETRY_AFTER
        );
        assert_eq!(retry_delay(&p, 1, Some(Duration::MAX)), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_beyond_any_clock_is_capped_at_an_hour() {
        assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(3600));
        for wish in [
            "3601",
            "18446744073709551615",
            "99999999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let got = parse_retry_after(&HeaderValue::from_str(wish).unwrap());
            assert_eq!(got, Some(MAX_RETRY_AFTER), "{wish}");
        }
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("3600")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-5")), None);
    }

    #[tokio::test]
    async fn a_tiny_rate_limit_does_not_overflow_the_clock() {
        for rate in [1e-300, f64::MIN_POSITIVE, 1e-12] {
            let limiter = RateLimiter::new(rate).unwrap();
            assert_eq!(limiter.interval, crate::pipeline::duration::MAX);
            let first = limiter.reserve().await;
            let second = limiter.reserve().await;
            assert!(second > first);
        }
        assert!(RateLimiter::new(0.0).is_none());
        assert!(RateLimiter::new(f64::INFINITY).is_none());
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let secs = HeaderValue::from_static("7");
        assert_eq!(parse_retry_after(&secs), Some(Duration::from_secs(7)));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&HeaderValue::from_str(&future).unwrap()).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn status_classes() {
        let kind = |code: u16| match classify(StatusCode::from_u16(code).unwrap(), b"", None, None)
        {
            Attempt::Done(Sent::Acked) => "acked",
            Attempt::Done(Sent::Rejected { .. }) => "rejected",
            Attempt::Done(Sent::Stopped(StopReason::Refused { .. })) => "refused",
            Attempt::Done(Sent::Stopped(_) | Sent::Cancelled) => "stopped",
            Attempt::Transient { .. } => "transient",
        };
        for (code, want) in [
            (200, "acked"),
            (202, "acked"),
            (204, "acked"),
            (301, "refused"),
            (302, "refused"),
            (307, "refused"),
            (400, "rejected"),
            (401, "refused"),
            (403, "refused"),
            (404, "refused"),
            (408, "transient"),
            (409, "rejected"),
            (410, "refused"),
            (413, "rejected"),
            (422, "rejected"),
            (425, "transient"),
            (429, "transient"),
            (500, "transient"),
            (502, "transient"),
            (503, "transient"),
        ] {
            assert_eq!(kind(code), want, "status {code}");
        }
    }
}
