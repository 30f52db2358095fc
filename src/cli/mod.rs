//! The `restore-operator` command line: one binary, one subcommand per job.
//! Each subcommand arrives with its own issue; none pretends to work before it does.

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

pub mod demo;
pub mod demo_backup;
pub mod local_objects;
pub mod preview;
pub mod probe;
pub mod wizard_loop;

pub mod backup;
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
    /// Walk a RestoreRun through source, scope, checks and preview locally, from manifests, against
    /// the tenant (never writes). Exit 0: previewed; 2: blocked by findings; 1: error.
    Preview(preview::PreviewArgs),
    /// The wizard end to end in seconds: an in-process Graph simulator, a backup, drift, preview,
    /// approval with the digest, execution and a re-check. No set-up, no network beyond loopback.
    Demo(demo::DemoArgs),
    /// Run the controller (leader-elected; uses the in-cluster config or KUBECONFIG).
    Run(RunArgs),
    /// Capture a tenant into a native backup (a folder or a `.tar.gz`), deterministically.
    Backup(backup::BackupArgs),
    /// Read-only requests that check graph-sim's assumptions against a tenant; writes a
    /// transcript without tenant data (only GET and read-only `$batch`).
    Probe(probe::ProbeArgs),
}

/// Options of `restore-operator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080", env = "RESTORE_OPERATOR_LISTEN")]
    pub listen: std::net::SocketAddr,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "restore-operator-leader")]
    pub lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: POD_NAME, else the host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a leader's lease lasts without renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_seconds: u64,
    /// RestoreRuns reconciled at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Seconds one reconcile may keep executing before it hands over (progress is kept).
    #[arg(long, default_value_t = 15)]
    pub reconcile_budget_seconds: u64,
    /// Days an execution's audit record (a ConfigMap the run does not own) is kept after the run
    /// ended or was deleted.
    #[arg(long, default_value_t = 90)]
    pub audit_retention_days: u64,
    /// PEM file of extra CA certificates trusted for url sources.
    #[arg(long)]
    pub extra_ca_file: Option<std::path::PathBuf>,
    /// Delete finished RestoreRuns (Succeeded, PartiallySucceeded, Failed) this long after they
    /// finished, with their report ConfigMaps: e.g. 720h, 90d; 0s keeps them forever. Runs that a
    /// GitOps tool applied are kept; audit records are never deleted.
    #[arg(long, default_value = "0s", value_parser = crate::controller::retention::parse_history_limit)]
    pub history_limit: std::time::Duration,
    /// Read Secrets (tenant credentials) only in these namespaces (repeat the flag); default: the
    /// watched namespaces. The chart grants Secret access in exactly these namespaces.
    #[arg(long = "secret-namespace")]
    pub secret_namespaces: Vec<String>,
    /// Allow plain-http Graph endpoints off loopback (a simulator Service; never in production:
    /// tokens would travel in clear).
    #[arg(long)]
    pub allow_insecure_graph_http: bool,
}

/// Errors a subcommand reports to the user.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The CRDs could not be rendered.
    #[error("rendering the CRDs failed: {0}")]
    Crd(#[from] serde_yaml::Error),
    /// The preview could not be made.
    #[error("preview: {0}")]
    Preview(#[from] preview::PreviewError),
    /// The demo failed.
    #[error("demo: {0}")]
    Demo(#[from] demo::DemoError),
    /// Writing to stdout failed.
    #[error("writing output failed: {0}")]
    Io(#[from] std::io::Error),
    /// The backup failed.
    #[error("backup: {0}")]
    Backup(#[from] backup::BackupCommandError),
    /// The probe failed.
    #[error("probe: {0}")]
    Probe(#[from] probe::ProbeError),
    /// The controller stopped with an error.
    #[error("controller: {0}")]
    Controller(#[from] crate::controller::ControllerError),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Crd => {
            let yaml = crate::kube::crds_yaml()?;
            std::io::stdout().lock().write_all(yaml.as_bytes())?;
            Ok(())
        }
        Command::Preview(args) => {
            let outcome = preview::run(args).await?;
            exit_with(outcome.exit_code())
        }
        Command::Demo(args) => Ok(demo::run(args).await?),
        Command::Probe(args) => Ok(probe::run(&args).await?),
        Command::Backup(args) => {
            let summary = backup::run(args).await?;
            eprintln!("{summary}");
            Ok(())
        }
        Command::Run(args) => {
            let extra_roots_pem = args.extra_ca_file.as_ref().map(std::fs::read).transpose()?;
            let identity = args.identity.unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "restore-operator".into());
                format!("{host}-{}", std::process::id())
            });
            let config = crate::controller::RunConfig {
                namespace: args.namespace,
                listen: args.listen,
                lease_name: args.lease_name,
                lease_namespace: args.lease_namespace,
                identity,
                lease_seconds: args.lease_seconds,
                concurrency: args.concurrency,
                options: crate::controller::ControllerOptions {
                    reconcile_budget: std::time::Duration::from_secs(args.reconcile_budget_seconds),
                    audit_retention: std::time::Duration::from_secs(args.audit_retention_days.saturating_mul(86_400)),
                    ..Default::default()
                },
                extra_roots_pem,
                history_limit: (!args.history_limit.is_zero()).then_some(args.history_limit),
                secret_namespaces: args.secret_namespaces,
                graph: restore_graph::GraphOptions {
                    allow_insecure_http: args.allow_insecure_graph_http,
                    ..Default::default()
                },
            };
            crate::controller::run(config).await?;
            Ok(())
        }
    }
}

/// Ends the process with `code` when it is not 0 (the preview's "blocked" is 2), stdout flushed.
fn exit_with(code: u8) -> Result<(), CliError> {
    if code != 0 {
        std::io::stdout().flush()?;
        std::process::exit(i32::from(code));
    }
    Ok(())
}
