//! `schedule`: every pipeline at its interval until SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{cancel_on_signal, runtime, say};
use crate::pipeline::{self, PipelineSpec};
use crate::schedule::{self as scheduler, Counters, Job, RunFn, SystemClock};
use tokio::sync::watch;

/// `schedule PATHS...`: load pipelines and run them until SIGTERM.
pub fn schedule(paths: Vec<PathBuf>) -> Result<u8, AppError> {
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
                (
                    s.schedule.interval.get(),
                    Arc::new(move || {
                        let p = p.clone();
                        Box::pin(async move {
                            match crate::sync::run(&p, crate::sync::RunOptions::default()).await {
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
                    (
                        s.interval.get(),
                        Arc::new(move || {
                            let p = p.clone();
                            Box::pin(async move {
                                match crate::reconcile::run(&p, &Default::default()).await {
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
    });
    Ok(exit::OK)
}
