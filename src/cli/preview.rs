//! `restore-operator preview`: the wizard up to the preview, locally, from manifests — the same wizard
//! and runner as the controller, so the digest it prints can be approved in the cluster.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use restore_backup::fetch::Fetcher;
use restore_backup::{Limits, native};
use restore_core::api::{IntuneTenantSpec, Phase, RestoreRunSpec};
use restore_core::conditions::types;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::preview::PreviewReport;
use restore_core::terminal::{escape, escape_text};
use restore_graph::{Credentials, GraphClient, GraphError, GraphOptions, SecretString};
use serde_json::json;

use crate::cli::local_objects::{LocalObjects, LocalObjectsError};
use crate::cli::wizard_loop::{LocalRun, LocalTenant, RunEvent, WizardLoopError};
use crate::kube::{IntuneTenant, RestoreRun};

/// Name of the in-memory ConfigMap that carries a `--backup` override.
pub const LOCAL_BACKUP_CONFIG_MAP: &str = "restore-operator-local-backup";
/// Its `binaryData` key.
pub const LOCAL_BACKUP_KEY: &str = "backup.tar.gz";

/// Exit code of a preview with blocker findings.
pub const EXIT_BLOCKED: u8 = 2;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A human summary.
    Text,
    /// The status, the preview report and its digest as one JSON object.
    Json,
    /// One self-contained HTML page: summary, findings, items with filters, side-by-side diffs,
    /// the digest and how to approve it (write it to a file: `-o html > preview.html`).
    Html,
}

/// Options of `restore-operator preview`.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// A manifest file: the RestoreRun, and any IntuneTenant, Secret, ConfigMap or Flux source
    /// (GitRepository, OCIRepository, Bucket with its status) it references. Repeat for several
    /// files; a file may hold several `---` documents.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The IntuneTenant manifest (it may also be given with -f).
    #[arg(long, value_name = "FILE")]
    pub tenant: Option<PathBuf>,
    /// The RestoreRun to preview when the files hold several.
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// A local backup folder or `.tar.gz` that replaces `spec.source` (its `path` and `format` still
    /// apply). The digest is the backup's content digest: the same as the cluster's for the same files.
    #[arg(long, value_name = "PATH")]
    pub backup: Option<PathBuf>,
    /// `text` (a human summary), `json` (status, report and digest for machines) or `html` (a
    /// self-contained page for reviewers).
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Also print the unified diff of every item that changes (text output).
    #[arg(long)]
    pub diff: bool,
    /// Read the tenant's client secret from this environment variable instead of the Secret
    /// named by `auth.clientSecretRef` (which may be given with -f).
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// PEM file of extra CA certificates trusted for `url` sources.
    #[arg(long, value_name = "FILE")]
    pub extra_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub sources: super::SourceArgs,
    #[command(flatten)]
    pub secrets: super::SecretArgs,
    /// Creates + updates above which the checks warn of a large change set.
    #[arg(long, value_name = "N")]
    pub large_change_threshold: Option<u32>,
}

/// How a preview ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviewOutcome {
    /// The preview is ready to approve (exit 0).
    Previewed,
    /// Blocker findings: nothing can be approved (exit 2).
    Blocked,
}

impl PreviewOutcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            PreviewOutcome::Previewed => 0,
            PreviewOutcome::Blocked => EXIT_BLOCKED,
        }
    }
}

