//! The receiver's log of requests, and the checks the delivery tests make of it.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use axum::http::{HeaderMap, Method, Uri};

/// What the receiver made of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A status line was sent (which the client read, if it still listened).
    Answered(u16),
    /// The receiver hung past the client's timeout before answering.
    Hung,
    /// The connection was reset mid-body; nothing was answered.
    Reset,
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the log: the order in which bodies were complete.
    pub seq: usize,
    /// Number of the request in the order its headers arrived (what
    /// [`When::Nth`] counts).
    pub n: usize,
    /// When its body was complete (or the connection reset).
    pub at: Instant,
    /// The request method.
    pub method: Method,
    /// The request target (a proxy sees absolute URIs).
    pub uri: Uri,
    /// The same moment on the wall clock (for HTTP dates).
    pub wall: SystemTime,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body as read (only its start for a reset).
    pub body: Vec<u8>,
    /// The `Content-Length` the client announced.
    pub content_length: Option<usize>,
    /// `(key, version)` of each order of the body, in body order; empty if
    /// the body could not be parsed (a reset cuts it short).
    pub orders: Vec<(String, i64)>,
    /// What was answered.
    pub outcome: Outcome,
    /// For a 429: the earliest moment the client may try again, as asked.
    pub not_before: Option<Instant>,
}

impl Entry {
    /// The `webhook-id` header.
    pub fn webhook_id(&self) -> String {
        self.header("webhook-id")
    }

    /// A header as text, empty if absent.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the receiver accepted it with a 2xx (a hang or a reset is not
    /// one); the client may have died before it read the answer.
    pub fn acknowledged(&self) -> bool {
        matches!(self.outcome, Outcome::Answered(s) if (200..300).contains(&s))
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// `(key, version)` of every order in an envelope (`data.orders[].id/version`)
/// or s360 (`[].syncKey/syncVersion`) body; empty if it is not one.
pub fn orders_of(body: &[u8]) -> Vec<(String, i64)> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let items = match &v {
        serde_json::Value::Array(a) => a.as_slice(),
        _ => v["data"]["orders"]
            .as_array()
            .map_or(&[][..], Vec::as_slice),
    };
    items
        .iter()
        .filter_map(|o| {
            let key = o.get("id").or_else(|| o.get("syncKey"))?.as_str()?;
            let version = o
                .get("version")
                .or_else(|| o.get("syncVersion"))?
                .as_i64()?;
            Some((key.to_string(), version))
        })
        .collect()
}

/// Per `(key, version)`: how many acknowledged requests carried it.
pub fn acknowledged_counts(log: &[Entry]) -> HashMap<(String, i64), usize> {
    let mut m = HashMap::new();
    for e in log.iter().filter(|e| e.acknowledged()) {
        for o in &e.orders {
            *m.entry(o.clone()).or_default() += 1;
        }
    }
    m
}

/// The first request of the log in which an order arrives with a version
/// older than one already acknowledged for it, as `(entry seq, key, version
/// sent, version acknowledged before)`.
pub fn older_after_newer(log: &[Entry]) -> Option<(usize, String, i64, i64)> {
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for e in log {
        for (k, v) in &e.orders {
            if let Some(&acked) = newest.get(k.as_str())
                && *v < acked
            {
                return Some((e.seq, k.clone(), *v, acked));
            }
        }
        if e.acknowledged() {
            for (k, v) in &e.orders {
                let slot = newest.entry(k.as_str()).or_insert(*v);
                *slot = (*slot).max(*v);
            }
        }
    }
    None
}

/// Each webhook-id with the orders it carried, checking that every request
/// with that id carried the same orders; `Err` names the first id that did not.
pub fn batches_by_id(log: &[Entry]) -> Result<HashMap<String, Vec<(String, i64)>>, String> {
    let mut m: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for e in log.iter().filter(|e| e.outcome != Outcome::Reset) {
        let id = e.webhook_id();
        match m.get(&id) {
            Some(first) if *first != e.orders => {
                return Err(format!(
                    "webhook-id {id} carried {} order(s) first and {} in request {}",
                    first.len(),
                    e.orders.len(),
                    e.seq
                ));
            }
            Some(_) => {}
            None => {
                m.insert(id, e.orders.clone());
            }
        }
    }
    Ok(m)
}
