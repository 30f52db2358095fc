//! The `restore-operator` binary: parses the command line and hands over to the library.
//! Start-up only: crypto provider, logging, runtime.

use std::process::ExitCode;

use clap::Parser;
use restore_operator::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    restore_operator::tls::install_crypto_provider();
    restore_operator::telemetry::init(cli.log_format);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
