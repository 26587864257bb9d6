//! A loopback CRM receiver for crash and fault tests: logs every request and answers by seeded fault rules.
//!
//! Like [`crate::common::Recorder`], it is a real HTTP server (axum on
//! 127.0.0.1:0). It adds what the fault tests need: an answer per request
//! chosen by [`Rule`]s (the k-th request, a seeded probability, a body above
//! a size, every request), faults a plain handler cannot make (a connection
//! reset after part of the body was read, a hang past the client's timeout),
//! and a log of every request (webhook-id, the orders of the body with key
//! and version, arrival order and time, what was answered), kept in memory
//! and, if asked, appended to a JSON Lines file.

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Which requests a [`Rule`] applies to.
#[derive(Debug, Clone)]
pub enum When {
    /// The k-th request (from 0, in the order their headers arrived).
    Nth(usize),
    /// Each request with this probability, drawn from the receiver's seeded
    /// generator (deterministic for a given arrival order).
    Chance(f64),
    /// Requests whose body is larger than this many bytes.
    BodyOver(usize),
    /// Every request.
    Always,
}

/// What the receiver does with a matching request.
#[derive(Debug, Clone)]
pub enum Act {
    /// Answer this status, with an empty JSON object as body.
    Status(u16),
    /// Read the body, then answer nothing for this long (longer than the
    /// client's timeout), then 200 to whoever still listens.
    Hang(Duration),
    /// Read only the first chunk of the body, then reset the connection
    /// (TCP RST) without answering.
    Reset,
    /// 200 with a body that is not JSON (and claims to be).
    Garbage,
    /// 429 with `Retry-After` in delta seconds.
    RetryAfterSecs(u64),
    /// 429 with `Retry-After` as an HTTP date at least this far ahead
    /// (rounded up to the next whole second, the resolution of HTTP dates).
    RetryAfterDate(Duration),
}

/// One fault rule: the first rule whose `when` matches decides the answer.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Which requests.
    pub when: When,
    /// What to do.
    pub act: Act,
}

/// A rule from its parts.
pub fn rule(when: When, act: Act) -> Rule {
    Rule { when, act }
}

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

struct Inner {
    rules: Vec<Rule>,
    latency: Duration,
    rng: Mutex<StdRng>,
    arrivals: AtomicUsize,
    answers: AtomicUsize,
    log: Mutex<Vec<Entry>>,
    file: Option<Mutex<std::fs::File>>,
}

/// A loopback CRM receiver; cheap to clone, serves until the test ends.
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

/// How a [`Receiver`] is set up before it starts.
pub struct Builder {
    rules: Vec<Rule>,
    seed: u64,
    latency: Duration,
    file: Option<PathBuf>,
}

impl Receiver {
    /// A receiver that answers 200 unless a rule says otherwise.
    pub fn builder() -> Builder {
        Builder {
            rules: Vec::new(),
            seed: 0,
            latency: Duration::ZERO,
            file: None,
        }
    }

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/orders", self.addr)
    }

    /// Every request so far, in log order.
    pub fn log(&self) -> Vec<Entry> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Requests logged so far.
    pub fn len(&self) -> usize {
        self.inner.log.lock().unwrap().len()
    }

    /// Requests whose headers have arrived so far (some may still be reading).
    pub fn arrivals(&self) -> usize {
        self.inner.arrivals.load(Ordering::SeqCst)
    }

    /// Answers handed to the connection so far (every request but a reset,
    /// after any latency or hang).
    pub fn answers(&self) -> usize {
        self.inner.answers.load(Ordering::SeqCst)
    }

    /// Writes a marker line (e.g. "kill 3") into the log file, if there is one.
    pub fn mark(&self, label: &str) {
        if let Some(f) = &self.inner.file {
            let line = serde_json::json!({ "mark": label, "requests": self.len() });
            let _ = writeln!(f.lock().unwrap(), "{line}");
        }
    }
}

impl Builder {
    /// Adds a rule; rules are tried in the order they were added.
    pub fn rule(mut self, when: When, act: Act) -> Self {
        self.rules.push(rule(when, act));
        self
    }

