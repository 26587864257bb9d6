//! Webhook sink: delivers one batch of orders to the CRM over HTTP and reports, per order, what happened.
//!
//! It keeps the contract of [`Sink`] (every order in exactly one of
//! `acked`, `dead`, `pending`; the batch's idempotency key as `webhook-id`;
//! cancellation), and adds what is particular to a webhook:
//! - `acked` means answered 2xx (whatever the body says: 2xx is the
//!   contract); `dead` means refused as a bad record (400, 413, 422 or
//!   another 4xx), each alone in its request, found by splitting the batch;
//! - a batch of two or more whose every order the CRM refused, each on its
//!   own and with the same 4xx, from a sink whose requests the CRM has not
//!   acknowledged once, is a configuration problem (a wrong `format`, a
//!   receiver that refuses every payload), not a batch of bad records: it
//!   stops with [`StopReason::Refused`] and nothing is dead-lettered;
//! - nothing the sink shows (logs, errors, dead-letter reasons) carries a
//!   configured secret: URLs are shown redacted ([`redact_url`]) and response
//!   bodies have every secret value replaced by `***` before they are kept;
//! - requests go straight to the webhook: proxy settings of the environment
//!   (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are ignored, so they cannot
//!   route orders or secrets through another host;
//! - a request is re-sent with the same body and `webhook-id`, so the CRM can
//!   drop duplicates; a sub-batch made by splitting gets the id of its own orders.
//!
//! `WebhookSink` is `Send + Sync`; several `deliver` calls may run at once.

mod redact;
mod request;
mod service;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

pub use crate::pipeline::redact::redact_url;
use crate::pipeline::redact::url_secrets;
use crate::pipeline::{AuthConfig, PayloadFormat, WebhookSinkConfig, is_loopback};
use crate::sinks::Sink;
pub use crate::sinks::{BatchOutcome, DeadLetter, OutgoingOrder, StopReason};

use redact::Secrets;
use request::SigningKey;
pub use request::{build_body, sign, webhook_id};
pub use service::MAX_RETRY_AFTER;
use service::{RateLimiter, Sent};

/// Why a webhook sink could not be set up; all of them are configuration problems.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A secret's environment variable is unset or empty.
    #[error("environment variable {var} is not set or empty (it should hold the {what})")]
    MissingEnv {
        /// The variable's name.
        var: String,
        /// What the variable is for.
        what: &'static str,
    },
    /// A signing secret that is not `whsec_<base64>`.
    #[error("the signing secret is not a valid `whsec_...` secret: {reason}")]
    BadSecret {
        /// What is wrong with it (never the secret itself).
        reason: &'static str,
    },
    /// The signing secret read from the environment is not `whsec_<base64>`.
    #[error(
        "the signing secret in environment variable {var} is not a valid `whsec_...` secret: {reason}"
    )]
    BadSecretEnv {
        /// The variable's name.
        var: String,
        /// What is wrong with it (never the secret itself).
        reason: &'static str,
    },
    /// The URL does not parse.
    #[error("the webhook URL is not a valid URL: {source}")]
    InvalidUrl {
        /// The parser's reason (it does not repeat the URL).
        #[source]
        source: url::ParseError,
    },
    /// The URL is neither `https` nor an allowed `http`.
    #[error(
        "the webhook URL must use https (plain http only to loopback hosts or with `allow_http: true`), got scheme {scheme:?}"
    )]
    InsecureUrl {
        /// The URL's scheme.
        scheme: String,
    },
    /// A header name or value that HTTP does not allow.
    #[error("header {name:?} has an invalid name or value")]
    InvalidHeader {
        /// The header's name (its value is not shown, it may be a secret).
        name: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("could not build the HTTP client")]
    Client {
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
}

/// Retry policy, as plain durations.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    initial_backoff: Duration,
    max_backoff: Duration,
    max_attempts: u32,
}

