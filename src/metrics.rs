//! Runs' metrics in the Prometheus text format, for node-exporter's textfile collector (`run --metrics-file`, `reconcile --metrics-file`) and the endpoint of `schedule --metrics`: how the last sync run ended, what it detected and delivered, the backlog and dead letters, when a run last succeeded; how the last check ended and its keys by category; and, for `schedule`, runs by outcome and a histogram of run durations.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::reconcile::{Category, Counts};
use crate::state::Status;
use crate::sync::RunSummary;

/// Every way a run can end, as the `outcome` label says it.
pub const OUTCOMES: [&str; 4] = ["ok", "refused", "incomplete", "failed"];

/// Every way a check can end, as the `outcome` label says it.
pub const CHECK_OUTCOMES: [&str; 3] = ["passed", "exceeded", "failed"];

/// Upper bounds of the run duration histogram, in seconds: from half a
/// second to an hour (an initial import's drain can run that long).
pub const DURATION_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The last check of one reconcile pipeline, as the metrics tell it.
#[derive(Debug, Clone)]
pub struct LastCheck {
    /// Pipeline name.
    pub pipeline: String,
    /// One of [`CHECK_OUTCOMES`].
    pub outcome: &'static str,
    /// When it ended, UNIX seconds.
    pub finished_at: f64,
    /// Its wall time, in seconds.
    pub seconds: f64,
    /// Its counts; none when it failed.
    pub counts: Option<Counts>,
}

/// Run durations by pipeline.
type Durations = Family<Labels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// What a long-running `schedule` knows of its runs: the last run of each
/// pipeline, the runs by outcome and their durations since it started.
pub struct Board {
    runs: BTreeMap<String, LastRun>,
    checks: BTreeMap<String, LastCheck>,
    totals: BTreeMap<(String, &'static str), u64>,
    durations: Durations,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            runs: BTreeMap::new(),
            checks: BTreeMap::new(),
            totals: BTreeMap::new(),
            durations: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl Board {
    /// A pipeline the process will run, with the outcomes its runs can have
    /// ([`OUTCOMES`] or [`CHECK_OUTCOMES`]): each count is served from 0
    /// before its first run, so `increase()` sees the first failure too.
    pub fn expect(&mut self, pipeline: &str, outcomes: &[&'static str]) {
        for o in outcomes {
            self.totals.entry((pipeline.to_string(), o)).or_default();
        }
    }

    /// A sync run that ended, which took `seconds`.
    pub fn record_run(&mut self, run: LastRun, seconds: f64) {
        self.count(&run.pipeline, run.outcome, seconds);
        self.runs.insert(run.pipeline.clone(), run);
    }

    /// A check that ended.
    pub fn record_check(&mut self, check: LastCheck) {
        self.count(&check.pipeline, check.outcome, check.seconds);
        self.checks.insert(check.pipeline.clone(), check);
    }

    fn count(&mut self, pipeline: &str, outcome: &'static str, seconds: f64) {
        *self
            .totals
            .entry((pipeline.to_string(), outcome))
            .or_default() += 1;
        self.durations
            .get_or_create(&vec![("pipeline".to_string(), pipeline.to_string())])
            .observe(seconds);
    }

    /// The metrics text.
    pub fn text(&self) -> String {
        let runs: Vec<_> = self.runs.values().cloned().collect();
        let checks: Vec<_> = self.checks.values().cloned().collect();
        encode_all(&runs, &checks, &self.totals, Some(&self.durations))
    }
}

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
    /// When a run last ended ok, UNIX seconds, where no status tells it
    /// (a pipeline file that did not load).
    pub last_success: Option<f64>,
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
            last_success: None,
        }],
        &BTreeMap::new(),
    )
}

