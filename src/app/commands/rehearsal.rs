//! `demo`, `gen` and `sandbox-crm`: the rehearsal tools.

use crate::app::args::{DemoArgs, GenArgs, SandboxArgs, SandboxCommand};
use crate::app::error::AppError;
use crate::app::exit;
use crate::app::terminal::{runtime, say, wait_for_signal};
use crate::rehearsal::{demo, generate, sandbox};

/// `demo`: the whole job on sample data; exit 0 when the final check is clean.
pub fn demo(args: &DemoArgs) -> Result<u8, AppError> {
    // The sink reads its signing secret from the environment, as in
    // production; set it while the process is still single-threaded.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var(demo::SECRET_ENV, demo::SECRET) };
    let options = demo::DemoOptions {
        dir: args.dir.clone(),
        orders: args.orders,
    };
    let outcome = runtime()?.block_on(demo::run(&options, &say))?;
    Ok(exit::of_check(&outcome))
}

/// `gen`: sample S-360 (and CRM) exports.
pub fn generate(args: &GenArgs) -> Result<u8, AppError> {
    let summary = generate::run(&args.options()).map_err(AppError::failure)?;
    println!("{summary}");
    Ok(exit::OK)
}

/// `sandbox-crm`: serve until Ctrl-C or SIGTERM, or `export`.
pub fn sandbox_crm(args: SandboxArgs) -> Result<u8, AppError> {
    runtime()?.block_on(async {
        if let Some(SandboxCommand::Export { db, out }) = &args.command {
            let (db, out) = (db.clone(), out.clone());
            let rows = {
                let out = out.clone();
                tokio::task::spawn_blocking(move || sandbox::export(&db, &out))
                    .await
                    .map_err(sandbox::SandboxError::Task)??
            };
            println!("wrote {rows} row(s) to {}", out.display());
            return Ok(exit::OK);
        }
        let running = sandbox::start(args.config(), args.listen).await?;
        // The URL first, alone on its line, so scripts can read it.
        {
            use std::io::Write;
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "{}", running.url());
            let _ = stdout.flush();
        }
        wait_for_signal().await;
        tracing::info!("shutting down the sandbox CRM");
        running.shutdown().await;
        Ok(exit::OK)
    })
}
