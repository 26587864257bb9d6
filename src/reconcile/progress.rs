//! Progress of a long check: each step as it starts, with the time so far.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Told the name of each step as it starts; `"done"` ends the run.
pub type Steps = Arc<dyn Fn(&str) + Send + Sync>;

/// Steps that are not shown.
pub fn silent() -> Steps {
    Arc::new(|_| {})
}

/// A spinner with the current step and the elapsed time on a terminal;
/// elsewhere one line per step on stderr, with the seconds since the start.
pub fn reporter(label: &str) -> Steps {
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
