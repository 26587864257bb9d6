//! The sink under hostile conditions, through the real binary: unbounded durations, an all-400 receiver, proxies from the environment, secrets echoed by the CRM, table functions in SQL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Answer, Recorder, bin_async, text, write};

/// `n` orders `1..=n` in one `;`-separated export.
fn export(dir: &Path, n: i64) {
    let mut s = String::from("orderId;orderState;saleAmount;lastModDateTime\n");
    for i in 1..=n {
        s.push_str(&format!("{i};CLOSED;{};2026-10-13 12:00:00\n", i * 10));
    }
    write(&dir.join("exports/orders_1.csv"), s);
}

/// A sync pipeline to `url`; `sink_extra` and `top_extra` are YAML lines
/// added to `sink:` and to the top level.
fn pipeline(dir: &Path, url: &str, sink_extra: &str, top_extra: &str) -> PathBuf {
    let p = dir.join("sync.yaml");
    write(
        &p,
        format!(
            r#"version: 1
kind: sync
name: safety
source:
  location: exports/orders_*.csv
  csv: {{ delimiter: ";" }}
  key: orderId
  cursor: lastModDateTime
  columns: {{ orderId: int64, lastModDateTime: timestamp }}
sink:
  url: "{url}"
  retry: {{ initial_backoff: 10ms, max_backoff: 100ms, max_attempts: 3 }}
  deadline: 30s
{sink_extra}
state:
  path: state/safety.db
{top_extra}"#
        ),
    );
    p
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_no_clock_can_hold_is_refused_by_validate_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "http://127.0.0.1:9/hook", "", "");
    let yaml = std::fs::read_to_string(&p)
        .unwrap()
        .replace("deadline: 30s", "deadline: 999999999999999999d");
    write(&p, yaml);
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
    let rec = Recorder::start(Arc::new(|_, _| Answer::status(400))).await;
    pipeline(dir.path(), &rec.url(), "  batch_size: 8", "");
    export(dir.path(), 40);
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["delivery"]["dead_lettered"], 0, "{s}");
    assert_eq!(s["delivery"]["acknowledged"], 0, "{s}");
    assert_eq!(s["backlog"], 40, "{s}");
    let stopped = s["delivery"]["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains("configuration"), "{s}");
    // The first batch of 8 was tried whole and order by order, then the run stopped.
    assert_eq!(rec.all().len(), 15);
    let o = bin_async(dir.path(), &["dead-letters", "list", "sync.yaml"], &[]).await;
    assert!(stdout(&o).contains("no dead letters"), "{}", text(&o));

    // Once the receiver takes the payloads, every order goes out.
    rec.set(Arc::new(|_, _| Answer::status(200)));
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["delivery"]["acknowledged"], 40, "{s}");
    assert_eq!(s["backlog"], 0, "{s}");
}

/// A TCP listener on loopback that counts connections and answers none.
async fn connection_counter() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_in_the_environment_is_not_used_for_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::ok().await;
    let (proxy, connections) = connection_counter().await;
    pipeline(dir.path(), &rec.url(), "", "");
    export(dir.path(), 5);
    let proxy_url = format!("http://{proxy}");
    let envs: Vec<(&str, &str)> = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .map(|k| (k, proxy_url.as_str()))
    .chain([("NO_PROXY", ""), ("no_proxy", "")])
    .collect();
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &envs).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the proxy was used");
    let delivered: usize = rec.all().iter().map(|r| r.orders().len()).sum();
    assert_eq!(delivered, 5);
}

