//! Sending one request body with retries: status classes, backoff with jitter, `Retry-After`, the deadline, bounded body reads.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderValue, LOCATION, RETRY_AFTER};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::request::{build_body, snippet, webhook_id};
use super::{BatchOutcome, OutgoingOrder, RetryPolicy, StopReason, WebhookSink};

/// Bytes of a response body read at most; the rest is never downloaded.
pub(super) const MAX_RESPONSE_BYTES: usize = crate::pipeline::defaults::MAX_RESPONSE_BYTES as usize;

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
    },
    /// Delivery of the whole batch stops here.
    Stopped(StopReason),
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
            if let Some(limiter) = &self.limiter {
                limiter.wait().await;
            }
            let now = Instant::now();
            if now >= deadline {
                return Sent::Stopped(StopReason::Deadline);
            }
            // A request never runs past the deadline; if it is cut short the
            // CRM may still have it, and the re-send carries the same id.
            let timeout = self.timeout.min(deadline - now);
            out.requests += 1;
            let result = self
                .attempt(&id, &body, orders.len(), attempt, timeout)
                .await;
            let (error, retry_after) = match result {
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
            if Instant::now() + delay >= deadline {
                tracing::warn!(
                    webhook_id = %id,
                    attempts = attempt,
                    error = %error,
                    "the run's deadline comes before the next attempt; leaving the orders queued"
                );
                return Sent::Stopped(StopReason::Deadline);
            }
            tracing::warn!(
                webhook_id = %id,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "transient webhook failure; retrying"
            );
            out.retries += 1;
            tokio::time::sleep(delay).await;
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
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A failed body read does not change the verdict of the status line.
        let body = read_capped(&mut response).await;
        tracing::info!(
            url = %self.url_display,
            webhook_id = %id,
            orders,
            attempt,
            status = status.as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "webhook request"
        );
        classify(status, &body, retry_after, location)
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

/// `Retry-After` as delta seconds or an HTTP date.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The wait before attempt `failed + 1`: the server's `Retry-After` if it
/// gave one (bounded only by the run's deadline, which the caller checks),
/// else exponential backoff with full jitter capped at `max_backoff`.
fn retry_delay(policy: &RetryPolicy, failed: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait;
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
    /// `None` unless `per_second` is positive and finite.
    pub(super) fn new(per_second: f64) -> Option<Self> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        Some(Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        })
    }

    /// Waits until this caller's slot.
    pub(super) async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
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
        // The deadline, not max_backoff, bounds what the server asks for.
        assert_eq!(
            retry_delay(&p, 1, Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
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
            Attempt::Done(Sent::Stopped(_)) => "stopped",
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
