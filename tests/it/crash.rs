//! `import run` SIGKILLed at seeded random moments and restarted, judged from the receiver's log.
//!
//! The CI variant generates 20,000 orders and kills the import 20 times; the
//! long variant (`#[ignore]`d, minutes) generates 200,000 and kills it 300
//! times:
//!
//! ```text
//! cargo test --test it import_run_survives_hundreds_of_seeded_sigkills -- --ignored --nocapture
//! ```
//!
//! `S360_CRASH_SEED=<n>` replays another sequence of kill moments; the seed in
//! use is printed (with `--nocapture`) and named in every failure.
//! `S360_CRASH_LOG=<file>` also writes the receiver's log there (JSON Lines:
//! one line per request, and one per kill).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::support::cli::{Cmd, import_flag, reap, status as pipeline_status};
use crate::support::pipeline::{Retry, Sink, Source, SyncPipeline};
use crate::support::receiver::{Entry, Outcome, Receiver, batches_by_id, older_after_newer};
use crate::support::{generate, write};

/// Requests in flight (`sink.concurrency`) and orders per request.
const CONCURRENCY: usize = 4;
const BATCH_SIZE: usize = 50;

/// Every how many orders one is changed and flagged again mid-import.
const CHANGE_EVERY: usize = 10;

struct Plan {
    orders: usize,
    kills: usize,
    seed: u64,
    /// Everything, generation to the last check, must finish within this.
    budget: Duration,
}

fn pipeline(dir: &Path, url: &str) {
    SyncPipeline::new(
        "crash-test",
        Source::generated_with_lines(),
        Sink::to(url)
            .batch_size(BATCH_SIZE as u32)
            .concurrency(CONCURRENCY as u32)
            // Which process sent a request, for the receiver's log.
            .header("x-test-run", "run-${S360_TEST_RUN:-0}")
            .retry(Retry::backoff("10ms", "100ms", Some(10))),
    )
    .state_at("state/crash.db")
    .write_as(dir, "import.yaml");
}

/// `import flag` over a timeframe that holds every generated order.
async fn flag(dir: &Path) -> serde_json::Value {
    import_flag(dir, "import.yaml", "2026-09-01", "2026-11-01", &[]).await
}

/// A later delta export: every `CHANGE_EVERY`-th order cancelled, with a
/// newer modification time. Returns the changed keys.
fn write_changes(dir: &Path) -> HashSet<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("exports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with("orders_") && name.ends_with(".csv")
        })
        .collect();
    files.sort();
    let mut out = String::new();
    let mut changed = HashSet::new();
    let mut row = 0usize;
    for f in files {
        let content = std::fs::read_to_string(&f).unwrap();
        let mut lines = content.lines();
        let header = lines.next().unwrap();
        let cols: Vec<&str> = header.split(';').collect();
        let col = |name: &str| cols.iter().position(|c| *c == name).unwrap();
        let (id, state, modified) = (col("orderId"), col("orderState"), col("lastModDateTime"));
        if out.is_empty() {
            out.push_str(header);
            out.push('\n');
        }
        for line in lines {
            row += 1;
            if !row.is_multiple_of(CHANGE_EVERY) {
                continue;
            }
            let mut cells: Vec<String> = line.split(';').map(str::to_string).collect();
            cells[state] = "CANCELLED".into();
            let secs = changed.len();
            cells[modified] = format!(
                "2026-11-01 {:02}:{:02}:{:02}",
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            );
            changed.insert(cells[id].clone());
            out.push_str(&cells.join(";"));
            out.push('\n');
        }
    }
    write(&dir.join("exports/orders_2026-11-01.csv"), out);
    changed
}

/// Starts `import run` as process number `run`, its output into files.
fn spawn(dir: &Path, run: usize, json: bool) -> Child {
    let out = std::fs::File::create(dir.join(format!("run-{run}.out"))).unwrap();
    let err = std::fs::File::create(dir.join(format!("run-{run}.err"))).unwrap();
    let mut args = vec!["import", "run", "import.yaml"];
    if json {
        args.push("--json");
    }
    Cmd::new(dir)
        .args(&args)
        .env("S360_TEST_RUN", run.to_string())
        .spawn(Stdio::from(out), Stdio::from(err))
}