/// Why a preview could not be made (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// A manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] LocalObjectsError),
    /// The manifests do not say what to preview.
    #[error("{0}")]
    Input(String),
    /// The tenant's credentials are not available.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The local backup could not be read.
    #[error("reading the backup {path}: {source}")]
    Backup {
        /// The path given.
        path: String,
        /// Cause.
        source: Box<restore_backup::BackupError>,
    },
    /// The Graph client could not be built or the tenant refused it.
    #[error("tenant {tenant}: {source}")]
    Graph {
        /// The tenant id.
        tenant: String,
        /// Cause (never holds a secret).
        source: GraphError,
    },
    /// The wizard stopped (the source or the tenant failed).
    #[error(transparent)]
    Run(#[from] WizardLoopError),
    /// The run failed for good (an invalid spec or backup).
    #[error("the run failed: {0}")]
    Failed(String),
    /// Writing the output failed.
    #[error("writing output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The manifests of one preview, resolved: the run, its tenant and the objects they reference.
pub struct PreviewInputs {
    /// The RestoreRun's name.
    pub name: String,
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Its spec, forced to a dry run (the source replaced when `--backup` is given).
    pub spec: RestoreRunSpec,
    /// The IntuneTenant's name.
    pub tenant_name: String,
    /// The IntuneTenant's spec.
    pub tenant: IntuneTenantSpec,
    /// Every object read, plus the in-memory ConfigMap of a `--backup`.
    pub objects: LocalObjects,
    /// Whether the manifest asked for execution (`dryRun: false`), which `preview` never does.
    pub wanted_execution: bool,
}

/// Reads the manifests and picks the run and its tenant.
pub fn load_inputs(args: &PreviewArgs) -> Result<PreviewInputs, PreviewError> {
    let mut objects = LocalObjects::new();
    for file in args.files.iter().chain(args.tenant.iter()) {
        objects.load_file(file)?;
    }
    for ignored in objects.ignored() {
        tracing::warn!(object = %ignored, "ignoring a manifest of a kind preview does not use");
    }
    let run = pick_run(objects.restore_runs(), args.run.as_deref())?.clone();
    let name = run.metadata.name.clone().unwrap_or_default();
    let namespace = run.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let mut spec = run.spec;
    let wanted_execution = !spec.dry_run;
    spec.dry_run = true;
    let tenant_name = spec.tenant_ref.name.clone();
    let tenant = objects.tenant(&namespace, &tenant_name).map(|t| t.spec.clone()).ok_or_else(|| {
        let found: Vec<String> = objects.tenants().iter().map(describe_tenant).collect();
        PreviewError::Input(format!(
            "IntuneTenant {namespace}/{tenant_name} (spec.tenantRef) is not in the manifests given; found: [{}]. \
             Give its manifest with --tenant FILE",
            found.join(", ")
        ))
    })?;
    if let Some(path) = &args.backup {
        let archive = local_backup_archive(path)?;
        let (folder, format) = (spec.source.path.clone(), spec.source.format);
        spec.source = objects.insert_archive(Some(&namespace), LOCAL_BACKUP_CONFIG_MAP, LOCAL_BACKUP_KEY, archive);
        spec.source.path = folder;
        spec.source.format = format;
    }
    Ok(PreviewInputs { name, namespace, spec, tenant_name, tenant, objects, wanted_execution })
}

fn describe_tenant(t: &IntuneTenant) -> String {
    format!("{}/{}", t.metadata.namespace.as_deref().unwrap_or("-"), t.metadata.name.as_deref().unwrap_or_default())
}

fn pick_run<'r>(runs: &'r [RestoreRun], wanted: Option<&str>) -> Result<&'r RestoreRun, PreviewError> {
    let names: Vec<&str> = runs.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
    match (wanted, runs) {
        (None, [run]) => Ok(run),
        (None, []) => Err(PreviewError::Input("no RestoreRun in the manifests given (-f FILE)".into())),
        (None, _) => Err(PreviewError::Input(format!(
            "the manifests hold {} RestoreRuns ({}); choose one with --run NAME",
            runs.len(),
            names.join(", ")
        ))),
        (Some(name), _) => runs.iter().find(|r| r.metadata.name.as_deref() == Some(name)).ok_or_else(|| {
            PreviewError::Input(format!("no RestoreRun named {name:?} in the manifests (found: {})", names.join(", ")))
        }),
    }
}

/// A local backup (folder or `.tar.gz`) read within the default limits and packed as a `.tar.gz`:
/// the same files, so the same content digest as the cluster computes for them.
fn local_backup_archive(path: &Path) -> Result<Vec<u8>, PreviewError> {
    let error = |source| PreviewError::Backup { path: path.display().to_string(), source: Box::new(source) };
    let tree = restore_backup::tree_from_path(path, &Limits::default()).map_err(error)?;
    let files: Vec<(String, Vec<u8>)> = tree.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect();
    native::tar_gz_of(&files).map_err(error)
}

