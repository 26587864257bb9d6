//! A sync run's metrics in the Prometheus text format, for node-exporter's textfile collector (`run --metrics-file`): how the last run ended, what it detected and delivered, the backlog and dead letters, and when a run last succeeded.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::Status;
use crate::sync::RunSummary;

/// Every way a run can end, as the `outcome` label says it.
pub const OUTCOMES: [&str; 4] = ["ok", "refused", "incomplete", "failed"];

type Labels = Vec<(String, String)>;

/// The metrics of one run of `pipeline` that ended at `finished_at` (UNIX
/// seconds) with `outcome` (one of [`OUTCOMES`]), its summary (none when
/// the run failed before it had one) and the state's status after it.
pub fn textfile(
    pipeline: &str,
    outcome: &str,
    finished_at: f64,
    summary: Option<&RunSummary>,
    status: Option<&Status>,
) -> String {
    let mut registry = Registry::with_prefix("s360_sync");
    let labels = |extra: Option<(&str, &str)>| -> Labels {
        let mut l = vec![("pipeline".to_string(), pipeline.to_string())];
        l.extend(extra.map(|(k, v)| (k.to_string(), v.to_string())));
        l
    };
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    seconds(
        &mut registry,
        "last_run_timestamp_seconds",
        "When the last run ended (UNIX time)",
        labels(None),
        finished_at,
    );
    counts(
        &mut registry,
        "last_run_outcome",
        "How the last run ended: 1 for its outcome, 0 for the others",
        OUTCOMES
            .iter()
            .map(|o| (labels(Some(("outcome", o))), i64::from(*o == outcome)))
            .collect(),
    );
    if let Some(s) = summary {
        let d = &s.delivery;
        seconds(
            &mut registry,
            "last_run_duration_seconds",
            "Wall time of the last run",
            labels(None),
            s.duration_ms as f64 / 1000.0,
        );
        counts(
            &mut registry,
            "last_run_orders",
            "Orders of the last run, by stage",
            [
                ("detected", s.detection.changes()),
                ("sent", d.sent),
                ("acknowledged", d.acknowledged),
                ("dead_lettered", d.dead_lettered),
            ]
            .into_iter()
            .map(|(stage, v)| (labels(Some(("stage", stage))), n(v)))
            .collect(),
        );
        counts(
            &mut registry,
            "last_run_retries",
            "Requests of the last run sent again after a transient failure",
            vec![(labels(None), n(d.retried))],
        );
    }
    if let Some(st) = status {
        counts(
            &mut registry,
            "backlog_orders",
            "Orders queued for the CRM",
            vec![(labels(None), n(st.backlog))],
        );
        counts(
            &mut registry,
            "dead_letters",
            "Orders the CRM refused, kept as dead letters",
            vec![(labels(None), n(st.dead_letters))],
        );
        let last_ok = st
            .last_runs
            .iter()
            .filter(|r| r.outcome == "ok")
            .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.finished_at).ok())
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
            .reduce(f64::max);
        if let Some(t) = last_ok {
            seconds(
                &mut registry,
                "last_success_timestamp_seconds",
                "When a recent run last ended ok (UNIX time)",
                labels(None),
                t,
            );
        }
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

/// A gauge of seconds (or another fraction) with one label set.
fn seconds(registry: &mut Registry, name: &str, help: &str, labels: Labels, value: f64) {
    let g = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    g.get_or_create(&labels).set(value);
    registry.register(name, help, g);
}

/// A gauge of whole numbers, one value per label set.
fn counts(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, i64)>) {
    let g = Family::<Labels, Gauge>::default();
    for (labels, v) in values {
        g.get_or_create(&labels).set(v);
    }
    registry.register(name, help, g);
}
