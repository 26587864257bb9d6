//! Shared helpers: run the binary, make sample data, serve files over HTTP on loopback.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the real binary with `args`, in `dir`.
pub fn bin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s360-sync"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run s360-sync")
}

/// stdout and stderr of an output, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Generate sample exports with the real `gen` command.
pub fn generate(dir: &Path, args: &[&str]) -> PathBuf {
    let out = dir.join("exports");
    let mut all = vec!["gen", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = bin(dir, &all);
    assert!(o.status.success(), "{}", text(&o));
    out
}

/// Serve the files of `root` over HTTP on 127.0.0.1 (GET and HEAD, with
/// Content-Length, Last-Modified and ETag), until the test ends.
pub async fn serve_files(root: PathBuf) -> SocketAddr {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
    use axum::response::IntoResponse;

    async fn file(
        State(root): State<PathBuf>,
        method: Method,
        UrlPath(rel): UrlPath<String>,
    ) -> impl IntoResponse {
        let path = root.join(&rel);
        match std::fs::read(&path) {
            Err(_) => (StatusCode::NOT_FOUND, HeaderMap::new(), Vec::new()),
            Ok(bytes) => {
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
                let body = if method == Method::HEAD {
                    Vec::new()
                } else {
                    bytes
                };
                (StatusCode::OK, h, body)
            }
        }
    }

    let app = axum::Router::new()
        .route("/{*rel}", axum::routing::get(file).head(file))
        .with_state(root);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// Write a file, creating folders.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

/// One request received by a [`Recorder`].
#[derive(Debug, Clone)]
pub struct Req {
    /// Request headers.
    pub headers: axum::http::HeaderMap,
    /// Raw body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
    /// Status answered.
    pub status: u16,
}

impl Req {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// `(key, version)` of every order in an envelope or s360 body.
    pub fn orders(&self) -> Vec<(String, i64)> {
        let v = self.json();
        let items: Vec<serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.clone(),
            _ => v["data"]["orders"].as_array().cloned().unwrap_or_default(),
        };
        items
            .iter()
            .map(|o| {
                let key = o.get("id").or_else(|| o.get("syncKey")).unwrap();
                let version = o.get("version").or_else(|| o.get("syncVersion")).unwrap();
                (key.as_str().unwrap().to_string(), version.as_i64().unwrap())
            })
            .collect()
    }
}

/// What a [`Recorder`] answers: status, extra headers, delay before answering.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// Delay before the answer.
    pub delay: std::time::Duration,
}

impl Answer {
    /// A plain answer with this status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: std::time::Duration::ZERO,
        }
    }
}

/// Decides the answer for request number `n` (from 0) with this body.
pub type Behaviour = std::sync::Arc<dyn Fn(usize, &[u8]) -> Answer + Send + Sync>;

/// A webhook receiver on 127.0.0.1 that records every request.
#[derive(Clone)]
pub struct Recorder {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests so far.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Req>>>,
    behaviour: std::sync::Arc<std::sync::Mutex<Behaviour>>,
}

impl Recorder {
    /// Start a receiver.
    pub async fn start(behaviour: Behaviour) -> Self {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        let rec = Recorder {
            addr: "127.0.0.1:0".parse().unwrap(),
            requests: Default::default(),
            behaviour: std::sync::Arc::new(std::sync::Mutex::new(behaviour)),
        };
        async fn handle(
            State(rec): State<Recorder>,
            headers: HeaderMap,
            body: Bytes,
        ) -> (StatusCode, HeaderMap, &'static str) {
            let n = rec.requests.lock().unwrap().len();
            let answer = (rec.behaviour.lock().unwrap())(n, &body);
            rec.requests.lock().unwrap().push(Req {
                headers,
                body: body.to_vec(),
                at: std::time::Instant::now(),
                status: answer.status,
            });
            tokio::time::sleep(answer.delay).await;
            let mut h = HeaderMap::new();
            for (k, v) in answer.headers {
                h.insert(k, v.parse().unwrap());
            }
            (StatusCode::from_u16(answer.status).unwrap(), h, "{}")
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(handle))
            .with_state(rec.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Recorder { addr, ..rec }
    }

    /// Always answer 200.
    pub async fn ok() -> Self {
        Self::start(std::sync::Arc::new(|_, _| Answer::status(200))).await
    }

    /// Change what it answers from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/orders", self.addr)
    }

    /// Requests so far.
    pub fn all(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// Forget recorded requests.
    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

/// Run the binary from a blocking thread (the test's runtime keeps serving).
pub async fn bin_async(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_s360-sync"))
            .args(&args)
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .envs(envs)
            .output()
            .expect("run s360-sync")
    })
    .await
    .unwrap()
}