/// When one process is killed.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after it was started (a kill during start-up, in the middle
    /// of a database write or of a request).
    After(Duration),
    /// Once the receiver has seen this many more requests, and this long
    /// after (a kill while requests are in flight).
    Requests(usize, Duration),
    /// Once the receiver has answered this many more requests, and this long
    /// after (a kill while outcomes are being committed).
    Answers(usize, Duration),
}

fn kill_moment(rng: &mut StdRng) -> KillAt {
    let ms = |rng: &mut StdRng, range: std::ops::RangeInclusive<u64>| {
        Duration::from_millis(rng.random_range(range))
    };
    match rng.random_range(0..3) {
        0 => KillAt::After(ms(rng, 3..=1000)),
        1 => KillAt::Requests(rng.random_range(1..=8), ms(rng, 0..=60)),
        _ => KillAt::Answers(rng.random_range(1..=8), ms(rng, 0..=5)),
    }
}

/// The run number a request came from (the `x-test-run` header).
fn run_of(e: &Entry) -> Option<usize> {
    e.header("x-test-run").strip_prefix("run-")?.parse().ok()
}

async fn crash_test(plan: Plan) {
    let started = Instant::now();
    let seed = plan.seed;
    println!(
        "crash test: {} orders, {} kills, seed {seed}",
        plan.orders, plan.kills
    );
    let dir = tempfile::tempdir().unwrap();
    let orders = plan.orders.to_string();
    generate(dir.path(), &["--orders", &orders, "--days", "2"]);
    // A slow CRM (100 ms a request), so that kills land while requests are in flight.
    let mut rec = Receiver::builder().latency(Duration::from_millis(100));
    if let Ok(path) = std::env::var("S360_CRASH_LOG") {
        rec = rec.log_file(Path::new(&path));
    }
    let rec = rec.start().await;
    pipeline(dir.path(), &rec.url());
    let first = flag(dir.path()).await;
    assert_eq!(first["flagged"], plan.orders as u64, "{first}");
    let flagged = first["matched"].as_u64().unwrap() as usize;
    println!("generated and flagged in {:?}", started.elapsed());

    let mut rng = StdRng::seed_from_u64(seed);
    let mut changed = HashSet::new();
    let mut kills = 0;
    let mut run = 0;
    let mut moments = Vec::new();
    while kills < plan.kills {
        assert!(
            started.elapsed() < plan.budget,
            "seed {seed}: over the time budget after {kills} kills"
        );
        // Halfway, a later export changes some orders and they are flagged
        // again: new versions of orders that are delivered, in flight or queued.
        if kills == plan.kills / 2 && changed.is_empty() {
            changed = write_changes(dir.path());
            let again = flag(dir.path()).await;
            assert_eq!(again["flagged"], changed.len() as u64, "{again}");
        }
        run += 1;
        let at = kill_moment(&mut rng);
        let (seen, answered) = (rec.arrivals(), rec.answers());
        let mut child = spawn(dir.path(), run, false);
        let spawned = Instant::now();
        match at {
            KillAt::After(d) => tokio::time::sleep(d).await,
            KillAt::Requests(k, extra) | KillAt::Answers(k, extra) => {
                let count = |rec: &Receiver| match at {
                    KillAt::Requests(..) => rec.arrivals() - seen,
                    _ => rec.answers() - answered,
                };
                while count(&rec) < k
                    && spawned.elapsed() < Duration::from_secs(20)
                    && child.try_wait().unwrap().is_none()
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::time::sleep(extra).await;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let err = std::fs::read_to_string(dir.path().join(format!("run-{run}.err")));
            panic!(
                "seed {seed}: run {run} ended by itself ({status}) before kill {}: the import ran out of work or failed; stderr: {err:?}",
                kills + 1
            );
        }
        child.kill().unwrap();
        assert!(
            reap(&mut child, Duration::from_secs(10)).await.is_some(),
            "killed process reaped"
        );
        kills += 1;
        moments.push((at, spawned.elapsed(), rec.arrivals() - seen));
        rec.mark(&format!("killed run {run}"));
    }
    assert!(!changed.is_empty(), "orders changed mid-import");
    let killed_runs = run;

    // The last run, to completion.
    run += 1;
    let mut child = spawn(dir.path(), run, true);
    let status = reap(&mut child, Duration::from_secs(240)).await;
    let out = std::fs::read_to_string(dir.path().join(format!("run-{run}.out"))).unwrap();
    let err = std::fs::read_to_string(dir.path().join(format!("run-{run}.err"))).unwrap();
    let status = status.unwrap_or_else(|| panic!("seed {seed}: the last run did not finish"));
    assert_eq!(
        status.code(),
        Some(0),
        "seed {seed}: last run\n{out}\n{err}"
    );
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["backlog"], 0, "seed {seed}: {summary}");
    let state = pipeline_status(dir.path(), "import.yaml").await;
    assert_eq!(state["backlog"], 0, "seed {seed}: {state}");
    assert_eq!(state["in_flight"], 0, "seed {seed}: {state}");
    assert_eq!(state["dead_letters"], 0, "seed {seed}: {state}");
    assert_eq!(
        state["delivered_orders"], flagged as u64,
        "seed {seed}: {state}"
    );

    let log = rec.log();
    let found = check_log(&log, flagged, &changed, killed_runs)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    check_ledger(&dir.path().join("state/crash.db"), &found.newest)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    // The kills did land while batches were in flight; otherwise this test
    // proved nothing about them.
    assert!(
        found.resent_batches > 0,
        "seed {seed}: no kill left a batch in flight"
    );
    println!(
        "{kills} kills survived: {} orders, {} order versions acknowledged, {} duplicates from {} re-sent batches (bound {}); {} requests, {:?} in all",
        found.newest.len(),
        found.versions,
        found.duplicates,
        found.resent_batches,
        killed_runs * CONCURRENCY * BATCH_SIZE,
        log.len(),
        started.elapsed()
    );
    println!("kill moments (when, alive for, requests seen): {moments:?}");
}

