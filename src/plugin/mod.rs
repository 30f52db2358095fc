//! `kubectl restorerun` (the `kubectl-restorerun` plugin): list runs, show a preview, its diff and
//! results, wait for a phase, and approve by typing the tenant's label; everything shown is verified.

pub mod render;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use restore_core::api::{Phase, RestoreRunStatus};
use restore_core::engine::execute::ProgressRecord;
use restore_core::engine::preview::PreviewReport;
use serde_json::Value;

use crate::kube::records::{StoreError, read_verified_progress, read_verified_report};
use crate::kube::{PLUGIN_FIELD_MANAGER, RestoreRun, merge_patch_params};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the API server, the kubeconfig or the terminal failed.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the command line is wrong (clap's usage errors).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the RestoreRun does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit status: refused — the run cannot be approved, or the typed label is wrong.
pub const EXIT_REFUSED: u8 = 4;
/// Exit status: the report or progress record is not the one status vouches for; nothing is shown.
pub const EXIT_UNTRUSTED: u8 = 5;
/// Exit status: `wait` ended in another terminal phase or timed out.
pub const EXIT_WAIT_FAILED: u8 = 6;

/// List, show, diff, wait for and approve RestoreRuns.
///
/// Exit codes: 0 success; 1 API, kubeconfig or I/O error; 2 usage; 3 run not found; 4 refused
/// (cannot be approved, wrong label); 5 report or progress record fails verification; 6 `wait`
/// ended in another terminal phase or timed out.
#[derive(Debug, Parser)]
#[command(name = "kubectl-restorerun", bin_name = "kubectl restorerun", version, about, verbatim_doc_comment)]
pub struct PluginCli {
    /// Namespace of the run (default: the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// List across all namespaces (`list`).
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Output format (text when absent).
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<OutputFormat>,
    /// Never colour (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// `-o` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Text with more columns (and unchanged items listed).
    Wide,
    /// One self-contained HTML page (`show`).
    Html,
}

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List runs with phase, changes, blockers, progress and approver.
    List,
    /// Summary (tenant, source, counts, findings with fixes, next step), then the items by action
    /// or, once executing, by outcome.
    Show {
        /// RestoreRun name.
        name: String,
        /// Also print the unified diff of every item that changes (as `diff` does).
        #[arg(long)]
        diff: bool,
    },
    /// The unified diff (tenant → backup) of every item the run would create or update.
    Diff {
        /// RestoreRun name.
        name: String,
    },
    /// Each item's outcome after execution, with its error.
    Results {
        /// RestoreRun name.
        name: String,
    },
    /// Approve the run's current preview: shows what is approved, asks for the tenant's label,
    /// then sets spec.dryRun=false and spec.confirmation.
    Approve {
        /// RestoreRun name.
        name: String,
        /// The tenant's hard-confirm label, typed by you (asked for when absent).
        #[arg(long)]
        tenant: Option<String>,
        /// Your username (default: asked of the API server with a SelfSubjectReview).
        #[arg(long)]
        approved_by: Option<String>,
    },
    /// Wait until the run reaches a phase, showing progress.
    Wait {
        /// RestoreRun name.
        name: String,
        /// The phase to wait for (e.g. Previewed, AwaitingConfirmation, Succeeded).
        #[arg(long = "for", value_name = "PHASE", default_value = "Succeeded")]
        phase: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

/// Why the plugin stopped.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The kubeconfig could not be loaded.
    #[error("kubeconfig: {0}")]
    Config(String),
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(String),
    /// The run does not exist.
    #[error("restorerun {name:?} not found in namespace {namespace:?}")]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where it was looked for.
        namespace: String,
    },
    /// The run cannot be approved now.
    #[error("cannot approve: {0}")]
    NotApprovable(String),
    /// The typed label is not the tenant's.
    #[error("the typed label {typed:?} is not the tenant's label; nothing was changed")]
    LabelMismatch {
        /// What was typed.
        typed: String,
    },
    /// The username could not be determined.
    #[error("cannot tell who you are ({0}); pass --approved-by")]
    WhoAmI(String),
    /// Terminal I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The report or progress record is not what status vouches for.
    #[error("{0}")]
    Untrusted(String),
    /// `wait` did not see the phase.
    #[error("{0}")]
    Wait(String),
    /// The command does not support that output.
    #[error("{0}")]
    Usage(String),
}

