//! A sync test: the runs of a test file through the real sync code, on a temporary state, delivering to the test's receiver, and the checks of what each run sent and left behind.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::check::Checks;
use super::error::{TestError, error_chain, temp_dir};
use super::inputs::{self, Folder, format_of};
use super::load::Loaded;
use super::receiver::{Received, Receiver};
use crate::pipeline::test_file::{RunEnd, SyncExpect, SyncRun};
use crate::pipeline::{AuthConfig, PipelineSpec, SyncPipeline};
use crate::state::{StateStore, format_ms};
use crate::sync::{RunOptions, RunOutcome, RunSummary};

/// What the state holds after a run.
struct After {
    cursor: Option<(i64, String)>,
    backlog: u64,
    dead: BTreeMap<String, Option<u16>>,
}

/// Run every run of `t` in order and check each.
pub(super) async fn run(t: &Loaded, checks: &mut Checks<'_>) -> Result<(), TestError> {
    let tmp = temp_dir()?;
    let mut p = t.pipeline.clone();
    let PipelineSpec::Sync(spec) = &mut p.spec else {
        return Err(TestError::Io {
            path: t.pipeline.file.clone(),
            source: std::io::Error::other("not a sync pipeline"),
        });
    };
    let orders = Folder {
        dir: tmp.path().join("orders"),
        delimiter: spec.source.csv.delimiter,
    };
    if t.spec.runs.iter().any(|r| !r.orders.is_empty()) {
        spec.source.format = format_of(spec.source.format, &spec.source.location);
        spec.source.location = orders.location();
    }
    let mut lines = None;
    if let Some(l) = spec.source.lines.as_deref_mut()
        && t.spec.runs.iter().any(|r| !r.lines.is_empty())
    {
        let folder = Folder {
            dir: tmp.path().join("lines"),
            delimiter: l.csv.delimiter,
        };
        l.format = format_of(l.format, &l.location);
        l.location = folder.location();
        lines = Some(folder);
    }
    let db = tmp.path().join("state").join(format!("{}.db", spec.name));
    spec.state.path = Some(db.to_string_lossy().into_owned());
    let receiver = Receiver::start()
        .await
        .map_err(|e| TestError::io(Path::new("127.0.0.1"), e))?;
    spec.sink.webhook.url = receiver.url();
    let env = secrets(&t.spec.env, spec);
    let name = spec.name.clone();

    for (i, run) in t.spec.runs.iter().enumerate() {
        let at = format!("runs[{i}]");
        let label = run.name.clone().unwrap_or_else(|| format!("run {}", i + 1));
        let now = chrono::DateTime::parse_from_rfc3339(&run.now)
            .map_err(|e| TestError::Input {
                field: format!("{at}.now"),
                message: e.to_string(),
            })?
            .to_utc();
        prepare(t, run, &at, &orders, lines.as_ref(), now.into())?;
        let refused: HashSet<String> = run
            .receiver
            .refuse
            .iter()
            .flat_map(|r| r.keys.iter().map(|k| k.text()))
            .collect();
        let status = run.receiver.refuse.as_ref().map_or(422, |r| r.status);
        receiver.refuse(refused, status);
        let options = RunOptions {
            now_ms: Some(now.timestamp_millis()),
            env: env.clone(),
            ..RunOptions::default()
        };
        let summary = crate::sync::run(&p, options).await;
        let got = receiver.take();
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                checks.fail(
                    &at,
                    format!("{label}: the sync run failed: {}", error_chain(&e)),
                    "",
                );
                return Ok(());
            }
        };
        let after = state_after(db.clone(), name.clone()).await?;
        expect(
            t,
            checks,
            &format!("{at}.expect"),
            &label,
            &run.expect,
            &got,
            &summary,
            &after,
        );
    }
    Ok(())
}

/// Remove and write the run's files.
fn prepare(
    t: &Loaded,
    run: &SyncRun,
    at: &str,
    orders: &Folder,
    lines: Option<&Folder>,
    mtime: std::time::SystemTime,
) -> Result<(), TestError> {
    for (j, name) in run.remove.iter().enumerate() {
        let candidates = [Some(orders), lines].into_iter().flatten();
        let mut removed = false;
        for folder in candidates {
            let path = folder.dir.join(name);
            if path.is_file() {
                std::fs::remove_file(&path).map_err(|e| TestError::io(&path, e))?;
                removed = true;
            }
        }
        if !removed {
            return Err(TestError::Input {
                field: format!("{at}.remove[{j}]"),
                message: format!("no file {name:?} was written by an earlier run"),
            });
        }
    }
    if !run.orders.is_empty() {
        inputs::write(&t.dir, orders, &run.orders, &format!("{at}.orders"), mtime)?;
    }
    if !run.lines.is_empty() {
        let folder = lines.ok_or_else(|| TestError::Input {
            field: format!("{at}.lines"),
            message: "the pipeline reads no lines (`source.lines`)".into(),
        })?;
        inputs::write(&t.dir, folder, &run.lines, &format!("{at}.lines"), mtime)?;
    }
    Ok(())
}

