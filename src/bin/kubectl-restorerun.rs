//! The `kubectl-restorerun` kubectl plugin binary (`kubectl restorerun list|show|diff|results|approve|wait`).
//! Start-up only; the logic is in `restore_operator::plugin`. Exit codes are documented there.

use std::io::IsTerminal;
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
    let terminal = output.is_terminal();
    match plugin::run(cli, &mut input, &mut output, terminal).await {
        Ok(()) => ExitCode::SUCCESS,
        // `| head` closed the pipe: the reader has what it wanted.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", restore_core::terminal::escape(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}
