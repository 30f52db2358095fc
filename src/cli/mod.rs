//! The `restore-operator` command line: one binary, one subcommand per job.
//! Each subcommand arrives with its own issue; none pretends to work before it does.

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

pub mod demo;
pub mod demo_backup;
pub mod demo_keep;
pub mod local_objects;
pub mod preview;
pub mod probe;
pub mod version;
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
    /// Print the client's version and, when a cluster is reachable, the operator's (from its Deployment).
    Version(version::VersionArgs),
    /// Print a shell completion script: `source <(restore-operator completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
    /// RestoreRuns of one IntuneTenant reconciled at once (0: no limit but --concurrency); the
    /// others wait without holding a slot, so one slow or throttled tenant never holds them all.
    #[arg(long, default_value_t = 2, env = "RESTORE_OPERATOR_PER_TENANT_CONCURRENCY")]
    pub per_tenant_concurrency: u16,
    /// Reconcile only RestoreRuns and IntuneTenants matching this label selector (a shard, as
    /// Flux shards its controllers): e.g. `sharding.tenantatlas.io/key in (shard1)`, or
    /// `!sharding.tenantatlas.io/key` for the default shard. Give each shard its own --lease-name.
    #[arg(long, env = "WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,
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
    /// Hosts (`host` or `host:port`) IntuneTenants may name as graph.endpoint or graph.authority
    /// besides the Microsoft public and national clouds (e.g. a Graph simulator). Repeatable.
    #[arg(
        long = "allowed-endpoint-host",
        value_name = "HOST[:PORT]",
        env = "RESTORE_OPERATOR_ALLOWED_ENDPOINT_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_endpoint_hosts: Vec<String>,
    /// The only folder `workloadIdentity.tokenFile` may lie in (the projected-token mount).
    #[arg(long, value_name = "DIR", default_value = restore_graph::DEFAULT_FEDERATED_TOKEN_DIR)]
    pub federated_token_dir: std::path::PathBuf,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
}

/// Which content reports and diffs show as a digest (DESIGN rule 8), shared by `run` and
/// `preview`: both must be given the same, as the preview digest covers the masked form.
#[derive(Debug, Clone, clap::Args)]
pub struct SecretArgs {
    /// Show PowerShell script bodies in reports and diffs as a digest only.
    #[arg(long, env = "RESTORE_OPERATOR_SECRET_SCRIPT_BODIES")]
    pub secret_script_bodies: bool,
    /// Also show this field as a digest only: `TYPE.FIELD[.FIELD…]` (repeatable). The defaults
    /// (`deviceConfiguration.payload`, encrypted OMA-URI values, secret settings) always apply.
    #[arg(long = "secret-field", value_name = "TYPE.FIELD", value_delimiter = ',')]
    pub secret_fields: Vec<String>,
}

impl SecretArgs {
    /// The marks these flags describe.
    pub fn marks(&self) -> Result<restore_core::secrets::SecretMarks, String> {
        let mut marks = restore_core::secrets::SecretMarks::default();
        if self.secret_script_bodies {
            marks = marks.with_script_bodies();
        }
        self.secret_fields.iter().try_fold(marks, |marks, spec| marks.parse_and_mark(spec))
    }

    /// Sets the process's marks from these flags (once, at start-up).
    pub fn configure(&self) -> Result<(), std::io::Error> {
        let marks = self.marks().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        restore_core::secrets::configure(marks);
        Ok(())
    }
}

/// The admin's settings for backup sources, shared by `run` and `preview`.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Non-public networks (CIDR) url sources may reach, e.g. an in-cluster artifact server;
    /// loopback, private, link-local and metadata addresses are refused otherwise. Repeatable.
    #[arg(
        long = "allow-source-cidr",
        value_name = "CIDR",
        env = "RESTORE_OPERATOR_ALLOW_SOURCE_CIDRS",
        value_delimiter = ','
    )]
    pub allow_source_cidrs: Vec<restore_backup::netpolicy::Cidr>,
    /// Let runs reference Flux sources in other namespaces (off by default, as with Flux's
    /// `--no-cross-namespace-refs`).
    #[arg(long)]
    pub allow_cross_namespace_refs: bool,
    /// Downloads at once; a run finding none free is requeued instead of holding a reconcile slot.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub max_concurrent_downloads: usize,
    /// Longest one download may take, in seconds (connect 10 s, first byte and idle 30 s each).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub download_timeout_seconds: u64,
}

impl SourceArgs {
    /// The download policy these flags describe.
    pub fn fetch_policy(&self) -> restore_backup::fetch::FetchPolicy {
        restore_backup::fetch::FetchPolicy {
            allowed_cidrs: self.allow_source_cidrs.clone(),
            allow_cross_namespace_refs: self.allow_cross_namespace_refs,
            max_concurrent_downloads: self.max_concurrent_downloads,
            total_timeout: std::time::Duration::from_secs(self.download_timeout_seconds),
            ..Default::default()
        }
    }
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
            args.secrets.configure()?;
            let outcome = preview::run(args).await?;
            exit_with(outcome.exit_code())
        }
        Command::Demo(args) => Ok(demo::run(args).await?),
        Command::Probe(args) => Ok(probe::run(&args).await?),
        Command::Version(args) => {
            let text = version::lines(&args).await.join("\n") + "\n";
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(())
        }
        Command::Completion { shell } => {
            std::io::stdout().lock().write_all(&version::completion(shell))?;
            Ok(())
        }
        Command::Backup(args) => {
            let summary = backup::run(args).await?;
            eprintln!("{summary}");
            Ok(())
        }
        Command::Run(args) => {
            args.secrets.configure()?;
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
                watch_label_selector: args.watch_label_selector.filter(|s| !s.trim().is_empty()),
                options: crate::controller::ControllerOptions {
                    per_tenant_concurrency: (args.per_tenant_concurrency > 0)
                        .then_some(usize::from(args.per_tenant_concurrency)),
                    reconcile_budget: std::time::Duration::from_secs(args.reconcile_budget_seconds),
                    audit_retention: std::time::Duration::from_secs(args.audit_retention_days.saturating_mul(86_400)),
                    ..Default::default()
                },
                extra_roots_pem,
                fetch_policy: args.sources.fetch_policy(),
                history_limit: (!args.history_limit.is_zero()).then_some(args.history_limit),
                secret_namespaces: args.secret_namespaces,
                graph: restore_graph::GraphOptions {
                    allow_insecure_http: args.allow_insecure_graph_http,
                    endpoints: args
                        .allowed_endpoint_hosts
                        .iter()
                        .fold(restore_graph::EndpointAllowlist::default(), |list, host| list.allowing(host.as_str())),
                    federated_token_dir: args.federated_token_dir,
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
