//! `kubectl restorerun` (the `kubectl-restorerun` plugin): show a run's preview and approve it by
//! typing the tenant's hard-confirm label; the confirmation is copied from the run's own status.

use std::io::{BufRead, Write};

use clap::{Parser, Subcommand};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use restore_core::api::{Phase, RestoreRunStatus};
use restore_core::conditions::{find, types};
use restore_core::engine::preview::PreviewReport;

use crate::kube::records::read_verified_report;
use crate::kube::{PLUGIN_FIELD_MANAGER, RestoreRun};

/// Show and approve RestoreRuns.
#[derive(Debug, Parser)]
#[command(name = "kubectl-restorerun", bin_name = "kubectl restorerun", version, about)]
pub struct PluginCli {
    /// Namespace of the run (default: the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print a run's phase, conditions, preview counts, findings and planned changes.
    Show {
        /// RestoreRun name.
        name: String,
        /// Also print each item's unified diff from the report.
        #[arg(long)]
        diff: bool,
    },
    /// Approve a run's current preview: sets spec.dryRun=false and spec.confirmation.
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
}

/// Why the plugin stopped.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The run cannot be approved now.
    #[error("{0}")]
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
    /// The report could not be read.
    #[error("{0}")]
    Report(String),
}

/// A human summary of a run's status.
pub fn summary(run: &RestoreRun) -> String {
    let mut out = String::new();
    let status = run.status.clone().unwrap_or_default();
    let phase = status.phase.map(Phase::as_str).unwrap_or("Pending");
    out.push_str(&format!("RestoreRun {}/{}: {phase}\n", run.namespace().unwrap_or_default(), run.name_any()));
    if let Some(t) = &status.tenant {
        let env = status.environment.map(|e| e.as_str()).unwrap_or("?");
        out.push_str(&format!("tenant:   {} ({}, {env})\n", t.label, t.id));
    }
    if let Some(s) = &status.source {
        out.push_str(&format!("backup:   {} ({} items)\n", s.digest, s.item_count));
    }
    if let Some(c) = &status.checks {
        out.push_str(&format!("checks:   {} blocker(s), {} warning(s), {} info\n", c.blockers, c.warnings, c.infos));
        for f in &c.findings {
            out.push_str(&format!(
                "  - [{:?}] {} {}: {}\n",
                f.severity,
                f.code,
                f.item.clone().unwrap_or_default(),
                f.message
            ));
        }
    }
    if let Some(p) = &status.preview {
        let c = &p.counts;
        out.push_str(&format!(
            "preview:  {} (expires {})\n          {} create, {} update, {} unchanged, {} skip, {} preview-only\n",
            p.digest, p.expires_at, c.create, c.update, c.unchanged, c.skip, c.preview_only
        ));
    }
    if let Some(e) = &status.execution {
        let c = &e.counts;
        out.push_str(&format!(
            "execution: {}/{} steps; {} created, {} updated, {} unchanged, {} skipped, {} drifted, {} failed\n",
            e.completed_steps, e.total_steps, c.created, c.updated, c.unchanged, c.skipped, c.drifted, c.failed
        ));
    }
    if let Some(ready) = find(&status.conditions, types::READY) {
        out.push_str(&format!("next:     {}\n", ready.message));
    }
    out
}

/// The confirmation patch for the run's current preview, after checking it can be approved and
/// that `typed_label` is the tenant's label.
pub fn approval_patch(
    status: &RestoreRunStatus,
    typed_label: &str,
    approved_by: &str,
) -> Result<serde_json::Value, PluginError> {
    let phase = status.phase.unwrap_or(Phase::Pending);
    if !matches!(phase, Phase::Previewed | Phase::AwaitingConfirmation) {
        return Err(PluginError::NotApprovable(format!(
            "the run is {phase}; only a Previewed or AwaitingConfirmation run can be approved"
        )));
    }
    let (Some(preview), Some(tenant)) = (&status.preview, &status.tenant) else {
        return Err(PluginError::NotApprovable("the run has no preview yet".into()));
    };
    if status.checks.as_ref().is_some_and(|c| c.blockers > 0) {
        return Err(PluginError::NotApprovable("the run has blocker findings".into()));
    }
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

/// Runs the plugin.
pub async fn run(cli: PluginCli, input: &mut impl BufRead, output: &mut impl Write) -> Result<(), PluginError> {
    let output = &mut restore_core::terminal::EscapingWriter::new(output);
    let client = Client::try_default().await?;
    let namespace = cli.namespace.unwrap_or_else(|| client.default_namespace().to_string());
    let runs: Api<RestoreRun> = Api::namespaced(client.clone(), &namespace);
    match cli.command {
        PluginCommand::Show { name, diff } => {
            let run = runs.get(&name).await?;
            output.write_all(summary(&run).as_bytes())?;
            let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
            let digest = run.status.as_ref().and_then(|s| s.preview.as_ref()).map(|p| p.digest.clone());
            let Some(digest) = digest else { return Ok(()) };
            // Only a report whose content has the digest in status is shown: an edited report is not.
            let report: Option<PreviewReport> = read_verified_report(&config_maps, &run, &digest)
                .await
                .map_err(|e| PluginError::Report(e.to_string()))?;
            for item in report.iter().flat_map(|r| &r.items) {
                writeln!(output, "  {:?} {} {}", item.action, item.key, item.changed_fields.join(", "))?;
                if diff && !item.diff.is_empty() {
                    writeln!(output, "{}", item.diff)?;
                }
            }
            Ok(())
        }
        PluginCommand::Approve { name, tenant, approved_by } => {
            let run = runs.get(&name).await?;
            let status = run.status.clone().unwrap_or_default();
            output.write_all(summary(&run).as_bytes())?;
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
                None => who_am_i(&client).await?,
            };
            let patch = approval_patch(&status, &typed, &approved_by)?;
            let params = PatchParams { field_manager: Some(PLUGIN_FIELD_MANAGER.into()), ..PatchParams::default() };
            runs.patch(&name, &params, &Patch::Merge(&patch)).await?;
            writeln!(output, "approved {name} as {approved_by}; the operator re-reads the tenant, then executes")?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use restore_core::api::{ChecksStatus, PreviewStatus, TenantIdentity};

    fn previewed() -> RestoreRunStatus {
        RestoreRunStatus {
            phase: Some(Phase::Previewed),
            tenant: Some(TenantIdentity { id: "t".into(), label: "Contoso Production".into() }),
            checks: Some(ChecksStatus::default()),
            preview: Some(PreviewStatus { digest: "sha256:abc".into(), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn approval_copies_the_preview_and_needs_the_exact_label() {
        let patch = approval_patch(&previewed(), "Contoso Production", "alice").unwrap();
        assert_eq!(patch["spec"]["confirmation"]["previewDigest"], "sha256:abc");
        assert_eq!(patch["spec"]["confirmation"]["approvedBy"], "alice");
        assert_eq!(patch["spec"]["dryRun"], false);
        assert!(matches!(
            approval_patch(&previewed(), "contoso production", "alice"),
            Err(PluginError::LabelMismatch { .. })
        ));
    }

    #[test]
    fn only_a_blocker_free_preview_can_be_approved() {
        let mut executing = previewed();
        executing.phase = Some(Phase::Executing);
        assert!(matches!(approval_patch(&executing, "Contoso Production", "a"), Err(PluginError::NotApprovable(_))));
        let mut blocked = previewed();
        blocked.checks = Some(ChecksStatus { blockers: 1, ..Default::default() });
        assert!(matches!(approval_patch(&blocked, "Contoso Production", "a"), Err(PluginError::NotApprovable(_))));
    }
}
