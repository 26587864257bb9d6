//! `demo`: the whole job on generated sample data with an in-process sandbox CRM, in seconds.
//!
//! Starts the sandbox on a free loopback port, writes sample S-360 exports,
//! flags and imports them, changes some orders and runs a day-to-day sync,
//! exports the sandbox's orders and reconciles them against S-360's export.

use std::path::{Path, PathBuf};

use crate::rehearsal::generate::{GenFormat, GenOptions};

/// What `s360-sync demo` does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Folder for the demo's exports, state and reports (kept afterwards).
    pub dir: PathBuf,
    /// Orders in the sample exports (300 writes exactly the files bundled
    /// in testdata/s360).
    pub orders: usize,
}

/// A step of the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file or folder of the demo.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The demo folder holds files the demo did not write.
    #[error(
        "{}: the folder exists and is not an earlier demo's (no {MARKER} in it); choose another --dir or empty it",
        path.display()
    )]
    NotOurs {
        /// The folder.
        path: PathBuf,
    },
    /// Writing the sample exports.
    #[error(transparent)]
    Generate(#[from] crate::rehearsal::generate::GenError),
    /// The sandbox CRM.
    #[error(transparent)]
    Sandbox(#[from] crate::rehearsal::sandbox::SandboxError),
    /// A demo pipeline file.
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// The import or the day-to-day sync.
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    /// The consistency check.
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::ReconcileError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Where the demo's narration goes, one line at a time.
pub type Say<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// The sandbox's signing secret (a demo value, not a real one).
pub const SECRET: &str = "whsec_ZGVtby1zZWNyZXQtZm9yLXMzNjAtc3luYw==";
/// Environment variable the demo pipeline names for the secret.
pub const SECRET_ENV: &str = "S360_DEMO_WEBHOOK_SECRET";

fn step(say: Say<'_>, n: u32, text: &str) {
    say(&format!("\n[{n}] {text}"));
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text).map_err(io(path))
}

/// The file that marks a folder as the demo's own: only such a folder (or
/// an empty one) is cleared for a new demo.
pub const MARKER: &str = ".s360-sync-demo";

/// Make `dir` an empty demo folder: create it, or clear an earlier demo's
/// folder. A folder with anything else in it is refused and left as it was.
fn prepare_dir(dir: &Path) -> Result<(), DemoError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        let empty = entries.next().is_none();
        if !empty {
            if !dir.join(MARKER).is_file() {
                return Err(DemoError::NotOurs {
                    path: dir.to_path_buf(),
                });
            }
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write(
        &dir.join(MARKER),
        "A folder written by `s360-sync demo`; the next demo in it replaces it whole.\n",
    )
}

/// Run the demo, telling each step to `say`; returns the final check.
pub async fn run(args: &DemoOptions, say: Say<'_>) -> Result<crate::reconcile::Outcome, DemoError> {
    let dir = std::path::absolute(&args.dir).map_err(io(&args.dir))?;
    prepare_dir(&dir)?;
    let exports = dir.join("exports");

    step(
        say,
        1,
        "Sample S-360 exports (orders and order lines, 3 days of deltas)",
    );
    let sample = GenOptions {
        out: exports.clone(),
        orders: args.orders,
        days: 3,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 13).unwrap_or_default(),
        seed: 42,
        format: GenFormat::Csv,
        crm: false,
        discrepancies: 0,
    };
    say(&format!(
        "    {}",
        crate::rehearsal::generate::run(&sample)?
    ));

    step(
        say,
        2,
        "Sandbox CRM on a free loopback port (signatures checked)",
    );
    let sandbox = crate::rehearsal::sandbox::start(
        crate::rehearsal::sandbox::SandboxConfig {
            secret: Some(SECRET.to_string()),
            ..crate::rehearsal::sandbox::SandboxConfig::new(dir.join("sandbox-crm.db"))
        },
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    say(&format!("    listening on {}", sandbox.url()));

    let sync_yaml = dir.join("sync.yaml");
    write(
        &sync_yaml,
        &format!(
            r#"version: 1
kind: sync
name: demo-orders
source:
  location: exports/orders_*.csv
  csv: {{ delimiter: ";" }}
  key: orderId
  cursor: lastModDateTime
  columns: {{ orderId: int64, contactReference: string, creationDateTime: timestamp, lastModDateTime: timestamp, saleAmount: int64 }}
  lines:
    location: exports/order_lines_*.csv
    csv: {{ delimiter: ";" }}
    key: orderId
    as: operationDatas
sink:
  url: {url}
  format: s360
  signing: {{ secret_env: S360_DEMO_WEBHOOK_SECRET }}
state:
  path: state/demo-orders.db
"#,
            url = sandbox.url()
        ),
    )?;
    let p = crate::pipeline::load(&sync_yaml)?;

    step(
        say,
        3,
        "Initial import: flag the timeframe, then drain it in one run",
    );
    let day = |y, m| {
        chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default()
            .and_utc()
    };
    let (from, to) = (day(2026, 10), day(2026, 11));
    let flagged = crate::sync::import::flag(
        &p,
        crate::sync::import::FlagOptions {
            from,
            to,
            column: "creationDateTime".into(),
            force: false,
        },
    )
    .await?;
    say(&format!("    flagged {} order(s)", flagged.flagged));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let imported = crate::sync::import::run(&p, Default::default(), rx).await?;
    say(&format!("    {}", imported.line()));

    step(
        say,
        4,
        "S-360 cancels 25 orders; a scheduled run sends just those",
    );
    let changed = change_orders(&exports, 25)?;
    let run = crate::sync::run(&p, Default::default()).await?;
    say(&format!("    {}", run.line()));
    if run.delivery.acknowledged != changed {
        say(&format!("    expected {changed} changes to be delivered"));
    }

    step(
        say,
        5,
        "Export the CRM's orders and check them against S-360",
    );
    let crm_csv = dir.join("crm_orders.csv");
    let db = dir.join("sandbox-crm.db");
    let out = crm_csv.clone();
    let rows = tokio::task::spawn_blocking(move || crate::rehearsal::sandbox::export(&db, &out))
        .await
        .map_err(DemoError::Task)??;
    say(&format!(
        "    {rows} CRM row(s) (one per order line) in {}",
        crm_csv.display()
    ));
    sandbox.shutdown().await;

    let rec_yaml = dir.join("reconcile.yaml");
    write(&rec_yaml, RECONCILE)?;
    let rp = crate::pipeline::load(&rec_yaml)?;
    let outcome = crate::reconcile::run(&rp, &Default::default()).await?;
    say(outcome.human().trim_end_matches('\n'));
    say(&format!(
        "\nReport for analysts: {}",
        outcome.out.display() + "/summary.html"
    ));
    Ok(outcome)
}

/// S-360 modifies `n` closed orders of the first day (they are cancelled):
/// the day's export is written again with the new state and modification
/// time, as a full re-export would be. Returns how many changed.
fn change_orders(exports: &Path, n: usize) -> Result<u64, DemoError> {
    let path = exports.join("orders_2026-10-13.csv");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let mut out = String::with_capacity(text.len());
    let mut count = 0u64;
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<&str> = line.split(';').collect();
        if i > 0 && (count as usize) < n && cells.get(1) == Some(&"CLOSED") && cells.len() > 7 {
            cells[1] = "CANCELLED";
            cells[7] = "2026-10-16 09:00:00";
            count += 1;
        }
        out.push_str(&cells.join(";"));
        out.push('\n');
    }
    write(&path, &out)?;
    Ok(count)
}