/// What the checks of a crash test's log found.
#[derive(Debug)]
struct Findings {
    /// Per key, the newest acknowledged version and its `orderState`.
    newest: HashMap<String, (i64, String)>,
    /// Distinct order versions acknowledged.
    versions: usize,
    /// Acknowledged receptions beyond the first of each order version.
    duplicates: usize,
    /// Batches a run re-sent that an earlier (killed) run had sent.
    resent_batches: usize,
}

/// Every check made from the receiver's log of a crash test whose runs
/// `1..=killed_runs` were killed and the next one finished; `Err` says
/// which guarantee the log breaks.
fn check_log(
    log: &[Entry],
    flagged: usize,
    changed: &HashSet<String>,
    killed_runs: usize,
) -> Result<Findings, String> {
    // Every flagged order acknowledged; the last acknowledged content of a
    // changed order is its change.
    let mut newest: HashMap<String, (i64, String)> = HashMap::new();
    for e in log.iter().filter(|e| e.acknowledged()) {
        let body = e.json();
        for o in body["data"]["orders"].as_array().ok_or("not an envelope")? {
            let key = o["id"].as_str().ok_or("no id")?.to_string();
            let version = o["version"].as_i64().ok_or("no version")?;
            let state = o["order"]["orderState"].as_str().unwrap_or("").to_string();
            let slot = newest.entry(key).or_insert((version, state.clone()));
            if version >= slot.0 {
                *slot = (version, state);
            }
        }
    }
    if newest.len() != flagged {
        return Err(format!(
            "{} orders acknowledged, {flagged} flagged",
            newest.len()
        ));
    }
    for (key, (version, state)) in &newest {
        if (state == "CANCELLED") != changed.contains(key) {
            return Err(format!("order {key} ends as {state} (v{version})"));
        }
    }

    // Never an older version after a newer one was acknowledged.
    if let Some((seq, key, sent, acked)) = older_after_newer(log) {
        return Err(format!(
            "request {seq} sent {key} v{sent} after v{acked} was acknowledged"
        ));
    }

    // A repeated batch carries the same webhook-id and orders as its first
    // attempt, and an order version travels under one webhook-id only.
    let batches = batches_by_id(log)?;
    let mut id_of: HashMap<&(String, i64), &String> = HashMap::new();
    for (id, orders) in &batches {
        if orders.len() > BATCH_SIZE {
            return Err(format!("{id} carries {} orders", orders.len()));
        }
        for o in orders {
            if let Some(other) = id_of.insert(o, id) {
                return Err(format!("{o:?} was sent as {other} and as {id}"));
            }
        }
    }

    // Duplicates only from the batches in flight at a kill: at most
    // `concurrency` batches for each kill, in all...
    let received: usize = log
        .iter()
        .filter(|e| e.acknowledged())
        .map(|e| e.orders.len())
        .sum();
    let versions = log
        .iter()
        .filter(|e| e.acknowledged())
        .flat_map(|e| &e.orders)
        .collect::<HashSet<_>>()
        .len();
    let duplicates = received - versions;
    let bound = killed_runs * CONCURRENCY * BATCH_SIZE;
    if duplicates > bound {
        return Err(format!(
            "{duplicates} duplicate order versions, more than {bound}"
        ));
    }

    // ...and in detail: one process never sends an order version twice (the
    // receiver always says 200), and a process re-sends at most
    // `concurrency` batches of earlier processes.
    let mut ids_of_run: HashMap<usize, HashSet<String>> = HashMap::new();
    for e in log {
        let run = run_of(e).ok_or_else(|| format!("request {} names no run", e.seq))?;
        if !ids_of_run.entry(run).or_default().insert(e.webhook_id()) {
            return Err(format!("run {run} sent {} twice", e.webhook_id()));
        }
    }
    let mut earlier: HashSet<String> = HashSet::new();
    let mut resent_batches = 0;
    for run in 1..=killed_runs + 1 {
        let ids = ids_of_run.remove(&run).unwrap_or_default();
        let again = ids.intersection(&earlier).count();
        if again > CONCURRENCY {
            return Err(format!(
                "run {run} re-sent {again} batches of killed runs, more than the {CONCURRENCY} that can be in flight"
            ));
        }
        resent_batches += again;
        earlier.extend(ids);
    }
    if let Some(run) = ids_of_run.keys().next() {
        return Err(format!("requests from run {run}, which was never started"));
    }
    Ok(Findings {
        newest,
        versions,
        duplicates,
        resent_batches,
    })
}

