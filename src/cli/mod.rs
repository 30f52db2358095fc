//! The `restore-operator` command line: one binary, one subcommand per job.
//! Each subcommand arrives with its own issue; none pretends to work before it does.

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Restores Microsoft Intune configuration from a backup into a tenant, safely.
#[derive(Debug, Parser)]
#[command(name = "restore-operator", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "RESTORE_OPERATOR_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the RestoreRun and IntuneTenant CustomResourceDefinitions as YAML (what `crds/` holds).
    Crd,
}

/// Errors a subcommand reports to the user.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The CRDs could not be rendered.
    #[error("rendering the CRDs failed: {0}")]
    Crd(#[from] serde_yaml::Error),
    /// Writing to stdout failed.
    #[error("writing output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Crd => {
            let yaml = crate::kube::crds_yaml()?;
            std::io::stdout().lock().write_all(yaml.as_bytes())?;
            Ok(())
        }
    }
}
