//! HTTP side of the sandbox: the webhook receiver (faults, signatures, payload shapes) and `/_sandbox/*` routes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use serde_json::{Value, json};
use sha2::Sha256;

use super::store::{self, Incoming, RequestLog};
use super::{Faults, TIMESTAMP_TOLERANCE};
use crate::rehearsal::generate::Rng;

/// Largest request body accepted (50 orders with many lines fit easily).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Shared by all requests.
pub(super) struct AppState {
    conn: Arc<Mutex<Connection>>,
    db: PathBuf,
    key: Option<Vec<u8>>,
    faults: Faults,
    draws: Mutex<FaultDraws>,
}

/// Requests seen so far and the seeded generator behind `fail_rate`.
struct FaultDraws {
    seen: u64,
    rng: Rng,
}

impl AppState {
    pub(super) fn new(
        conn: Arc<Mutex<Connection>>,
        db: PathBuf,
        key: Option<Vec<u8>>,
        faults: Faults,
    ) -> Self {
        let rng = Rng::new(faults.seed);
        Self {
            conn,
            db,
            key,
            faults,
            draws: Mutex::new(FaultDraws { seen: 0, rng }),
        }
    }

    /// Whether this request gets an injected failure; one draw per request.
    fn injected_fault(&self) -> bool {
        let mut d = self.draws.lock().unwrap_or_else(PoisonError::into_inner);
        d.seen += 1;
        if d.seen <= u64::from(self.faults.fail_first) {
            return true;
        }
        if self.faults.fail_rate <= 0.0 {
            return false;
        }
        // 53 random bits give a uniform float in [0, 1).
        let x = (d.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < self.faults.fail_rate
    }

    /// Run `f` on the connection on a blocking thread.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut c)
        })
        .await
    }
}

/// The sandbox's routes: `GET /_sandbox/orders`, `GET /_sandbox/stats`, and
/// `POST` on any other path for webhooks.
pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_sandbox/orders", get(list_orders))
        .route("/_sandbox/stats", get(stats))
        .fallback(webhook)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Why a request body was refused with 400.
#[derive(Debug, thiserror::Error)]
pub(super) enum PayloadError {
    /// Not JSON at all.
    #[error("body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but neither accepted shape.
    #[error("{0}")]
    Shape(&'static str),
    /// One order of the list lacks a field.
    #[error("order #{index}: missing `{field}`")]
    Missing {
        /// Position in the request (0-based).
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// One order of the list is malformed.
    #[error("order #{index}: {problem}")]
    Order {
        /// Position in the request (0-based).
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Parse either body shape into orders: an envelope object
/// (`data.orders[]` of `{id, version, order}`) or an S-360 array
/// (`[{syncKey, syncVersion, orderDetailsData}]`).
pub(super) fn parse_payload(body: &[u8]) -> Result<Vec<Incoming>, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    let (items, names) = match &value {
        Value::Object(o) => {
            let items = o
                .get("data")
                .and_then(|d| d.get("orders"))
                .and_then(Value::as_array)
                .ok_or(PayloadError::Shape("envelope has no `data.orders` array"))?;
            (items, ("id", "version", "order"))
        }
        Value::Array(items) => (items, ("syncKey", "syncVersion", "orderDetailsData")),
        _ => {
            return Err(PayloadError::Shape(
                "expected an envelope object or an array of {orderDetailsData, syncKey, syncVersion}",
            ));
        }
    };
    let (key_name, version_name, record_name) = names;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let bad = |problem| PayloadError::Order { index, problem };
            let item = item.as_object().ok_or(bad("not a JSON object"))?;
            let key = match item.get(key_name) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                None | Some(Value::Null) => {
                    return Err(PayloadError::Missing {
                        index,
                        field: key_name,
                    });
                }
                Some(_) => return Err(bad("the key is not a non-empty string or an integer")),
            };
            let version = match item.get(version_name) {
                Some(Value::Number(n)) => n
                    .as_i64()
                    .ok_or(bad("the version is not a 64-bit integer"))?,
                None | Some(Value::Null) => {
                    return Err(PayloadError::Missing {
                        index,
                        field: version_name,
                    });
                }
                Some(_) => return Err(bad("the version is not an integer")),
            };
            let record = match item.get(record_name) {
                Some(r @ Value::Object(_)) => r.clone(),
                None | Some(Value::Null) => {
                    return Err(PayloadError::Missing {
                        index,
                        field: record_name,
                    });
                }
                Some(_) => return Err(bad("the record is not a JSON object")),
            };
            Ok(Incoming {
                key,
                version,
                record,
            })
        })
        .collect()
}

