//! Findings for backups a real tenant or IntuneCD produce that would restore wrongly: a Settings
//! Catalog snapshot missing settings, app protection without its apps, compliance CC-list groups.

mod support;

use restore_core::api::Severity;
use restore_core::backup::NamedRef;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use serde_json::{Value, json};
use support::*;

fn finding_codes(assessment: &restore_core::engine::Assessment) -> Vec<(FindingCode, Severity, Option<String>)> {
    assessment.report.findings.iter().map(|f| (f.code, f.severity, f.item_key.clone())).collect()
}

#[tokio::test]
async fn setting_count_mismatch_is_a_blocker_and_the_item_is_skipped() {
    let (_source, mut backup, _) = seeded("contoso", 4).await;
    let item = backup.items.iter_mut().find(|i| i.item_type == "settingsCatalogPolicy").unwrap();
    let held = item.sub_resources["settings"].len();
    item.resource["settingCount"] = json!(held + 18);
    let key = item.key();
    let scope = scope_all(&backup);
    let assessment = preview(&groups_only("other"), &scope).await;
    let codes = finding_codes(&assessment);
    assert!(codes.contains(&(FindingCode::SettingCountMismatch, Severity::Blocker, Some(key.clone()))), "{codes:?}");
    let previewed = assessment.report.items.iter().find(|i| i.key == key).unwrap();
    assert_eq!(previewed.action, PlannedAction::Skip);

    // A snapshot that holds every setting it declares has no such finding.
    let (_source, backup, _) = seeded("contoso", 4).await;
    let assessment = preview(&groups_only("other"), &scope_all(&backup)).await;
    assert!(finding_codes(&assessment).iter().all(|c| c.0 != FindingCode::SettingCountMismatch));
}

#[tokio::test]
async fn app_protection_without_apps_is_a_warning() {
    let (_source, mut backup, _) = seeded("contoso", 12).await;
    let item = backup.items.iter_mut().find(|i| i.item_type == "iosAppProtectionPolicy").unwrap();
    item.sub_resources.remove("apps");
    item.resource.as_object_mut().unwrap().remove("apps");
    let key = item.key();
    let assessment = preview(&groups_only("other"), &scope_all(&backup)).await;
    let codes = finding_codes(&assessment);
    assert!(codes.contains(&(FindingCode::AppProtectionWithoutApps, Severity::Warning, Some(key))), "{codes:?}");
    let flagged = codes.iter().filter(|c| c.0 == FindingCode::AppProtectionWithoutApps).count();
    assert_eq!(flagged, 1, "a policy whose backup holds its apps is not flagged: {codes:?}");
}

#[tokio::test]
async fn notification_cc_list_groups_are_mapped_and_a_missing_one_is_a_blocker() {
    let (_source, mut backup, _) = seeded("contoso", 4).await;
    let item = backup.items.iter_mut().find(|i| i.item_type == "compliancePolicy").unwrap();
    let rule = &mut item.sub_resources.get_mut("scheduledActionsForRule").unwrap()[0];
    let configs = rule["scheduledActionConfigurations"].as_array_mut().unwrap();
    configs.push(json!({"actionType": "notification", "gracePeriodHours": 24,
        "notificationTemplateId": "00000000-0000-0000-0000-000000000000", "notificationMessageCCList": ["src-helpdesk"]}));
    item.references.groups.push(NamedRef { id: "src-helpdesk".into(), display_name: "Helpdesk".into() });
    let key = item.key();

    // The target lacks the group: a blocker, as for an assignment's group.
    let assessment = preview(&groups_only("other"), &scope_all(&backup)).await;
    let codes = finding_codes(&assessment);
    assert!(codes.contains(&(FindingCode::MissingGroup, Severity::Blocker, Some(key.clone()))), "{codes:?}");

    // The target has it: the write carries the target's group id.
    let target = groups_only("other");
    let helpdesk = target.add_group("Helpdesk");
    let scope = scope_all(&backup);
    let assessment = preview(&target, &scope).await;
    assert!(
        finding_codes(&assessment).iter().all(|c| c.0 != FindingCode::MissingGroup),
        "{:?}",
        finding_codes(&assessment)
    );
    execute(&target, &scope, &assessment).await;
    let written = target.objects(restore_core::catalog::item_type("compliancePolicy").unwrap().collection);
    let cc: Vec<Value> = written
        .iter()
        .flat_map(|p| p["scheduledActionsForRule"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["scheduledActionConfigurations"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c.get("notificationMessageCCList").cloned())
        .collect();
    assert!(cc.contains(&json!([helpdesk])), "{cc:?}");
}
