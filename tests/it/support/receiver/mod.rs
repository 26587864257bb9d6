//! The one loopback HTTP server of the tests: a CRM webhook, a file server or object store, or a proxy, that logs every request and answers by fault rules.
//!
//! A real HTTP server (axum on 127.0.0.1:0, nothing else) that serves until
//! the test ends. By default it answers a POST with 200 (a webhook that
//! takes every batch), serves GET and HEAD from its objects (with
//! Content-Length, Last-Modified and ETag), stores a PUT and removes on
//! DELETE. [`Rule`]s change the answer for chosen requests (the k-th, a
//! seeded probability, a body above a size or holding a text, a path,
//! every request), including faults a plain handler cannot make: a
//! connection reset after part of the body was read, a hang past the
//! client's timeout. It logs every request (method, URI, headers, body,
//! the orders of a webhook body with key and version, arrival order and
//! time, what was answered) in memory and, if asked, as JSON Lines in a
//! file, and counts the TCP connections it accepted. Rules and latency can
//! change while it runs ([`Receiver::set_rules`], [`Receiver::heal`]).

mod conn;
mod handler;
mod log;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::net::TcpListener;

use conn::{Conn, FaultListener};
pub use log::{Entry, Outcome, acknowledged_counts, batches_by_id, older_after_newer};

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
    /// Requests whose body holds this text.
    BodyContains(String),
    /// Requests whose path starts with this.
    PathStarts(String),
    /// PUT requests whose path starts with this (a store that refuses
    /// writes there, and still answers reads).
    PutStarts(String),
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
    /// This status with `Retry-After` in delta seconds.
    StatusRetryAfter(u16, u64),
    /// 302 to this location.
    Redirect(String),
    /// 400 with a body that echoes the request's URI, `Authorization` and
    /// `X-Api-Key`, as the error pages of some CRMs do.
    EchoRefusal,
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

struct Inner {
    rules: Mutex<Vec<Rule>>,
    latency: Mutex<Duration>,
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    connections: AtomicUsize,
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
    objects: BTreeMap<String, Vec<u8>>,
}

/// A [`Receiver`] serving on a runtime of its own, for tests that block
/// (the runtime, and the server, stop when this is dropped).
pub struct Background {
    /// The receiver.
    pub rec: Receiver,
    _rt: tokio::runtime::Runtime,
}

impl std::ops::Deref for Background {
    type Target = Receiver;
    fn deref(&self) -> &Receiver {
        &self.rec
    }
}

impl Receiver {
    /// A receiver that answers 200 unless a rule says otherwise.
    pub fn builder() -> Builder {
        Builder {
            rules: Vec::new(),
            seed: 0,
            latency: Duration::ZERO,
            file: None,
            objects: BTreeMap::new(),
        }
    }

    /// A receiver that answers 200 to everything.
    pub async fn ok() -> Self {
        Self::builder().start().await
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
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

    /// Whether nothing is logged (yet, or since [`Receiver::clear`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// Forgets the requests logged so far (rules keep counting arrivals).
    pub fn clear(&self) {
        self.inner.log.lock().unwrap().clear();
    }

    /// Replaces the rules from the next request on.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.inner.rules.lock().unwrap() = rules;
    }

    /// From now on: no rules, no latency; every POST is answered 200 at once.
    pub fn heal(&self) {
        self.set_rules(Vec::new());
        *self.inner.latency.lock().unwrap() = Duration::ZERO;
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Stores an object, served at `/<name>`.
    pub fn put_object(&self, name: &str, bytes: Vec<u8>) {
        self.inner
            .objects
            .lock()
            .unwrap()
            .insert(name.to_string(), bytes);
    }

    /// The objects stored, by name.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.inner.objects.lock().unwrap().clone()
    }

    /// Logged requests whose path starts with `prefix`.
    pub fn hits(&self, prefix: &str) -> usize {
        self.log()
            .iter()
            .filter(|e| e.uri.path().starts_with(prefix))
            .count()
    }

    /// Every order of the acknowledged requests, in log order.
    pub fn delivered(&self) -> Vec<(String, i64)> {
        self.log()
            .iter()
            .filter(|e| e.acknowledged())
            .flat_map(|e| e.orders.clone())
            .collect()
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

    /// Serves every file below `root` at `/<relative path>`.
    pub fn files(mut self, root: &Path) -> Self {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(base, &path, out);
                } else {
                    let rel = path.strip_prefix(base).unwrap().to_string_lossy();
                    out.insert(rel.into_owned(), std::fs::read(&path).unwrap());
                }
            }
        }
        walk(root, root, &mut self.objects);
        self
    }

    /// Serves `bytes` at `/<name>`.
    pub fn object(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.objects.insert(name.to_string(), bytes.into());
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
            rules: Mutex::new(self.rules),
            latency: Mutex::new(self.latency),
            objects: Mutex::new(self.objects),
            connections: AtomicUsize::new(0),
            rng: Mutex::new(StdRng::seed_from_u64(self.seed)),
            arrivals: AtomicUsize::new(0),
            answers: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            file,
        });
        let listener = FaultListener {
            tcp: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            inner: inner.clone(),
        };
        let addr = listener.tcp.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handler::handle)
            .with_state(inner.clone())
            .into_make_service_with_connect_info::<Conn>();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, inner }
    }

    /// Starts serving on a runtime of its own, for a test that blocks.
    pub fn start_in_background(self) -> Background {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let rec = rt.block_on(self.start());
        Background { rec, _rt: rt }
    }
}

impl Inner {
    /// The act for request `n`, or `None` for an ordinary 200.
    fn decide(
        &self,
        n: usize,
        content_length: Option<usize>,
        method: &Method,
        path: &str,
    ) -> Option<Act> {
        self.decide_with(n, content_length, method, path, None)
    }

    /// As [`Inner::decide`], once the body is known (for
    /// [`When::BodyContains`], which no rule before the body can match).
    fn decide_with(
        &self,
        n: usize,
        content_length: Option<usize>,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Option<Act> {
        let rules = self.rules.lock().unwrap().clone();
        for r in &rules {
            let hit = match &r.when {
                When::Nth(k) => n == *k,
                When::Chance(p) => self.rng.lock().unwrap().random_bool(p.clamp(0.0, 1.0)),
                When::BodyOver(size) => content_length.is_some_and(|len| len > *size),
                When::BodyContains(text) => {
                    body.is_some_and(|b| b.windows(text.len().max(1)).any(|w| w == text.as_bytes()))
                }
                When::PathStarts(prefix) => path.starts_with(prefix.as_str()),
                When::PutStarts(prefix) => {
                    method == Method::PUT && path.starts_with(prefix.as_str())
                }
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
