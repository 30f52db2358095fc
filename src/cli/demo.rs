//! `restore-operator demo`: the whole wizard in seconds against an in-process Graph simulator — backup,
//! drift, preview and diff, approval with the printed digest through the wizard's gate, execution, re-check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use graph_sim::{SimConfig, SimError, SimHandle};
use restore_backup::capture::{CaptureError, capture};
use restore_backup::fetch::Fetcher;
use restore_backup::{BackupError, Limits, native};
use restore_core::api::{Confirmation, Environment, Phase};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::catalog::{TypeClass, item_type};
use restore_core::engine::execute::{StepResult, StepStatus};
use restore_core::engine::mapping::DEFAULT_SCOPE_TAG_ID;
use restore_core::engine::normalize::strip_server_managed;
use restore_graph::{GraphClient, GraphError};
use serde_json::{Value, json};

use crate::cli::demo_backup::{
    GROUP_FINANCE, GROUPS, PortalAdmin, PortalError, SimTenant, sample_backup_with_every_kind, sample_guid,
    start_simulator,
};
use crate::cli::local_objects::LocalObjects;
use crate::cli::preview::{diff_text, phase_line, summary};
use crate::cli::wizard_loop::{LocalRun, LocalTenant, RunEvent, WizardLoopError, dry_run_spec};

/// The demo tenant's hard-confirm label.
pub const DEMO_LABEL: &str = "Contoso (simulated)";
/// The namespace of the demo's RestoreRuns.
const NAMESPACE: &str = "intune";
/// The ConfigMap that holds the demo's backup archive.
const BACKUP_CONFIG_MAP: &str = "contoso-backup";
/// Its `binaryData` key.
const BACKUP_KEY: &str = "backup.tar.gz";
/// Who approves in the demo.
const APPROVER: &str = "demo-admin";
/// The fewest policies the drift needs (it edits policy 0, deletes 2, reassigns 4).
pub const MIN_POLICIES: usize = 5;