/// Test values for the secrets the pipeline names and the test does not give.
fn secrets(given: &BTreeMap<String, String>, spec: &SyncPipeline) -> BTreeMap<String, String> {
    let mut env = given.clone();
    let w = &spec.sink.webhook;
    if let Some(s) = &w.signing {
        env.entry(s.secret_env.clone())
            // `s360-sync-test-secret`, base64.
            .or_insert_with(|| "whsec_czM2MC1zeW5jLXRlc3Qtc2VjcmV0".into());
    }
    let var = match &w.auth {
        Some(AuthConfig::Bearer { token_env }) => Some(token_env),
        Some(AuthConfig::Basic { password_env, .. }) => Some(password_env),
        Some(AuthConfig::Header { value_env, .. }) => Some(value_env),
        None => None,
    };
    if let Some(var) = var {
        env.entry(var.clone())
            .or_insert_with(|| "s360-sync-test-value".into());
    }
    env
}

async fn state_after(db: PathBuf, name: String) -> Result<After, TestError> {
    let read = tokio::task::spawn_blocking(move || {
        let store = StateStore::open_existing(&db, &name)?;
        let Some(s) = store else {
            return Ok(After {
                cursor: None,
                backlog: 0,
                dead: BTreeMap::new(),
            });
        };
        Ok::<_, crate::state::StateError>(After {
            cursor: s.cursor()?,
            backlog: s.backlog()?,
            dead: s
                .dead_letters()?
                .into_iter()
                .map(|d| (d.key, d.status))
                .collect(),
        })
    })
    .await
    .map_err(|e| TestError::io(Path::new("state"), std::io::Error::other(e.to_string())))?;
    read.map_err(|e| TestError::io(Path::new("state"), std::io::Error::other(error_chain(&e))))
}

/// `KEY@VERSION` when `like` names a version, else `KEY`.
fn order_text(like: &str, key: &str, version: i64) -> String {
    if like.contains('@') {
        format!("{key}@{version}")
    } else {
        key.to_string()
    }
}

/// The requests of a run as a snapshot holds them.
pub(super) fn snapshot_of(got: &[Received]) -> Value {
    Value::Array(
        got.iter()
            .map(|r| {
                let mut body = r.body.clone();
                // The envelope's `timestamp` is the time of sending.
                if let Some(obj) = body.as_object_mut() {
                    obj.remove("timestamp");
                }
                serde_json::json!({
                    "status": r.status,
                    "webhook_id": r.webhook_id,
                    "body": body,
                })
            })
            .collect(),
    )
}