    /// Seed of the generator behind [`When::Chance`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Waits this long before every ordinary answer (a slow CRM).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Also appends every request to this JSON Lines file.
    pub fn log_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_path_buf());
        self
    }

    /// Starts serving on 127.0.0.1:0.
    pub async fn start(self) -> Receiver {
        let file = self.file.map(|p| {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap_or_else(|e| panic!("receiver log {}: {e}", p.display()));
            Mutex::new(f)
        });
        let inner = Arc::new(Inner {
            rules: self.rules,
            latency: self.latency,
            rng: Mutex::new(StdRng::seed_from_u64(self.seed)),
            arrivals: AtomicUsize::new(0),
            answers: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            file,
        });
        let listener = FaultListener(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.0.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(handle))
            .with_state(inner.clone())
            .into_make_service_with_connect_info::<Conn>();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, inner }
    }
}

impl Inner {
    /// The act for request `n`, or `None` for an ordinary 200.
    fn decide(&self, n: usize, content_length: Option<usize>) -> Option<Act> {
        for r in &self.rules {
            let hit = match r.when {
                When::Nth(k) => n == k,
                When::Chance(p) => self.rng.lock().unwrap().random_bool(p.clamp(0.0, 1.0)),
                When::BodyOver(size) => content_length.is_some_and(|len| len > size),
                When::Always => true,
            };
            if hit {
                return Some(r.act.clone());
            }
        }
        None
    }

    fn push(&self, mut entry: Entry) {
        let mut log = self.log.lock().unwrap();
        entry.seq = log.len();
        if let Some(f) = &self.file {
            let line = serde_json::json!({
                "seq": entry.seq,
                "n": entry.n,
                "webhook_id": entry.webhook_id(),
                "run": entry.header("x-test-run"),
                "orders": entry.orders,
                "bytes": entry.body.len(),
                "outcome": format!("{:?}", entry.outcome),
            });
            let _ = writeln!(f.lock().unwrap(), "{line}");
        }
        log.push(entry);
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let n = inner.arrivals.fetch_add(1, Ordering::SeqCst);
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let act = inner.decide(n, content_length);
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let reset = matches!(act, Some(Act::Reset));
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
    let mut entry = Entry {
        seq: 0,
        n,
        at: Instant::now(),
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
            // Logged before the latency, as a CRM that stores an order as
            // soon as it arrives: a client killed while waiting for this
            // answer has still delivered the order, and re-sends a duplicate.
            inner.push(entry);
            tokio::time::sleep(inner.latency).await;
            plain(200)
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
        Some(Act::RetryAfterSecs(secs)) => {
            entry.outcome = Outcome::Answered(429);
            entry.not_before = Some(entry.at + Duration::from_secs(secs));
            inner.push(entry);
            let mut r = plain(429);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
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

/// Accepts TCP connections and wraps each in a [`FaultStream`].
struct FaultListener(TcpListener);

impl Listener for FaultListener {
    type Io = FaultStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FaultStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    let stream = FaultStream {
                        inner,
                        reset: Arc::new(AtomicBool::new(false)),
                    };
                    return (stream, addr);
                }
                // Out of file descriptors and the like: wait and accept again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The reset switch of one connection, handed to the handler.
#[derive(Clone)]
struct Conn(Arc<AtomicBool>);

impl Connected<IncomingStream<'_, FaultListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        Conn(stream.io().reset.clone())
    }
}

/// A TCP stream that, once its switch is on, fails every read and write and
/// is closed with a zero linger, so the peer gets a TCP RST.
struct FaultStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl FaultStream {
    fn broken(&self) -> Option<std::io::Error> {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
            Some(std::io::ErrorKind::ConnectionReset.into())
        } else {
            None
        }
    }
}

impl AsyncRead for FaultStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.broken() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.broken() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.broken() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.broken() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Per `(key, version)`: how many acknowledged requests carried it.
pub fn acknowledged_counts(log: &[Entry]) -> std::collections::HashMap<(String, i64), usize> {
    let mut m = std::collections::HashMap::new();
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
    let mut newest: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
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
pub fn batches_by_id(
    log: &[Entry],
) -> Result<std::collections::HashMap<String, Vec<(String, i64)>>, String> {
    let mut m: std::collections::HashMap<String, Vec<(String, i64)>> =
        std::collections::HashMap::new();
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
