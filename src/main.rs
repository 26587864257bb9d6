//! The `s360-sync` binary: parse arguments, run, print the error chain once, exit with a typed code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = <s360_sync::cli::Cli as clap::Parser>::parse();
    match s360_sync::cli::run(cli) {
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
