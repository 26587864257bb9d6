//! The receiver a sync test delivers to: an in-process HTTP server on 127.0.0.1 that records every request and answers by the run's rules.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The status it was answered with.
    pub status: u16,
    /// Its `webhook-id` header, if signed.
    pub webhook_id: Option<String>,
    /// The body, as JSON (`null` if it was not JSON).
    pub body: Value,
}

impl Received {
    /// The orders in the body: key, version and the order's item, in either
    /// payload format (`s360`: a list of `{orderDetailsData, syncKey,
    /// syncVersion}`; `envelope`: `data.orders` of `{id, version, order}`).
    pub fn orders(&self) -> Vec<(String, i64, &Value)> {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(items) = self.body.as_array() {
            return items
                .iter()
                .map(|i| {
                    (
                        text(&i["syncKey"]),
                        i["syncVersion"].as_i64().unwrap_or(0),
                        i,
                    )
                })
                .collect();
        }
        self.body["data"]["orders"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| (text(&i["id"]), i["version"].as_i64().unwrap_or(0), i))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    refuse: HashSet<String>,
    refuse_status: u16,
    received: Vec<Received>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Shared,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// Listen on 127.0.0.1 at a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner: Shared = Arc::default();
        let app = Router::new()
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(inner.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the test receiver stopped");
            }
        });
        Ok(Self {
            addr,
            inner,
            _stop: stop,
        })
    }

    /// The URL a pipeline under test delivers to.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/orders", self.addr)
    }

    /// Answer requests holding any of `keys` with `status` from now on
    /// (no keys: accept everything).
    pub fn refuse(&self, keys: HashSet<String>, status: u16) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.refuse = keys;
        inner.refuse_status = status;
    }

    /// The requests received since the last call, in order.
    pub fn take(&self) -> Vec<Received> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut inner.received)
    }
}

async fn receive(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
    let mut got = Received {
        status: 200,
        webhook_id,
        body,
    };
    let refused = got
        .orders()
        .iter()
        .any(|(key, _, _)| inner.refuse.contains(key));
    if refused {
        got.status = inner.refuse_status;
    }
    let status = StatusCode::from_u16(got.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    inner.received.push(got);
    status
}
