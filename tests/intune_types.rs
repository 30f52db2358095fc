//! Every Intune kind of the catalogue on the Graph simulator, table-driven over the catalogue: capture
//! → native backup → restore into an empty tenant (cross-tenant, mapped by name) → equal state, and a
//! same-tenant drift restore; every published subtype of the polymorphic collections restores, and
//! what a restore cannot carry (secrets, certificate links) is a finding, never a silent half-write.

mod sim_support;

use std::collections::BTreeSet;

use graph_sim::model::model;
use restore_core::api::{Environment, Phase};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, References};
use restore_core::catalog::{ITEM_TYPES, ItemType, carry_limits, item_type};
use restore_core::catalog_model::{CERTIFICATE_ISSUING, WRITE_ONLY_SECRETS};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_graph::GraphClient;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{
    POLICY_KINDS, PortalAdmin, SimTenant, every_kind_samples, sample_backup_with_every_kind, sample_guid,
};
use serde_json::json;
use sim_support::*;

/// Previews `backup` against `tenant`, approves the digest and executes; returns the report's
/// finding codes per item key and the phase.
async fn restore(
    backup: &BackupSet,
    tenant: &SimTenant,
    client: &GraphClient,
    name: &str,
) -> (Phase, Vec<(FindingCode, Option<String>)>, restore_core::engine::preview::PreviewReport) {
    let (objects, fetcher) = (objects_with(backup), fetcher());
    let mut run = local_run(name, tenant, &objects, &fetcher, client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed, "{}", run.condition_message("Ready"));
    let report = run.report().unwrap().clone();
    let findings = report.findings.iter().map(|f| (f.code, f.item_key.clone())).collect();
    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, &tenant.label);
    let phase = run.drive(|_| {}).await.unwrap();
    if phase != Phase::Succeeded {
        let execution = serde_json::to_string(&run.status.execution).unwrap_or_default();
        eprintln!("{name}: {phase:?}: {execution}");
    }
    (phase, findings, report)
}

/// The backup's items a restore writes: restorable types, subtypes that are not preview-only.
fn restorable(backup: &BackupSet) -> BackupSet {
    let items = backup
        .items
        .iter()
        .filter(|i| {
            item_type(&i.item_type)
                .is_some_and(|t| t.restorable() && carry_limits(t, &i.resource).preview_only.is_none())
        })
        .cloned()
        .collect();
    BackupSet { items, ..backup.clone() }
}

fn keys_with_code(findings: &[(FindingCode, Option<String>)], code: FindingCode) -> BTreeSet<String> {
    findings.iter().filter(|(c, _)| *c == code).filter_map(|(_, k)| k.clone()).collect()
}

// ---- Every kind of the catalogue -------------------------------------------------------------------

/// The demo's sample: one object of every restorable kind of the catalogue.
fn every_kind_backup(tenant_id: &str) -> BackupSet {
    sample_backup_with_every_kind(BackupTenant { id: tenant_id.into(), label: "Contoso".into() }, POLICY_KINDS)
}

#[tokio::test]
async fn every_catalogue_kind_round_trips_capture_backup_cross_tenant_restore_and_drift() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &every_kind_backup("contoso")).unwrap();
    let source_client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&source_client, &source).await;

    // The table: every kind of the catalogue a restore writes is in the captured backup.
    // Opt-in types (Conditional Access) are not in the demo's sample: tests/intune_types_policies.rs.
    let opt_in = restore_core::engine::conditional_access::requires_opt_in;
    for t in ITEM_TYPES.iter().filter(|t| t.restorable() && !opt_in(t.name)) {
        assert!(backup.items.iter().any(|i| i.item_type == t.name), "the round trip covers no {}", t.name);
    }

    // Cross-tenant, into a tenant holding only the groups: everything restorable is created.
    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, findings, _) = restore(&backup, &target, &target_client, "every-kind").await;
    assert_eq!(phase, Phase::Succeeded);
    let now = capture_tenant(&target_client, &target).await;
    assert_eq!(differences_from_backup(&restorable(&backup), &now), Vec::<String>::new());
    let key = |name: &str| backup.items.iter().find(|i| i.display_name == name).unwrap().key();
    assert!(keys_with_code(&findings, FindingCode::SecretMustBeReentered).contains(&key("Office Wi-Fi")));
    assert!(keys_with_code(&findings, FindingCode::PreviewOnlySubtype).contains(&key("iOS SCEP user certificate")));
    assert!(
        now.items.iter().all(|i| i.display_name != "iOS SCEP user certificate"),
        "a preview-only subtype is never written"
    );

    // Same tenant: the portal edits one object of each new kind and deletes another; the restore
    // puts the backup back and a second preview is empty.
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let new_kinds: Vec<&BackupItem> = backup
        .items
        .iter()
        .filter(|i| every_kind_samples().iter().any(|s| s.id == i.id))
        .filter(|i| restorable(&BackupSet { items: vec![(*i).clone()], ..backup.clone() }).items.len() == 1)
        // The tenant-wide settings are never deleted and have no description (their own test).
        .filter(|i| item_type(&i.item_type).and_then(restore_core::engine::singleton::singleton).is_none())
        .collect();
    let (deleted, edited) = new_kinds.split_first().unwrap();
    let path = |i: &BackupItem| {
        let token = i.references.enrollment_tokens.first().map(|t| t.id.as_str());
        let collection =
            restore_core::engine::apple_enrollment::collection_path(item_type(&i.item_type).unwrap(), token);
        format!("{}/{}", collection.unwrap(), i.id)
    };
    admin.call("DELETE", &path(deleted), None).await.unwrap();
    for item in edited {
        admin.call("PATCH", &path(item), Some(&json!({"description": "changed by hand"}))).await.unwrap();
    }
    let (phase, _, report) = restore(&backup, &source, &source_client, "drift").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Create), [deleted.key()]);
    let updated: BTreeSet<String> = keys_with(&report, PlannedAction::Update).into_iter().collect();
    assert_eq!(updated, edited.iter().map(|i| i.key()).collect::<BTreeSet<_>>());
    let now = capture_tenant(&source_client, &source).await;
    assert_eq!(differences_from_backup(&restorable(&backup), &now), Vec::<String>::new());
}

