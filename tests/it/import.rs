//! Initial import against a real receiver on 127.0.0.1: flag, drain, interrupt, resume, flag again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Answer, Recorder, bin_async, generate, text, write};

fn pipeline(dir: &Path, url: &str) {
    write(
        &dir.join("import.yaml"),
        format!(
            r#"version: 1
kind: sync
name: import-test
source:
  location: exports/orders_*.csv
  csv: {{ delimiter: ";" }}
  key: orderId
  cursor: lastModDateTime
  columns: {{ orderId: int64, lastModDateTime: timestamp, creationDateTime: timestamp }}
  lines:
    location: exports/order_lines_*.csv
    csv: {{ delimiter: ";" }}
    key: orderId
sink:
  url: {url}
  concurrency: 4
  retry: {{ initial_backoff: 10ms, max_backoff: 100ms }}
state:
  path: state/import.db
"#
        ),
    );
}

async fn flag(dir: &Path) -> serde_json::Value {
    let o = bin_async(
        dir,
        &[
            "import",
            "flag",
            "import.yaml",
            "--from",
            "2026-09-01",
            "--to",
            "2026-11-01",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn counts(rec: &Recorder) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rec.all().iter().filter(|r| r.status == 200) {
        assert!(r.orders().len() <= 50);
        for (k, _) in r.orders() {
            *m.entry(k).or_default() += 1;
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn flag_3000_then_drain_once_each_and_flag_again_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "3000", "--days", "3"]);
    let rec = Recorder::ok().await;
    pipeline(dir.path(), &rec.url());
    let s = flag(dir.path()).await;
    assert_eq!(s["matched"], 3000, "{s}");
    assert_eq!(s["flagged"], 3000, "{s}");
    // Flagging twice queues once.
    let s = flag(dir.path()).await;
    assert_eq!(s["flagged"], 0, "{s}");
    assert_eq!(s["already_queued"], 3000, "{s}");
    let o = bin_async(dir.path(), &["import", "run", "import.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["delivery"]["acknowledged"], 3000, "{summary}");
    assert_eq!(summary["backlog"], 0);
    let c = counts(&rec);
    assert_eq!(c.len(), 3000);
    assert!(
        c.values().all(|&n| n == 1),
        "each order delivered exactly once"
    );
    // Every order carries its lines.
    let first = rec.all()[0].json();
    assert!(first["data"]["orders"][0]["order"]["operationDatas"].is_array());
    // After delivery, flagging again queues nothing (the CRM has it all).
    let s = flag(dir.path()).await;
    assert_eq!(s["flagged"], 0, "{s}");
    assert_eq!(s["already_delivered"], 3000, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_import_resumes_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--orders", "1000"]);
    let rec = Recorder::start(Arc::new(|_, _| Answer {
        status: 200,
        headers: Vec::new(),
        delay: Duration::from_millis(200),
    }))
    .await;
    pipeline(dir.path(), &rec.url());
    flag(dir.path()).await;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_s360-sync"))
        .args(["import", "run", "import.yaml", "--concurrency", "2"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while rec.all().len() < 4 {
        assert!(waited < 400, "import never started");
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    // SIGTERM: requests in flight finish, the outcome is committed, the process exits.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.code().is_some(),
        "exited by itself, not killed: {}",
        text(&out)
    );
    let partial = counts(&rec).len();
    assert!(partial < 1000, "interrupted before the end ({partial})");
    rec.set(Arc::new(|_, _| Answer::status(200)));
    let o = bin_async(dir.path(), &["import", "run", "import.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c = counts(&rec);
    assert_eq!(c.len(), 1000, "nothing lost");
    assert!(
        c.values().all(|&n| n == 1),
        "a graceful stop sends nothing twice"
    );
}
