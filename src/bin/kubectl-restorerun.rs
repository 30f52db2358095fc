//! The `kubectl-restorerun` kubectl plugin binary (`kubectl restorerun show|approve NAME`).
//! Start-up only; the logic is in `restore_operator::plugin`.

use std::process::ExitCode;

use clap::Parser;
use restore_operator::plugin::{self, PluginCli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = PluginCli::parse();
    restore_operator::tls::install_crypto_provider();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    match plugin::run(cli, &mut input, &mut output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
