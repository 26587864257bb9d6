//! The `s360-sync` binary: parse arguments, run, print the error chain once, exit with a typed code.

use std::process::ExitCode;

/// jemalloc instead of the system allocator: Polars allocates and frees many
/// short-lived buffers, and glibc's malloc cost the consistency check 10% to
/// 30% of its time (measured, `docs/ARCHITECTURE.md`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One jemalloc arena per CPU rather than four: on two cores this kept the
/// peak of a check in 8 partitions at 1M rows at 339 MB instead of 379 MB
/// (Parquet), at the same speed.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"percpu_arena:percpu".as_ptr() });

fn main() -> ExitCode {
    let cli = <s360_sync::app::Cli as clap::Parser>::parse();
    match s360_sync::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut printed = e.error.to_string();
            eprintln!("error: {printed}");
            let mut source = std::error::Error::source(&*e.error);
            while let Some(cause) = source {
                // Messages that already quote their cause are not repeated.
                let text = cause.to_string();
                if !printed.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                printed = text;
                source = cause.source();
            }
            ExitCode::from(e.code)
        }
    }
}
