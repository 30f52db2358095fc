//! The `restore-operator` binary: parses the command line and hands over to the library.
//! Start-up only: crypto provider, logging, runtime.

use std::process::ExitCode;

use clap::Parser;
use restore_operator::cli::{self, Cli};

/// mimalloc: the preview and the controller allocate many small JSON nodes, which the platform's
/// malloc (glibc, musl in the image) served slowly (docs/performance.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    restore_operator::tls::install_crypto_provider();
    // The controller logs its work; the interactive commands print their own progress.
    let default_level = if matches!(cli.command, cli::Command::Run(_)) { "info" } else { "warn" };
    restore_operator::telemetry::init(cli.log_format, default_level);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", restore_core::terminal::escape_text(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