#[allow(clippy::too_many_arguments)]
fn expect(
    t: &Loaded,
    checks: &mut Checks<'_>,
    at: &str,
    label: &str,
    e: &SyncExpect,
    got: &[Received],
    summary: &RunSummary,
    after: &After,
) {
    let orders: Vec<Vec<(String, i64, &Value)>> = got.iter().map(Received::orders).collect();
    if let Some(n) = e.payloads {
        checks.same(
            &format!("{at}.payloads"),
            &format!("{label}: requests"),
            &n,
            &(got.len() as u64),
        );
    }
    if let Some(sizes) = &e.batch_sizes {
        let actual: Vec<u64> = orders.iter().map(|o| o.len() as u64).collect();
        checks.equal(
            &format!("{at}.batch_sizes"),
            &format!("{label}: orders per request"),
            sizes,
            &actual,
        );
    }
    if let Some(keys) = &e.keys {
        let mut diff = String::new();
        for n in 0..keys.len().max(orders.len()) {
            let want = keys.get(n);
            let have: Option<Vec<String>> = orders.get(n).map(|os| {
                os.iter()
                    .enumerate()
                    .map(|(j, (k, v, _))| {
                        // Shown as the test writes that order, else as it
                        // writes the others of the request.
                        let like = want.and_then(|w| w.get(j)).map_or_else(
                            || {
                                let any = want.is_some_and(|w| w.iter().any(|e| e.contains('@')));
                                if any { "@" } else { "" }
                            },
                            String::as_str,
                        );
                        order_text(like, k, *v)
                    })
                    .collect()
            });
            if want != have.as_ref() {
                let show = |v: Option<&Vec<String>>| {
                    v.map_or("(no request)".to_string(), |v| v.join(", "))
                };
                diff.push_str(&format!(
                    "request {}:\n  - expected: {}\n  + actual:   {}\n",
                    n + 1,
                    show(want),
                    show(have.as_ref())
                ));
            }
        }
        if !diff.is_empty() {
            checks.fail(
                &format!("{at}.keys"),
                format!("{label}: the orders of the requests differ"),
                diff,
            );
        }
    }
    if let Some(sent) = &e.sent {
        let like = if sent.iter().any(|s| s.contains('@')) {
            "@"
        } else {
            ""
        };
        let expected: BTreeSet<String> = sent.iter().cloned().collect();
        let actual: BTreeSet<String> = orders
            .iter()
            .flatten()
            .map(|(k, v, _)| order_text(like, k, *v))
            .collect();
        checks.set(
            &format!("{at}.sent"),
            &format!("{label}: orders sent"),
            &expected,
            &actual,
        );
    }
    for (j, f) in e.fields.iter().enumerate() {
        let field = format!("{at}.fields[{j}]");
        let (target, what) = match (&f.key, f.payload) {
            (Some(key), _) => {
                let key = key.text();
                // The last time the order was sent, acknowledged if it was.
                let items: Vec<(u16, &Value)> = got
                    .iter()
                    .zip(&orders)
                    .flat_map(|(r, os)| {
                        os.iter()
                            .filter(|(k, _, _)| *k == key)
                            .map(move |(_, _, item)| (r.status, *item))
                    })
                    .collect();
                let item = items
                    .iter()
                    .rev()
                    .find(|(s, _)| (200..300).contains(s))
                    .or(items.last())
                    .map(|(_, v)| *v);
                (item, format!("order {key}"))
            }
            (None, Some(n)) => (got.get(n - 1).map(|r| &r.body), format!("request {n}")),
            (None, None) => continue,
        };
        let Some(target) = target else {
            checks.fail(&field, format!("{label}: {what} was not sent"), "");
            continue;
        };
        let actual = target.pointer(&f.pointer).cloned().unwrap_or(Value::Null);
        if actual != f.equals {
            checks.fail(
                &field,
                format!(
                    "{label}: {what} {}: expected {}, got {}",
                    f.pointer, f.equals, actual
                ),
                "",
            );
        }
    }
    if let Some(file) = &e.snapshot {
        let path = PathBuf::from(crate::pipeline::resolve_location(&t.dir, file));
        checks.snapshot(&format!("{at}.snapshot"), &path, &snapshot_of(got));
    }
    if let Some(c) = &e.cursor {
        let want_ms = chrono::DateTime::parse_from_rfc3339(&c.at)
            .map(|d| d.timestamp_millis())
            .unwrap_or_default();
        let want = format!("({}, {})", format_ms(want_ms), c.key.text());
        let have = match &after.cursor {
            Some((ms, key)) => format!("({}, {key})", format_ms(*ms)),
            None => "no cursor".into(),
        };
        checks.same(
            &format!("{at}.cursor"),
            &format!("{label}: cursor"),
            want.as_str(),
            have.as_str(),
        );
    }
    if let Some(n) = e.backlog {
        checks.same(
            &format!("{at}.backlog"),
            &format!("{label}: backlog"),
            &n,
            &after.backlog,
        );
    }
    if let Some(dead) = &e.dead_letters {
        let expected: BTreeSet<String> =
            dead.iter().map(|(k, s)| format!("{k}: HTTP {s}")).collect();
        let actual: BTreeSet<String> = after
            .dead
            .iter()
            .map(|(k, s)| match s {
                Some(s) => format!("{k}: HTTP {s}"),
                None => format!("{k}: no status"),
            })
            .collect();
        checks.set(
            &format!("{at}.dead_letters"),
            &format!("{label}: dead letters"),
            &expected,
            &actual,
        );
    }
    if let Some(want) = e.outcome {
        let have = match summary.outcome() {
            RunOutcome::Ok => RunEnd::Ok,
            RunOutcome::Incomplete => RunEnd::Incomplete,
            RunOutcome::Refused => RunEnd::Refused,
        };
        if want != have {
            checks.fail(
                &format!("{at}.outcome"),
                format!(
                    "{label}: outcome: expected {want:?}, got {have:?} ({})",
                    summary.line()
                ),
                "",
            );
        }
    }
}
