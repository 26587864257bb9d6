//! The terminal and the process: logging, the runtime, signals, progress
//! bars or lines on stderr, JSON on stdout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::args::{ColorChoice, LogFormat};
use super::error::AppError;

/// Log lines on stderr, at the level `-v` asks for; `RUST_LOG` overrides.
/// Coloured only as `color` says: by default on a terminal without `NO_COLOR`.
pub fn init_logging(verbose: u8, format: LogFormat, color: ColorChoice) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The async runtime a command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AppError::failure)
}

/// One JSON document on stdout, on one line.
pub fn print_json(v: &impl serde::Serialize) -> Result<(), AppError> {
    println!("{}", serde_json::to_string(v).map_err(AppError::failure)?);
    Ok(())
}

/// A line on stdout, for the library's narrators (`demo`, `schedule`).
pub fn say(line: &str) {
    println!("{line}");
}

/// Wait for Ctrl-C or SIGTERM and flip `tx` to true.
pub fn cancel_on_signal(tx: tokio::sync::watch::Sender<bool>) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::warn!("stopping: finishing requests in flight, then committing");
        let _ = tx.send(true);
    });
}

/// A progress reporter: a bar on a terminal, plain lines otherwise.
pub fn import_progress(label: &str) -> crate::sync::drain::Progress {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} orders  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        Arc::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
    } else {
        let started = std::time::Instant::now();
        let last = Arc::new(Mutex::new(
            std::time::Instant::now() - Duration::from_secs(60),
        ));
        let label = label.to_string();
        Arc::new(move |done, total| {
            let Ok(mut last) = last.lock() else { return };
            if last.elapsed() < Duration::from_secs(2) && done < total {
                return;
            }
            *last = std::time::Instant::now();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "{label}: {done}/{total} orders, {:.0} orders/s",
                done as f64 / secs
            );
        })
    }
}

/// A spinner with the current step and the elapsed time on a terminal;
/// elsewhere one line per step on stderr, with the seconds since the start.
pub fn check_steps(label: &str) -> crate::reconcile::progress::Steps {
    use std::io::IsTerminal;
    let label = label.to_string();
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}  [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(120));
        Arc::new(move |step: &str| {
            if step == "done" {
                bar.finish_and_clear();
            } else {
                bar.set_message(step.to_string());
            }
        })
    } else {
        let started = Instant::now();
        Arc::new(move |step: &str| {
            eprintln!("{label}: {step} ({:.1} s)", started.elapsed().as_secs_f64());
        })
    }
}

/// Resolves at Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