/// Delivers batches of orders to one webhook; built once per run.
pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    /// The URL as [`redact_url`] shows it, for logs and `Debug`.
    url_display: String,
    format: PayloadFormat,
    /// Content type, user agent, configured headers and the auth header.
    headers: HeaderMap,
    signing: Option<SigningKey>,
    retry: RetryPolicy,
    timeout: Duration,
    /// For `Debug`: which auth scheme is in use, never its secret.
    auth_kind: Option<String>,
    limiter: Option<RateLimiter>,
    /// Whether the webhook has acknowledged any request of this sink: then
    /// it takes the payloads, and a batch refused order by order is a batch
    /// of bad records, not a configuration problem.
    acked_any: AtomicBool,
    /// Turns true when the run is asked to stop (Ctrl-C, SIGTERM).
    cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// Every configured secret value, replaced by `***` in response bodies.
    secrets: Secrets,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written by hand: the headers hold the auth secret, and the URL may
        // carry credentials in its user info or query.
        let extra: Vec<&str> = self
            .headers
            .keys()
            .map(HeaderName::as_str)
            .filter(|n| *n != "authorization")
            .collect();
        f.debug_struct("WebhookSink")
            .field("url", &self.url_display)
            .field("format", &self.format)
            .field("headers", &extra)
            .field("auth", &self.auth_kind)
            .field("signed", &self.signing.is_some())
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("rate_limited", &self.limiter.is_some())
            .field("cancellable", &self.cancel.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// Reads secrets from `env` (names from the config); an error names the
    /// missing variable, never prints its value.
    pub fn new(
        cfg: &WebhookSinkConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SinkError> {
        let url =
            reqwest::Url::parse(&cfg.url).map_err(|source| SinkError::InvalidUrl { source })?;
        match url.scheme() {
            "https" => {}
            "http" if cfg.allow_http || is_loopback(&url) => {}
            other => {
                return Err(SinkError::InsecureUrl {
                    scheme: other.to_string(),
                });
            }
        }
        let url_display = redact_url(url.as_str());
        // Secrets a response body might echo: the URL's secret-looking parts,
        // configured header values, and the auth and signing secrets below.
        let mut secrets: Vec<String> = url_secrets(&url);
        secrets.extend(cfg.headers.values().cloned());

        let secret = |var: &str, what: &'static str| -> Result<String, SinkError> {
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SinkError::MissingEnv {
                    var: var.to_string(),
                    what,
                })
        };

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("s360-sync/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &cfg.headers {
            let invalid = || SinkError::InvalidHeader { name: name.clone() };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let v = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.insert(n, v);
        }

        let (auth_kind, auth) = match &cfg.auth {
            None => (None, None),
            Some(AuthConfig::Bearer { token_env }) => {
                let token = secret(token_env, "bearer token")?;
                let value = format!("Bearer {token}");
                secrets.push(token);
                (
                    Some("bearer".to_string()),
                    Some((reqwest::header::AUTHORIZATION, value)),
                )
            }
            Some(AuthConfig::Basic {
                username,
                password_env,
            }) => {
                let password = secret(password_env, "basic auth password")?;
                let credentials = BASE64.encode(format!("{username}:{password}"));
                let value = format!("Basic {credentials}");
                secrets.push(password);
                secrets.push(credentials);
                (
                    Some("basic".to_string()),
                    Some((reqwest::header::AUTHORIZATION, value)),
                )
            }
            Some(AuthConfig::Header { name, value_env }) => {
                let value = secret(value_env, "auth header value")?;
                secrets.push(value.clone());
                let n = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| SinkError::InvalidHeader { name: name.clone() })?;
                (Some(format!("header {name}")), Some((n, value)))
            }
        };
        if let Some((name, value)) = auth {
            let mut v = HeaderValue::from_str(&value).map_err(|_| SinkError::InvalidHeader {
                name: name.as_str().to_string(),
            })?;
            // Keeps the value out of hyper's and reqwest's debug output.
            v.set_sensitive(true);
            headers.insert(name, v);
        }

        let signing = match &cfg.signing {
            None => None,
            Some(s) => {
                let raw = secret(&s.secret_env, "webhook signing secret (whsec_...)")?;
                let key = SigningKey::decode(&raw).map_err(|reason| SinkError::BadSecretEnv {
                    var: s.secret_env.clone(),
                    reason,
                })?;
                let trimmed = raw.trim();
                if let Some(encoded) = trimmed.strip_prefix("whsec_") {
                    secrets.push(encoded.to_string());
                }
                secrets.push(trimmed.to_string());
                Some(key)
            }
        };

        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The environment's proxy variables would send every order, and
            // the auth header, through another host (and defeat the rule
            // that plain http goes only to loopback): no proxy at all.
            .no_proxy()
            .connect_timeout(cfg.connect_timeout.get())
            .build()
            .map_err(|source| SinkError::Client { source })?;

        Ok(Self {
            client,
            url,
            url_display,
            format: cfg.format,
            headers,
            signing,
            retry: RetryPolicy {
                initial_backoff: cfg.retry.initial_backoff.get(),
                max_backoff: cfg.retry.max_backoff.get(),
                max_attempts: cfg.retry.max_attempts.max(1),
            },
            timeout: cfg.timeout.get(),
            auth_kind,
            limiter: None,
            acked_any: AtomicBool::new(false),
            cancel: None,
            secrets: Secrets::new(secrets),
        })
    }

    /// Lets `cancel` interrupt delivery: once it turns true, a retry or
    /// rate-limit wait ends at once and no further request is sent; the
    /// orders not yet answered come back `pending` (nothing acked or
    /// dead-lettered for them) with [`BatchOutcome::cancelled`] set. A
    /// request already on the wire is finished (within its timeout), so its
    /// answer is not lost.
    pub fn with_cancel(mut self, cancel: tokio::sync::watch::Receiver<bool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Spaces requests at least `1 / per_second` apart across all `deliver`
    /// calls on this sink (the `rate_limit` of `import run`). Values that are
    /// not positive and finite leave the sink unlimited.
    pub fn with_rate_limit(mut self, per_second: f64) -> Self {
        self.limiter = RateLimiter::new(per_second);
        self
    }

    /// Delivers `orders` (the caller guarantees `len <= batch_size` and no key
    /// twice) and returns what happened to each.
    ///
    /// Bad records are isolated by splitting the batch in halves; a transient
    /// failure is retried until `max_attempts` or `deadline`; a refusal stops
    /// the batch. Nothing is sent once `deadline` has passed, and no wait
    /// (`Retry-After`, backoff, rate limit) is begun that would end after it.
    /// When every order of a batch of two or more is refused alone with the
    /// same status, and the webhook has acknowledged no request of this sink
    /// yet, the batch stops as [`StopReason::Refused`] with every order
    /// pending, none dead.
    pub async fn deliver(
        &self,
        orders: &[OutgoingOrder],
        deadline: tokio::time::Instant,
    ) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        // A stack instead of recursion: the top is always the next slice in
        // input order, so outcomes keep the caller's order.
        let mut todo: Vec<&[OutgoingOrder]> = Vec::new();
        if !orders.is_empty() {
            todo.push(orders);
        }
        while let Some(part) = todo.pop() {
            if out.stop.is_some() || out.cancelled {
                out.pending.extend(part.iter().map(|o| o.seq));
                continue;
            }
            match self.send(part, deadline, &mut out).await {
                Sent::Acked => {
                    self.acked_any.store(true, Ordering::Relaxed);
                    out.acked.extend(part.iter().map(|o| o.seq));
                }
                Sent::Rejected {
                    status,
                    reason,
                    body_bytes,
                } => {
                    if let [single] = part {
                        tracing::info!(
                            status,
                            key = %single.key,
                            "webhook refused an order sent alone"
                        );
                        let reason = if status == 413 {
                            format!(
                                "{reason} (this order alone makes a request of {body_bytes} bytes, more than the webhook accepts)"
                            )
                        } else {
                            reason
                        };
                        out.dead.push(DeadLetter {
                            seq: single.seq,
                            status: Some(status),
                            reason,
                        });
                    } else {
                        let (first, second) = part.split_at(part.len() / 2);
                        tracing::info!(
                            status,
                            orders = part.len(),
                            "webhook refused a batch as bad; splitting it to isolate the bad orders"
                        );
                        todo.push(second);
                        todo.push(first);
                    }
                }
                Sent::Stopped(reason) => {
                    out.pending.extend(part.iter().map(|o| o.seq));
                    out.stop = Some(reason);
                }
                Sent::Cancelled => {
                    out.pending.extend(part.iter().map(|o| o.seq));
                    out.cancelled = true;
                }
            }
        }
        let refused = refused_alike(orders, &out);
        if let Some(status) = refused.filter(|_| !self.acked_any.load(Ordering::Relaxed)) {
            let first = out
                .dead
                .first()
                .map(|d| d.reason.clone())
                .unwrap_or_default();
            tracing::warn!(
                status,
                orders = orders.len(),
                "webhook refused every order of the batch, each on its own; stopping as a configuration problem"
            );
            out.dead.clear();
            out.pending = orders.iter().map(|o| o.seq).collect();
            out.stop = Some(StopReason::Refused {
                status,
                message: format!(
                    "all {} orders of a batch were refused, each sent alone, with HTTP {status}, and none was accepted: the webhook refuses the payloads themselves, a configuration problem (check `sink.format` and what the CRM expects); nothing was dead-lettered and the orders stay queued. First answer: {first}",
                    orders.len()
                ),
            });
        }
        for dead in &out.dead {
            let key = orders
                .iter()
                .find(|o| o.seq == dead.seq)
                .map(|o| o.key.as_str());
            tracing::warn!(
                status = dead.status,
                key = key.unwrap_or_default(),
                "webhook refused an order as a bad record; it becomes a dead letter"
            );
        }
        out
    }
}

impl Sink for WebhookSink {
    fn deliver(
        &self,
        orders: &[OutgoingOrder],
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = BatchOutcome> + Send {
        WebhookSink::deliver(self, orders, deadline)
    }
}

/// The status, when every order of `orders` (two or more) came back dead
/// with that same status and none was acknowledged: one bad record among
/// good ones never matches, since the good ones are acked.
fn refused_alike(orders: &[OutgoingOrder], out: &BatchOutcome) -> Option<u16> {
    if orders.len() < 2 || !out.acked.is_empty() || out.dead.len() != orders.len() {
        return None;
    }
    let status = out.dead.first()?.status?;
    out.dead
        .iter()
        .all(|d| d.status == Some(status))
        .then_some(status)
}
