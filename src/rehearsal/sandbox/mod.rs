//! `sandbox-crm`: a real CRM receiver for rehearsals and tests (webhooks in, SQLite, CRM export out).
//!
//! The sandbox accepts the order webhooks our sink sends (envelope or S-360
//! shape, optionally signed per Standard Webhooks), keeps the newest version
//! of each order in SQLite (one transaction per request, answered only after
//! the commit), can inject faults (failures, latency, rejected orders), and
//! exports what it holds the way a CRM using SecuTix's Salesforce field names
//! would: one row per order line.

mod export;
mod record;
mod server;
mod store;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use export::export;
pub use store::{Stats, StoredOrder};

/// How far a signed request's `webhook-timestamp` may be from our clock.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Everything a sandbox needs to run.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// SQLite file holding orders and the request log (created if missing).
    pub db: PathBuf,
    /// Standard Webhooks secret (`whsec_` + base64). When set, unsigned or
    /// badly signed requests get 401.
    pub secret: Option<String>,
    /// Injected failures and latency.
    pub faults: Faults,
}

impl SandboxConfig {
    /// A sandbox storing into `db`, unsigned, without faults.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            secret: None,
            faults: Faults::default(),
        }
    }
}

/// Fault injection. Faulted requests store nothing (they are logged).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Share of webhook requests (0..=1) answered with `fail_status`, drawn
    /// from a generator seeded with `seed`.
    pub fail_rate: f64,
    /// Status of injected failures (400..=599).
    pub fail_status: u16,
    /// The first N webhook requests fail with `fail_status`.
    pub fail_first: u32,
    /// Added to every webhook response, after the request was handled (so a
    /// client that times out may leave stored orders behind, as with a slow CRM).
    pub latency: Duration,
    /// `Retry-After` seconds sent with injected 429 and 503 answers.
    pub retry_after: Option<u64>,
    /// Orders with these keys make their whole request fail with 422.
    pub reject_ids: Vec<String>,
    /// Seed of the `fail_rate` generator: the same seed, the same failures.
    pub seed: u64,
    /// Check well-formed requests but store and log nothing, answering 200
    /// at once: a fast receiver for load tests and benchmarks.
    pub discard: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            fail_rate: 0.0,
            fail_status: 503,
            fail_first: 0,
            latency: Duration::ZERO,
            retry_after: None,
            reject_ids: Vec::new(),
            seed: 0,
            discard: false,
        }
    }
}

impl Faults {
    fn validate(&self) -> Result<(), SandboxError> {
        if !(0.0..=1.0).contains(&self.fail_rate) {
            return Err(SandboxError::Config {
                field: "fail_rate",
                problem: format!("{} is not between 0 and 1", self.fail_rate),
            });
        }
        if !(400..=599).contains(&self.fail_status) {
            return Err(SandboxError::Config {
                field: "fail_status",
                problem: format!(
                    "{} is not an HTTP error status (400..=599)",
                    self.fail_status
                ),
            });
        }
        Ok(())
    }
}

/// The sandbox could not start, store, or export.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A setting is invalid; nothing was started.
    #[error("invalid sandbox setting `{field}`: {problem}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The SQLite database failed.
    #[error("{}: database error", path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// A stored record is not valid JSON (the database was edited by hand).
    #[error("{}: stored record of order `{key}` is not valid JSON", path.display())]
    BadRecord {
        /// The database file.
        path: PathBuf,
        /// Order key.
        key: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// A stored order line has no CRM id (the database was edited by hand).
    #[error("{}: line `{sync_id}` of order `{key}` has no CRM id", path.display())]
    MissingLineId {
        /// The database file.
        path: PathBuf,
        /// Order key.
        key: String,
        /// Line sync id.
        sync_id: String,
    },
    /// The export file name has no supported extension.
    #[error("{}: unsupported export format; name the file *.csv or *.parquet", path.display())]
    UnsupportedFormat {
        /// The output file.
        path: PathBuf,
    },
    /// Writing the export failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Encoding the Parquet export failed.
    #[error("{}: writing Parquet", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: parquet::errors::ParquetError,
    },
    /// Building the export's Arrow batch failed.
    #[error("{}: building the export batch", path.display())]
    Arrow {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: arrow::error::ArrowError,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Decode a Standard Webhooks secret: base64 after an optional `whsec_`.
fn decode_secret(secret: &str) -> Result<Vec<u8>, SandboxError> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| SandboxError::Config {
            field: "secret",
            // The secret itself is never echoed.
            problem: format!("not `whsec_` followed by base64 ({e})"),
        })?;
    if key.is_empty() {
        return Err(SandboxError::Config {
            field: "secret",
            problem: "empty key".into(),
        });
    }
    Ok(key)
}

/// A sandbox serving in the background; [`RunningSandbox::shutdown`] stops it.
#[derive(Debug)]
pub struct RunningSandbox {
    /// The bound address (the real port when asked for port 0).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSandbox {
    /// The webhook URL to configure in a sink, e.g. `http://127.0.0.1:8080/hooks/orders`.
    pub fn url(&self) -> String {
        format!("{}/hooks/orders", self.base_url())
    }

    /// `http://HOST:PORT`, for the `/_sandbox/...` routes.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        // A wildcard listen address is not something a client can connect to.
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("http://{addr}")
    }

    /// Stop accepting connections, let requests in flight finish, then return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "sandbox server ended with an error"),
                Err(e) => tracing::warn!(error = %e, "sandbox server task failed"),
            }
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        // Dropped without `shutdown`: still stop serving (without waiting).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Open the database, bind `listen` and serve in the background.
pub async fn start(cfg: SandboxConfig, listen: SocketAddr) -> Result<RunningSandbox, SandboxError> {
    cfg.faults.validate()?;
    let key = cfg.secret.as_deref().map(decode_secret).transpose()?;
    let db = cfg.db.clone();
    let conn = tokio::task::spawn_blocking(move || store::open(&db))
        .await
        .map_err(SandboxError::Task)??;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: listen,
        source,
    })?;
    let state = server::AppState::new(Arc::new(Mutex::new(conn)), cfg.db, key, cfg.faults);
    let app = server::router(Arc::new(state));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "sandbox CRM listening");
    Ok(RunningSandbox {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// All stored orders, by key (blocking; opens the database read-write but changes nothing).
pub fn orders(db: &Path) -> Result<Vec<StoredOrder>, SandboxError> {
    let conn = store::open_existing(db)?;
    store::list_orders(&conn, db)
}

/// Request counts and totals of the request log (blocking).
pub fn stats(db: &Path) -> Result<Stats, SandboxError> {
    let conn = store::open_existing(db)?;
    store::stats(&conn).map_err(|source| SandboxError::Db {
        path: db.to_path_buf(),
        source,
    })
}