/// The credentials of `tenant` (in `namespace`): from `--client-secret-env`, or from a Secret among
/// `objects`, or the workload identity token file. Error messages name where, never what.
pub fn credentials(
    tenant: &IntuneTenantSpec,
    namespace: &str,
    objects: &LocalObjects,
    client_secret_env: Option<&str>,
) -> Result<Credentials, PreviewError> {
    let auth = &tenant.auth;
    let secret_value = |name: &str, key: &str| -> Result<String, PreviewError> {
        let secret = objects.secret(namespace, name).ok_or_else(|| {
            PreviewError::Credentials(format!(
                "the Secret {namespace}/{name} is not in the manifests given; add it with -f FILE{}",
                if auth.client_secret_ref.is_some() { " or use --client-secret-env VAR" } else { "" }
            ))
        })?;
        let bytes = secret
            .get(key)
            .ok_or_else(|| PreviewError::Credentials(format!("the Secret {namespace}/{name} has no key {key:?}")))?;
        String::from_utf8(bytes.clone())
            .map_err(|_| PreviewError::Credentials(format!("the Secret {namespace}/{name} key {key:?} is not UTF-8")))
    };
    if let Some(var) = client_secret_env {
        if auth.client_secret_ref.is_none() {
            return Err(PreviewError::Credentials(
                "--client-secret-env applies to tenants that use auth.clientSecretRef".into(),
            ));
        }
        let value = std::env::var(var).unwrap_or_default();
        if value.is_empty() {
            return Err(PreviewError::Credentials(format!("the environment variable {var} is not set or empty")));
        }
        return Ok(Credentials::ClientSecret(SecretString::new(value)));
    }
    if let Some(r) = &auth.client_secret_ref {
        return Ok(Credentials::ClientSecret(SecretString::new(secret_value(&r.name, &r.key)?)));
    }
    if let Some(r) = &auth.certificate_ref {
        return Ok(Credentials::Certificate {
            certificate_pem: secret_value(&r.name, &r.certificate_key)?,
            private_key_pem: SecretString::new(secret_value(&r.name, &r.private_key_key)?),
        });
    }
    if let Some(w) = &auth.workload_identity {
        return Ok(Credentials::WorkloadIdentity { token_file: PathBuf::from(&w.token_file) });
    }
    Err(PreviewError::Credentials(
        "the IntuneTenant sets none of clientSecretRef, certificateRef, workloadIdentity".into(),
    ))
}

/// Graph options of the local commands: the Microsoft clouds and loopback (a simulator on the
/// user's own machine). The user of the CLI holds the credentials and owns the machine; the
/// operator allows loopback only when its admin says so (`--allowed-endpoint-host`).
pub fn cli_graph_options() -> GraphOptions {
    GraphOptions {
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    }
}

/// One line per phase change: seconds since the start, the phase, the wizard's message.
pub fn phase_line(phase: Phase, elapsed: std::time::Duration, message: &str) -> String {
    format!("{:>7.2}s  {:<21} {message}", elapsed.as_secs_f64(), phase.as_str())
}

/// Runs `restore-operator preview`.
pub async fn run(args: PreviewArgs) -> Result<PreviewOutcome, PreviewError> {
    let inputs = load_inputs(&args)?;
    let credentials =
        credentials(&inputs.tenant, &inputs.namespace, &inputs.objects, args.client_secret_env.as_deref())?;
    let tenant_id = inputs.tenant.tenant_id.clone();
    let graph_error = |source| PreviewError::Graph { tenant: tenant_id.clone(), source };
    let client = GraphClient::new(&inputs.tenant, credentials, cli_graph_options()).map_err(graph_error)?;
    client.verify().await.map_err(graph_error)?;
    let extra_roots = args.extra_ca_file.as_ref().map(std::fs::read).transpose()?;
    let fetcher = Fetcher::with_policy(extra_roots.as_deref(), Limits::default(), args.sources.fetch_policy())
        .map_err(|source| PreviewError::Backup { path: "(source)".into(), source: Box::new(source) })?;

    // Phase lines go to stderr when stdout holds a document.
    let json = args.output != OutputFormat::Text;
    let mut out = String::new();
    let header = format!(
        "RestoreRun {}/{} → IntuneTenant {} {:?} (tenant {}, {})",
        inputs.namespace,
        inputs.name,
        inputs.tenant_name,
        inputs.tenant.display_name,
        inputs.tenant.tenant_id,
        inputs.tenant.environment.as_str()
    );
    emit(json, &header);
    if inputs.wanted_execution {
        emit(json, "note: the manifest sets dryRun: false; preview never writes, it stops after the preview");
    }
    let tenant = LocalTenant {
        id: inputs.tenant.tenant_id.clone(),
        label: inputs.tenant.display_name.clone(),
        environment: inputs.tenant.environment,
    };
    let mut run =
        LocalRun::new(&inputs.name, &inputs.namespace, inputs.spec.clone(), tenant, &inputs.objects, &fetcher, &client)
            .with_large_change_threshold(args.large_change_threshold);
    let phase = run
        .drive(|event| {
            if let RunEvent::Phase { phase, elapsed, message } = event {
                emit(json, &phase_line(phase, elapsed, message));
            }
        })
        .await?;
    let outcome = match phase {
        Phase::Previewed | Phase::AwaitingConfirmation => PreviewOutcome::Previewed,
        Phase::Blocked => PreviewOutcome::Blocked,
        _ => {
            let message = run.condition_message(types::READY).to_string();
            return Err(PreviewError::Failed(message));
        }
    };
    if args.output == OutputFormat::Html {
        let Some(report) = run.report() else {
            return Err(PreviewError::Failed("the run stopped before its preview report".into()));
        };
        let page = crate::report_html::page(&crate::report_html::PageInput {
            report,
            status: Some(&run.status),
            run_name: Some(&run.name),
            namespace: Some(&run.namespace),
            rows: None,
        });
        // HTML-escaped by the page itself; written as is.
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(page.as_bytes())?;
        stdout.flush()?;
        return Ok(outcome);
    }
    if json {
        let document = json!({
            "restoreRun": {"name": run.name, "namespace": run.namespace},
            "tenant": {"id": inputs.tenant.tenant_id, "label": inputs.tenant.display_name,
                "environment": inputs.tenant.environment},
            "phase": phase,
            "approvable": outcome == PreviewOutcome::Previewed,
            "digest": run.digest(),
            "status": run.status,
            "report": run.report(),
        });
        out.push_str(&serde_json::to_string_pretty(&document).map_err(std::io::Error::other)?);
        out.push('\n');
    } else {
        out.push('\n');
        out.push_str(&summary(&run, args.diff));
        out.push_str(&approval_hint(&run, outcome));
    }
    write_stdout(&out)?;
    Ok(outcome)
}