/// The state agrees with the receiver: the ledger holds each order at the
/// newest version the receiver acknowledged.
fn check_ledger(db: &Path, newest: &HashMap<String, (i64, String)>) -> Result<(), String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare("SELECT key, version FROM ledger")
        .map_err(|e| e.to_string())?;
    let ledger: HashMap<String, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if ledger.len() != newest.len() {
        return Err(format!(
            "the ledger holds {} orders, the receiver acknowledged {}",
            ledger.len(),
            newest.len()
        ));
    }
    for (key, (version, _)) in newest {
        if ledger.get(key) != Some(version) {
            return Err(format!(
                "ledger has {key} at {:?}, the receiver acknowledged v{version}",
                ledger.get(key)
            ));
        }
    }
    Ok(())
}

fn seed() -> u64 {
    std::env::var("S360_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16)
}

#[tokio::test(flavor = "multi_thread")]
async fn import_run_survives_seeded_sigkills() {
    crash_test(Plan {
        orders: 20_000,
        kills: 20,
        seed: seed(),
        budget: Duration::from_secs(300),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long (minutes): cargo test --test it import_run_survives_hundreds_of_seeded_sigkills -- --ignored"]
async fn import_run_survives_hundreds_of_seeded_sigkills() {
    crash_test(Plan {
        orders: 200_000,
        kills: 300,
        seed: seed(),
        budget: Duration::from_secs(3600),
    })
    .await;
}

/// A request of run `run`, as the receiver logs it, answered 200.
fn synthetic(run: usize, id: &str, orders: &[(&str, i64, &str)]) -> Entry {
    let body = serde_json::json!({
        "type": "order.upserted",
        "data": { "orders": orders.iter().map(|(k, v, state)| serde_json::json!({
            "id": k, "version": v, "order": { "orderState": state }
        })).collect::<Vec<_>>() }
    });
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert("x-test-run", format!("run-{run}").parse().unwrap());
    Entry {
        seq: 0,
        n: 0,
        at: Instant::now(),
        method: axum::http::Method::POST,
        uri: "/hooks/orders".parse().unwrap(),
        wall: std::time::SystemTime::now(),
        headers,
        body: body.to_string().into_bytes(),
        content_length: None,
        orders: orders.iter().map(|(k, v, _)| (k.to_string(), *v)).collect(),
        outcome: Outcome::Answered(200),
        not_before: None,
    }
}

fn numbered(mut log: Vec<Entry>) -> Vec<Entry> {
    for (i, e) in log.iter_mut().enumerate() {
        e.seq = i;
    }
    log
}

#[test]
fn the_crash_checks_catch_each_broken_guarantee() {
    let a = [("1", 1, "CLOSED"), ("2", 1, "CLOSED")];
    let b = [("3", 1, "CANCELLED")];
    let changed: HashSet<String> = ["3".to_string()].into();
    // Run 1 is killed with batch A in flight; run 2 re-sends it, then B.
    let good = numbered(vec![
        synthetic(1, "msg_a", &a),
        synthetic(2, "msg_a", &a),
        synthetic(2, "msg_b", &b),
    ]);
    let found = check_log(&good, 3, &changed, 1).unwrap();
    assert_eq!((found.duplicates, found.resent_batches), (2, 1));
    // The same log without a kill: the re-sent batch is a duplicate too many.
    let e = check_log(&good, 3, &changed, 0).unwrap_err();
    assert!(e.contains("2 duplicate order versions, more than 0"), "{e}");

    let err = |log: Vec<Entry>, changed: &HashSet<String>| {
        check_log(&numbered(log), 3, changed, 1).unwrap_err()
    };
    // An order never acknowledged.
    let e = err(vec![synthetic(1, "msg_a", &a)], &changed);
    assert!(e.contains("2 orders acknowledged, 3 flagged"), "{e}");
    // A changed order whose change never arrived.
    let e = err(
        vec![
            synthetic(1, "msg_a", &a),
            synthetic(2, "msg_b", &[("3", 1, "CLOSED")]),
        ],
        &changed,
    );
    assert!(e.contains("order 3 ends as CLOSED"), "{e}");
    // An older version after a newer one was acknowledged.
    let e = err(
        vec![
            synthetic(1, "msg_c", &[("3", 2, "CANCELLED")]),
            synthetic(1, "msg_a", &a),
            synthetic(2, "msg_b", &b),
        ],
        &changed,
    );
    assert!(e.contains("sent 3 v1 after v2"), "{e}");
    // A re-sent batch under another webhook-id.
    let e = err(
        vec![
            synthetic(1, "msg_a", &a),
            synthetic(2, "msg_x", &a),
            synthetic(2, "msg_b", &b),
        ],
        &changed,
    );
    assert!(
        e.contains("as msg_a and as msg_x") || e.contains("as msg_x and as msg_a"),
        "{e}"
    );
    // One webhook-id with other orders.
    let e = err(
        vec![
            synthetic(1, "msg_a", &a),
            synthetic(2, "msg_a", &a[..1]),
            synthetic(2, "msg_b", &b),
        ],
        &changed,
    );
    assert!(
        e.contains("webhook-id msg_a carried 2 order(s) first and 1"),
        "{e}"
    );
    // One process sending a batch twice (no kill between).
    let e = err(
        vec![
            synthetic(1, "msg_a", &a),
            synthetic(2, "msg_b", &b),
            synthetic(2, "msg_b", &b),
        ],
        &changed,
    );
    assert!(e.contains("run 2 sent msg_b twice"), "{e}");
    // More batches re-sent after a kill than can be in flight.
    let keys: Vec<String> = (1..=CONCURRENCY + 1).map(|i| i.to_string()).collect();
    let mut log = Vec::new();
    for run in [1, 2] {
        for k in &keys {
            log.push(synthetic(run, &format!("msg_{k}"), &[(k, 1, "CLOSED")]));
        }
    }
    let e = check_log(&numbered(log), CONCURRENCY + 1, &HashSet::new(), 1).unwrap_err();
    assert!(e.contains("run 2 re-sent 5 batches"), "{e}");
}