// ---- Every published subtype -----------------------------------------------------------------------

/// Whether the published model has `odata` as an intermediate abstract base (`…Base` with derived types).
fn intermediate_base(odata: &str) -> bool {
    odata.ends_with("Base") && model().types.get(odata).is_some_and(|t| !t.derived_types.is_empty())
}

/// One minimal object of each concrete subtype of `t` (a compliance policy with its `block` rule).
fn one_of_each_subtype(t: &'static ItemType) -> Vec<BackupItem> {
    t.odata_types
        .iter()
        .filter(|odata| !intermediate_base(odata))
        .map(|odata| {
            let id = sample_guid(&format!("subtype/{odata}"));
            let resource = json!({"@odata.type": format!("#microsoft.graph.{odata}"), "id": id,
                "displayName": format!("{} {odata}", t.title), "roleScopeTagIds": ["0"]});
            let mut item = BackupItem {
                item_type: t.name.into(),
                id: id.clone(),
                display_name: format!("{} {odata}", t.title),
                platform: restore_core::catalog::platform_of(t, &resource),
                resource,
                assignments: Some(Vec::new()),
                sub_resources: Default::default(),
                references: References::default(),
            };
            if t.name == "compliancePolicy" {
                item.sub_resources.insert(
                    "scheduledActionsForRule".into(),
                    vec![json!({"id": format!("{id}_rule"), "ruleName": "PasswordRequired",
                        "scheduledActionConfigurations": [{"id": format!("{id}_block"), "actionType": "block",
                            "gracePeriodHours": 0, "notificationMessageCCList": []}]})],
                );
            }
            item
        })
        .collect()
}