/// Phase lines go to stdout with the text output and to stderr with JSON (stdout holds only JSON).
/// Prints one progress line; names and messages from the backup or Graph are escaped first.
fn emit(json: bool, line: &str) {
    let line = escape_text(line);
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Prints the preview. Text is escaped for the terminal (JSON output escapes control characters
/// itself, so it passes unchanged).
fn write_stdout(text: &str) -> Result<(), std::io::Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(escape_text(text).as_bytes())?;
    stdout.flush()
}

/// The human summary of a run's preview: source, scope, the report's counts, findings and changing
/// items (with their diffs when `diffs`).
pub fn summary<C, T>(run: &LocalRun<'_, C, T>, diffs: bool) -> String
where
    C: restore_backup::source::ClusterObjects,
    T: restore_core::tenant::TenantPort,
{
    let mut out = String::new();
    if let Some(source) = &run.status.source {
        let _ = writeln!(
            out,
            "Source  {} ({} item(s), captured {} from tenant {})",
            source.digest,
            source.item_count,
            source.captured_at.as_deref().unwrap_or("at an unknown time"),
            source.tenant_id.as_deref().unwrap_or("unknown")
        );
    }
    if let Some(scope) = &run.status.scope {
        let by_type: Vec<String> = scope.by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let _ = writeln!(
            out,
            "Scope   {} item(s): {} foundation(s), {} policies, {} preview-only — {}",
            scope.total,
            scope.foundations,
            scope.policies,
            scope.preview_only,
            by_type.join(", ")
        );
    }
    match run.report() {
        Some(report) => {
            out.push_str(&report.summary_text());
            if diffs {
                out.push_str(&diff_text(report));
            }
        }
        None => out.push_str("No preview report (the run stopped before the checks).\n"),
    }
    out
}

/// The unified diff of every item that changes.
pub fn diff_text(report: &PreviewReport) -> String {
    let mut out = String::new();
    for item in report.items.iter().filter(|i| i.action.writes() && !i.diff.is_empty()) {
        let action = if item.action == PlannedAction::Create { "create" } else { "update" };
        let _ = writeln!(
            out,
            "\n{action} {}/{} ({})",
            escape(&item.item_type),
            escape(&item.display_name),
            escape(&item.key)
        );
        out.push_str(&item.diff);
        if !item.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// What to do next: the digest and how to approve it, or why nothing can be approved.
fn approval_hint<C, T>(run: &LocalRun<'_, C, T>, outcome: PreviewOutcome) -> String
where
    C: restore_backup::source::ClusterObjects,
    T: restore_core::tenant::TenantPort,
{
    let mut out = String::new();
    match (outcome, &run.status.preview) {
        (PreviewOutcome::Previewed, Some(preview)) => {
            let label = run.status.tenant.as_ref().map(|t| t.label.clone()).unwrap_or_default();
            let _ = writeln!(out, "\nDigest  {} (valid until {})", preview.digest, preview.expires_at);
            let _ = writeln!(out, "To approve: {}", run.condition_message(types::CONFIRMED));
            let patch = json!({"spec": {"dryRun": false, "confirmation": {"reviewedImpact": true, "tenant": label,
                "previewDigest": preview.digest, "approvedBy": "<your username>"}}});
            let _ = writeln!(
                out,
                "  kubectl patch restorerun {} -n {} --type merge -p '{}'",
                run.name,
                run.namespace,
                patch.to_string().replace('\'', r"'\''")
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "\nBlocked: {} Nothing can be approved until the blockers are fixed; then preview again.",
                run.condition_message(types::CHECKS_PASSED)
            );
        }
    }
    out
}