impl PluginError {
    /// The documented exit status of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::NotFound { .. } => EXIT_NOT_FOUND,
            PluginError::NotApprovable(_) | PluginError::LabelMismatch { .. } => EXIT_REFUSED,
            PluginError::Untrusted(_) => EXIT_UNTRUSTED,
            PluginError::Wait(_) => EXIT_WAIT_FAILED,
            PluginError::Usage(_) => EXIT_USAGE,
            _ => EXIT_ERROR,
        }
    }

    /// Whether this is the reader having gone away (`| head`): not an error for a pager pipeline.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, PluginError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// One line for a kube error: the API server's message, never a debug dump.
fn kube_error(e: kube::Error) -> PluginError {
    match e {
        kube::Error::Api(status) => PluginError::Kube(format!("{} ({})", status.message, status.code)),
        other => PluginError::Kube(other.to_string().lines().next().unwrap_or_default().to_string()),
    }
}

/// The confirmation patch for the run's current preview, after checking it can be approved and
/// that `typed_label` is the tenant's label.
pub fn approval_patch(
    status: &RestoreRunStatus,
    typed_label: &str,
    approved_by: &str,
    now: jiff::Timestamp,
) -> Result<Value, PluginError> {
    if let Some(why) = render::approval_refusal(status, now) {
        return Err(PluginError::NotApprovable(why));
    }
    let (Some(preview), Some(tenant)) = (&status.preview, &status.tenant) else {
        return Err(PluginError::NotApprovable("the run has no preview yet".into()));
    };
    if typed_label != tenant.label {
        return Err(PluginError::LabelMismatch { typed: typed_label.to_string() });
    }
    Ok(serde_json::json!({"spec": {"dryRun": false, "confirmation": {
        "reviewedImpact": true,
        "tenant": tenant.label,
        "previewDigest": preview.digest,
        "approvedBy": approved_by,
    }}}))
}

async fn who_am_i(client: &Client) -> Result<String, PluginError> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = SelfSubjectReview::default();
    let answer = api.create(&PostParams::default(), &review).await.map_err(|e| PluginError::WhoAmI(e.to_string()))?;
    answer
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| PluginError::WhoAmI("the API server returned no username".into()))
}

/// A client for `--kubeconfig` / `--context` (KUBECONFIG and the current context otherwise).
async fn connect(cli: &PluginCli) -> Result<Client, PluginError> {
    let options = KubeConfigOptions { context: cli.context.clone(), ..KubeConfigOptions::default() };
    let config = match &cli.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| PluginError::Config(e.to_string()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| PluginError::Config(e.to_string()))?
        }
        None if cli.context.is_some() => {
            Config::from_kubeconfig(&options).await.map_err(|e| PluginError::Config(e.to_string()))?
        }
        None => Config::infer().await.map_err(|e| PluginError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(kube_error)
}

/// Whether to colour: not with `--no-color`, not with NO_COLOR set (any value), not off a terminal.
pub fn use_colour(no_color_flag: bool, no_color_env: Option<&str>, is_terminal: bool) -> bool {
    !no_color_flag && no_color_env.is_none_or(str::is_empty) && is_terminal
}

/// What one command reads of a run: the run, its report verified against the status digest, and
/// (once executing) its progress record verified against status.
struct Verified {
    run: RestoreRun,
    report: Option<PreviewReport>,
    progress: Option<ProgressRecord>,
}

impl Verified {
    fn rows(&self) -> Option<Vec<render::ItemRow>> {
        let executing = self.run.status.as_ref().is_some_and(|s| s.execution.is_some());
        let report = self.report.as_ref().filter(|_| executing)?;
        Some(render::item_rows(report, self.progress.as_ref()))
    }
}

