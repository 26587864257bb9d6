//! `demo`: the whole job on generated sample data with an in-process sandbox CRM, in seconds.
//!
//! Starts the sandbox on a free loopback port, writes sample S-360 exports,
//! flags and imports them, changes some orders and runs a day-to-day sync,
//! exports the sandbox's orders and reconciles them against S-360's export.

use std::path::{Path, PathBuf};

use crate::cli::CliError;
use crate::rehearsal::generate::{GenArgs, GenFormat};

/// Arguments of `s360-sync demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo's exports, state and reports (kept afterwards).
    #[arg(long, default_value = "demo-out")]
    pub dir: PathBuf,
    /// Orders in the sample exports (the default, 300, writes exactly the
    /// files bundled in testdata/s360).
    #[arg(long, default_value_t = 300)]
    pub orders: usize,
}

/// The sandbox's signing secret (a demo value, not a real one).
pub const SECRET: &str = "whsec_ZGVtby1zZWNyZXQtZm9yLXMzNjAtc3luYw==";
/// Environment variable the demo pipeline names for the secret.
pub const SECRET_ENV: &str = "S360_DEMO_WEBHOOK_SECRET";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| CliError::failure(format!("{}: {e}", path.display())))
}

/// Run the demo; returns the exit code (0 when the final check is clean).
pub async fn run(args: &DemoArgs) -> Result<u8, CliError> {
    let dir = std::path::absolute(&args.dir).map_err(CliError::failure)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| CliError::failure(format!("{}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(&dir).map_err(CliError::failure)?;
    let exports = dir.join("exports");

    step(
        1,
        "Sample S-360 exports (orders and order lines, 3 days of deltas)",
    );
    let sample = GenArgs {
        out: exports.clone(),
        orders: args.orders,
        days: 3,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 13).unwrap_or_default(),
        seed: 42,
        format: GenFormat::Csv,
        crm: false,
        discrepancies: 0,
    };
    println!(
        "    {}",
        crate::rehearsal::generate::run(&sample).map_err(CliError::failure)?
    );

    step(
        2,
        "Sandbox CRM on a free loopback port (signatures checked)",
    );
    let sandbox = crate::rehearsal::sandbox::start(
        crate::rehearsal::sandbox::SandboxConfig {
            secret: Some(SECRET.to_string()),
            ..crate::rehearsal::sandbox::SandboxConfig::new(dir.join("sandbox-crm.db"))
        },
        "127.0.0.1:0".parse().map_err(CliError::failure)?,
    )
    .await
    .map_err(CliError::failure)?;
    println!("    listening on {}", sandbox.url());

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
        3,
        "Initial import: flag the timeframe, then drain it in one run",
    );
    let from =
        chrono::DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z").map_err(CliError::failure)?;
    let to =
        chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").map_err(CliError::failure)?;
    let flagged = crate::sync::import::flag(
        &p,
        crate::sync::import::FlagOptions {
            from: from.into(),
            to: to.into(),
            column: "creationDateTime".into(),
            force: false,
        },
    )
    .await?;
    println!("    flagged {} order(s)", flagged.flagged);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let imported = crate::sync::import::run(&p, Default::default(), rx).await?;
    println!("    {}", imported.line());

    step(
        4,
        "S-360 cancels 25 orders; a scheduled run sends just those",
    );
    let changed = change_orders(&exports, 25)?;
    let run = crate::sync::run(&p, Default::default()).await?;
    println!("    {}", run.line());
    if run.delivery.acknowledged != changed {
        println!("    expected {changed} changes to be delivered");
    }

    step(5, "Export the CRM's orders and check them against S-360");
    let crm_csv = dir.join("crm_orders.csv");
    let db = dir.join("sandbox-crm.db");
    let out = crm_csv.clone();
    let rows = tokio::task::spawn_blocking(move || crate::rehearsal::sandbox::export(&db, &out))
        .await
        .map_err(CliError::failure)?
        .map_err(CliError::failure)?;
    println!(
        "    {rows} CRM row(s) (one per order line) in {}",
        crm_csv.display()
    );
    sandbox.shutdown().await;

    let rec_yaml = dir.join("reconcile.yaml");
    write(&rec_yaml, RECONCILE)?;
    let rp = crate::pipeline::load(&rec_yaml)?;
    let outcome = crate::reconcile::run(&rp, &Default::default())
        .await
        .map_err(|e| CliError {
            code: e.exit_code(),
            error: e.into(),
        })?;
    print!("{}", outcome.human());
    println!(
        "\nReport for analysts: {}",
        outcome.out.display() + "/summary.html"
    );
    Ok(outcome.exit_code())
}

/// S-360 modifies `n` closed orders of the first day (they are cancelled):
/// the day's export is written again with the new state and modification
/// time, as a full re-export would be. Returns how many changed.
fn change_orders(exports: &Path, n: usize) -> Result<u64, CliError> {
    let path = exports.join("orders_2026-10-13.csv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::failure(format!("{}: {e}", path.display())))?;
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
