//! The restore engine end to end on the in-memory tenant: the round trip after drift, and the
//! cross-tenant restore that maps groups, scope tags and filters by name.

mod support;

use restore_core::api::{ItemOutcome, Severity};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::plan::{ExecutionPlan, PlanError};
use restore_core::engine::snapshot::object_path;
use restore_core::tenant::TenantPort;
use serde_json::{Value, json};
use support::seed::*;
use support::*;

fn item_key(backup: &restore_core::backup::BackupSet, name: &str) -> String {
    backup.items.iter().find(|i| i.display_name == name).map(|i| i.key()).unwrap()
}

#[tokio::test]
async fn round_trip_backup_drift_preview_execute_restores_the_backup_and_a_second_preview_is_empty() {
    let (tenant, backup, scope) = seeded("contoso", 16).await;

    // Drift: an edit, a deletion, an addition and a reassignment.
    let dc = col("deviceConfiguration");
    let edited = tenant.id_named(dc, "Win10 custom 00");
    tenant.edit(dc, &edited, |o| {
        o["description"] = json!("changed by hand");
        o["omaSettings"][0]["value"] = json!(15);
    });
    let deleted = tenant.id_named(col("compliancePolicy"), "Win10 compliance 02");
    tenant.remove(col("compliancePolicy"), &deleted);
    let added = tenant.insert(
        dc,
        json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "Added after the backup", "roleScopeTagIds": ["0"], "omaSettings": []}),
    );
    let reassigned = tenant.id_named(col("powerShellScript"), "Set wallpaper 04");
    let finance = assignment(&tenant, GROUP_FINANCE, false);
    tenant.edit(col("powerShellScript"), &reassigned, |o| o["assignments"] = json!([finance]));

    // The preview lists exactly those changes (the addition is not in the backup: left alone).
    let first = preview(&tenant, &scope).await;
    assert_eq!(keys_with(&first, "create"), [item_key(&backup, "Win10 compliance 02")]);
    assert_eq!(
        keys_with(&first, "update"),
        [item_key(&backup, "Win10 custom 00"), item_key(&backup, "Set wallpaper 04")]
    );
    let edit = first.report.items.iter().find(|i| i.display_name == "Win10 custom 00").unwrap();
    assert_eq!(edit.changed_fields, ["description", "omaSettings[0].value"]);
    assert!(edit.diff.contains("-  \"description\": \"changed by hand\",\n+  \"description\": \"OMA settings\","));
    let reassign = first.report.items.iter().find(|i| i.display_name == "Set wallpaper 04").unwrap();
    assert_eq!(reassign.changed_fields, ["assignments[0].target.groupId"]);
    assert!(
        reassign.diff.contains("-        \"groupId\": \"Finance\"\n+        \"groupId\": \"Pilot\""),
        "{}",
        reassign.diff
    );
    assert_eq!(first.report.blockers(), 0);

    // Execute: the three items are written, nothing else.
    let executor = execute(&tenant, &scope, &first).await;
    let facts = executor.facts();
    assert!(facts.finished);
    assert_eq!((facts.counts.created, facts.counts.updated, facts.counts.failed, facts.counts.drifted), (1, 2, 0, 0));
    assert_eq!(facts.counts.unchanged as usize, backup.items.len() - 3, "all but the 3 changes");

    // The tenant equals the backup for the restorable types: a second preview shows zero changes.
    let second = preview(&tenant, &scope).await;
    assert_eq!(second.report.counts.changes(), 0, "{}", second.report.summary_text());
    assert_ne!(second.digest, first.digest);
    let recaptured = capture(&tenant).await;
    for item in backup.items.iter().filter(|i| i.item_type != "administrativeTemplate") {
        let now = recaptured
            .items
            .iter()
            .find(|r| r.item_type == item.item_type && r.display_name == item.display_name)
            .unwrap();
        let strip = |v: &Value| {
            let mut v = v.clone();
            restore_core::engine::normalize::strip_server_managed(&mut v);
            v
        };
        assert_eq!(strip(&now.resource), strip(&item.resource), "{}", item.display_name);
        assert_eq!(now.assignments.as_ref().map(|a| a.len()), item.assignments.as_ref().map(|a| a.len()));
        assert_eq!(now.references.groups, item.references.groups, "{}", item.display_name);
    }
    // The object added after the backup is still there (rule 7).
    assert!(
        tenant
            .get(&object_path(restore_core::catalog::item_type("deviceConfiguration").unwrap(), &added, false))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn cross_tenant_restore_maps_groups_scope_tags_and_filters_by_name() {
    let (source, _backup, scope) = seeded("source-tenant", 8).await;

    // The target has the same groups by name (other ids) and none of the foundations or policies.
    let target = groups_only("target-tenant");
    assert_ne!(target.id_named(GROUPS, GROUP_PILOT), source.id_named(GROUPS, GROUP_PILOT));

    let assessment = preview(&target, &scope).await;
    let report = &assessment.report;
    assert!(report.cross_tenant);
    assert!(report.findings.iter().any(|f| f.code == FindingCode::CrossTenantRestore && f.severity == Severity::Info));
    assert_eq!(report.blockers(), 0, "{}", report.summary_text());
    assert_eq!(report.counts.create, 4 + 8, "4 foundations and 8 restorable policies");

    execute(&target, &scope, &assessment).await;

    // Every reference points at the target's own object of the same name.
    let pilot = target.id_named(GROUPS, GROUP_PILOT);
    let filter = target.id_named(col("assignmentFilter"), FILTER);
    let paris = target.id_named(col("scopeTag"), TAG_PARIS);
    let template = target.id_named(col("notificationTemplate"), TEMPLATE);
    let custom = target.objects(col("deviceConfiguration"));
    let custom = custom.iter().find(|o| o["displayName"] == "Win10 custom 00").unwrap();
    assert_eq!(custom["roleScopeTagIds"], json!([paris]));
    assert_eq!(custom["assignments"][0]["target"]["groupId"], json!(pilot));
    assert_eq!(custom["assignments"][0]["target"]["deviceAndAppManagementAssignmentFilterId"], json!(filter));
    let compliance = &target.objects(col("compliancePolicy"))[0];
    let actions = &compliance["scheduledActionsForRule"][0]["scheduledActionConfigurations"];
    assert_eq!(actions[1]["notificationTemplateId"], json!(template));
    let template_object = &target.objects(col("notificationTemplate"))[0];
    assert_eq!(template_object["localizedNotificationMessages"][0]["locale"], "en-us");
    let mam = &target.objects(col("iosAppProtectionPolicy"))[0];
    assert_eq!(mam["apps"].as_array().unwrap().len(), 2);
    let script = &target.objects(col("powerShellScript"))[0];
    assert_eq!(script["scriptContent"], "V3JpdGUtSG9zdCAiaGVsbG8i");
    assert_eq!(target.objects(col("administrativeTemplate")).len(), 1, "Administrative Templates are restored too");

    // And the target now previews as unchanged.
    let again = preview(&target, &scope).await;
    assert_eq!(again.report.counts.changes(), 0, "{}", again.report.summary_text());
}

#[tokio::test]
async fn cross_tenant_missing_group_is_a_blocker_and_nothing_is_written() {
    let (_source, _backup, scope) = seeded("source-tenant", 8).await;
    let target = FakeTenant::new("target-tenant");
    target.add_group(GROUP_ALL);
    target.add_group(GROUP_FINANCE); // no "Pilot"

    let assessment = preview(&target, &scope).await;
    let missing: Vec<_> = assessment.report.findings.iter().filter(|f| f.code == FindingCode::MissingGroup).collect();
    assert!(!missing.is_empty());
    assert!(missing.iter().all(|f| f.severity == Severity::Blocker && f.message.contains("Pilot")));
    assert_eq!(assessment.checks_status().blockers as usize, missing.len());
    assert_eq!(assessment.checks_status().findings[0].code, "MissingGroup", "most severe first");

    target.reset_counters();
    let err = ExecutionPlan::build(&scope, &assessment.report).unwrap_err();
    assert!(matches!(err, PlanError::Blocked(n) if n as usize == missing.len()));
    assert!(target.write_calls().is_empty());
}

#[tokio::test]
async fn existing_objects_skip_leaves_differing_objects_alone() {
    let (tenant, _backup, scope) = seeded("contoso", 8).await;
    let dc = col("deviceConfiguration");
    let edited = tenant.id_named(dc, "Win10 custom 00");
    tenant.edit(dc, &edited, |o| o["description"] = json!("local change"));

    let options = restore_core::engine::EngineOptions {
        existing_objects: restore_core::api::ExistingObjects::Skip,
        ..Default::default()
    };
    let assessment = restore_core::engine::assess(&tenant, &scope, &target(&tenant), &options).await.unwrap();
    let item = assessment.report.items.iter().find(|i| i.display_name == "Win10 custom 00").unwrap();
    assert_eq!(item.action, PlannedAction::Skip);
    assert!(item.reason.as_deref().unwrap().contains("existingObjects"));
    let executor = execute(&tenant, &scope, &assessment).await;
    assert!(tenant.write_calls().is_empty());
    let result = executor.item_results().into_iter().find(|r| r.item == item.key).unwrap();
    assert_eq!(result.outcome, ItemOutcome::Skipped);
}