struct Session {
    client: Client,
    namespace: String,
}

impl Session {
    fn runs(&self) -> Api<RestoreRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn get(&self, name: &str) -> Result<RestoreRun, PluginError> {
        self.runs()
            .get_opt(name)
            .await
            .map_err(kube_error)?
            .ok_or_else(|| PluginError::NotFound { name: name.to_string(), namespace: self.namespace.clone() })
    }

    /// The run with its verified records. `lenient`: a report the user may not read (RBAC) is
    /// left out instead of failing; one that fails verification always fails.
    async fn verified(&self, name: &str, lenient: bool) -> Result<Verified, PluginError> {
        let run = self.get(name).await?;
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let status = run.status.clone().unwrap_or_default();
        let untrusted = |e: StoreError| match e {
            StoreError::Kube(e) => kube_error(e),
            other => PluginError::Untrusted(other.to_string()),
        };
        let report = match status.preview.as_ref().map(|p| p.digest.clone()) {
            // Only a report whose content has the digest in status is shown: an edited one is not.
            Some(digest) => match read_verified_report(&config_maps, &run, &digest).await {
                Err(StoreError::Kube(_)) if lenient => None,
                other => other.map_err(untrusted)?,
            },
            None => None,
        };
        let progress = match (&status.execution, &status.confirmation) {
            (Some(execution), Some(confirmation)) => {
                read_verified_progress(&config_maps, &run, &confirmation.digest, execution).await.map_err(untrusted)?
            }
            _ => None,
        };
        Ok(Verified { run, report, progress })
    }
}

fn structured(value: &Value, format: OutputFormat) -> Result<String, PluginError> {
    let text = match format {
        OutputFormat::Yaml => serde_yaml::to_string(value).map_err(|e| PluginError::Usage(e.to_string()))?,
        _ => serde_json::to_string_pretty(value).map_err(|e| PluginError::Usage(e.to_string()))? + "\n",
    };
    Ok(text)
}

/// Runs the plugin; what it prints goes to `output` (escaped for the terminal), prompts and
/// progress too. `colour` and `terminal` say what `output` is.
pub async fn run(
    cli: PluginCli,
    input: &mut impl BufRead,
    output: &mut impl Write,
    terminal: bool,
) -> Result<(), PluginError> {
    let client = connect(&cli).await?;
    let namespace = cli.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    let session = Session { client, namespace };
    let colour = use_colour(cli.no_color, std::env::var("NO_COLOR").ok().as_deref(), terminal);
    let structured_format = cli.output.filter(|o| matches!(o, OutputFormat::Json | OutputFormat::Yaml));
    let wide = cli.output == Some(OutputFormat::Wide);
    let text = match &cli.command {
        PluginCommand::List => {
            let runs = if cli.all_namespaces {
                Api::<RestoreRun>::all(session.client.clone()).list(&ListParams::default()).await
            } else {
                session.runs().list(&ListParams::default()).await
            };
            let mut runs = runs.map_err(kube_error)?.items;
            runs.sort_by_key(|r| (r.namespace(), r.name_any()));
            match structured_format {
                Some(f) => structured(&render::list_json(&runs), f)?,
                None => render::list_text(&runs, cli.all_namespaces, wide, jiff::Timestamp::now()),
            }
        }
        PluginCommand::Show { name, diff } => {
            let v = session.verified(name, false).await?;
            let rows = v.rows();
            match cli.output {
                Some(f @ (OutputFormat::Json | OutputFormat::Yaml)) => {
                    structured(&render::show_json(&v.run, v.report.as_ref(), rows.as_deref()), f)?
                }
                Some(OutputFormat::Html) => {
                    let Some(report) = v.report.as_ref() else {
                        return Err(PluginError::Usage("the run has no preview report yet".into()));
                    };
                    let page = crate::report_html::page(&crate::report_html::PageInput {
                        report,
                        status: v.run.status.as_ref(),
                        run_name: Some(&v.run.name_any()),
                        namespace: v.run.namespace().as_deref(),
                        rows: rows.as_deref(),
                    });
                    // HTML-escaped, not terminal-escaped: written as is.
                    output.write_all(page.as_bytes())?;
                    return Ok(output.flush()?);
                }
                _ => {
                    let shown = render::show_text(&v.run, v.report.as_ref(), rows.as_deref(), wide);
                    match v.report.as_ref().filter(|_| *diff) {
                        Some(report) => shown + "\n" + &render::diff_text(report, colour),
                        None => shown,
                    }
                }
            }
        }
        PluginCommand::Diff { name } => {
            let v = session.verified(name, false).await?;
            let Some(report) = v.report.as_ref() else {
                return Err(PluginError::Usage(format!("{name} has no preview yet; nothing to diff")));
            };
            match structured_format {
                Some(f) => structured(&render::diff_json(report), f)?,
                None => render::diff_text(report, colour),
            }
        }
        PluginCommand::Results { name } => {
            let v = session.verified(name, false).await?;
            let Some(rows) = v.rows() else {
                let phase = render::phase_of(v.run.status.as_ref().unwrap_or(&RestoreRunStatus::default()));
                return Err(PluginError::Usage(format!("{name} has not executed (it is {phase}); see `show`")));
            };
            match structured_format {
                Some(f) => structured(&serde_json::json!({"name": name, "results": rows}), f)?,
                None => render::summary_text(&v.run, v.report.as_ref()) + &render::results_text(&rows, true),
            }
        }
        PluginCommand::Approve { name, tenant, approved_by } => {
            return approve(&session, name, tenant.clone(), approved_by.clone(), input, output).await;
        }
        PluginCommand::Wait { name, phase, timeout } => {
            return wait(&session, name, phase, Duration::from_secs(*timeout), output, terminal).await;
        }
    };
    write_escaped(output, &text, colour)
}

