//! The sink under hostile conditions, through the real binary: unbounded durations, an all-400 receiver, proxies from the environment, secrets echoed by the CRM, table functions in SQL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::cli::{
    Cmd, POLL, PROXY_VARS, WAIT, bin_async, import_flag, reap, sigterm, status, wait_until,
};
use crate::support::exports::noon_orders;
use crate::support::pipeline::{Retry, Sink, Source, Step, SyncPipeline};
use crate::support::receiver::{Act, Receiver, When};
use crate::support::{stderr, stdout, text, write};

/// A sync pipeline to `url`: quick retries, three attempts, a 30 s deadline.
fn pipeline(url: &str) -> SyncPipeline {
    SyncPipeline::new(
        "safety",
        Source::orders().columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")]),
        Sink::to(url)
            .retry(Retry::backoff("10ms", "100ms", Some(3)))
            .deadline("30s"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_no_clock_can_hold_is_refused_by_validate_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline("http://127.0.0.1:9/hook");
    p.sink.deadline = Some("999999999999999999d".into());
    p.write(dir.path());
    for command in ["validate", "run"] {
        let o = bin_async(dir.path(), &[command, "sync.yaml"], &[]).await;
        assert_eq!(o.status.code(), Some(2), "{command}: {}", text(&o));
        let err = stderr(&o);
        assert!(
            err.contains("sink.deadline") && err.contains("999999999999999999d"),
            "{command}: {err}"
        );
        assert!(err.contains("maximum of 366d"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!dir.path().join("state").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_400_receiver_stops_the_run_as_refused_and_dead_letters_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Always, Act::Status(400))
        .start()
        .await;
    let mut p = pipeline(&rec.url());
    p.sink = p.sink.batch_size(8);
    p.write(dir.path());
    noon_orders(dir.path(), 40);
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["delivery"]["dead_lettered"], 0, "{s}");
    assert_eq!(s["delivery"]["acknowledged"], 0, "{s}");
    assert_eq!(s["backlog"], 40, "{s}");
    let stopped = s["delivery"]["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains("configuration"), "{s}");
    // The first batch of 8 was tried whole and order by order, then the run stopped.
    assert_eq!(rec.len(), 15);
    let o = bin_async(dir.path(), &["dead-letters", "list", "sync.yaml"], &[]).await;
    assert!(stdout(&o).contains("no dead letters"), "{}", text(&o));

    // Once the receiver takes the payloads, every order goes out.
    rec.heal();
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["delivery"]["acknowledged"], 40, "{s}");
    assert_eq!(s["backlog"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_in_the_environment_is_not_used_for_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    // A proxy that would answer everything; no connection may reach it.
    let proxy = Receiver::ok().await;
    pipeline(&rec.url()).write(dir.path());
    noon_orders(dir.path(), 5);
    let proxy_url = proxy.base();
    let envs: Vec<(&str, &str)> = PROXY_VARS
        .into_iter()
        .map(|k| (k, proxy_url.as_str()))
        .chain([("NO_PROXY", ""), ("no_proxy", "")])
        .collect();
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &envs).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(proxy.connections(), 0, "the proxy was used");
    let delivered: usize = rec.log().iter().map(|r| r.orders.len()).sum();
    assert_eq!(delivered, 5);
}

/// A receiver that refuses order `3` with 400 and answers the others 200; a
/// refusal echoes the request's auth headers, path and query, as some CRMs'
/// error pages do. `all_refused` makes it refuse every request that way.
async fn echoing_receiver(all_refused: bool) -> Receiver {
    let when = if all_refused {
        When::Always
    } else {
        When::BodyContains(r#""id":"3""#.into())
    };
    Receiver::builder()
        .rule(when, Act::EchoRefusal)
        .start()
        .await
}

const BEARER: &str = "tok-BEARER-SECRET-789";
const HEADER_SECRET: &str = "hdr-SECRET-456";
const PATH_SECRET: &str = "tok9PATH8SECRET";
const QUERY_SECRET: &str = "QUERY7SECRET";
const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every file under `dir`, as bytes.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    for secret in [
        BEARER,
        HEADER_SECRET,
        PATH_SECRET,
        QUERY_SECRET,
        &SIGNING[6..],
    ] {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(
            !found,
            "{secret} appears in {what}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// A full run against [`echoing_receiver`], then every place the tool
/// shows or keeps text.
async fn run_and_search_for_secrets(all_refused: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let crm = echoing_receiver(all_refused).await;
    let url = format!("{}/hooks/{PATH_SECRET}?apikey={QUERY_SECRET}", crm.base());
    let mut p = pipeline(&url);
    p.sink = p
        .sink
        .batch_size(4)
        .header("X-Api-Key", "${TEST_HEADER_SECRET}")
        .signing("TEST_SIGNING_SECRET");
    p.sink.bearer_token_env = Some("TEST_CRM_TOKEN".into());
    p.write(dir.path());
    noon_orders(dir.path(), 10);
    let envs = [
        ("TEST_CRM_TOKEN", BEARER),
        ("TEST_HEADER_SECRET", HEADER_SECRET),
        ("TEST_SIGNING_SECRET", SIGNING),
    ];
    let mut shown = Vec::new();
    let o = bin_async(dir.path(), &["validate", "sync.yaml"], &envs).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    shown.push(("validate", o));
    let o = bin_async(dir.path(), &["-v", "run", "sync.yaml"], &envs).await;
    let want = if all_refused { 3 } else { 6 };
    assert_eq!(o.status.code(), Some(want), "{}", text(&o));
    shown.push(("run -v", o));
    for args in [
        &["-vv", "run", "sync.yaml", "--json"][..],
        &["status", "sync.yaml", "--json"],
        &["status", "sync.yaml"],
        &["dead-letters", "list", "sync.yaml"],
        &["dead-letters", "list", "sync.yaml", "--json"],
    ] {
        let o = bin_async(dir.path(), args, &envs).await;
        shown.push((args[0], o));
    }
    let mut everything = String::new();
    for (what, o) in &shown {
        assert_no_secret(&format!("{what} stdout"), &o.stdout);
        assert_no_secret(&format!("{what} stderr"), &o.stderr);
        everything.push_str(&text(o));
    }
    let state = all_bytes(&dir.path().join("state"));
    assert!(
        state.iter().any(|(p, _)| p.ends_with("safety.db")),
        "{state:?}"
    );
    for (path, bytes) in &state {
        assert_no_secret(&path.display().to_string(), bytes);
    }
    everything
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_echoed_by_the_crm_appear_in_no_output_log_or_state_file() {
    let shown = run_and_search_for_secrets(false).await;
    // The refusal was kept, with the echoed secrets replaced.
    assert!(shown.contains("rejected"), "{shown}");
    assert!(shown.contains("Bearer ***"), "{shown}");
    // `-v` logs the webhook's location, redacted.
    assert!(shown.contains("/hooks/***?apikey=***"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_echoed_in_a_configuration_refusal_appear_nowhere() {
    let shown = run_and_search_for_secrets(true).await;
    assert!(shown.contains("configuration"), "{shown}");
    assert!(shown.contains("Bearer ***"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_does_not_echo_interpolated_url_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // Port 99999 makes both URLs invalid, so that validate reports them.
    let mut p = pipeline("https://crm.example.com:99999/hooks/${TEST_URL_TOKEN}");
    p.source.location = "https://files.example.com:99999/${TEST_URL_TOKEN}/orders.csv".into();
    p.write(dir.path());
    let o = bin_async(
        dir.path(),
        &["validate", "sync.yaml"],
        &[("TEST_URL_TOKEN", "tok9URL8SECRET")],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("sink.url") && err.contains("source.location"),
        "{err}"
    );
    assert!(
        err.contains("crm.example.com") && err.contains("***"),
        "{err}"
    );
    assert!(!err.contains("tok9URL8SECRET"), "{err}");
    assert!(!stdout(&o).contains("tok9URL8SECRET"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_refuses_table_functions_in_sql_and_runs_plain_sql() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret.csv");
    write(&secret_file, "orderId,orderState\n999,LEAKED\n");
    let f = secret_file.display().to_string();
    let refused = [
        ("sql", "query", format!("SELECT * FROM read_csv('{f}')")),
        ("sql", "query", format!("select * from READ_CSV('{f}')")),
        (
            "sql",
            "query",
            format!(r#"SELECT * FROM "read_csv"('{f}')"#),
        ),
        (
            "sql",
            "query",
            format!("SELECT s.* FROM source s JOIN read_csv('{f}') x ON s.orderId = x.orderId"),
        ),
        (
            "sql",
            "query",
            format!("WITH t AS (SELECT * FROM read_parquet('{f}')) SELECT * FROM source"),
        ),
        (
            "sql",
            "query",
            format!("SELECT * FROM (SELECT * FROM read_ndjson('{f}')) AS t"),
        ),
        (
            "filter",
            "expr",
            format!("orderId IN (SELECT orderId FROM read_csv('{f}'))"),
        ),
    ];
    for (kind, field, sql) in &refused {
        let step = if *kind == "sql" {
            Step::Sql(sql.clone())
        } else {
            Step::Filter(sql.clone())
        };
        pipeline("http://127.0.0.1:9/hook")
            .step(step)
            .write(dir.path());
        let o = bin_async(dir.path(), &["validate", "sync.yaml"], &[]).await;
        assert_eq!(o.status.code(), Some(2), "{sql}: {}", text(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("transforms[0].{field}")),
            "{sql}: {err}"
        );
        assert!(
            err.contains("table function") || err.contains("only tables"),
            "{sql}: {err}"
        );
    }

    // Plain SQL over `source` validates and runs.
    let rec = Receiver::ok().await;
    pipeline(&rec.url())
        .step(Step::Sql(
            "SELECT *, orderId * 10 AS tens FROM source WHERE orderId <> 2".into(),
        ))
        .step(Step::Filter("orderId > 1".into()))
        .write(dir.path());
    noon_orders(dir.path(), 4);
    let o = bin_async(dir.path(), &["validate", "sync.yaml"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut keys: Vec<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["3", "4"]);
    let mut tens: Vec<i64> = rec
        .log()
        .iter()
        .flat_map(|r| r.json()["data"]["orders"].as_array().cloned().unwrap())
        .map(|o| o["order"]["tens"].as_i64().unwrap())
        .collect();
    tens.sort();
    assert_eq!(tens, [30, 40]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_interrupts_a_long_retry_after_wait_during_import() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder()
        .rule(When::Always, Act::StatusRetryAfter(503, 3000))
        .start()
        .await;
    // One `retry:` only, its backoff the tool's default.
    let mut p = pipeline(&rec.url());
    p.sink.retry = Some(Retry::attempts(5));
    p.write(dir.path());
    noon_orders(dir.path(), 6);
    import_flag(
        dir.path(),
        "sync.yaml",
        "2026-01-01",
        "2027-01-01",
        &["--column", "lastModDateTime"],
    )
    .await;
    let mut child = Cmd::new(dir.path())
        .args(&["import", "run", "sync.yaml", "--json"])
        .spawn(Stdio::piped(), Stdio::piped());
    wait_until("the import's first request", POLL, WAIT, || !rec.is_empty()).await;
    // The sink is now in its 3000 s wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&child);
    let exited = reap(&mut child, Duration::from_secs(10)).await;
    let out = child.wait_with_output().unwrap();
    assert!(
        exited.is_some(),
        "still waiting 10 s after SIGTERM: {}",
        text(&out)
    );
    assert!(out.status.code().is_some(), "{}", text(&out));
    assert_eq!(rec.len(), 1, "nothing sent after the signal");

    // Nothing acked, nothing dead: every order is still queued and goes out next time.
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["backlog"], 6, "{s}");
    assert_eq!(s["dead_letters"], 0, "{s}");
    rec.heal();
    rec.clear();
    let o = bin_async(dir.path(), &["import", "run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let delivered: usize = rec.log().iter().map(|r| r.orders.len()).sum();
    assert_eq!(delivered, 6);
}
