//! The receiver's request handler: rules first, then the ordinary answer of a webhook or object store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::conn::Conn;
use super::log::{Entry, Outcome, orders_of};
use super::{Act, Inner, When};

pub(super) async fn handle(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let n = inner.arrivals.fetch_add(1, Ordering::SeqCst);
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let path = uri.path().to_string();
    // A rule on the body's text can only be tried once the body is in: then
    // all rules are tried then (so a reset reads the whole body).
    let after_body = inner
        .rules
        .lock()
        .unwrap()
        .iter()
        .any(|r| matches!(r.when, When::BodyContains(_)));
    let early = if after_body {
        None
    } else {
        inner.decide(n, content_length, &method, &path)
    };
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let reset = matches!(early, Some(Act::Reset));
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => bytes.extend_from_slice(&c),
            // The client went away mid-body: nothing to log or answer.
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
        if reset && !bytes.is_empty() {
            break;
        }
    }
    let act = if after_body {
        inner.decide_with(n, content_length, &method, &path, Some(&bytes))
    } else {
        early
    };
    let reset = matches!(act, Some(Act::Reset));
    let echo = matches!(act, Some(Act::EchoRefusal)).then(|| {
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        format!(
            "{{\"error\":\"rejected\",\"request\":{{\"uri\":\"{uri}\",\"authorization\":\"{}\",\"x-api-key\":\"{}\"}}}}",
            h("authorization"),
            h("x-api-key")
        )
    });
    let mut entry = Entry {
        seq: 0,
        n,
        at: Instant::now(),
        method: method.clone(),
        uri,
        wall: SystemTime::now(),
        orders: orders_of(&bytes),
        headers,
        body: bytes,
        content_length,
        outcome: Outcome::Answered(200),
        not_before: None,
    };
    let plain = |status: u16| {
        (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response()
    };
    let response = match act {
        None => {
            let answer = inner.serve(&method, &path, &entry.body);
            entry.outcome = Outcome::Answered(answer.status().as_u16());
            // Logged before the latency, as a CRM that stores an order as
            // soon as it arrives: a client killed while waiting for this
            // answer has still delivered the order, and re-sends a duplicate.
            inner.push(entry);
            let latency = *inner.latency.lock().unwrap();
            tokio::time::sleep(latency).await;
            answer
        }
        Some(Act::Status(status)) => {
            entry.outcome = Outcome::Answered(status);
            inner.push(entry);
            plain(status)
        }
        Some(Act::Hang(d)) => {
            entry.outcome = Outcome::Hung;
            inner.push(entry);
            tokio::time::sleep(d).await;
            plain(200)
        }
        Some(Act::Reset) => {
            entry.outcome = Outcome::Reset;
            inner.push(entry);
            conn.0.store(true, Ordering::SeqCst);
            // Never reaches the client: the connection fails on its next use.
            plain(500)
        }
        Some(Act::Garbage) => {
            inner.push(entry);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                &b"\x00\xff{\"ok\": tr\xc3\x28<html>"[..],
            )
                .into_response()
        }
        Some(Act::RetryAfterSecs(secs)) => retry_after(&inner, entry, 429, secs),
        Some(Act::StatusRetryAfter(status, secs)) => retry_after(&inner, entry, status, secs),
        Some(Act::Redirect(location)) => {
            entry.outcome = Outcome::Answered(302);
            inner.push(entry);
            let mut r = plain(302);
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
            r
        }
        Some(Act::EchoRefusal) => {
            entry.outcome = Outcome::Answered(400);
            inner.push(entry);
            (StatusCode::BAD_REQUEST, echo.unwrap_or_default()).into_response()
        }
        Some(Act::RetryAfterDate(ahead)) => {
            // HTTP dates have whole seconds: round up so the wait is at least `ahead`.
            let since = (entry.wall + ahead)
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap();
            let date = SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs() + 1);
            let wait = date.duration_since(entry.wall).unwrap();
            entry.outcome = Outcome::Answered(429);
            entry.not_before = Some(entry.at + wait);
            inner.push(entry);
            let mut r = plain(429);
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&httpdate::fmt_http_date(date)).unwrap(),
            );
            r
        }
    };
    if !reset {
        inner.answers.fetch_add(1, Ordering::SeqCst);
    }
    response
}

/// `status` with `Retry-After: secs`, the wait noted in the log.
fn retry_after(inner: &Inner, mut entry: Entry, status: u16, secs: u64) -> Response {
    entry.outcome = Outcome::Answered(status);
    entry.not_before = Some(entry.at + Duration::from_secs(secs));
    inner.push(entry);
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

impl Inner {
    /// The ordinary answer to a request no rule matched: a webhook takes a
    /// POST; objects are read, written and removed by GET, HEAD, PUT, DELETE.
    fn serve(&self, method: &Method, path: &str, body: &[u8]) -> Response {
        let name = path.trim_start_matches('/').to_string();
        let mut objects = self.objects.lock().unwrap();
        match *method {
            Method::POST => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response(),
            Method::GET | Method::HEAD => match objects.get(&name) {
                None => StatusCode::NOT_FOUND.into_response(),
                Some(bytes) => {
                    let mut h = HeaderMap::new();
                    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                    h.insert(
                        header::LAST_MODIFIED,
                        HeaderValue::from_static("Tue, 13 Oct 2026 10:00:00 GMT"),
                    );
                    h.insert(
                        header::ETAG,
                        HeaderValue::from_str(&format!("\"{}\"", bytes.len())).unwrap(),
                    );
                    let body = if *method == Method::HEAD {
                        Vec::new()
                    } else {
                        bytes.clone()
                    };
                    (StatusCode::OK, h, body).into_response()
                }
            },
            Method::PUT => {
                objects.insert(name, body.to_vec());
                StatusCode::CREATED.into_response()
            }
            Method::DELETE => match objects.remove(&name) {
                Some(_) => StatusCode::NO_CONTENT.into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        }
    }
}
