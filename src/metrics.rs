//! Sync runs' metrics in the Prometheus text format, for node-exporter's textfile collector (`run --metrics-file`) and the endpoint of `schedule --metrics`: how the last run ended, what it detected and delivered, the backlog and dead letters, when a run last succeeded, and runs by outcome.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::Status;
use crate::sync::RunSummary;

/// Every way a run can end, as the `outcome` label says it.
pub const OUTCOMES: [&str; 4] = ["ok", "refused", "incomplete", "failed"];

type Labels = Vec<(String, String)>;

/// The last run of one pipeline, as the metrics tell it.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// Pipeline name.
    pub pipeline: String,
    /// One of [`OUTCOMES`].
    pub outcome: &'static str,
    /// When it ended, UNIX seconds.
    pub finished_at: f64,
    /// Its summary; none when the run failed before it had one.
    pub summary: Option<RunSummary>,
    /// The state's status after it, if there is a state.
    pub status: Option<Status>,
}

/// The metrics of one run of `pipeline` that ended at `finished_at` (UNIX
/// seconds) with `outcome` (one of [`OUTCOMES`]), its summary (none when
/// the run failed before it had one) and the state's status after it.
pub fn textfile(
    pipeline: &str,
    outcome: &'static str,
    finished_at: f64,
    summary: Option<&RunSummary>,
    status: Option<&Status>,
) -> String {
    render(
        &[LastRun {
            pipeline: pipeline.to_string(),
            outcome,
            finished_at,
            summary: summary.cloned(),
            status: status.cloned(),
        }],
        &BTreeMap::new(),
    )
}

/// The metrics of the last run of each pipeline, and (for a long-running
/// `schedule`) the runs counted since it started, by pipeline and outcome.
pub fn render(runs: &[LastRun], totals: &BTreeMap<(String, &'static str), u64>) -> String {
    let mut registry = Registry::with_prefix("s360_sync");
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut at = Vec::new();
    let mut outcome = Vec::new();
    let mut duration = Vec::new();
    let mut orders = Vec::new();
    let mut retries = Vec::new();
    let mut backlog = Vec::new();
    let mut dead = Vec::new();
    let mut success = Vec::new();
    for r in runs {
        let labels = |extra: Option<(&str, &str)>| -> Labels {
            let mut l = vec![("pipeline".to_string(), r.pipeline.clone())];
            l.extend(extra.map(|(k, v)| (k.to_string(), v.to_string())));
            l
        };
        at.push((labels(None), r.finished_at));
        for o in OUTCOMES {
            outcome.push((labels(Some(("outcome", o))), i64::from(o == r.outcome)));
        }
        if let Some(s) = &r.summary {
            let d = &s.delivery;
            duration.push((labels(None), s.duration_ms as f64 / 1000.0));
            for (stage, v) in [
                ("detected", s.detection.changes()),
                ("sent", d.sent),
                ("acknowledged", d.acknowledged),
                ("dead_lettered", d.dead_lettered),
            ] {
                orders.push((labels(Some(("stage", stage))), n(v)));
            }
            retries.push((labels(None), n(d.retried)));
        }
        if let Some(st) = &r.status {
            backlog.push((labels(None), n(st.backlog)));
            dead.push((labels(None), n(st.dead_letters)));
            let last_ok = st
                .last_runs
                .iter()
                .filter(|r| r.outcome == "ok")
                .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.finished_at).ok())
                .map(|t| t.timestamp_millis() as f64 / 1000.0)
                .reduce(f64::max);
            if let Some(t) = last_ok {
                success.push((labels(None), t));
            }
        }
    }
    seconds(
        &mut registry,
        "last_run_timestamp_seconds",
        "When the last run ended (UNIX time)",
        at,
    );
    counts(
        &mut registry,
        "last_run_outcome",
        "How the last run ended: 1 for its outcome, 0 for the others",
        outcome,
    );
    seconds(
        &mut registry,
        "last_run_duration_seconds",
        "Wall time of the last run",
        duration,
    );
    counts(
        &mut registry,
        "last_run_orders",
        "Orders of the last run, by stage",
        orders,
    );
    counts(
        &mut registry,
        "last_run_retries",
        "Requests of the last run sent again after a transient failure",
        retries,
    );
    counts(
        &mut registry,
        "backlog_orders",
        "Orders queued for the CRM",
        backlog,
    );
    counts(
        &mut registry,
        "dead_letters",
        "Orders the CRM refused, kept as dead letters",
        dead,
    );
    seconds(
        &mut registry,
        "last_success_timestamp_seconds",
        "When a recent run last ended ok (UNIX time)",
        success,
    );
    if !totals.is_empty() {
        let c = Family::<Labels, Counter>::default();
        for ((pipeline, outcome), v) in totals {
            c.get_or_create(&vec![
                ("pipeline".to_string(), pipeline.clone()),
                ("outcome".to_string(), outcome.to_string()),
            ])
            .inc_by(*v);
        }
        registry.register("runs", "Runs since this process started, by outcome", c);
    }
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &registry);
    // The textfile collector reads the Prometheus text format, which has no
    // OpenMetrics end marker.
    out.trim_end()
        .strip_suffix("# EOF")
        .unwrap_or(&out)
        .trim_end()
        .to_string()
        + "\n"
}

/// A gauge of seconds (or another fraction) per label set; none when empty.
fn seconds(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, f64)>) {
    if values.is_empty() {
        return;
    }
    let g = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (labels, v) in values {
        g.get_or_create(&labels).set(v);
    }
    registry.register(name, help, g);
}

/// A gauge of whole numbers per label set; none when empty.
fn counts(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, i64)>) {
    if values.is_empty() {
        return;
    }
    let g = Family::<Labels, Gauge>::default();
    for (labels, v) in values {
        g.get_or_create(&labels).set(v);
    }
    registry.register(name, help, g);
}