/// Why a signed request was refused with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum SignatureError {
    /// A header is absent or not text.
    #[error("missing or unreadable `{0}` header")]
    MissingHeader(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("`webhook-timestamp` is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is too far from our clock (replay protection).
    #[error("`webhook-timestamp` is more than 5 minutes from the server's clock")]
    StaleTimestamp,
    /// No `v1` signature matches.
    #[error("no valid `v1` signature in `webhook-signature`")]
    NoMatch,
}

/// Check Standard Webhooks headers: `v1,` + base64 HMAC-SHA256 over
/// `id.timestamp.body`; several space-separated signatures may be given.
pub(super) fn verify_signature(
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let text = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(SignatureError::MissingHeader(name))
    };
    let id = text("webhook-id")?;
    let ts = text("webhook-timestamp")?;
    let sigs = text("webhook-signature")?;
    let seconds: i64 = ts
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now.abs_diff(seconds) > TIMESTAMP_TOLERANCE.as_secs() {
        return Err(SignatureError::StaleTimestamp);
    }
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| SignatureError::NoMatch)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    for sig in sigs.split(' ') {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        // verify_slice compares in constant time.
        if mac.clone().verify_slice(&raw).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

fn iso_millis(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An answer plus what the request log records of it.
struct Reply {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl Reply {
    fn error(status: StatusCode, error: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            status,
            body: json!({ "error": error, "reason": reason.to_string() }),
            retry_after: None,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        (self.status, headers, Json(self.body)).into_response()
    }
}

async fn webhook(
    State(st): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        let mut r = Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "webhooks are POSTed",
        )
        .into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let received = Utc::now();
    let mut log = RequestLog {
        webhook_id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        received_at: iso_millis(received),
        status: 0,
        orders: 0,
    };
    let reply = handle(&st, &headers, &body, received, &mut log).await;
    if !st.faults.latency.is_zero() {
        tokio::time::sleep(st.faults.latency).await;
    }
    reply.into_response()
}

async fn handle(
    st: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    received: DateTime<Utc>,
    log: &mut RequestLog,
) -> Reply {
    let reply = if st.injected_fault() {
        let status =
            StatusCode::from_u16(st.faults.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut r = Reply::error(status, "injected_fault", "failure injected by the sandbox");
        if matches!(status.as_u16(), 429 | 503) {
            r.retry_after = st.faults.retry_after;
        }
        r
    } else if let Some(Err(e)) = st
        .key
        .as_deref()
        .map(|k| verify_signature(k, headers, body, received.timestamp()))
    {
        Reply::error(StatusCode::UNAUTHORIZED, "unauthorized", e)
    } else {
        match parse_payload(body) {
            Err(e) => Reply::error(StatusCode::BAD_REQUEST, "bad_request", e),
            Ok(orders) => {
                log.orders = orders.len();
                let mut rejected: Vec<&str> = Vec::new();
                for o in orders
                    .iter()
                    .filter(|o| st.faults.reject_ids.contains(&o.key))
                {
                    if !rejected.contains(&o.key.as_str()) {
                        rejected.push(&o.key);
                    }
                }
                if rejected.is_empty() {
                    if st.faults.discard {
                        return Reply {
                            status: StatusCode::OK,
                            body: json!({ "accepted": orders.len(), "stale": 0 }),
                            retry_after: None,
                        };
                    }
                    return store(st, orders, log).await;
                }
                Reply {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    body: json!({
                        "error": "rejected",
                        "reason": format!("orders rejected by the sandbox: {}", rejected.join(", ")),
                        "ids": rejected,
                    }),
                    retry_after: None,
                }
            }
        }
    };
    log.status = reply.status.as_u16();
    let entry = log.clone();
    match st.with_conn(move |c| store::log_request(c, &entry)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, db = %st.db.display(), "logging a request failed"),
        Err(e) => tracing::warn!(error = %e, "logging task failed"),
    }
    reply
}

/// Store the orders of one request; 200 only after the commit.
async fn store(st: &AppState, orders: Vec<Incoming>, log: &mut RequestLog) -> Reply {
    log.status = StatusCode::OK.as_u16();
    let entry = log.clone();
    match st
        .with_conn(move |c| store::store_request(c, &orders, &entry))
        .await
    {
        Ok(Ok(out)) => Reply {
            status: StatusCode::OK,
            body: json!({ "accepted": out.accepted, "stale": out.stale }),
            retry_after: None,
        },
        Ok(Err(e)) => {
            tracing::error!(error = %e, db = %st.db.display(), "storing orders failed");
            Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "the sandbox could not store the orders",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "storage task failed");
            Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "the sandbox could not store the orders",
            )
        }
    }
}

async fn list_orders(State(st): State<Arc<AppState>>) -> Response {
    let db = st.db.clone();
    match st.with_conn(move |c| store::list_orders(c, &db)).await {
        Ok(Ok(orders)) => Json(orders).into_response(),
        Ok(Err(e)) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e).into_response(),
        Err(e) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "task", e).into_response(),
    }
}

async fn stats(State(st): State<Arc<AppState>>) -> Response {
    match st.with_conn(|c| store::stats(c)).await {
        Ok(Ok(s)) => Json(s).into_response(),
        Ok(Err(e)) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e).into_response(),
        Err(e) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "task", e).into_response(),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn numeric_keys_are_text_and_missing_versions_are_named() {
        let o = parse_payload(br#"{"data":{"orders":[{"id":7,"version":1,"order":{}}]}}"#).unwrap();
        assert_eq!(o[0].key, "7");
        let e = parse_payload(br#"[{"syncKey":"a","orderDetailsData":{}}]"#).unwrap_err();
        assert_eq!(e.to_string(), "order #0: missing `syncVersion`");
        assert!(matches!(parse_payload(b"42"), Err(PayloadError::Shape(_))));
        assert!(matches!(parse_payload(b"{"), Err(PayloadError::NotJson(_))));
    }
}