/// Writes text whose values were escaped by `render`; a second pass escapes anything left, except
/// the diff colours `render` added itself when `colour`.
fn write_escaped(output: &mut impl Write, text: &str, colour: bool) -> Result<(), PluginError> {
    if colour {
        output.write_all(text.as_bytes())?;
    } else {
        output.write_all(restore_core::terminal::escape_text(text).as_bytes())?;
    }
    Ok(output.flush()?)
}

async fn approve(
    session: &Session,
    name: &str,
    tenant: Option<String>,
    approved_by: Option<String>,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<(), PluginError> {
    let v = session.verified(name, true).await?;
    let status = v.run.status.clone().unwrap_or_default();
    // Refuse at once, before anything is asked.
    if let Some(why) = render::approval_refusal(&status, jiff::Timestamp::now()) {
        return Err(PluginError::NotApprovable(why));
    }
    let shown = render::summary_text(&v.run, v.report.as_ref())
        + &v.report.as_ref().map(|r| render::plan_text(r, false)).unwrap_or_default();
    write_escaped(output, &format!("{shown}\nYou are approving exactly this preview.\n"), false)?;
    let typed = match tenant {
        Some(t) => t,
        None => {
            write!(output, "Type the tenant's label to approve this preview: ")?;
            output.flush()?;
            let mut line = String::new();
            input.read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let approved_by = match approved_by {
        Some(user) => user,
        None => who_am_i(&session.client).await?,
    };
    let patch = approval_patch(&status, &typed, &approved_by, jiff::Timestamp::now())?;
    let params = merge_patch_params(PLUGIN_FIELD_MANAGER);
    session.runs().patch(name, &params, &Patch::Merge(&patch)).await.map_err(kube_error)?;
    let done = format!(
        "approved {name} as {approved_by}; the operator re-reads the tenant, then executes.\nFollow it with: kubectl \
         restorerun wait {name} -n {} --for Succeeded\n",
        session.namespace
    );
    write_escaped(output, &done, false)
}

async fn wait(
    session: &Session,
    name: &str,
    target: &str,
    timeout: Duration,
    output: &mut impl Write,
    terminal: bool,
) -> Result<(), PluginError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let run = session.get(name).await?;
        let status = run.status.clone().unwrap_or_default();
        let phase = render::phase_of(&status);
        let line = render::wait_line(&status, terminal);
        if line != last {
            let text = restore_core::terminal::escape(&line).into_owned();
            if terminal {
                write!(output, "\r\u{1b}[2K{text}")?;
            } else {
                writeln!(output, "{text}")?;
            }
            output.flush()?;
            last = line;
        }
        if phase.as_str().eq_ignore_ascii_case(target) {
            if terminal {
                writeln!(output)?;
            }
            return Ok(());
        }
        if phase.is_terminal() || (phase == Phase::Blocked && !target.eq_ignore_ascii_case("Blocked")) {
            if terminal {
                writeln!(output)?;
            }
            return Err(PluginError::Wait(format!("{name} ended {phase}, not {target}")));
        }
        if std::time::Instant::now() >= deadline {
            if terminal {
                writeln!(output)?;
            }
            return Err(PluginError::Wait(format!("timed out after {}s; {name} is {phase}", timeout.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use restore_core::api::{ChecksStatus, PreviewStatus, TenantIdentity};

    fn now() -> jiff::Timestamp {
        "2026-01-01T10:00:00Z".parse().unwrap()
    }

    fn previewed() -> RestoreRunStatus {
        RestoreRunStatus {
            phase: Some(Phase::Previewed),
            tenant: Some(TenantIdentity { id: "t".into(), label: "Contoso Production".into() }),
            checks: Some(ChecksStatus::default()),
            preview: Some(PreviewStatus {
                digest: "sha256:abc".into(),
                expires_at: "2026-01-01T11:00:00Z".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn approval_copies_the_preview_and_needs_the_exact_label() {
        let patch = approval_patch(&previewed(), "Contoso Production", "alice", now()).unwrap();
        assert_eq!(patch["spec"]["confirmation"]["previewDigest"], "sha256:abc");
        assert_eq!(patch["spec"]["confirmation"]["approvedBy"], "alice");
        assert_eq!(patch["spec"]["dryRun"], false);
        assert!(matches!(
            approval_patch(&previewed(), "contoso production", "alice", now()),
            Err(PluginError::LabelMismatch { .. })
        ));
    }

    #[test]
    fn only_a_blocker_free_unexpired_preview_can_be_approved() {
        let mut executing = previewed();
        executing.phase = Some(Phase::Executing);
        let refused = |s: &RestoreRunStatus| approval_patch(s, "Contoso Production", "a", now());
        assert!(matches!(refused(&executing), Err(PluginError::NotApprovable(_))));
        let mut blocked = previewed();
        blocked.checks = Some(ChecksStatus { blockers: 1, ..Default::default() });
        assert!(matches!(refused(&blocked), Err(PluginError::NotApprovable(_))));
        let mut expired = previewed();
        if let Some(p) = expired.preview.as_mut() {
            p.expires_at = "2026-01-01T09:59:59Z".into();
        }
        let Err(PluginError::NotApprovable(why)) = refused(&expired) else { panic!("an expired preview approved") };
        assert!(why.contains("expired"), "{why}");
    }

    #[test]
    fn refusals_exit_4_and_a_missing_run_exits_3() {
        assert_eq!(PluginError::NotApprovable("x".into()).exit_code(), EXIT_REFUSED);
        assert_eq!(PluginError::LabelMismatch { typed: "x".into() }.exit_code(), EXIT_REFUSED);
        let missing = PluginError::NotFound { name: "r".into(), namespace: "n".into() };
        assert_eq!(missing.exit_code(), EXIT_NOT_FOUND);
        assert_eq!(missing.to_string(), "restorerun \"r\" not found in namespace \"n\"");
        assert!(PluginError::Io(std::io::ErrorKind::BrokenPipe.into()).is_broken_pipe());
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(false, None, true));
        assert!(!use_colour(true, None, true));
        assert!(!use_colour(false, Some("1"), true));
        assert!(use_colour(false, Some(""), true));
        assert!(!use_colour(false, None, false));
    }
}