#[tokio::test]
async fn every_published_subtype_of_device_configurations_and_compliance_restores_or_is_a_finding() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    let mut items: Vec<BackupItem> = ["deviceConfiguration", "compliancePolicy"]
        .into_iter()
        .flat_map(|name| one_of_each_subtype(item_type(name).unwrap()))
        .collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    let seeded = BackupSet { tenant: None, captured_at: None, digest: String::new(), items };
    sim.seed("contoso", &seeded).unwrap();
    let source_client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&source_client, &source).await;
    let captured: Vec<&BackupItem> = backup
        .items
        .iter()
        .filter(|i| !matches!(i.item_type.as_str(), "scopeTag" | "deviceManagementSettings"))
        .collect();
    assert_eq!(captured.len(), seeded.items.len(), "every seeded subtype is captured");
    assert!(captured.len() > 130, "every subtype of the published model: {}", captured.len());

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, findings, report) = restore(&backup, &target, &target_client, "subtypes").await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(keys_with_code(&findings, FindingCode::UnsupportedType).is_empty(), "{findings:?}");

    // Secret-bearing subtypes are written with a finding naming the secret; certificate-issuing
    // ones are preview-only with a finding; certificate links are named.
    let key_of = |odata: &str| {
        backup.items.iter().find(|i| i.resource["@odata.type"] == format!("#microsoft.graph.{odata}")).map(|i| i.key())
    };
    let secret_keys = keys_with_code(&findings, FindingCode::SecretMustBeReentered);
    for (odata, _) in WRITE_ONLY_SECRETS.iter().filter(|(o, _)| !intermediate_base(o)) {
        assert!(key_of(odata).is_some_and(|k| secret_keys.contains(&k)), "{odata}: no SecretMustBeReentered");
    }
    let preview_only = keys_with_code(&findings, FindingCode::PreviewOnlySubtype);
    for odata in CERTIFICATE_ISSUING {
        let key = key_of(odata).unwrap_or_else(|| panic!("{odata} not captured"));
        assert!(preview_only.contains(&key), "{odata}: not preview-only");
        let planned = report.items.iter().find(|i| i.key == key).unwrap();
        assert_eq!(planned.action, PlannedAction::PreviewOnly, "{odata}");
    }
    let wifi = key_of("androidEnterpriseWiFiConfiguration").unwrap();
    assert!(keys_with_code(&findings, FindingCode::CertificateLinkNotRestored).contains(&wifi));

    let now = capture_tenant(&target_client, &target).await;
    assert_eq!(differences_from_backup(&restorable(&backup), &now), Vec::<String>::new());
    // (The tenant-wide settings every tenant has carry no @odata.type.)
    let written: BTreeSet<&str> = now.items.iter().filter_map(|i| i.resource["@odata.type"].as_str()).collect();
    for item in restorable(&backup).items.into_iter().filter(|i| i.item_type != "deviceManagementSettings") {
        assert!(written.contains(item.resource["@odata.type"].as_str().unwrap()), "{} not restored", item.key());
    }
    assert!(
        !written.iter().any(|o| CERTIFICATE_ISSUING.contains(&o.trim_start_matches("#microsoft.graph."))),
        "no certificate-issuing profile is written"
    );
}

// ---- Built-in role definitions ---------------------------------------------------------------------

#[tokio::test]
async fn built_in_role_definitions_are_never_written_custom_ones_are() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    let role = |name: &str, built_in: bool| {
        let id = sample_guid(&format!("role/{name}"));
        let resource = json!({"@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition", "id": id,
            "displayName": name, "description": "", "isBuiltIn": built_in, "roleScopeTagIds": ["0"],
            "rolePermissions": [{"resourceActions": [{"allowedResourceActions": ["Microsoft.Intune_ManagedDevices_Read"],
                "notAllowedResourceActions": []}]}]});
        BackupItem {
            item_type: "roleDefinition".into(),
            id,
            display_name: name.into(),
            platform: "any".into(),
            resource,
            assignments: None,
            sub_resources: Default::default(),
            references: References::default(),
        }
    };
    let seeded = BackupSet {
        tenant: None,
        captured_at: None,
        digest: String::new(),
        items: vec![role("Help Desk Operator", true), role("Device reader", false)],
    };
    sim.seed("contoso", &seeded).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, findings, report) = restore(&backup, &target, &target_client, "roles").await;
    assert_eq!(phase, Phase::Succeeded);
    let key = |name: &str| backup.items.iter().find(|i| i.display_name == name).unwrap().key();
    assert!(keys_with_code(&findings, FindingCode::BuiltInObject).contains(&key("Help Desk Operator")));
    assert_eq!(keys_with(&report, PlannedAction::Create), [key("Device reader")]);
    let written: Vec<String> = sim
        .objects("fabrikam", item_type("roleDefinition").unwrap().collection)
        .unwrap()
        .iter()
        .map(|r| r["displayName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(written, ["Device reader"], "the built-in role is never written");
}

// ---- App configuration across tenants --------------------------------------------------------------

#[tokio::test]
async fn across_tenants_an_app_configuration_targeting_apps_by_id_is_a_blocker_and_nothing_is_written() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    let mut set = sample_backup_with_every_kind(BackupTenant { id: "contoso".into(), label: "Contoso".into() }, 0);
    let config = set.items.iter_mut().find(|i| i.item_type == "appConfigurationPolicy").unwrap();
    config.resource["targetedMobileApps"] = json!(["a1b2c3d4-0000-4000-8000-000000000001"]);
    let config_key = config.key();
    sim.seed("contoso", &set).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("app-config", &target, &objects, &fetcher, &target_client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Blocked);
    let findings: Vec<_> = run.report().unwrap().findings.iter().map(|f| (f.code, f.item_key.clone())).collect();
    assert_eq!(
        keys_with_code(&findings, FindingCode::AppReferenceNotMapped),
        BTreeSet::from([config_key]),
        "{findings:?}"
    );
    assert_eq!(writes_to(&sim, "fabrikam"), 0, "a blocked run writes nothing");
}
