//! The IntuneCD fixture set under `tests/fixtures/intunecd/` (JSON and YAML, laid out as IntuneCD
//! writes its backups) loads and maps: folders to types, names kept for mapping, bodies attached.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use restore_backup::intunecd::{NAME_ID_PREFIX, SYNTHETIC_ID_PREFIX};
use restore_backup::source::load_local;
use restore_backup::{FileTree, FindingCode, Limits, Loaded, native};
use restore_core::api::BackupFormat;
use restore_core::backup::{BackupItem, NamedRef};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intunecd")
}

fn load() -> Loaded {
    load_local(&fixture(), None, BackupFormat::IntuneCd, &Limits::default()).unwrap()
}

fn by_name<'a>(loaded: &'a Loaded, name: &str) -> &'a BackupItem {
    loaded.set.items.iter().find(|i| i.display_name == name).unwrap_or_else(|| panic!("no item {name}"))
}

fn name_ref(name: &str) -> NamedRef {
    NamedRef { id: format!("{NAME_ID_PREFIX}{name}"), display_name: name.into() }
}

#[test]
fn every_mapped_folder_yields_items_of_its_type() {
    let loaded = load();
    let mut counts = BTreeMap::new();
    for item in &loaded.set.items {
        *counts.entry(item.item_type.as_str()).or_insert(0) += 1;
    }
    let expected: BTreeMap<&str, i32> = [
        ("administrativeTemplate", 1),
        ("androidAppProtectionPolicy", 1),
        ("assignmentFilter", 1),
        ("autopilotProfile", 1),
        ("compliancePolicy", 1),
        ("complianceScript", 1),
        ("customAttributeScript", 1),
        ("deviceCategory", 1),
        ("deviceConfiguration", 3),
        ("driverUpdateProfile", 1),
        ("endpointSecurityIntent", 1),
        ("enrollmentConfiguration", 1),
        ("featureUpdateProfile", 1),
        ("iosAppProtectionPolicy", 1),
        ("macOSShellScript", 1),
        ("notificationTemplate", 1),
        ("powerShellScript", 1),
        ("qualityUpdateProfile", 1),
        ("remediationScript", 1),
        ("reusablePolicySetting", 1),
        ("roleDefinition", 1),
        ("scopeTag", 2),
        ("settingsCatalogPolicy", 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
    assert!(loaded.set.tenant.is_none() && loaded.set.captured_at.is_none());
}

#[test]
fn unmapped_folders_and_unknown_app_protection_kinds_are_findings() {
    let loaded = load();
    let mut findings: Vec<(FindingCode, &str)> = loaded.findings.iter().map(|f| (f.code, f.item.as_str())).collect();
    findings.sort();
    assert_eq!(
        findings,
        vec![
            (FindingCode::UnknownType, "App Protection/Windows WIP_windowsInformationProtectionPolicy.json"),
            (FindingCode::UnknownFolder, "Applications"),
        ]
    );
}

#[test]
fn assignment_groups_and_filters_are_kept_as_names() {
    let loaded = load();
    let baseline = by_name(&loaded, "Windows baseline");
    assert_eq!(baseline.platform, "windows");
    assert_eq!(baseline.references.groups, vec![name_ref("All staff"), name_ref("Kiosk devices")]);
    assert_eq!(baseline.references.filters, vec![name_ref("Corp laptops")]);
    let targets: Vec<_> = baseline.assignments.as_ref().unwrap().iter().map(|a| &a["target"]).collect();
    assert_eq!(targets[0]["groupId"], "name:All staff");
    assert_eq!(targets[0]["deviceAndAppManagementAssignmentFilterId"], "name:Corp laptops");
    assert_eq!(targets[1]["@odata.type"], "#microsoft.graph.exclusionGroupAssignmentTarget");
    assert!(targets[1].get("membershipRule").is_none());
    assert!(targets[2].get("groupId").is_none(), "all-devices targets name no group");

    let ios = by_name(&loaded, "iOS restrictions");
    assert_eq!(ios.platform, "iOS");
    assert_eq!(ios.references.groups, vec![name_ref("iOS users")]);
    assert_eq!(ios.references.scope_tags, vec![name_ref("Helpdesk")]);
}

#[test]
fn scope_tag_names_and_compliance_templates_are_referenced() {
    let loaded = load();
    let compliance = by_name(&loaded, "Windows compliance");
    assert_eq!(compliance.references.scope_tags, vec![name_ref("Default"), name_ref("Helpdesk")]);
    assert_eq!(
        compliance.references.notification_templates,
        vec![NamedRef {
            id: "6c1f1b7e-2a5d-4d33-9f5e-0c9a4b3d2e11".into(),
            display_name: "Non-compliant notice".into()
        }]
    );
    let rules = &compliance.sub_resources["scheduledActionsForRule"];
    assert_eq!(rules[0]["scheduledActionConfigurations"].as_array().unwrap().len(), 2);
    assert!(compliance.resource.get("scheduledActionsForRule").is_none());
    let template = by_name(&loaded, "Non-compliant notice");
    assert_eq!(template.sub_resources["localizedNotificationMessages"][0]["locale"], "en-us");
}

#[test]
fn settings_catalog_settings_and_intent_settings_become_sub_resources() {
    let loaded = load();
    let edge = by_name(&loaded, "Edge hardening");
    assert_eq!(edge.sub_resources["settings"].len(), 2);
    assert_eq!(edge.platform, "windows");
    let intent = by_name(&loaded, "Windows security baseline");
    assert_eq!(intent.item_type, "endpointSecurityIntent");
    assert_eq!(intent.sub_resources["settings"].len(), 1);
    assert!(intent.resource.get("settingsDelta").is_none());
    let admx = by_name(&loaded, "Edge ADMX");
    assert_eq!(admx.sub_resources["definitionValues"].len(), 1);
}

#[test]
fn script_bodies_and_mobileconfig_payloads_are_read_from_their_files() {
    let loaded = load();
    let decode = |v: &serde_json::Value| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
    };
    let script = by_name(&loaded, "Set wallpaper");
    assert!(decode(&script.resource["scriptContent"]).starts_with("Set-ItemProperty -Path 'HKCU:"));
    let mac = by_name(&loaded, "Mac wifi");
    assert!(decode(&mac.resource["payload"]).contains("<string>Corp wifi</string>"));
    assert_eq!(mac.platform, "macOS");
}

#[test]
fn ids_come_from_an_appended_id_or_are_synthetic_and_stable() {
    let loaded = load();
    assert_eq!(by_name(&loaded, "Firefox").id, "0f3c2a1b-7d6e-4c5b-8a9f-112233445566");
    let edge = by_name(&loaded, "Edge hardening");
    assert!(edge.id.starts_with(SYNTHETIC_ID_PREFIX), "{}", edge.id);
    assert_eq!(by_name(&load(), "Edge hardening").id, edge.id);
}

#[test]
fn the_same_backup_as_an_archive_loads_identically_and_can_be_written_natively() {
    let tree = FileTree::from_dir(&fixture(), &Limits::default()).unwrap();
    let files: Vec<(String, Vec<u8>)> = tree.iter().map(|(p, b)| (format!("repo/intune/{p}"), b.to_vec())).collect();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("intunecd.tar.gz");
    std::fs::write(&archive, native::tar_gz_of(&files).unwrap()).unwrap();
    let from_archive = load_local(&archive, Some("repo/intune"), BackupFormat::IntuneCd, &Limits::default()).unwrap();
    assert_eq!(from_archive, load());

    let mut set = from_archive.set;
    set.tenant = Some(restore_core::backup::BackupTenant { id: "unknown".into(), label: "IntuneCD import".into() });
    set.captured_at = Some("2025-01-01T00:00:00Z".into());
    let native_dir = dir.path().join("native");
    native::write_dir(&set, &native_dir).unwrap();
    let reread = native::read_dir(&native_dir, &Limits::default()).unwrap();
    assert_eq!(reread.set.items, set.items);
}

#[test]
fn script_update_and_category_kinds_map_from_their_intunecd_folders() {
    let loaded = load();
    let remediation = by_name(&loaded, "Clear temp files");
    assert_eq!((remediation.item_type.as_str(), remediation.platform.as_str()), ("remediationScript", "windows"));
    assert_eq!(remediation.references.groups, vec![name_ref("All staff")]);
    let assignment = &remediation.assignments.as_ref().unwrap()[0];
    assert_eq!(assignment["runRemediationScript"], true, "the schedule and remediation flag are kept");
    assert_eq!(by_name(&loaded, "Set dock").platform, "macOS");
    assert_eq!(by_name(&loaded, "Battery health").item_type, "customAttributeScript");
    // IntuneCD 2.6.0 writes reusable settings into its compliance scripts folder.
    assert_eq!(by_name(&loaded, "Disk encryption check").item_type, "complianceScript");
    assert_eq!(by_name(&loaded, "Linux discovery script").item_type, "reusablePolicySetting");
    assert_eq!(by_name(&loaded, "Expedite January fixes").item_type, "qualityUpdateProfile");
    assert_eq!(by_name(&loaded, "Drivers - manual approval").item_type, "driverUpdateProfile");
    assert_eq!(by_name(&loaded, "Kiosk").item_type, "deviceCategory");
    assert_eq!(by_name(&loaded, "Helpdesk - read devices").item_type, "roleDefinition");
}