/// Options of `restore-operator demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Policies in the sample tenant (one of each restorable type every 9; at least 5).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u16).range(MIN_POLICIES as i64..=2000))]
    pub policies: u16,
    /// Keep the simulated tenant serving after the demo (until Ctrl-C), write its manifests and
    /// backup into --keep-dir, and print the exact `preview`, `run` and kubectl commands to try.
    #[arg(long)]
    pub keep: bool,
    /// Where --keep writes the manifests (IntuneTenant + Secret, backup ConfigMap and archive, RestoreRun).
    #[arg(long, value_name = "DIR", default_value_os_t = crate::cli::demo_keep::default_dir())]
    pub keep_dir: std::path::PathBuf,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator could not start or be seeded.
    #[error("simulator: {0}")]
    Simulator(#[from] SimError),
    /// The Graph client failed.
    #[error("Graph client: {0}")]
    Graph(#[from] GraphError),
    /// Capturing the backup failed.
    #[error("backup: {0}")]
    Capture(#[from] CaptureError),
    /// Writing the backup archive failed.
    #[error("backup archive: {0}")]
    Archive(#[from] BackupError),
    /// A portal change (the drift) failed.
    #[error("drift: {0}")]
    Drift(#[from] PortalError),
    /// The wizard stopped.
    #[error(transparent)]
    Run(#[from] WizardLoopError),
    /// The run did not reach the phase the demo expects.
    #[error("expected phase {expected}, the run is {found}: {message}")]
    UnexpectedPhase {
        /// The phase the demo needs.
        expected: Phase,
        /// The phase reached.
        found: Phase,
        /// The wizard's message.
        message: String,
    },
    /// After the restore the tenant still differs from the backup.
    #[error("the tenant does not equal the backup after the restore: {0}")]
    NotRestored(String),
    /// Writing to stdout failed.
    #[error("writing output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Prints demo lines with the seconds since the start.
struct Narrator {
    started: Instant,
}

impl Narrator {
    fn section(&self, text: &str) {
        println!("\n[{:>6.2}s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn block(&self, text: &str) {
        for line in text.lines() {
            println!("          {line}");
        }
    }
}

/// The drift the demo makes, one line per change.
struct Drift {
    lines: Vec<String>,
    added_id: String,
}

fn find<'b>(backup: &'b BackupSet, type_name: &str, prefix: &str) -> Option<&'b BackupItem> {
    backup.items.iter().find(|i| i.item_type == type_name && i.display_name.starts_with(prefix))
}

fn missing_sample(what: &str) -> DemoError {
    DemoError::NotRestored(format!("the sample tenant has no {what}"))
}

/// Drifts the tenant as an admin in the portal would: an edit, a deletion, an addition, a reassignment.
async fn drift(
    sim: &SimHandle,
    admin: &PortalAdmin,
    tenant: &SimTenant,
    backup: &BackupSet,
) -> Result<Drift, DemoError> {
    let collection = |t: &str| item_type(t).map(|t| t.collection).unwrap_or_default();
    let mut lines = Vec::new();

    let edited = find(backup, "deviceConfiguration", "Win10 custom").ok_or_else(|| missing_sample("custom profile"))?;
    let mut settings = edited.resource.get("omaSettings").cloned().unwrap_or(json!([]));
    settings[0]["value"] = json!(15);
    let patch = json!({"@odata.type": edited.resource["@odata.type"], "description": "changed by hand",
        "omaSettings": settings});
    admin.call("PATCH", &format!("{}/{}", collection("deviceConfiguration"), edited.id), Some(&patch)).await?;
    lines.push(format!("edit      deviceConfiguration/{} — description, omaSettings[0].value", edited.display_name));

    let deleted = find(backup, "compliancePolicy", "Win10 compliance").ok_or_else(|| missing_sample("compliance"))?;
    admin.call("DELETE", &format!("{}/{}", collection("compliancePolicy"), deleted.id), None).await?;
    lines.push(format!("delete    compliancePolicy/{}", deleted.display_name));

    let added = json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "Added after the backup", "roleScopeTagIds": ["0"], "omaSettings": []});
    let created = admin.call("POST", collection("deviceConfiguration"), Some(&added)).await?;
    let added_id = created.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    lines
        .push("add       deviceConfiguration/Added after the backup (not in the backup: the restore leaves it)".into());

    let script = find(backup, "powerShellScript", "Set wallpaper").ok_or_else(|| missing_sample("script"))?;
    let finance = sim.group_ids(&tenant.tenant_id, GROUP_FINANCE)?.into_iter().next().unwrap_or_default();
    let assign = json!({"deviceManagementScriptAssignments": [{"target": {
        "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": finance,
        "deviceAndAppManagementAssignmentFilterType": "none"}}]});
    admin.call("POST", &format!("{}/{}/assign", collection("powerShellScript"), script.id), Some(&assign)).await?;
    lines.push(format!("reassign  powerShellScript/{} — from group Pilot to {GROUP_FINANCE}", script.display_name));
    Ok(Drift { lines, added_id })
}

/// What to compare of an item: its resource, sub-resources and assignments without server fields,
/// with the ids of the groups, scope tags, filters and templates it references replaced by their names.
fn comparable(item: &BackupItem) -> Value {
    let mut doc =
        json!({"resource": item.resource, "subResources": item.sub_resources, "assignments": item.assignments});
    strip_server_managed(&mut doc);
    let r = &item.references;
    let names: BTreeMap<&str, &str> =
        [&r.groups, &r.scope_tags, &r.filters, &r.notification_templates, &r.named_locations, &r.users]
            .into_iter()
            .flatten()
            .map(|n| (n.id.as_str(), n.display_name.as_str()))
            .collect();
    fn rename(value: &mut Value, names: &BTreeMap<&str, &str>) {
        match value {
            Value::String(s) => {
                if let Some(name) = names.get(s.as_str()) {
                    *s = format!("name:{name}");
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rename(v, names)),
            Value::Object(map) => map.values_mut().for_each(|v| rename(v, names)),
            _ => {}
        }
    }
    rename(&mut doc, &names);
    // Assignments are compared as a set: their order follows ids, which differ across tenants.
    if let Some(Value::Array(list)) = doc.get_mut("assignments") {
        list.sort_by_cached_key(restore_core::canonical::canonical_json);
    }
    doc
}

/// The items of `backup` of a restorable type (the built-in Default scope tag aside) that `now` lacks
/// or holds differently, matched by type and display name; empty when the tenant equals the backup.
pub fn differences_from_backup(backup: &BackupSet, now: &BackupSet) -> Vec<String> {
    let restorable = |i: &&BackupItem| {
        item_type(&i.item_type).is_some_and(|t| {
            t.class != TypeClass::PreviewOnly
                && restore_core::catalog::carry_limits(t, &i.resource).preview_only.is_none()
        }) && !(i.item_type == "scopeTag" && i.id == DEFAULT_SCOPE_TAG_ID)
    };
    let mut problems = Vec::new();
    for item in backup.items.iter().filter(restorable) {
        let label = format!("{}/{}", item.item_type, item.display_name);
        let found: Vec<&BackupItem> =
            now.items.iter().filter(|n| n.item_type == item.item_type && n.display_name == item.display_name).collect();
        match found.as_slice() {
            [one] if comparable(one) == comparable(item) => {}
            [_] => problems.push(format!("{label} differs")),
            [] => problems.push(format!("{label} is missing")),
            many => problems.push(format!("{label} exists {} times", many.len())),
        }
    }
    problems
}

/// The restorable items of a backup (what [`differences_from_backup`] compares).
pub fn restorable_count(backup: &BackupSet) -> usize {
    let empty = BackupSet { items: Vec::new(), ..backup.clone() };
    differences_from_backup(backup, &empty).len()
}

fn step_line(result: &StepResult, labels: &BTreeMap<String, String>) -> Option<String> {
    let label = labels.get(&result.step.item).cloned().unwrap_or_else(|| result.step.item.clone());
    let what = match &result.step.sub_resource {
        Some(sub) => format!("{} {sub}", result.step.kind.as_str()),
        None => result.step.kind.as_str().to_string(),
    };
    let status = match result.status {
        StepStatus::Written => "written",
        StepStatus::AlreadyDone => "already done",
        StepStatus::Verified => return None,
        StepStatus::Drifted => "DRIFTED",
        StepStatus::Failed => "FAILED",
        StepStatus::NotRun => "not run",
    };
    let message = result.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default();
    Some(format!("  {what:<22} {label} {status}{message}"))
}

fn expect_phase<C, T>(run: &LocalRun<'_, C, T>, expected: Phase) -> Result<(), DemoError>
where
    C: restore_backup::source::ClusterObjects,
    T: restore_core::tenant::TenantPort,
{
    let found = run.phase();
    if found == expected {
        return Ok(());
    }
    let message = run.condition_message(restore_core::conditions::types::READY).to_string();
    Err(DemoError::UnexpectedPhase { expected, found, message })
}

/// Runs `restore-operator demo`.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let policies = usize::from(args.policies);
    let n = Narrator { started: Instant::now() };
    println!(
        "restore-operator demo: the RestoreRun wizard end to end against an in-process Microsoft Graph simulator\n\
         (no cluster, no set-up, no network beyond 127.0.0.1)."
    );

    // 1. A simulated tenant with a sample configuration.
    let sim = start_simulator(SimConfig::default()).await?;
    let tenant_id = sample_guid("tenant/contoso");
    let tenant = SimTenant::create(&sim, &tenant_id, DEMO_LABEL, Environment::Staging)?;
    let info = BackupTenant { id: tenant_id.clone(), label: DEMO_LABEL.into() };
    let seeded = sim.seed(&tenant_id, &sample_backup_with_every_kind(info.clone(), policies))?;
    let client: GraphClient = tenant.client(&sim)?;
    n.section(&format!(
        "1. Simulated tenant {DEMO_LABEL:?} ({tenant_id}, staging) at {}: {} objects, groups {}",
        sim.base_url(),
        seeded.items,
        GROUPS.join(", ")
    ));

    // 2. Take a backup through Graph, as `restore-operator backup` does, and hand it to the run.
    let backup = capture(&client, info, jiff::Timestamp::now(), |_| {}).await?;
    let archive = native::to_tar_gz(&backup)?;
    let archive_kib = archive.len().div_ceil(1024);
    let mut objects = LocalObjects::new();
    let kept_archive = args.keep.then(|| archive.clone());
    let source = objects.insert_archive(Some(NAMESPACE), BACKUP_CONFIG_MAP, BACKUP_KEY, archive);
    n.section(&format!(
        "2. Backup taken through Microsoft Graph: {} items, digest {} ({} KiB .tar.gz in ConfigMap {NAMESPACE}/{BACKUP_CONFIG_MAP})",
        backup.items.len(),
        backup.digest,
        archive_kib
    ));

    // 3. Drift.
    let admin = PortalAdmin::sign_in(&sim, &tenant).await?;
    let drifted = drift(&sim, &admin, &tenant, &backup).await?;
    n.section("3. The tenant drifts (an admin in the Intune portal):");
    n.block(&drifted.lines.join("\n"));

    // 4. Preview, through the same wizard and runner as the controller.
    let spec = dry_run_spec("contoso", source);
    let fetcher = Fetcher::with_extra_roots(None, Limits::default())?;
    let local = LocalTenant { id: tenant_id.clone(), label: DEMO_LABEL.into(), environment: Environment::Staging };
    let mut run = LocalRun::new("contoso-restore", NAMESPACE, spec.clone(), local.clone(), &objects, &fetcher, &client);
    n.section(&format!("4. Preview: RestoreRun {NAMESPACE}/contoso-restore (dryRun: true)"));
    let print_phase = |event: RunEvent<'_>| {
        if let RunEvent::Phase { phase, elapsed, message } = event {
            n.block(&phase_line(phase, elapsed, message));
        }
    };
    run.drive(print_phase).await?;
    expect_phase(&run, Phase::Previewed)?;
    n.block(&summary(&run, false));
    if let Some(report) = run.report() {
        n.block(&format!("The diff (tenant → backup):{}", diff_text(report)));
    }
    let digest = run.digest().unwrap_or_default().to_string();

    // 5. Approve with the printed digest: the wizard's gate decides, as in the cluster.
    run.spec.dry_run = false;
    run.spec.confirmation = Some(Confirmation {
        reviewed_impact: true,
        tenant: DEMO_LABEL.into(),
        preview_digest: digest.clone(),
        approved_by: APPROVER.into(),
    });
    n.section(&format!(
        "5. Approve: spec.dryRun: false, spec.confirmation: {{reviewedImpact: true, tenant: {DEMO_LABEL:?}, \
         previewDigest: {digest}, approvedBy: {APPROVER}}}"
    ));
    let labels: BTreeMap<String, String> = run
        .report()
        .map(|r| r.items.iter().map(|i| (i.key.clone(), format!("{}/{}", i.item_type, i.display_name))).collect())
        .unwrap_or_default();
    run.drive(|event| match event {
        RunEvent::Phase { phase, elapsed, message } => n.block(&phase_line(phase, elapsed, message)),
        RunEvent::Executed(result) => {
            if let Some(line) = step_line(result, &labels) {
                n.block(&line);
            }
        }
    })
    .await?;
    expect_phase(&run, Phase::Succeeded)?;

    // 6. Preview again with a new run (a finished run is final): nothing left to change.
    let mut check = LocalRun::new("contoso-recheck", NAMESPACE, spec.clone(), local, &objects, &fetcher, &client);
    check.drive(|_| {}).await?;
    expect_phase(&check, Phase::Previewed)?;
    let counts = check.report().map(|r| r.counts.clone()).unwrap_or_default();
    n.section(&format!(
        "6. Preview again (RestoreRun {NAMESPACE}/contoso-recheck): {} to create, {} to update, {} unchanged",
        counts.create, counts.update, counts.unchanged
    ));

    // 7. The tenant equals the backup for the restorable types; the addition is still there.
    let now = capture(
        &client,
        BackupTenant { id: tenant_id.clone(), label: DEMO_LABEL.into() },
        jiff::Timestamp::now(),
        |_| {},
    )
    .await?;
    let mut problems = differences_from_backup(&backup, &now);
    if counts.changes() != 0 {
        problems.push(format!("the second preview still plans {} change(s)", counts.changes()));
    }
    let kept = now.items.iter().any(|i| i.id == drifted.added_id);
    if !kept {
        problems.push("the object added after the backup is gone".into());
    }
    if !problems.is_empty() {
        return Err(DemoError::NotRestored(problems.join("; ")));
    }
    let mut done = String::new();
    let _ = write!(
        done,
        "7. Verified: the tenant equals the backup for all {} restorable items; the object added after the \
         backup is still there (the operator never deletes).",
        restorable_count(&backup)
    );
    n.section(&done);
    println!("\nDemo finished in {:.2} s.", n.started.elapsed().as_secs_f64());
    if let Some(archive) = kept_archive {
        keep_serving(&n, &sim, &tenant, &admin, &backup, &spec, &archive, &args.keep_dir).await?;
    }
    Ok(())
}

/// `--keep`: drifts the tenant again (so a new preview has something to show), writes the manifests,
/// prints the commands, and serves until Ctrl-C.
#[allow(clippy::too_many_arguments)]
async fn keep_serving(
    n: &Narrator,
    sim: &SimHandle,
    tenant: &SimTenant,
    admin: &PortalAdmin,
    backup: &BackupSet,
    spec: &restore_core::api::RestoreRunSpec,
    archive: &[u8],
    dir: &std::path::Path,
) -> Result<(), DemoError> {
    // An edit in place (the restore re-created the deleted policy under a new id; this one kept its id).
    let edited = find(backup, "deviceConfiguration", "Win10 custom").ok_or_else(|| missing_sample("custom profile"))?;
    let collection = item_type("deviceConfiguration").map(|t| t.collection).unwrap_or_default();
    let patch = json!({"@odata.type": edited.resource["@odata.type"], "description": "changed by hand again"});
    admin.call("PATCH", &format!("{collection}/{}", edited.id), Some(&patch)).await?;
    let script = find(backup, "powerShellScript", "Set wallpaper").ok_or_else(|| missing_sample("script"))?;
    let finance = sim.group_ids(&tenant.tenant_id, GROUP_FINANCE)?.into_iter().next().unwrap_or_default();
    let assign = json!({"deviceManagementScriptAssignments": [{"target": {
        "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": finance,
        "deviceAndAppManagementAssignmentFilterType": "none"}}]});
    let scripts = item_type("powerShellScript").map(|t| t.collection).unwrap_or_default();
    admin.call("POST", &format!("{scripts}/{}/assign", script.id), Some(&assign)).await?;
    n.section("8. Kept: the tenant drifted again, so your own preview has changes:");
    n.block(&format!(
        "edit      deviceConfiguration/{} — description\nreassign  powerShellScript/{} — to group {GROUP_FINANCE}",
        edited.display_name, script.display_name
    ));
    let names = crate::cli::demo_keep::KeptNames {
        namespace: NAMESPACE,
        tenant: "contoso",
        secret: "contoso-graph",
        config_map: BACKUP_CONFIG_MAP,
        config_map_key: BACKUP_KEY,
        run: "contoso-restore",
    };
    let commands = crate::cli::demo_keep::write_manifests(dir, sim, tenant, &names, spec, archive)?;
    n.section(&format!(
        "Simulated tenant {DEMO_LABEL:?} serving at {} (label to type when approving: {DEMO_LABEL:?}); files in {}",
        sim.base_url(),
        dir.display()
    ));
    println!("\n{commands}");
    tokio::signal::ctrl_c().await?;
    println!("stopped; the simulated tenant is gone.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::demo_backup::sample_policy;
    use restore_core::backup::NamedRef;

    fn backup(items: Vec<BackupItem>) -> BackupSet {
        BackupSet { tenant: None, captured_at: None, digest: "sha256:x".into(), items }
    }

    /// The same object as another tenant (or a re-created object) holds it: other ids everywhere,
    /// other server fields, references with other ids but the same names.
    fn elsewhere(item: &BackupItem) -> BackupItem {
        let mut text = serde_json::to_string(item).unwrap();
        for r in [&item.references.groups, &item.references.scope_tags, &item.references.filters].into_iter().flatten()
        {
            text = text.replace(&format!("\"{}\"", r.id), &format!("\"other-{}\"", r.id));
        }
        let mut moved: BackupItem = serde_json::from_str(&text).unwrap();
        moved.id = "new-id".into();
        moved.resource["id"] = json!("new-id");
        moved.resource["lastModifiedDateTime"] = json!("2030-01-01T00:00:00Z");
        moved.resource["version"] = json!(9);
        moved
    }

    #[test]
    fn an_object_equal_but_for_ids_and_server_fields_is_no_difference() {
        let original = backup((0..9).map(sample_policy).collect());
        let now = backup(original.items.iter().map(elsewhere).collect());
        assert_eq!(differences_from_backup(&original, &now), Vec::<String>::new());
        assert_eq!(restorable_count(&original), 9, "every kind of the cycle is restorable");
    }

    #[test]
    fn a_changed_missing_or_duplicated_restorable_item_is_a_difference() {
        let original = backup((0..3).map(sample_policy).collect());
        let mut changed = original.items[0].clone();
        changed.resource["description"] = json!("edited");
        let mut regrouped = original.items[1].clone();
        regrouped.references.groups[0] =
            NamedRef { id: regrouped.references.groups[0].id.clone(), display_name: "Other".into() };
        let now = backup(vec![changed, regrouped, original.items[2].clone(), original.items[2].clone()]);
        assert_eq!(
            differences_from_backup(&original, &now),
            [
                "deviceConfiguration/Win10 custom 00 differs",
                "deviceConfiguration/iOS restrictions 01 differs",
                "compliancePolicy/Win10 compliance 02 exists 2 times",
            ]
        );
        assert_eq!(differences_from_backup(&original, &backup(Vec::new())).len(), 3);
        let template = backup(vec![sample_policy(8)]);
        assert_eq!(
            differences_from_backup(&template, &backup(Vec::new())).len(),
            1,
            "Administrative Templates are compared"
        );
    }
}
