//! Webhook sink against a real HTTP server on 127.0.0.1: body shapes, signatures, retries, splitting, refusals, deadline, auth, bounded reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WRONG_SECRET: &str = "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IGtleQ==";

/// One request as the server saw it.
#[derive(Clone)]
struct Seen {
    at: std::time::Instant,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// Verification with the right secret, and with a wrong one.
    verified: Option<(bool, bool)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("utf-8 body")
    }
}

/// Decides the answer to request number `n` (0-based).
type Responder = Arc<dyn Fn(usize, &Seen) -> Response + Send + Sync>;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Responder,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(respond: impl Fn(usize, &Seen) -> Response + Send + Sync + 'static) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            seen: seen.clone(),
            respond: Arc::new(respond),
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let verified = headers.contains_key("webhook-signature").then(|| {
        let check = |secret: &str| {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(&body, &headers)
                .is_ok()
        };
        (check(SECRET), check(WRONG_SECRET))
    });
    let seen = Seen {
        at: std::time::Instant::now(),
        path: uri.path().to_string(),
        headers,
        body,
        verified,
    };
    let n = {
        let mut all = s.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    (s.respond)(n, &seen)
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// A sink config for `url` with tiny backoffs.
fn config(url: &str, extra: Value) -> WebhookSinkConfig {
    let mut cfg = json!({
        "url": url,
        "timeout": "5s",
        "connect_timeout": "2s",
        "retry": {"initial_backoff": "10ms", "max_backoff": "50ms", "max_attempts": 5},
    });
    if let (Some(base), Some(more)) = (cfg.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value::<crate::pipeline::SinkConfig>(cfg)
        .unwrap()
        .webhook
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn sink(url: &str, extra: Value) -> WebhookSink {
    WebhookSink::new(&config(url, extra), &no_env).unwrap()
}

/// Records with odd spacing and escapes, so a re-encoding would show.
fn orders(n: usize) -> Vec<OutgoingOrder> {
    (0..n)
        .map(|i| OutgoingOrder {
            seq: 100 + i as i64,
            key: format!("K{i}"),
            version: 1 + i as i64 % 3,
            record: format!(
                r#"{{"orderId": {i},  "orderState":"CLOSED", "note":"caf\u00e9 \"{i}\"", "saleAmount":40000.0}}"#
            ),
        })
        .collect()
}

fn seqs(orders: &[OutgoingOrder]) -> Vec<i64> {
    orders.iter().map(|o| o.seq).collect()
}

fn later(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[tokio::test]
async fn envelope_body_has_the_documented_shape_and_verbatim_records() {
    let server = Server::start(|_, _| ok()).await;
    let batch = orders(50);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert_eq!(out.acked, seqs(&batch));
    assert_eq!((out.requests, out.retries, out.stop), (1, 0, None));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert!(req.header("user-agent").unwrap().starts_with("s360-sync/"));
    assert_eq!(req.header("webhook-id"), Some(webhook_id(&batch).as_str()));
    assert_eq!(req.header("webhook-signature"), None);
    let text = req.text();
    for o in &batch {
        assert!(
            text.contains(&o.record),
            "record not verbatim: {}",
            o.record
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let ts = body["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z'), "{ts}");
    chrono::DateTime::parse_from_rfc3339(ts).unwrap();
    let expected = json!({
        "type": "order.upserted",
        "timestamp": ts,
        "data": {"orders": batch.iter().map(|o| json!({
            "id": o.key,
            "version": o.version,
            "order": serde_json::from_str::<Value>(&o.record).unwrap(),
        })).collect::<Vec<_>>()},
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn s360_body_has_the_documented_shape_and_verbatim_records() {
    let server = Server::start(|_, _| ok()).await;
    let batch = orders(50);
    let out = sink(&server.url, json!({"format": "s360"}))
        .deliver(&batch, later(10_000))
        .await;
    assert_eq!(out.acked, seqs(&batch));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let text = seen[0].text();
    for o in &batch {
        assert!(
            text.contains(&o.record),
            "record not verbatim: {}",
            o.record
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let expected: Vec<Value> = batch
        .iter()
        .map(|o| {
            json!({
                "orderDetailsData": serde_json::from_str::<Value>(&o.record).unwrap(),
                "syncKey": o.key,
                "syncVersion": o.version,
            })
        })
        .collect();
    assert_eq!(body, Value::Array(expected));
}

#[tokio::test]
async fn signature_verifies_with_standardwebhooks_and_not_with_a_wrong_secret() {
    let server = Server::start(|_, _| ok()).await;
    let cfg = config(
        &server.url,
        json!({"signing": {"secret_env": "HOOK_SECRET"}}),
    );
    let env = |name: &str| (name == "HOOK_SECRET").then(|| SECRET.to_string());
    let sink = WebhookSink::new(&cfg, &env).unwrap();
    let batch = orders(3);
    let out = sink.deliver(&batch, later(10_000)).await;
    assert_eq!(out.acked, seqs(&batch));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].verified, Some((true, false)));
    // Our own `sign` agrees with the reference implementation.
    let ts: i64 = seen[0]
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let id = seen[0].header("webhook-id").unwrap();
    let reference = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .sign(id, ts, &seen[0].body)
        .unwrap();
    assert_eq!(sign(SECRET, id, ts, &seen[0].body).unwrap(), reference);
    assert_eq!(
        seen[0].header("webhook-signature"),
        Some(reference.as_str())
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_id_is_kept() {
    let server = Server::start(|n, _| {
        if n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response()
        } else {
            ok()
        }
    })
    .await;
    let cfg = json!({"retry": {"initial_backoff": "10ms", "max_backoff": "2s", "max_attempts": 5}});
    let batch = orders(4);
    let out = sink(&server.url, cfg).deliver(&batch, later(10_000)).await;
    assert_eq!(out.acked, seqs(&batch));
    assert_eq!((out.requests, out.retries, out.stop), (2, 1, None));

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "second attempt after {gap:?}"
    );
    assert_eq!(seen[0].header("webhook-id"), seen[1].header("webhook-id"));
    assert_eq!(seen[0].body, seen[1].body);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_id() {
    let server = Server::start(|n, _| {
        if n < 2 {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        } else {
            ok()
        }
    })
    .await;
    let cfg = json!({"signing": {"secret_env": "S"}});
    let env = |_: &str| Some(SECRET.to_string());
    let sink = WebhookSink::new(&config(&server.url, cfg), &env).unwrap();
    let batch = orders(5);
    let out = sink.deliver(&batch, later(10_000)).await;
    assert_eq!(out.acked, seqs(&batch));
    assert_eq!((out.requests, out.retries, out.stop), (3, 2, None));

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let expected = webhook_id(&batch);
    for req in &seen {
        assert_eq!(req.header("webhook-id"), Some(expected.as_str()));
        // Each attempt is signed afresh and still verifies.
        assert_eq!(req.verified, Some((true, false)));
    }
}

#[tokio::test]
async fn transient_failures_give_up_after_max_attempts() {
    let server =
        Server::start(|_, _| (StatusCode::BAD_GATEWAY, "upstream down").into_response()).await;
    let cfg =
        json!({"retry": {"initial_backoff": "10ms", "max_backoff": "20ms", "max_attempts": 3}});
    let batch = orders(2);
    let out = sink(&server.url, cfg).deliver(&batch, later(10_000)).await;
    assert!(out.acked.is_empty() && out.dead.is_empty());
    assert_eq!(out.pending, seqs(&batch));
    assert_eq!((out.requests, out.retries), (3, 2));
    match out.stop {
        Some(StopReason::Exhausted { last_error }) => {
            assert!(
                last_error.contains("502") && last_error.contains("upstream down"),
                "{last_error}"
            )
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_errors_are_transient() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let cfg =
        json!({"retry": {"initial_backoff": "10ms", "max_backoff": "20ms", "max_attempts": 2}});
    let batch = orders(2);
    let out = sink(&url, cfg).deliver(&batch, later(10_000)).await;
    assert_eq!(out.pending, seqs(&batch));
    assert_eq!(out.requests, 2);
    assert!(
        matches!(&out.stop, Some(StopReason::Exhausted { last_error }) if last_error.contains("connection")),
        "{:?}",
        out.stop
    );
}

#[tokio::test]
async fn a_bad_record_is_isolated_by_splitting() {
    let server = Server::start(|_, seen| {
        if seen.text().contains(r#""id":"bad""#) {
            (StatusCode::UNPROCESSABLE_ENTITY, "orderId missing").into_response()
        } else {
            ok()
        }
    })
    .await;
    let mut batch = orders(10);
    batch[6].key = "bad".into();
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;

    let mut good = seqs(&batch);
    good.remove(6);
    assert_eq!(out.acked, good);
    assert_eq!(out.dead.len(), 1);
    assert_eq!(out.dead[0].seq, batch[6].seq);
    assert_eq!(out.dead[0].status, Some(422));
    assert!(
        out.dead[0].reason.contains("orderId missing"),
        "{}",
        out.dead[0].reason
    );
    assert!(out.pending.is_empty() && out.stop.is_none());
    // Halving: [0..10] -> [0..5] ok, [5..10] -> [5,6] -> [5] ok, [6] dead; [7..10] ok.
    assert_eq!(out.requests, 7);

    let seen = server.seen();
    let lone_bad: Vec<_> = seen
        .iter()
        .filter(|s| s.header("webhook-id") == Some(webhook_id(&batch[6..7]).as_str()))
        .collect();
    assert_eq!(lone_bad.len(), 1, "the bad order was sent alone once");
    // Every sub-batch carries the id of its own orders.
    let ids: std::collections::HashSet<_> =
        seen.iter().filter_map(|s| s.header("webhook-id")).collect();
    assert_eq!(ids.len(), seen.len());
}

#[tokio::test]
async fn unauthorized_stops_and_keeps_everything_queued() {
    let server =
        Server::start(|_, _| (StatusCode::UNAUTHORIZED, "bad token").into_response()).await;
    let batch = orders(3);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert!(out.acked.is_empty() && out.dead.is_empty());
    assert_eq!(out.pending, seqs(&batch));
    assert_eq!(out.requests, 1);
    match out.stop {
        Some(StopReason::Refused { status, message }) => {
            assert_eq!(status, 401);
            assert!(message.contains("bad token"), "{message}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_stops() {
    let server = Server::start(|_, seen| {
        if seen.path == "/hook" {
            (StatusCode::FOUND, [("location", "/elsewhere")]).into_response()
        } else {
            ok()
        }
    })
    .await;
    let batch = orders(3);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert!(out.acked.is_empty());
    assert_eq!(out.pending, seqs(&batch));
    assert!(
        matches!(&out.stop, Some(StopReason::Refused { status: 302, message }) if message.contains("/elsewhere")),
        "{:?}",
        out.stop
    );
    let paths: Vec<_> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/hook"]);
}

#[tokio::test]
async fn a_refusal_after_a_split_leaves_the_rest_pending() {
    // The first request is refused as bad, so the batch is split; the first
    // half is then refused with 403: nothing more is sent.
    let server = Server::start(|n, _| {
        if n == 0 {
            StatusCode::BAD_REQUEST.into_response()
        } else {
            StatusCode::FORBIDDEN.into_response()
        }
    })
    .await;
    let batch = orders(4);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert!(out.acked.is_empty() && out.dead.is_empty());
    assert_eq!(out.pending, seqs(&batch));
    assert_eq!(out.requests, 2);
    assert!(matches!(
        out.stop,
        Some(StopReason::Refused { status: 403, .. })
    ));
}

#[tokio::test]
async fn the_deadline_stops_retrying() {
    let server = Server::start(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
    let cfg =
        json!({"retry": {"initial_backoff": "10ms", "max_backoff": "40ms", "max_attempts": 1000}});
    let batch = orders(3);
    let started = Instant::now();
    let out = sink(&server.url, cfg).deliver(&batch, later(300)).await;
    assert_eq!(out.stop, Some(StopReason::Deadline));
    assert_eq!(out.pending, seqs(&batch));
    assert!(out.acked.is_empty() && out.dead.is_empty());
    assert!(out.requests >= 1 && out.requests < 1000);
    // A bound, not a timing measurement: it must not run on to max_attempts.
    assert!(started.elapsed() < Duration::from_secs(5));

    // Nothing is sent once the deadline has passed.
    let before = server.seen().len();
    let out = sink(&server.url, json!({}))
        .deliver(&batch, Instant::now())
        .await;
    assert_eq!((out.requests, out.stop), (0, Some(StopReason::Deadline)));
    assert_eq!(server.seen().len(), before);
}

#[tokio::test]
async fn auth_headers_come_from_the_environment_and_stay_out_of_debug() {
    let server = Server::start(|_, _| ok()).await;
    let env = |name: &str| match name {
        "TOKEN" => Some("tok-SECRET-1".to_string()),
        "PASSWORD" => Some("pw-SECRET-2".to_string()),
        "KEY" => Some("key-SECRET-3".to_string()),
        "SIGNING" => Some(SECRET.to_string()),
        _ => None,
    };
    let cases = [
        (
            json!({"type": "bearer", "token_env": "TOKEN"}),
            "authorization",
            "Bearer tok-SECRET-1".to_string(),
        ),
        (
            json!({"type": "basic", "username": "crm", "password_env": "PASSWORD"}),
            "authorization",
            format!("Basic {}", BASE64.encode("crm:pw-SECRET-2")),
        ),
        (
            json!({"type": "header", "name": "X-Api-Key", "value_env": "KEY"}),
            "x-api-key",
            "key-SECRET-3".to_string(),
        ),
    ];
    for (i, (auth, header, value)) in cases.iter().enumerate() {
        let cfg = config(
            &server.url,
            json!({"auth": auth, "signing": {"secret_env": "SIGNING"}, "headers": {"X-Tenant": "acme"}}),
        );
        let sink = WebhookSink::new(&cfg, &env).unwrap();
        let debug = format!("{sink:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(!debug.contains(&SECRET[6..]), "{debug}");
        assert!(
            !debug.contains(&BASE64.encode("crm:pw-SECRET-2")),
            "{debug}"
        );

        let out = sink.deliver(&orders(1), later(10_000)).await;
        assert_eq!(out.acked.len(), 1);
        let seen = server.seen();
        assert_eq!(seen[i].header(header), Some(value.as_str()));
        assert_eq!(seen[i].header("x-tenant"), Some("acme"));
    }
}

#[tokio::test]
async fn setup_errors_name_the_variable_and_refuse_plain_http() {
    let cfg = config(
        "https://crm.example.com/hook",
        json!({"auth": {"type": "bearer", "token_env": "CRM_TOKEN"}}),
    );
    let err = WebhookSink::new(&cfg, &no_env).unwrap_err();
    assert!(
        matches!(&err, SinkError::MissingEnv { var, .. } if var == "CRM_TOKEN"),
        "{err}"
    );
    assert!(err.to_string().contains("CRM_TOKEN"));

    let cfg = config(
        "https://crm.example.com/hook",
        json!({"signing": {"secret_env": "SIG"}}),
    );
    let env = |_: &str| Some("whsec_***not base64***".to_string());
    let err = WebhookSink::new(&cfg, &env).unwrap_err();
    assert!(
        matches!(&err, SinkError::BadSecretEnv { var, .. } if var == "SIG"),
        "{err}"
    );
    assert!(!err.to_string().contains("not base64"), "{err}");

    let err =
        WebhookSink::new(&config("http://crm.example.com/hook", json!({})), &no_env).unwrap_err();
    assert!(matches!(err, SinkError::InsecureUrl { .. }), "{err}");
    WebhookSink::new(
        &config("http://crm.example.com/hook", json!({"allow_http": true})),
        &no_env,
    )
    .unwrap();
    WebhookSink::new(&config("http://localhost:9/hook", json!({})), &no_env).unwrap();
}

#[tokio::test]
async fn the_response_body_read_is_bounded() {
    let server = Server::start(|_, _| {
        let huge = vec![b'e'; 10 * 1024 * 1024];
        (StatusCode::UNPROCESSABLE_ENTITY, huge).into_response()
    })
    .await;
    let batch = orders(1);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert_eq!(out.dead.len(), 1);
    assert_eq!(out.dead[0].status, Some(422));
    let reason = &out.dead[0].reason;
    assert!(reason.contains("eeee"), "{reason}");
    assert!(reason.len() <= 2 * 1024, "reason of {} bytes", reason.len());
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let server = Server::start(|_, _| ok()).await;
    let out = sink(&server.url, json!({}))
        .deliver(&[], later(10_000))
        .await;
    assert_eq!(out, BatchOutcome::default());
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn read_capped_stops_reading_at_64_kib() {
    // 65 KiB and then a body that never ends: only a read that stops at the
    // cap returns.
    let server = Server::start(|_, _| {
        let head = futures::stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from(
            vec![b'x'; 65 * 1024],
        ))]);
        let body = axum::body::Body::from_stream(futures::StreamExt::chain(
            head,
            futures::stream::pending(),
        ));
        (StatusCode::UNPROCESSABLE_ENTITY, body).into_response()
    })
    .await;
    let mut response = reqwest::Client::new()
        .post(&server.url)
        .send()
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), service::read_capped(&mut response))
        .await
        .expect("read_capped kept reading past the cap");
    assert_eq!(body.len(), service::MAX_RESPONSE_BYTES);
    assert_eq!(service::MAX_RESPONSE_BYTES, 64 * 1024);
}

/// A far deadline, as `import run` uses.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(365 * 86_400)
}

#[tokio::test]
async fn a_retry_after_of_u64_max_seconds_stops_at_the_deadline_instead_of_panicking() {
    for wish in [
        "18446744073709551615",
        "99999999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let server = Server::start(move |_, _| {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", wish)]).into_response()
        })
        .await;
        let batch = orders(3);
        let started = Instant::now();
        let out = sink(&server.url, json!({}))
            .deliver(&batch, later(10_000))
            .await;
        // Capped at an hour, the wait still ends after the 10 s deadline:
        // the batch stops at once and stays queued.
        assert_eq!(out.stop, Some(StopReason::Deadline), "{wish}");
        assert_eq!(out.pending, seqs(&batch));
        assert_eq!((out.requests, out.retries), (1, 0));
        assert!(started.elapsed() < Duration::from_secs(5), "{wish}");
    }
}

#[tokio::test]
async fn cancel_interrupts_a_long_retry_after_wait_and_leaves_the_batch_queued() {
    let server = Server::start(|_, _| {
        (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "3000")]).into_response()
    })
    .await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let sink = Arc::new(sink(&server.url, json!({})).with_cancel(rx));
    let batch = orders(4);
    let task = {
        let (sink, batch) = (sink.clone(), batch.clone());
        tokio::spawn(async move { sink.deliver(&batch, far()).await })
    };
    // Wait for the first answer, so that the sink is in its 3000 s wait.
    for _ in 0..200 {
        if !server.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.seen().len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(true).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the retry wait was not interrupted")
        .unwrap();
    assert!(out.cancelled);
    assert_eq!(out.stop, None);
    assert!(out.acked.is_empty() && out.dead.is_empty());
    assert_eq!(out.pending, seqs(&batch));
    assert_eq!((out.requests, out.retries), (1, 1));
    assert_eq!(server.seen().len(), 1);

    // Once cancelled, nothing more is sent.
    let out = sink.deliver(&batch, far()).await;
    assert!(out.cancelled && out.requests == 0, "{out:?}");
    assert_eq!(out.pending, seqs(&batch));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_dropped_cancel_sender_does_not_cancel() {
    let server = Server::start(|n, _| {
        if n == 0 {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")]).into_response()
        } else {
            ok()
        }
    })
    .await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    drop(tx);
    let batch = orders(2);
    let out = sink(
        &server.url,
        json!({"retry": {"initial_backoff": "10ms", "max_backoff": "2s", "max_attempts": 3}}),
    )
    .with_cancel(rx)
    .deliver(&batch, later(10_000))
    .await;
    assert_eq!(out.acked, seqs(&batch));
    assert!(!out.cancelled);
}

#[tokio::test]
async fn a_2xx_with_a_garbage_body_is_an_acknowledgement() {
    let server = Server::start(|n, _| {
        let garbage: Vec<u8> = [&b"<html>\x00\xff not json {"[..], &[0xc3, 0x28]].concat();
        let status = [StatusCode::OK, StatusCode::ACCEPTED, StatusCode::NO_CONTENT][n % 3];
        if status == StatusCode::NO_CONTENT {
            status.into_response()
        } else {
            (status, garbage).into_response()
        }
    })
    .await;
    let sink = sink(&server.url, json!({}));
    for _ in 0..3 {
        let batch = orders(5);
        let out = sink.deliver(&batch, later(10_000)).await;
        assert_eq!(out.acked, seqs(&batch));
        assert!(out.dead.is_empty() && out.pending.is_empty() && out.stop.is_none());
        assert_eq!((out.requests, out.retries), (1, 0));
    }
}

#[tokio::test]
async fn an_all_400_receiver_stops_as_a_configuration_refusal_without_dead_letters() {
    let server =
        Server::start(|_, _| (StatusCode::BAD_REQUEST, "unknown payload shape").into_response())
            .await;
    for n in [2, 8, 50] {
        let batch = orders(n);
        let out = sink(&server.url, json!({}))
            .deliver(&batch, later(30_000))
            .await;
        assert!(out.acked.is_empty(), "{n}");
        assert!(out.dead.is_empty(), "{n}: {:?}", out.dead);
        assert_eq!(out.pending, seqs(&batch));
        // Every order was tried alone before the verdict.
        assert_eq!(out.requests as usize, 2 * n - 1);
        match &out.stop {
            Some(StopReason::Refused { status, message }) => {
                assert_eq!(*status, 400);
                assert!(message.contains("configuration"), "{message}");
                assert!(message.contains("unknown payload shape"), "{message}");
            }
            other => panic!("{n}: expected Refused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_orders_after_an_acknowledged_batch_are_dead_letters_even_if_all_refused() {
    // The CRM takes this sink's payloads, so two orders it refuses alike
    // are bad records, not a wrong configuration.
    let server = Server::start(|n, _| {
        if n == 0 {
            ok()
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "orderId missing").into_response()
        }
    })
    .await;
    let sink = sink(&server.url, json!({}));
    let first = orders(3);
    assert_eq!(
        sink.deliver(&first, later(10_000)).await.acked,
        seqs(&first)
    );
    let batch = orders(2);
    let out = sink.deliver(&batch, later(10_000)).await;
    assert_eq!(out.stop, None);
    let dead: Vec<i64> = out.dead.iter().map(|d| d.seq).collect();
    assert_eq!(dead, seqs(&batch));
}

#[tokio::test]
async fn bad_orders_refused_with_different_statuses_are_still_dead_letters() {
    let server = Server::start(|_, seen| {
        if seen.text().contains(r#""id":"K0""#) {
            (StatusCode::UNPROCESSABLE_ENTITY, "orderId missing").into_response()
        } else {
            (StatusCode::BAD_REQUEST, "bad amount").into_response()
        }
    })
    .await;
    let batch = orders(3);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert_eq!(out.stop, None);
    let dead: Vec<(i64, Option<u16>)> = out.dead.iter().map(|d| (d.seq, d.status)).collect();
    assert_eq!(
        dead,
        vec![(100, Some(422)), (101, Some(400)), (102, Some(400))]
    );
}

#[tokio::test]
async fn a_lone_bad_order_of_a_batch_of_one_is_a_dead_letter() {
    let server =
        Server::start(|_, _| (StatusCode::BAD_REQUEST, "bad amount").into_response()).await;
    let batch = orders(1);
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    assert_eq!(out.stop, None);
    assert_eq!(out.dead.len(), 1);
    assert_eq!(out.dead[0].status, Some(400));
}

#[tokio::test]
async fn a_413_splits_the_batch_and_an_order_too_large_alone_is_a_dead_letter() {
    const LIMIT: usize = 3000;
    let server = Server::start(|_, seen| {
        if seen.body.len() > LIMIT {
            (StatusCode::PAYLOAD_TOO_LARGE, "body over 3000 bytes").into_response()
        } else {
            ok()
        }
    })
    .await;
    let mut batch = orders(8);
    for o in &mut batch {
        o.record = format!(r#"{{"pad":"{}"}}"#, "p".repeat(900));
    }
    batch[5].record = format!(r#"{{"pad":"{}"}}"#, "P".repeat(10_000));
    let out = sink(&server.url, json!({}))
        .deliver(&batch, later(10_000))
        .await;
    let mut good = seqs(&batch);
    good.remove(5);
    assert_eq!(out.acked, good);
    assert_eq!(out.dead.len(), 1);
    let dead = &out.dead[0];
    assert_eq!((dead.seq, dead.status), (batch[5].seq, Some(413)));
    assert!(
        dead.reason.contains("413") && dead.reason.contains("this order alone"),
        "{}",
        dead.reason
    );
    assert!(out.stop.is_none() && out.pending.is_empty());
    let seen = server.seen();
    assert_eq!(
        seen[0].header("webhook-id"),
        Some(webhook_id(&batch).as_str())
    );
    let alone = webhook_id(&batch[5..6]);
    let lone: Vec<_> = seen
        .iter()
        .filter(|s| s.header("webhook-id") == Some(alone.as_str()))
        .collect();
    assert_eq!(lone.len(), 1, "the large order was sent alone once");
}

#[tokio::test]
async fn secrets_echoed_in_response_bodies_are_replaced_everywhere_they_are_kept() {
    // Echoes the auth headers and the path, as some CRMs do in their errors.
    let echo = |status: StatusCode| {
        move |_: usize, seen: &Seen| {
            let body = format!(
                "denied: authorization={:?} key={:?} tenant={:?} path={} sig={:?}",
                seen.header("authorization").unwrap_or(""),
                seen.header("x-api-key").unwrap_or(""),
                seen.header("x-tenant").unwrap_or(""),
                seen.path,
                seen.header("webhook-signature").unwrap_or(""),
            );
            (status, body).into_response()
        }
    };
    let env = |name: &str| match name {
        "TOKEN" => Some("tok-SECRET-1".to_string()),
        "PASSWORD" => Some("pw-SECRET-2".to_string()),
        "KEY" => Some("key-SECRET-3".to_string()),
        "SIGNING" => Some(SECRET.to_string()),
        _ => None,
    };
    let auths = [
        json!({"type": "bearer", "token_env": "TOKEN"}),
        json!({"type": "basic", "username": "crm", "password_env": "PASSWORD"}),
        json!({"type": "header", "name": "X-Api-Key", "value_env": "KEY"}),
    ];
    let basic = BASE64.encode("crm:pw-SECRET-2");
    for status in [
        StatusCode::UNPROCESSABLE_ENTITY,
        StatusCode::UNAUTHORIZED,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let server = Server::start(echo(status)).await;
        let url = format!("{}/tok9PATH8SECRET", server.url);
        for auth in &auths {
            let cfg = config(
                &url,
                json!({
                    "auth": auth,
                    "signing": {"secret_env": "SIGNING"},
                    "headers": {"X-Tenant": "tenant-SECRET-4"},
                    "retry": {"initial_backoff": "10ms", "max_backoff": "20ms", "max_attempts": 2},
                }),
            );
            let out = WebhookSink::new(&cfg, &env)
                .unwrap()
                .deliver(&orders(1), later(10_000))
                .await;
            let kept = match (&out.dead[..], &out.stop) {
                ([d], None) => d.reason.clone(),
                ([], Some(StopReason::Refused { message, .. })) => message.clone(),
                ([], Some(StopReason::Exhausted { last_error })) => last_error.clone(),
                other => panic!("unexpected outcome {other:?}"),
            };
            assert!(kept.contains("denied") && kept.contains("***"), "{kept}");
            for secret in ["SECRET", &SECRET[6..], &basic] {
                assert!(!kept.contains(secret), "{status}: {secret} in {kept}");
            }
        }
    }
}

#[tokio::test]
async fn the_url_is_shown_without_its_tokens() {
    let cfg = config(
        "https://user:pw-SECRET@crm.example.com/hooks/tok9SECRET8path?key=SECRETq",
        json!({}),
    );
    let sink = WebhookSink::new(&cfg, &no_env).unwrap();
    let debug = format!("{sink:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(
        debug.contains("https://crm.example.com/hooks/***?key=***"),
        "{debug}"
    );
}
