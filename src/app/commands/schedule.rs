//! `schedule`: every pipeline at its interval until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{cancel_on_signal, runtime, say};
use crate::pipeline::{self, PipelineSpec};
use crate::schedule::{self as scheduler, Counters, Job, RunFn, SystemClock};
use tokio::sync::watch;

use crate::metrics::{Board, LastCheck};

/// `schedule PATHS...`: load pipelines and run them until SIGTERM.
pub fn schedule(paths: Vec<PathBuf>, metrics: Option<SocketAddr>) -> Result<u8, AppError> {
    if let Some(addr) = metrics
        && !addr.ip().is_loopback()
    {
        return Err(AppError::usage(format!(
            "--metrics {addr}: serve metrics on a loopback address (127.0.0.1:PORT), behind the host's own exporter or proxy"
        )));
    }
    let board = Arc::new(Mutex::new(Board::default()));
    let paths = if paths.is_empty() {
        vec![PathBuf::from("pipelines")]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| AppError::usage(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let mut jobs = Vec::new();
    for f in &files {
        let p = Arc::new(pipeline::load(f)?);
        let (interval, run): (Duration, RunFn) = match &p.spec {
            PipelineSpec::Sync(s) => {
                let p = p.clone();
                if let Ok(mut b) = board.lock() {
                    b.expect(p.name(), &crate::metrics::OUTCOMES);
                }
                let board = board.clone();
                (
                    s.schedule.interval.get(),
                    Arc::new(move || {
                        let (p, board) = (p.clone(), board.clone());
                        Box::pin(async move {
                            let started = std::time::Instant::now();
                            let result =
                                crate::sync::run(&p, crate::sync::RunOptions::default()).await;
                            let status = crate::sync::status(&p).await.ok().flatten();
                            let outcome = match &result {
                                Ok(s) => s.outcome().as_str(),
                                Err(_) => "failed",
                            };
                            let last = crate::metrics::LastRun {
                                pipeline: p.name().to_string(),
                                outcome,
                                finished_at: chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
                                summary: result.as_ref().ok().cloned(),
                                status,
                                last_success: None,
                            };
                            if let Ok(mut b) = board.lock() {
                                b.record_run(last, started.elapsed().as_secs_f64());
                            }
                            match result {
                                Ok(s) => s.line(),
                                Err(e) => format!("failed: {e}"),
                            }
                        })
                    }),
                )
            }
            PipelineSpec::Reconcile(r) => match &r.schedule {
                None => continue,
                Some(s) => {
                    let p = p.clone();
                    if let Ok(mut b) = board.lock() {
                        b.expect(p.name(), &crate::metrics::CHECK_OUTCOMES);
                    }
                    let board = board.clone();
                    (
                        s.interval.get(),
                        Arc::new(move || {
                            let (p, board) = (p.clone(), board.clone());
                            Box::pin(async move {
                                let started = std::time::Instant::now();
                                let result = crate::reconcile::run(&p, &Default::default()).await;
                                if let Ok(mut b) = board.lock() {
                                    b.record_check(last_check(
                                        p.name(),
                                        result.as_ref().ok(),
                                        started,
                                    ));
                                }
                                match result {
                                    Ok(o) => {
                                        o.human().lines().next().unwrap_or_default().to_string()
                                    }
                                    Err(e) => format!("failed: {e}"),
                                }
                            })
                        }),
                    )
                }
            },
        };
        jobs.push(Job {
            name: p.name().to_string(),
            interval,
            run,
        });
    }
    if jobs.is_empty() {
        return Err(AppError::usage(
            "no pipeline to schedule (sync pipelines, or reconcile pipelines with a `schedule`)",
        ));
    }
    runtime()?.block_on(async {
        let (tx, rx) = watch::channel(false);
        if let Some(addr) = metrics {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AppError::usage(format!("--metrics {addr}: {e}")))?;
            let board = board.clone();
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let board = board.clone();
                    async move {
                        let text = board.lock().map(|b| b.text()).unwrap_or_default();
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            text,
                        )
                    }
                }),
            );
            let mut stop = rx.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            });
            println!("metrics at http://{addr}/metrics");
        }
        cancel_on_signal(tx);
        for j in &jobs {
            println!(
                "scheduled {} every {}",
                j.name,
                crate::pipeline::HumanDuration(j.interval)
            );
        }
        scheduler::run(
            jobs,
            Arc::new(SystemClock::new()),
            rx,
            Arc::new(Counters::default()),
            Arc::new(say),
        )
        .await;
        Ok::<(), AppError>(())
    })?;
    Ok(exit::OK)
}

/// How a check that started at `started` ended (`None`: it failed), for
/// the metrics.
pub(crate) fn last_check(
    pipeline: &str,
    outcome: Option<&crate::reconcile::Outcome>,
    started: std::time::Instant,
) -> LastCheck {
    let (outcome, counts) = match outcome {
        Some(o) if o.summary.passed => ("passed", Some(o.summary.counts)),
        Some(o) => ("exceeded", Some(o.summary.counts)),
        None => ("failed", None),
    };
    LastCheck {
        pipeline: pipeline.to_string(),
        outcome,
        finished_at: chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
        seconds: started.elapsed().as_secs_f64(),
        counts,
    }
}
