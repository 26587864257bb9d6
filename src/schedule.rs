//! `schedule`: a long-running process that runs each pipeline at its own interval, never overlapping a pipeline with itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// A scheduled job's one run; resolves to a one-line outcome for the log.
pub type RunFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// One pipeline under the scheduler.
pub struct Job {
    /// Name for the log.
    pub name: String,
    /// Time between runs.
    pub interval: Duration,
    /// What one run does.
    pub run: RunFn,
}

/// Where the scheduler's lines go: each run's outcome, each skipped tick.
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// Counters, for tests and the final log line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Runs started.
    pub started: AtomicU64,
    /// Ticks skipped because the previous run was still going.
    pub skipped: AtomicU64,
}

/// Time as the scheduler sees it: an offset from its start.
pub trait Clock: Send + Sync {
    /// Time since the scheduler started.
    fn now(&self) -> Duration;
    /// Resolve once `now() >= at`.
    fn sleep_until(&self, at: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real monotonic clock.
pub struct SystemClock(Instant);

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep_until(self.0 + at))
    }
}

/// A clock that only moves when told to (for tests of the schedule itself).
pub struct ManualClock(watch::Sender<Duration>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self(watch::channel(Duration::ZERO).0)
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        self.0.send_modify(|t| *t += by);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.borrow()
    }

    fn sleep_until(&self, at: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            loop {
                // Copy the time out: a borrow held across the await would
                // block `advance`.
                let now = *rx.borrow_and_update();
                if now >= at || rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

/// Clears a job's running flag when dropped.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Run `jobs` until `shutdown` turns true; then wait for runs in progress.
///
/// Each job first runs at start, then every `interval`. A tick that comes
/// while the job's previous run is still going is skipped and logged, never
/// queued. Ticks missed while the process could not run (a suspended machine,
/// a long stall) collapse into one run, then the schedule continues from now.
pub async fn run(
    jobs: Vec<Job>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
    counters: Arc<Counters>,
    say: Say,
) {
    let mut next: Vec<Duration> = jobs.iter().map(|_| clock.now()).collect();
    let running: Vec<Arc<AtomicBool>> = jobs
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(wake) = next.iter().min().copied() {
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
            _ = clock.sleep_until(wake) => {}
        }
        if *shutdown.borrow() {
            break;
        }
        let now = clock.now();
        for (i, job) in jobs.iter().enumerate() {
            if next[i] > now {
                continue;
            }
            if running[i].swap(true, Ordering::SeqCst) {
                counters.skipped.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(pipeline = %job.name, "skipped: the previous run is still going");
                say(&format!("{}: skipped, previous run still going", job.name));
            } else {
                counters.started.fetch_add(1, Ordering::SeqCst);
                let (flag, run, name) = (running[i].clone(), job.run.clone(), job.name.clone());
                let say = say.clone();
                tasks.spawn(async move {
                    // The flag is cleared however the run ends, and a run
                    // that panics is reported; the next tick runs again.
                    let _reset = ClearOnDrop(flag);
                    let line = match tokio::spawn(run()).await {
                        Ok(line) => line,
                        Err(e) => {
                            tracing::error!(pipeline = %name, error = %e, "run failed: internal error");
                            format!("run failed: internal error ({e}); the next tick runs again")
                        }
                    };
                    // Run summaries usually start with the pipeline's name.
                    if line.starts_with(name.as_str()) {
                        say(&line);
                    } else {
                        say(&format!("{name}: {line}"));
                    }
                });
            }
            // Next tick after now: missed ticks are not replayed one by one.
            while next[i] <= now {
                next[i] += job.interval;
            }
        }
        // Reap finished runs so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!("shutting down: waiting for runs in progress");
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(
        clock: &Arc<ManualClock>,
        name: &str,
        interval: Duration,
        took: Duration,
        count: Arc<AtomicU64>,
        overlap: Arc<AtomicBool>,
    ) -> Job {
        let busy = Arc::new(AtomicBool::new(false));
        let clock = clock.clone();
        Job {
            name: name.into(),
            interval,
            run: Arc::new(move || {
                let (count, busy, overlap, clock) =
                    (count.clone(), busy.clone(), overlap.clone(), clock.clone());
                Box::pin(async move {
                    if busy.swap(true, Ordering::SeqCst) {
                        overlap.store(true, Ordering::SeqCst);
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let until = clock.now() + took;
                    clock.sleep_until(until).await;
                    busy.store(false, Ordering::SeqCst);
                    "ok".to_string()
                })
            }),
        }
    }

    /// Drive the manual clock one second at a time for `secs`, letting every
    /// task react to each step, then shut down.
    async fn drive(
        clock: &ManualClock,
        secs: u64,
        tx: watch::Sender<bool>,
        handle: tokio::task::JoinHandle<()>,
    ) {
        for _ in 0..secs {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            clock.advance(Duration::from_secs(1));
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tx.send(true).unwrap();
        // Runs still going finish when time moves on; no new run starts.
        for _ in 0..1000 {
            if handle.is_finished() {
                break;
            }
            clock.advance(Duration::from_secs(1));
            tokio::task::yield_now().await;
        }
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn one_minute_interval_runs_on_every_tick() {
        let clock = Arc::new(ManualClock::new());
        let count = Arc::new(AtomicU64::new(0));
        let overlap = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = watch::channel(false);
        let jobs = vec![job(
            &clock,
            "p",
            Duration::from_secs(60),
            Duration::from_secs(5),
            count.clone(),
            overlap.clone(),
        )];
        let handle = tokio::spawn(run(
            jobs,
            clock.clone(),
            rx,
            counters.clone(),
            Arc::new(|_| {}),
        ));
        // Ticks at 0, 60, ..., 600 s: eleven runs in 630 s.
        drive(&clock, 630, tx, handle).await;
        assert_eq!(count.load(Ordering::SeqCst), 11);
        assert_eq!(counters.skipped.load(Ordering::SeqCst), 0);
        assert!(!overlap.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_run_that_panics_does_not_stop_its_pipeline_from_running_again() {
        let clock = Arc::new(ManualClock::new());
        let count = Arc::new(AtomicU64::new(0));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = watch::channel(false);
        let runs = count.clone();
        let jobs = vec![Job {
            name: "panics".into(),
            interval: Duration::from_secs(60),
            run: Arc::new(move || {
                let runs = runs.clone();
                Box::pin(async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("first run panics");
                    }
                    "ok".to_string()
                })
            }),
        }];
        let handle = tokio::spawn(run(
            jobs,
            clock.clone(),
            rx,
            counters.clone(),
            Arc::new(|_| {}),
        ));
        drive(&clock, 130, tx, handle).await;
        assert_eq!(count.load(Ordering::SeqCst), 3, "runs at 0, 60 and 120 s");
        assert_eq!(counters.skipped.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn slow_run_skips_ticks_instead_of_overlapping() {
        let clock = Arc::new(ManualClock::new());
        let count = Arc::new(AtomicU64::new(0));
        let overlap = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = watch::channel(false);
        // Each run takes 90 s with a 60 s interval.
        let jobs = vec![job(
            &clock,
            "slow",
            Duration::from_secs(60),
            Duration::from_secs(90),
            count.clone(),
            overlap.clone(),
        )];
        let handle = tokio::spawn(run(
            jobs,
            clock.clone(),
            rx,
            counters.clone(),
            Arc::new(|_| {}),
        ));
        drive(&clock, 601, tx, handle).await;
        assert!(
            !overlap.load(Ordering::SeqCst),
            "a pipeline never overlaps itself"
        );
        // Ticks at 0..=600 s: runs start at 0, 120, 240, 360, 480, 600; the odd minutes are skipped.
        assert_eq!(count.load(Ordering::SeqCst), 6);
        assert_eq!(counters.skipped.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn pipelines_keep_their_own_intervals_and_stalls_collapse() {
        let clock = Arc::new(ManualClock::new());
        let a = Arc::new(AtomicU64::new(0));
        let b = Arc::new(AtomicU64::new(0));
        let overlap = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(false);
        let jobs = vec![
            job(
                &clock,
                "a",
                Duration::from_secs(60),
                Duration::from_secs(1),
                a.clone(),
                overlap.clone(),
            ),
            job(
                &clock,
                "b",
                Duration::from_secs(15 * 60),
                Duration::from_secs(1),
                b.clone(),
                overlap.clone(),
            ),
        ];
        let handle = tokio::spawn(run(
            jobs,
            clock.clone(),
            rx,
            Arc::new(Counters::default()),
            Arc::new(|_| {}),
        ));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        // The first runs finish after a second.
        clock.advance(Duration::from_secs(1));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        // A 30-minute stall (machine asleep): one catch-up run each, not thirty.
        clock.advance(Duration::from_secs(30 * 60));
        drive(&clock, 10, tx, handle).await;
        assert_eq!(a.load(Ordering::SeqCst), 2);
        assert_eq!(b.load(Ordering::SeqCst), 2);
    }
}
