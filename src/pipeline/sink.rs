//! What the user writes under `sink`: the webhook (URL, body format, signing, auth, headers, timeouts, retries) and the run policy (batch size, per-run cap, deadline, concurrency, rate).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defaults;
use super::duration::HumanDuration;

/// The `sink` section of a sync pipeline: where and how orders are sent
/// ([`WebhookSinkConfig`]) and how much a run sends ([`RunPolicy`]).
///
/// Both are written side by side under `sink:` (the file format is
/// unchanged); they are separate types because the policy is the run
/// driver's, not the webhook's.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(from = "SinkFile", into = "SinkFile")]
pub struct SinkConfig {
    /// The webhook: URL, body, signing, auth, headers, timeouts, retries.
    pub webhook: WebhookSinkConfig,
    /// How much one run sends, how fast, and for how long.
    pub policy: RunPolicy,
}

/// The webhook a sync pipeline delivers to (the `sink` keys other than the
/// run policy; each is documented in the JSON Schema under `sink`).
#[derive(Debug, Clone)]
pub struct WebhookSinkConfig {
    /// The CRM's webhook URL. HTTPS unless loopback or `allow_http`.
    pub url: String,
    /// Body shape of each request.
    pub format: PayloadFormat,
    /// Standard Webhooks signing; absent means unsigned.
    pub signing: Option<SigningConfig>,
    /// Authentication header, its secret read from an environment variable.
    pub auth: Option<AuthConfig>,
    /// Extra static headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// Allow plain `http://` to hosts other than loopback.
    pub allow_http: bool,
    /// Timeout of one whole request.
    pub timeout: HumanDuration,
    /// Timeout for establishing a connection.
    pub connect_timeout: HumanDuration,
    /// Retry policy for transient failures.
    pub retry: RetryConfig,
}

/// How much a run delivers and for how long: the same for any sink, applied
/// by the run driver (`sync::drain`), written under `sink:`.
#[derive(Debug, Clone)]
pub struct RunPolicy {
    /// Orders per request, 1..=50.
    pub batch_size: u32,
    /// Orders per scheduled run, 1..=500 (`import run` is not capped).
    pub max_per_run: u32,
    /// A scheduled run stops sending and leaves the rest queued after this long.
    pub deadline: HumanDuration,
    /// Requests in flight during `import run` (1..=32).
    pub concurrency: u32,
    /// Requests per second at most during `import run`; absent means unlimited.
    pub rate_limit: Option<f64>,
}

impl Default for RunPolicy {
    fn default() -> Self {
        Self {
            batch_size: defaults::BATCH_SIZE,
            max_per_run: defaults::MAX_PER_RUN,
            deadline: defaults::DEADLINE,
            concurrency: defaults::CONCURRENCY,
            rate_limit: None,
        }
    }
}

impl From<SinkFile> for SinkConfig {
    fn from(f: SinkFile) -> Self {
        Self {
            webhook: WebhookSinkConfig {
                url: f.url,
                format: f.format,
                signing: f.signing,
                auth: f.auth,
                headers: f.headers,
                allow_http: f.allow_http,
                timeout: f.timeout,
                connect_timeout: f.connect_timeout,
                retry: f.retry,
            },
            policy: RunPolicy {
                batch_size: f.batch_size,
                max_per_run: f.max_per_run,
                deadline: f.deadline,
                concurrency: f.concurrency,
                rate_limit: f.rate_limit,
            },
        }
    }
}

impl From<SinkConfig> for SinkFile {
    fn from(c: SinkConfig) -> Self {
        let (w, p) = (c.webhook, c.policy);
        Self {
            url: w.url,
            format: w.format,
            batch_size: p.batch_size,
            max_per_run: p.max_per_run,
            signing: w.signing,
            auth: w.auth,
            headers: w.headers,
            allow_http: w.allow_http,
            timeout: w.timeout,
            connect_timeout: w.connect_timeout,
            retry: w.retry,
            deadline: p.deadline,
            concurrency: p.concurrency,
            rate_limit: p.rate_limit,
        }
    }
}

