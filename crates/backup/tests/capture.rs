//! Capture reads every catalogue type with its sub-resources, assignments and references, and the
//! same tenant state always gives a byte-identical backup.

mod support;

use restore_backup::capture::{CaptureEvent, capture};
use restore_backup::native;
use restore_core::backup::{BackupTenant, NamedRef};
use restore_core::catalog::ITEM_TYPES;
use serde_json::json;

fn tenant_info() -> BackupTenant {
    BackupTenant { id: "11111111-2222-3333-4444-555555555555".into(), label: "Contoso".into() }
}

fn at() -> jiff::Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

fn named(id: &str, name: &str) -> NamedRef {
    NamedRef { id: id.into(), display_name: name.into() }
}

#[tokio::test]
async fn capture_reads_items_sub_resources_assignments_and_named_references() {
    let tenant = support::sample_tenant(false);
    let set = capture(&tenant, tenant_info(), at(), |_| {}).await.unwrap();
    let keys: Vec<String> = set.items.iter().map(|i| i.key()).collect();
    assert_eq!(
        keys,
        vec![
            "assignmentFilter/f1",
            "compliancePolicy/cp1",
            "deviceConfiguration/dc1",
            "deviceConfiguration/dc2",
            "deviceManagementSettings/settings",
            "iosAppProtectionPolicy/ap1",
            "notificationTemplate/t1",
            "powerShellScript/ps1",
            "scopeTag/0",
            "scopeTag/1",
            "settingsCatalogPolicy/sc1",
        ]
    );
    let item = |key: &str| set.items.iter().find(|i| i.key() == key).unwrap();

    let dc1 = item("deviceConfiguration/dc1");
    assert_eq!(dc1.platform, "windows");
    assert_eq!(dc1.references.groups, vec![named("g1", "All staff")]);
    assert_eq!(dc1.references.filters, vec![named("f1", "Corp laptops")]);
    assert_eq!(dc1.references.scope_tags, vec![named("0", "Default"), named("1", "Helpdesk")]);
    assert_eq!(dc1.assignments.as_ref().unwrap().len(), 2);
    assert_eq!(dc1.resource["version"], 3, "server-managed fields are kept as read");

    let cp1 = item("compliancePolicy/cp1");
    let rules = &cp1.sub_resources["scheduledActionsForRule"];
    assert_eq!(rules[0]["scheduledActionConfigurations"][1]["notificationTemplateId"], "t1");
    assert!(cp1.resource.get("scheduledActionsForRule").is_none(), "the expanded list moves to sub-resources");
    assert!(cp1.resource.get("scheduledActionsForRule@odata.context").is_none());
    assert_eq!(cp1.references.notification_templates, vec![named("t1", "Non-compliant notice")]);

    let sc1 = item("settingsCatalogPolicy/sc1");
    assert_eq!(sc1.display_name, "Edge hardening");
    assert_eq!(sc1.sub_resources["settings"].len(), 2);
    assert_eq!(sc1.references.scope_tags, vec![named("1", "Helpdesk")]);

    let t1 = item("notificationTemplate/t1");
    assert_eq!(t1.sub_resources["localizedNotificationMessages"][0]["locale"], "en-us");
    assert_eq!(t1.assignments, None, "foundations have no assignments");

    let ap1 = item("iosAppProtectionPolicy/ap1");
    assert_eq!(ap1.sub_resources["apps"][0]["id"], "app1");
    assert_eq!(ap1.references.groups, vec![named("g1", "All staff")]);
    assert_eq!(ap1.platform, "iOS");

    let ps1 = item("powerShellScript/ps1");
    assert_eq!(ps1.resource["scriptContent"], "V3JpdGUtSG9zdCAnaGkn", "the body comes from reading the script alone");

    assert_eq!(set.digest, native::digest(&set).unwrap());
    assert_eq!(set.captured_at.as_deref(), Some("2025-06-01T12:00:00Z"));
}

#[tokio::test]
async fn the_same_tenant_state_in_another_order_gives_a_byte_identical_archive() {
    let first = capture(&support::sample_tenant(false), tenant_info(), at(), |_| {}).await.unwrap();
    let second = capture(&support::sample_tenant(true), tenant_info(), at(), |_| {}).await.unwrap();
    assert_eq!(native::to_tar_gz(&first).unwrap(), native::to_tar_gz(&second).unwrap());
    assert_eq!(first.digest, second.digest);
}

#[tokio::test]
async fn a_change_in_the_tenant_changes_the_backup() {
    let before = capture(&support::sample_tenant(false), tenant_info(), at(), |_| {}).await.unwrap();
    let mut tenant = support::sample_tenant(false);
    tenant.collections.get_mut("deviceManagement/deviceConfigurations").unwrap()[0]["passwordRequired"] = json!(false);
    let after = capture(&tenant, tenant_info(), at(), |_| {}).await.unwrap();
    assert_ne!(before.digest, after.digest);
}

#[tokio::test]
async fn progress_reports_every_type_in_order() {
    let mut events = Vec::new();
    capture(&support::sample_tenant(false), tenant_info(), at(), |e| events.push(e)).await.unwrap();
    let started: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            CaptureEvent::TypeStarted { item_type, .. } => Some(*item_type),
            _ => None,
        })
        .collect();
    assert_eq!(started, ITEM_TYPES.iter().map(|t| t.name).collect::<Vec<_>>());
    assert!(events.contains(&CaptureEvent::TypeFinished { item_type: "scopeTag", items: 2 }));
    assert_eq!(events.last(), Some(&CaptureEvent::GroupsResolved { groups: 1 }));
    assert_eq!(events[0].to_string(), format!("[1/{}] scopeTag: reading", ITEM_TYPES.len()));
    assert_eq!(events[1].to_string(), "scopeTag: 2 item(s)");
}

#[tokio::test]
async fn a_failing_read_names_the_path() {
    let mut tenant = support::sample_tenant(false);
    tenant.collections.remove("deviceManagement/deviceManagementScripts");
    let err = capture(&tenant, tenant_info(), at(), |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("deviceManagement/deviceManagementScripts"), "{err}");
}

#[tokio::test]
async fn a_group_that_is_gone_is_kept_with_an_empty_name() {
    let mut tenant = support::sample_tenant(false);
    tenant.objects.retain(|path, _| !path.starts_with("groups/"));
    let set = capture(&tenant, tenant_info(), at(), |_| {}).await.unwrap();
    let dc1 = set.items.iter().find(|i| i.id == "dc1").unwrap();
    assert_eq!(dc1.references.groups, vec![named("g1", "")]);
}

#[tokio::test]
async fn filter_scope_tags_and_compliance_cc_list_groups_are_named_references() {
    let mut tenant = support::sample_tenant(false);
    let filters = tenant.collections.get_mut("deviceManagement/assignmentFilters").unwrap();
    filters[0]["roleScopeTags"] = json!(["1"]);
    let compliance = support::list_path("compliancePolicy", "deviceManagement/deviceCompliancePolicies");
    let policy = &mut tenant.collections.get_mut(&compliance).unwrap()[0];
    policy["scheduledActionsForRule"][0]["scheduledActionConfigurations"][1]["notificationMessageCCList"] =
        json!(["g1"]);
    let set = capture(&tenant, tenant_info(), at(), |_| {}).await.unwrap();
    let item = |key: &str| set.items.iter().find(|i| i.key() == key).unwrap();
    assert_eq!(item("assignmentFilter/f1").references.scope_tags, vec![named("1", "Helpdesk")]);
    assert!(item("compliancePolicy/cp1").references.groups.contains(&named("g1", "All staff")));
}