/// A receiver that refuses order `3` with 400 and answers the others 200; a
/// refusal echoes the request's auth headers, path and query, as some CRMs'
/// error pages do. `all_refused` makes it refuse every request that way.
async fn echoing_receiver(all_refused: bool) -> SocketAddr {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let refused = Arc::new(Mutex::new(all_refused));
    let app = axum::Router::new().fallback(
        move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let refuse_all = *refused.lock().unwrap();
            async move {
                let text = String::from_utf8_lossy(&body);
                if refuse_all || text.contains(r#""id":"3""#) {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let echo = format!(
                        "{{\"error\":\"rejected\",\"request\":{{\"uri\":\"{uri}\",\"authorization\":\"{}\",\"x-api-key\":\"{}\"}}}}",
                        h("authorization"),
                        h("x-api-key")
                    );
                    (StatusCode::BAD_REQUEST, echo)
                } else {
                    (StatusCode::OK, String::new())
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
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
    let addr = echoing_receiver(all_refused).await;
    let url = format!("http://{addr}/hooks/{PATH_SECRET}?apikey={QUERY_SECRET}");
    pipeline(
        dir.path(),
        &url,
        "  batch_size: 4\n  auth: { type: bearer, token_env: TEST_CRM_TOKEN }\n  headers: { X-Api-Key: \"${TEST_HEADER_SECRET}\" }\n  signing: { secret_env: TEST_SIGNING_SECRET }",
        "",
    );
    export(dir.path(), 10);
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
    pipeline(
        dir.path(),
        "https://crm.example.com:99999/hooks/${TEST_URL_TOKEN}",
        "",
        "",
    );
    let p = dir.path().join("sync.yaml");
    let yaml = std::fs::read_to_string(&p).unwrap().replace(
        "location: exports/orders_*.csv",
        "location: \"https://files.example.com:99999/${TEST_URL_TOKEN}/orders.csv\"",
    );
    write(&p, yaml);
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
        let body = if *kind == "sql" { "query" } else { "expr" };
        let step = format!(
            "transforms:\n  - {{ type: {kind}, {body}: {} }}\n",
            serde_json::to_string(sql).unwrap()
        );
        pipeline(dir.path(), "http://127.0.0.1:9/hook", "", &step);
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
    let rec = Recorder::ok().await;
    let step = "transforms:\n  - { type: sql, query: \"SELECT *, orderId * 10 AS tens FROM source WHERE orderId <> 2\" }\n  - { type: filter, expr: \"orderId > 1\" }\n";
    pipeline(dir.path(), &rec.url(), "", step);
    export(dir.path(), 4);
    let o = bin_async(dir.path(), &["validate", "sync.yaml"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut keys: Vec<String> = rec
        .all()
        .iter()
        .flat_map(|r| r.orders())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    assert_eq!(keys, ["3", "4"]);
    let mut tens: Vec<i64> = rec
        .all()
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
    let rec = Recorder::start(Arc::new(|_, _| Answer {
        status: 503,
        headers: vec![("retry-after", "3000".to_string())],
        delay: Duration::ZERO,
    }))
    .await;
    pipeline(dir.path(), &rec.url(), "  retry: { max_attempts: 5 }", "");
    let p = dir.path().join("sync.yaml");
    // One `retry:` only: the extra line above replaces the default one.
    let yaml = std::fs::read_to_string(&p).unwrap().replace(
        "  retry: { initial_backoff: 10ms, max_backoff: 100ms, max_attempts: 3 }\n",
        "",
    );
    write(&p, yaml);
    export(dir.path(), 6);
    let o = bin_async(
        dir.path(),
        &[
            "import",
            "flag",
            "sync.yaml",
            "--from",
            "2026-01-01",
            "--to",
            "2027-01-01",
            "--column",
            "lastModDateTime",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_s360-sync"))
        .args(["import", "run", "sync.yaml", "--json"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while rec.all().is_empty() {
        assert!(waited < 400, "import never sent");
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    // The sink is now in its 3000 s wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if exited.is_none() {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        exited.is_some(),
        "still waiting 10 s after SIGTERM: {}",
        text(&out)
    );
    assert!(out.status.code().is_some(), "{}", text(&out));
    assert_eq!(rec.all().len(), 1, "nothing sent after the signal");

    // Nothing acked, nothing dead: every order is still queued and goes out next time.
    let o = bin_async(dir.path(), &["status", "sync.yaml", "--json"], &[]).await;
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["backlog"], 6, "{s}");
    assert_eq!(s["dead_letters"], 0, "{s}");
    rec.set(Arc::new(|_, _| Answer::status(200)));
    rec.clear();
    let o = bin_async(dir.path(), &["import", "run", "sync.yaml", "--json"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let delivered: usize = rec.all().iter().map(|r| r.orders().len()).sum();
    assert_eq!(delivered, 6);
}