/// The schema is the section as written.
impl JsonSchema for SinkConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        SinkFile::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        SinkFile::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        SinkFile::json_schema(generator)
    }
}

// The `sink` section as written: one mapping holding both the webhook's
// settings and the run policy, so that unknown keys, types and positions are
// reported as for any other section, and the schema shows it as one type. It
// is read into `SinkConfig`. (Its doc comment is the schema's description.)
/// How orders are sent to the CRM.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "WebhookSinkConfig")]
struct SinkFile {
    /// The CRM's webhook URL. HTTPS unless loopback or `allow_http`.
    url: String,
    /// Body shape of each request.
    #[serde(default)]
    format: PayloadFormat,
    /// Orders per request, 1..=50.
    #[serde(default = "default_batch_size")]
    batch_size: u32,
    /// Orders per scheduled run, 1..=500 (`import run` is not capped).
    #[serde(default = "default_max_per_run")]
    max_per_run: u32,
    /// Standard Webhooks signing; absent means unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing: Option<SigningConfig>,
    /// Authentication header, its secret read from an environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<AuthConfig>,
    /// Extra static headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    /// Allow plain `http://` to hosts other than loopback.
    #[serde(default)]
    allow_http: bool,
    /// Timeout of one whole request.
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
    /// Timeout for establishing a connection.
    #[serde(default = "default_connect_timeout")]
    connect_timeout: HumanDuration,
    /// Retry policy for transient failures.
    #[serde(default)]
    retry: RetryConfig,
    /// A run stops sending and leaves the rest queued after this long.
    #[serde(default = "default_deadline")]
    deadline: HumanDuration,
    /// Requests in flight during `import run` (1..=32).
    #[serde(default = "default_concurrency")]
    concurrency: u32,
    /// Requests per second at most during `import run`; absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<f64>,
}

fn default_batch_size() -> u32 {
    defaults::BATCH_SIZE
}
fn default_max_per_run() -> u32 {
    defaults::MAX_PER_RUN
}
fn default_timeout() -> HumanDuration {
    defaults::TIMEOUT
}
fn default_connect_timeout() -> HumanDuration {
    defaults::CONNECT_TIMEOUT
}
fn default_deadline() -> HumanDuration {
    defaults::DEADLINE
}
fn default_concurrency() -> u32 {
    defaults::CONCURRENCY
}

/// Body shape of webhook requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `{"type":"order.upserted","timestamp":...,"data":{"orders":[...]}}`
    #[default]
    Envelope,
    /// A JSON array of `{"orderDetailsData":{...}}`, like S-360's own order webhook.
    S360,
}

/// Standard Webhooks signing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Environment variable that holds the secret (`whsec_...`).
    pub secret_env: String,
}

/// An authentication header; secrets come from environment variables.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Environment variable holding the token.
        token_env: String,
    },
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        username: String,
        /// Environment variable holding the password.
        password_env: String,
    },
    /// Any header, e.g. `X-Api-Key`.
    Header {
        /// Header name.
        name: String,
        /// Environment variable holding the value.
        value_env: String,
    },
}

/// Retry policy for transient failures (408, 425, 429, 5xx, timeouts, resets).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First delay; doubles after each failure, with jitter.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Longest backoff between two attempts (a server's `Retry-After` is
    /// honoured as asked, up to the run's `deadline`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Attempts per request before the run gives up and leaves it queued.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: defaults::INITIAL_BACKOFF,
            max_backoff: defaults::MAX_BACKOFF,
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_initial_backoff() -> HumanDuration {
    defaults::INITIAL_BACKOFF
}
fn default_max_backoff() -> HumanDuration {
    defaults::MAX_BACKOFF
}
fn default_max_attempts() -> u32 {
    12
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