/// The metrics of a run whose pipeline file (named `stem`) did not load,
/// which ended at `finished_at`: `failed`, under the pipeline name and with
/// the last success of `previous`, the metrics file it replaces (the
/// state's path is in the file that did not load), so that neither series
/// breaks off when the pipeline file is broken.
pub fn unloaded_textfile(previous: Option<&str>, stem: &str, finished_at: f64) -> String {
    const SUCCESS: &str = "s360_sync_last_success_timestamp_seconds{";
    let label = |line: &str| {
        let from = line.find("pipeline=\"")? + "pipeline=\"".len();
        let len = line[from..].find('"')?;
        Some(line[from..from + len].to_string())
    };
    let lines = || {
        previous
            .unwrap_or("")
            .lines()
            .filter(|l| !l.starts_with('#'))
    };
    // A metrics file of one pipeline (a textfile), else the stem.
    let mut names: Vec<String> = lines().filter_map(label).collect();
    names.sort_unstable();
    names.dedup();
    let pipeline = match names.as_slice() {
        [one] => one.clone(),
        _ => stem.to_string(),
    };
    let last_success = lines()
        .filter(|l| l.starts_with(SUCCESS) && label(l).as_deref() == Some(pipeline.as_str()))
        .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    encode_all(
        &[LastRun {
            pipeline,
            outcome: "failed",
            finished_at,
            summary: None,
            status: None,
            last_success,
        }],
        &[],
        &BTreeMap::new(),
        None,
    )
}

/// The metrics of one check, for `reconcile --metrics-file`.
pub fn check_textfile(check: LastCheck) -> String {
    encode_all(&[], &[check], &BTreeMap::new(), None)
}

/// The metrics of the last run of each pipeline, and (for a long-running
/// `schedule`) the runs counted since it started, by pipeline and outcome.
pub fn render(runs: &[LastRun], totals: &BTreeMap<(String, &'static str), u64>) -> String {
    encode_all(runs, &[], totals, None)
}

fn encode_all(
    runs: &[LastRun],
    checks: &[LastCheck],
    totals: &BTreeMap<(String, &'static str), u64>,
    durations: Option<&Durations>,
) -> String {
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
        }
        let last_ok = match &r.status {
            Some(st) => st
                .last_success
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis() as f64 / 1000.0),
            None => r.last_success,
        };
        if let Some(t) = last_ok {
            success.push((labels(None), t));
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
        "When a run last ended ok (UNIX time)",
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
        registry.register(
            "runs",
            "Runs since this process started, by outcome (a check's: passed, exceeded, failed)",
            c,
        );
    }
    if let Some(d) = durations {
        registry.register(
            "run_duration_seconds",
            "Wall time of the runs since this process started",
            d.clone(),
        );
    }
    check_metrics(&mut registry, checks);
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

/// The last check of each reconcile pipeline: when and how it ended, how
/// long it took, and its keys by category.
fn check_metrics(registry: &mut Registry, checks: &[LastCheck]) {
    let labels = |c: &LastCheck, extra: Option<(&str, &str)>| -> Labels {
        let mut l = vec![("pipeline".to_string(), c.pipeline.clone())];
        l.extend(extra.map(|(k, v)| (k.to_string(), v.to_string())));
        l
    };
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut at = Vec::new();
    let mut outcome = Vec::new();
    let mut duration = Vec::new();
    let mut keys = Vec::new();
    for c in checks {
        at.push((labels(c, None), c.finished_at));
        duration.push((labels(c, None), c.seconds));
        for o in CHECK_OUTCOMES {
            outcome.push((labels(c, Some(("outcome", o))), i64::from(o == c.outcome)));
        }
        if let Some(counts) = &c.counts {
            keys.push((labels(c, Some(("category", "matched"))), n(counts.matched)));
            for cat in Category::ALL {
                keys.push((
                    labels(c, Some(("category", cat.as_str()))),
                    n(counts.get(cat)),
                ));
            }
        }
    }
    seconds(
        registry,
        "last_check_timestamp_seconds",
        "When the last check ended (UNIX time)",
        at,
    );
    counts(
        registry,
        "last_check_outcome",
        "How the last check ended: 1 for its outcome, 0 for the others",
        outcome,
    );
    seconds(
        registry,
        "last_check_duration_seconds",
        "Wall time of the last check",
        duration,
    );
    counts(
        registry,
        "last_check_keys",
        "Keys of the last check, by category (matched and each discrepancy)",
        keys,
    );
}