/// The demo's consistency check: S-360 orders against the sandbox CRM's export
/// (`crm_orders.csv`), both in the demo folder.
pub const RECONCILE: &str = r#"version: 1
kind: reconcile
name: demo-check
left:
  source:
    location: exports/orders_*.csv
    csv: { delimiter: ";" }
    key: orderId
    columns: { creationDateTime: timestamp }
  transforms:
    - { type: filter, expr: "operationCount > 0" }
    - { type: scale, columns: [saleAmount], digits: 2 }
    - type: rename
      columns: { saleAmount: amount, currencyCode: currency, salesChannelCode: channel, contactReference: contact, creationDateTime: created }
right:
  source:
    location: crm_orders.csv
    key: secutix__SecuTixOrderId__c
    columns: { secutix__Total_Amount__c: "decimal(18,2)", secutix__CreationDate__c: timestamp }
  transforms:
    - type: aggregate
      by: [secutix__SecuTixOrderId__c]
      aggregations:
        amount: sum(secutix__Total_Amount__c)
        currency: first(secutix__CatalogCurrency__c)
        channel: first(secutix__SalesChannel__c)
        contact: first(secutix__ContactSTXNumber__c)
        created: first(secutix__CreationDate__c)
compare:
  - { field: amount, absolute: "0.01" }
  - { field: currency }
  - { field: channel }
  - { field: contact }
  - { field: created, time_tolerance: 1s }
output:
  dir: report
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_never_clears_a_folder_it_did_not_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mine");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("thesis.txt"), "years of work").unwrap();
        let err = prepare_dir(&dir).unwrap_err();
        assert!(matches!(err, DemoError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains("mine"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.join("thesis.txt")).unwrap(),
            "years of work"
        );
        assert!(!dir.join(MARKER).exists());
    }

    #[test]
    fn demo_clears_its_own_earlier_folder_and_takes_an_empty_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        prepare_dir(&dir).unwrap();
        std::fs::write(dir.join("old-report.csv"), "x").unwrap();
        prepare_dir(&dir).unwrap();
        assert!(!dir.join("old-report.csv").exists());
        assert!(dir.join(MARKER).is_file());
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        prepare_dir(&empty).unwrap();
        assert!(empty.join(MARKER).is_file());
    }
}
