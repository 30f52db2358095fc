//! DESIGN §2, the rules the restore engine owns (2, 4, 5, 7, 8, 9): one test per rule, named after it,
//! run against the in-memory tenant of `support`.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use restore_core::api::{ItemOutcome, ScopeMode, ScopeSelector, ScopeSpec, Severity};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use restore_core::engine::analysis::ItemPreview;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::execute::{Executor, ProgressRecord, StepStatus};
use restore_core::engine::normalize::MASKED;
use restore_core::engine::plan::{ExecutionPlan, PlanError, StepKind};
use restore_core::engine::scope::{ScopeError, resolve_scope};
use restore_core::wizard::StepError;
use serde_json::{Value, json};
use support::seed::*;
use support::*;

// ---- Rule 2 -------------------------------------------------------------------------------------

fn golden_backup(order_reversed: bool) -> BackupSet {
    let mut items = vec![
        BackupItem {
            item_type: "deviceConfiguration".into(),
            id: "src-dc-1".into(),
            display_name: "Kiosk lockdown".into(),
            platform: "windows".into(),
            resource: json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "id": "src-dc-1",
                "displayName": "Kiosk lockdown", "description": "golden", "roleScopeTagIds": ["0"],
                "createdDateTime": "2025-01-01T00:00:00Z", "lastModifiedDateTime": "2025-02-01T00:00:00Z",
                "version": 7, "cameraBlocked": true}),
            assignments: Some(vec![json!({"id": "a1", "target": {
                "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "src-g-1"}})]),
            sub_resources: BTreeMap::new(),
            references: References {
                groups: vec![NamedRef { id: "src-g-1".into(), display_name: "Kiosks".into() }],
                ..Default::default()
            },
        },
        BackupItem {
            item_type: "featureUpdateProfile".into(),
            id: "src-fu-1".into(),
            display_name: "Stay on 23H2".into(),
            platform: "windows".into(),
            resource: json!({"@odata.type": "#microsoft.graph.windowsFeatureUpdateProfile", "id": "src-fu-1",
                "displayName": "Stay on 23H2", "featureUpdateVersion": "Windows 11, version 23H2",
                "roleScopeTagIds": []}),
            assignments: Some(Vec::new()),
            sub_resources: BTreeMap::new(),
            references: References::default(),
        },
    ];
    if order_reversed {
        items.reverse();
    }
    BackupSet {
        tenant: Some(BackupTenant { id: "golden-source".into(), label: "Golden".into() }),
        captured_at: Some("2025-03-01T00:00:00Z".into()),
        digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
        items,
    }
}

fn golden_tenant(insert_reversed: bool) -> FakeTenant {
    let tenant = FakeTenant::new("golden-target");
    let mut objects = vec![
        (GROUPS, json!({"id": "tgt-g-1", "displayName": "Kiosks"})),
        (
            col("deviceConfiguration"),
            json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
            "id": "tgt-dc-9", "displayName": "Kiosk lockdown", "description": "drifted", "roleScopeTagIds": ["0"],
            "cameraBlocked": false}),
        ),
    ];
    if insert_reversed {
        objects.reverse();
    }
    for (collection, object) in objects {
        tenant.insert(collection, object);
    }
    tenant
}

#[tokio::test]
async fn rule_2_preview_digest_is_deterministic() {
    let scope = scope_all(&golden_backup(false));
    let a = preview(&golden_tenant(false), &scope).await;
    // Golden value: the same inputs give this digest on any machine, in any process, at any time.
    assert_eq!(a.digest, "sha256:07f66d4a1678253210e711e65350a764a0c4821d9a865e5b0eee765dad785a1b");
    assert_eq!(a.report.digest(), a.digest);

    // Input order does not matter: backup items and tenant objects in another order.
    let b = preview(&golden_tenant(true), &scope_all(&golden_backup(true))).await;
    assert_eq!(b.digest, a.digest);

    // The stored report (JSON) gives the same digest: the cluster can check a CLI preview.
    let stored: restore_core::engine::preview::PreviewReport =
        serde_json::from_str(&a.report.to_json_pretty().unwrap()).unwrap();
    assert_eq!(stored.digest(), a.digest);

    // Server bookkeeping in the tenant does not change it; a real change does.
    let tenant = golden_tenant(false);
    let dc = tenant.id_named(col("deviceConfiguration"), "Kiosk lockdown");
    tenant.edit(col("deviceConfiguration"), &dc, |o| o["version"] = json!(99));
    assert_eq!(preview(&tenant, &scope).await.digest, a.digest);
    tenant.edit(col("deviceConfiguration"), &dc, |o| o["cameraBlocked"] = json!(true));
    assert_ne!(preview(&tenant, &scope).await.digest, a.digest);

    // Another target tenant, another backup or another scope option: another digest.
    let mut other_source = golden_backup(false);
    other_source.digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222".into();
    assert_ne!(preview(&golden_tenant(false), &scope_all(&other_source)).await.digest, a.digest);
    let skip_assignments = resolve_scope(
        &ScopeSpec { assignments: restore_core::api::IncludeOrSkip::Skip, ..Default::default() },
        &golden_backup(false),
    )
    .unwrap();
    assert_ne!(preview(&golden_tenant(false), &skip_assignments).await.digest, a.digest);
}

#[tokio::test]
async fn rule_2_the_report_and_its_digest_do_not_depend_on_how_the_engine_holds_them() {
    use restore_core::canonical::canonical_digest;
    use restore_core::engine::snapshot::take_snapshot;
    use restore_core::engine::{EngineOptions, report_from_owned_snapshot, report_from_snapshot};

    let scope = scope_all(&golden_backup(false));
    let tenant = golden_tenant(false);
    let target = target(&tenant);
    let options = EngineOptions::default();
    let snapshot = take_snapshot(&tenant, &scope, &target.tenant_id).await.unwrap();
    assert!(!snapshot.live.is_empty(), "the golden tenant has objects matched");
    // The live objects normalized where they lie (the preview's way) or from a copy: one report.
    let borrowed = report_from_snapshot(&scope, &snapshot, &target, &options);
    let owned = report_from_owned_snapshot(&scope, snapshot, &target, &options);
    assert_eq!(owned, borrowed);
    // The digest written straight from the report is the digest of its whole `Value` copy
    // without the request counters (how it was computed before).
    let mut value = serde_json::to_value(&owned).unwrap();
    value.as_object_mut().unwrap().remove("requests");
    assert_eq!(owned.digest(), canonical_digest(&value));
}

/// Rule 2: an item whose current state is written as the same text as its desired one holds a
/// single copy of it (most items of a preview are unchanged); a report read back holds them apart
/// until it shares them again, and neither its JSON nor its digest changes.
#[tokio::test]
async fn rule_2_states_written_alike_are_held_once_and_shared_again_when_read_back() {
    use restore_core::canonical::canonical_json;
    use restore_core::engine::preview::PreviewReport;
    use std::sync::Arc;

    let (tenant, _, scope) = seeded("contoso", 12).await;
    let drifted = tenant.objects(col("deviceConfiguration"))[0]["id"].as_str().unwrap().to_string();
    tenant.edit(col("deviceConfiguration"), &drifted, |o| o["description"] = json!("changed in the portal"));
    let report = preview(&tenant, &scope).await.report;
    let shared = |r: &PreviewReport| {
        r.items.iter().filter(|i| i.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &i.desired))).count()
    };
    let alike = |r: &PreviewReport| {
        r.items
            .iter()
            .filter(|i| i.current.as_deref().is_some_and(|c| canonical_json(c) == canonical_json(&i.desired)))
            .count()
    };
    let with_current = report.items.iter().filter(|i| i.current.is_some()).count();
    assert!(
        alike(&report) > 0 && alike(&report) < with_current,
        "the golden preview has unchanged and changed items: {} of {with_current} {:?}",
        alike(&report),
        report.items.iter().map(|i| i.action).collect::<Vec<_>>()
    );
    assert_eq!(shared(&report), alike(&report));

    let mut stored: PreviewReport = serde_json::from_str(&report.to_json_pretty().unwrap()).unwrap();
    assert_eq!(shared(&stored), 0);
    assert_eq!(stored.digest(), report.digest());
    stored.share_states_written_alike();
    assert_eq!(shared(&stored), alike(&report));
    assert_eq!(stored, report);
    assert_eq!(stored.digest(), report.digest());
    assert_eq!(serde_json::to_string(&stored).unwrap(), serde_json::to_string(&report).unwrap());
}

fn changed_item(report: &mut restore_core::engine::preview::PreviewReport) -> &mut ItemPreview {
    report.items.iter_mut().find(|i| !i.changed_fields.is_empty()).expect("the golden preview has an update")
}

/// Rule 10: every byte an approver is shown — names, findings, changed fields, the diff — is
/// covered by the digest, so a report edited after the preview no longer matches status; only the
/// request counters (not shown as part of the plan) are left out.
#[tokio::test]
async fn rule_10_every_field_the_approver_sees_is_covered_by_the_digest() {
    let scope = scope_all(&golden_backup(false));
    let report = preview(&golden_tenant(false), &scope).await.report;
    let digest = report.digest();
    type Edit = fn(&mut restore_core::engine::preview::PreviewReport);
    let forgeries: [(&str, Edit); 7] = [
        ("display name", |r| r.items[0].display_name = "Set wallpaper".into()),
        ("diff", |r| changed_item(r).diff = "- Write-Host hello".into()),
        ("changed fields", |r| changed_item(r).changed_fields.clear()),
        ("finding message", |r| r.findings[0].message = "nothing to see".into()),
        ("finding hint", |r| r.findings[0].hint = "approve".into()),
        ("counts", |r| r.counts.create += 1),
        ("cross-tenant flag", |r| r.cross_tenant = !r.cross_tenant),
    ];
    for (what, forge) in forgeries {
        let mut forged = report.clone();
        forge(&mut forged);
        assert_ne!(forged.digest(), digest, "an edited {what} must change the digest");
    }
    let mut recounted = report.clone();
    recounted.requests.gets += 7;
    assert_eq!(recounted.digest(), digest, "the request counters are not part of the plan");
}

// ---- Rule 4 -------------------------------------------------------------------------------------

#[tokio::test]
async fn rule_4_drift_between_preview_and_execution_is_reported_and_never_overwritten() {
    let (tenant, backup, scope) = seeded("contoso", 16).await;
    let dc = col("deviceConfiguration");
    let cp = col("compliancePolicy");
    let ps = col("powerShellScript");
    // Before the preview: four items need restoring.
    let edited = tenant.id_named(dc, "Win10 custom 00");
    let also_edited = tenant.id_named(dc, "iOS restrictions 01");
    tenant.edit(dc, &edited, |o| o["description"] = json!("local"));
    tenant.edit(dc, &also_edited, |o| o["cameraBlocked"] = json!(true));
    tenant.remove(cp, &tenant.id_named(cp, "Win10 compliance 02"));
    let reassigned = tenant.id_named(ps, "Set wallpaper 04");
    let finance = assignment(&tenant, GROUP_FINANCE, false);
    tenant.edit(ps, &reassigned, |o| o["assignments"] = json!([finance]));
    let assessment = preview(&tenant, &scope).await;
    assert_eq!(assessment.report.counts.changes(), 4);

    // After the preview, before execution: three of them change again; one changes only in a
    // property the backup does not hold, which is not drift.
    tenant.edit(dc, &edited, |o| o["omaSettings"][0]["value"] = json!(99));
    tenant.insert(
        cp,
        json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy",
        "displayName": "Win10 compliance 02", "description": "made by hand", "roleScopeTagIds": ["0"]}),
    );
    tenant.remove(ps, &reassigned);
    tenant.edit(dc, &also_edited, |o| o["someNewGraphProperty"] = json!("x"));
    tenant.reset_counters();

    let executor = execute(&tenant, &scope, &assessment).await;
    let facts = executor.facts();
    assert_eq!((facts.counts.drifted, facts.counts.updated, facts.counts.created), (3, 1, 0));
    let drifted: BTreeSet<String> =
        facts.results.iter().filter(|r| r.outcome == ItemOutcome::Drifted).map(|r| r.item.clone()).collect();
    let key = |name: &str| backup.items.iter().find(|i| i.display_name == name).unwrap().key();
    assert_eq!(drifted, BTreeSet::from([key("Win10 custom 00"), key("Win10 compliance 02"), key("Set wallpaper 04")]));
    let message = |name: &str| facts.results.iter().find(|r| r.item == key(name)).unwrap().message.clone().unwrap();
    assert!(message("Win10 custom 00").contains("omaSettings[0].value"), "{}", message("Win10 custom 00"));
    assert!(message("Win10 compliance 02").contains("created in the tenant after the preview"));
    assert!(message("Set wallpaper 04").contains("deleted"));

    // Nothing was written to the drifted objects; the hand-made compliance policy was left as it is.
    let writes = tenant.write_calls();
    assert!(writes.iter().all(|c| !format!("{c:?}").contains(&edited)), "{writes:?}");
    assert!(writes.iter().all(|c| !format!("{c:?}").contains(cp)), "{writes:?}");
    assert_eq!(writes.len(), 1, "only the item whose drift is outside the backup is written: {writes:?}");
    let hand_made: Vec<Value> =
        tenant.objects(cp).into_iter().filter(|o| o["displayName"] == "Win10 compliance 02").collect();
    assert_eq!(hand_made.len(), 1);
    assert_eq!(hand_made[0]["description"], "made by hand");
    assert_eq!(tenant.objects(dc).iter().find(|o| o["id"] == edited.as_str()).unwrap()["omaSettings"][0]["value"], 99);
}

// ---- Rule 5 -------------------------------------------------------------------------------------

/// 40 items: 4 foundations and 36 policies, restored into another tenant holding a drifted copy
/// (some objects missing, some edited, some reassigned), so every kind of step writes.
async fn forty_item_run() -> (restore_core::engine::scope::ResolvedScope, impl Fn() -> FakeTenant) {
    let (_source, backup, scope) = seeded("source", 36).await;
    assert_eq!(backup.items.len(), 40);
    let build_target = || {
        let t = FakeTenant::new("target");
        let policies = seed_tenant(&t, 36);
        t.remove(col("scopeTag"), &t.id_named(col("scopeTag"), TAG_PARIS));
        let template = t.id_named(col("notificationTemplate"), TEMPLATE);
        t.edit(col("notificationTemplate"), &template, |o| {
            o["localizedNotificationMessages"][0]["subject"] = json!("old")
        });
        for (i, (collection, name)) in policies.iter().enumerate() {
            let id = t.id_named(collection, name);
            match i % 3 {
                0 => t.remove(collection, &id),
                1 => t.edit(collection, &id, |o| {
                    o["description"] = json!("edited");
                    if let Some(rules) = o.get_mut("scheduledActionsForRule") {
                        rules[0]["scheduledActionConfigurations"][1]["gracePeriodHours"] = json!(72);
                    }
                    if let Some(apps) = o.get_mut("apps").and_then(Value::as_array_mut) {
                        apps.pop();
                    }
                    if let Some(settings) = o.get_mut("settings") {
                        settings[1]["settingInstance"]["simpleSettingValue"]["value"] = json!("https://old.example");
                    }
                }),
                _ => t.edit(collection, &id, |o| o["assignments"] = json!([])),
            }
        }
        t
    };
    (scope, build_target)
}

#[tokio::test]
async fn rule_5_a_run_stopped_after_any_write_and_resumed_finishes_with_no_duplicate_and_no_lost_item() {
    let (scope, build_target) = forty_item_run().await;

    // The uninterrupted run: the reference.
    let reference = build_target();
    let approved = preview(&reference, &scope).await;
    assert_eq!(approved.report.blockers(), 0, "{}", approved.report.summary_text());
    let plan = plan_from_stored_report(&scope, &approved);
    let kinds: BTreeSet<StepKind> = plan.steps().iter().map(|s| s.kind).collect();
    assert_eq!(kinds.len(), 6, "every kind of step is exercised: {kinds:?}");
    reference.reset_counters();
    let reference_facts = execute(&reference, &scope, &approved).await.facts();
    let total_writes = reference.writes();
    assert!(total_writes >= 50, "{total_writes} writes");
    assert_eq!(reference_facts.counts.problems(), 0, "{:?}", reference_facts.results);
    let expected_content = reference.content();

    for k in 1..=total_writes {
        let tenant = build_target();
        let assessment = preview(&tenant, &scope).await;
        assert_eq!(assessment.digest, approved.digest);
        tenant.crash_at_write(k);

        // First controller: persists the record after every step, dies at the k-th write.
        let mut executor =
            Executor::new(plan_from_stored_report(&scope, &assessment), ProgressRecord::new(&assessment.digest))
                .unwrap();
        let mut stored = serde_json::to_string(executor.progress()).unwrap();
        loop {
            match executor.next_step(&tenant).await {
                Ok(Some(_)) => stored = serde_json::to_string(executor.progress()).unwrap(),
                Ok(None) => panic!("the crash at write {k} did not happen"),
                Err(e) => {
                    assert!(e.is_transient(), "{e}");
                    break;
                }
            }
        }
        drop(executor);
        let writes_before_crash = tenant.writes();
        assert_eq!(writes_before_crash, k);

        // Second controller: rebuilds the plan from the stored report and resumes from the record.
        tenant.heal();
        let progress: ProgressRecord = serde_json::from_str(&stored).unwrap();
        let mut resumed = Executor::new(plan_from_stored_report(&scope, &assessment), progress).unwrap();
        let facts = resumed.run_to_end(&tenant).await.unwrap();

        assert_eq!(tenant.content(), expected_content, "final state after a crash at write {k}");
        assert_eq!(facts.counts, reference_facts.counts, "outcomes after a crash at write {k}");
        assert_eq!(tenant.writes(), total_writes, "no write repeated or lost after a crash at write {k}");
        for (collection, objects) in tenant.content() {
            let names: Vec<Value> = objects
                .iter()
                .map(|o| serde_json::from_str::<Value>(o).unwrap())
                .map(|o| o.get("displayName").or_else(|| o.get("name")).cloned().unwrap_or(Value::Null))
                .collect();
            let unique: BTreeSet<String> = names.iter().map(Value::to_string).collect();
            assert_eq!(unique.len(), names.len(), "duplicate in {collection} after a crash at write {k}");
        }
    }
}

#[tokio::test]
async fn rule_5_a_retried_create_first_looks_the_object_up() {
    let (_source, _backup, scope) = seeded("source", 1).await;
    let target = groups_only("target");
    let assessment = preview(&target, &scope).await;
    let mut executor =
        Executor::new(plan_from_stored_report(&scope, &assessment), ProgressRecord::new(&assessment.digest)).unwrap();
    target.crash_at_write(1);
    assert!(executor.next_step(&target).await.is_err(), "Graph created the scope tag, the answer was lost");
    target.heal();
    let step = executor.next_step(&target).await.unwrap().unwrap();
    assert_eq!(step.step.kind, StepKind::Create);
    assert_eq!(step.status, StepStatus::AlreadyDone);
    assert_eq!(step.writes, 0);
    assert_eq!(target.objects(col("scopeTag")).len(), 1);
    let calls = target.calls();
    assert!(matches!(calls.iter().rev().nth(1), Some(Call::List(q)) if q.contains("$filter=displayName")), "{calls:?}");
}

// ---- Rule 7 -------------------------------------------------------------------------------------

#[tokio::test]
async fn rule_7_the_engine_never_deletes() {
    // The plan has no delete step: this match stops compiling if one is ever added.
    fn writes_or_reads(kind: StepKind) -> &'static str {
        match kind {
            StepKind::Create | StepKind::Update | StepKind::Replace | StepKind::SyncSubResource | StepKind::Assign => {
                "write"
            }
            StepKind::Verify => "read",
            StepKind::SetPriority => "write",
        }
    }
    let (tenant, backup, _scope) = seeded("contoso", 8).await;
    // Objects the backup does not hold, and entries the backup's lists do not hold.
    let extra = tenant.insert(
        col("deviceConfiguration"),
        json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "Not in the backup", "roleScopeTagIds": ["0"], "omaSettings": []}),
    );
    let extra_tag = tenant.insert(col("scopeTag"), json!({"displayName": "Tokyo"}));
    let template = tenant.id_named(col("notificationTemplate"), TEMPLATE);
    tenant.edit(col("notificationTemplate"), &template, |o| {
        o["localizedNotificationMessages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "x", "locale": "fr-fr", "subject": "Bonjour"}));
        o["localizedNotificationMessages"][0]["subject"] = json!("changed");
    });
    let before: usize = tenant.content().values().map(Vec::len).sum();

    let scope = scope_all(&backup);
    let assessment = preview(&tenant, &scope).await;
    let plan = plan_from_stored_report(&scope, &assessment);
    assert!(plan.steps().iter().all(|s| ["write", "read"].contains(&writes_or_reads(s.kind))));
    execute(&tenant, &scope, &assessment).await;

    let after: usize = tenant.content().values().map(Vec::len).sum();
    assert_eq!(after, before);
    assert_eq!(tenant.id_named(col("deviceConfiguration"), "Not in the backup"), extra);
    assert_eq!(tenant.id_named(col("scopeTag"), "Tokyo"), extra_tag);
    let messages = &tenant.objects(col("notificationTemplate"))[0]["localizedNotificationMessages"];
    assert_eq!(messages.as_array().unwrap().len(), 2, "the extra locale stays");
    assert_eq!(messages[0]["subject"], "Your device is not compliant", "the backed-up locale is restored");
    assert!(
        tenant
            .write_calls()
            .iter()
            .all(|c| matches!(c, Call::Update(_) | Call::Create(_) | Call::Replace(_) | Call::Action(_)))
    );
}

// ---- Rule 8 -------------------------------------------------------------------------------------

const PSK: &str = "hunter2-psk-value";
const ENCRYPTED: &str = "ENCRYPTED-BLOB-7f3a";
const SECRET_SETTING: &str = "s3cr3t-setting-value";

#[tokio::test]
async fn rule_8_secrets_never_appear_in_diffs_reports_findings_progress_or_debug_output() {
    let source = FakeTenant::new("contoso");
    let dc = col("deviceConfiguration");
    source.insert(
        dc,
        json!({"@odata.type": "#microsoft.graph.windowsWifiConfiguration", "displayName": "Corp wifi",
        "ssid": "CORP", "preSharedKey": PSK, "wiFiSecurityType": "wpa2Personal", "roleScopeTagIds": ["0"]}),
    );
    source.insert(dc, json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "VPN profile",
        "roleScopeTagIds": ["0"], "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingString", "displayName": "Key",
        "omaUri": "./Vendor/MSFT/VPNv2/Corp/Key", "value": ENCRYPTED, "isEncrypted": true, "secretReferenceValueId": "ref-1"}]}));
    source.insert(col("settingsCatalogPolicy"), json!({"name": "Secret setting", "platforms": "windows10", "technologies": "mdm",
        "roleScopeTagIds": ["0"], "settings": [{"settingInstance": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
        "settingDefinitionId": "x_secret", "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSecretSettingValue",
        "value": SECRET_SETTING, "valueState": "notEncrypted"}}}]}));
    let backup = capture(&source).await;
    let scope = scope_all(&backup);

    // The target: the wifi profile exists with another SSID (Graph never returns the key).
    let target = FakeTenant::new("contoso");
    let wifi = target.insert(
        dc,
        json!({"@odata.type": "#microsoft.graph.windowsWifiConfiguration", "displayName": "Corp wifi",
        "ssid": "OLD", "preSharedKey": null, "wiFiSecurityType": "wpa2Personal", "roleScopeTagIds": ["0"]}),
    );
    let assessment = preview(&target, &scope).await;

    let wifi_item = assessment.report.items.iter().find(|i| i.display_name == "Corp wifi").unwrap();
    assert_eq!(wifi_item.action, PlannedAction::Update);
    assert_eq!(wifi_item.changed_fields, ["ssid"], "a masked secret compares equal on both sides");
    assert_eq!(wifi_item.desired["preSharedKey"], MASKED);
    assert_eq!(wifi_item.current.as_ref().unwrap()["preSharedKey"], MASKED);
    let vpn = assessment.report.items.iter().find(|i| i.display_name == "VPN profile").unwrap();
    assert_eq!(vpn.action, PlannedAction::Skip, "an encrypted value cannot be restored");
    assert!(
        assessment
            .report
            .findings
            .iter()
            .any(|f| f.code == FindingCode::SecretNotRestorable && f.severity == Severity::Warning)
    );

    let plan = plan_from_stored_report(&scope, &assessment);
    let executor = execute(&target, &scope, &assessment).await;
    let outputs = [
        assessment.report.to_json_pretty().unwrap(),
        assessment.report.summary_text(),
        format!("{:?}", assessment.checks_status()),
        format!("{assessment:?}"),
        format!("{scope:?}"),
        format!("{plan:?}"),
        serde_json::to_string(executor.progress()).unwrap(),
        format!("{:?}", executor.facts()),
        format!("{:?}", executor.item_results()),
    ];
    for text in outputs {
        for secret in [PSK, ENCRYPTED, SECRET_SETTING] {
            assert!(!text.contains(secret), "secret {secret} leaked into: {}", &text[..text.len().min(300)]);
        }
    }
    // The write itself carries the real value (the fake refuses a masked one), and the encrypted
    // OMA-URI profile was not written.
    let written = target.objects(dc).into_iter().find(|o| o["id"] == wifi.as_str()).unwrap();
    assert_eq!(written["preSharedKey"], PSK);
    assert_eq!(written["ssid"], "CORP");
    assert!(target.objects(dc).iter().all(|o| o["displayName"] != "VPN profile"));
    let secret_setting = &target.objects(col("settingsCatalogPolicy"))[0];
    assert_eq!(secret_setting["settings"][0]["settingInstance"]["simpleSettingValue"]["value"], SECRET_SETTING);
}

// ---- Rule 9 -------------------------------------------------------------------------------------

#[tokio::test]
async fn rule_9_bad_input_ends_in_a_finding_or_a_permanent_error_and_no_write() {
    let (_source, mut backup, _scope) = seeded("contoso", 2).await;
    let template = backup.items.iter().find(|i| i.item_type == "deviceConfiguration").unwrap().clone();
    let mut unknown = template.clone();
    unknown.item_type = "mysteryWidget".into();
    unknown.id = "m-1".into();
    let mut wrong_odata = template.clone();
    wrong_odata.id = "w-1".into();
    wrong_odata.display_name = "Wrong type".into();
    wrong_odata.resource["displayName"] = json!("Wrong type");
    wrong_odata.resource["@odata.type"] = json!("#microsoft.graph.iosCompliancePolicy");
    let incomplete = BackupItem {
        item_type: "settingsCatalogPolicy".into(),
        id: "sc-1".into(),
        display_name: "No settings".into(),
        platform: "windows".into(),
        resource: json!({"name": "No settings", "platforms": "windows10", "technologies": "mdm", "roleScopeTagIds": ["0"]}),
        assignments: Some(Vec::new()),
        sub_resources: BTreeMap::new(),
        references: References::default(),
    };
    backup.items.extend([unknown, wrong_odata, incomplete]);

    // An invalid spec is a permanent error.
    let bad_glob = ScopeSpec {
        mode: ScopeMode::Selected,
        include: Some(ScopeSelector { items: vec!["Win[*".into()], ..Default::default() }),
        ..Default::default()
    };
    let error = resolve_scope(&bad_glob, &backup).unwrap_err();
    assert!(matches!(error, ScopeError::InvalidPattern { .. }));
    assert!(StepError::from(error).permanent);

    // Bad items are findings; the incomplete one blocks the whole run.
    let target = groups_only("other");
    let scope = scope_all(&backup);
    let assessment = preview(&target, &scope).await;
    let codes: Vec<(FindingCode, Severity)> = assessment.report.findings.iter().map(|f| (f.code, f.severity)).collect();
    assert!(codes.contains(&(FindingCode::IncompleteSnapshot, Severity::Blocker)), "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == (FindingCode::UnsupportedType, Severity::Warning)).count(), 2);
    assert!(matches!(ExecutionPlan::build(&scope, &assessment.report), Err(PlanError::Blocked(1))));
    assert!(target.write_calls().is_empty());

    // Excluding the incomplete item lets the rest run; the unsupported items are never written.
    let narrowed = resolve_scope(
        &ScopeSpec {
            exclude: Some(ScopeSelector { items: vec!["sc-1".into()], ..Default::default() }),
            ..Default::default()
        },
        &backup,
    )
    .unwrap();
    let assessment = preview(&target, &narrowed).await;
    assert_eq!(assessment.report.blockers(), 0, "{}", assessment.report.summary_text());
    let executor = execute(&target, &narrowed, &assessment).await;
    let results = executor.item_results();
    for key in ["mysteryWidget/m-1", "deviceConfiguration/w-1"] {
        assert_eq!(results.iter().find(|r| r.item == key).unwrap().outcome, ItemOutcome::Skipped);
    }
    assert!(target.objects(col("deviceConfiguration")).iter().all(|o| o["displayName"] != "Wrong type"));
    assert!(executor.facts().finished);

    // A report for another backup is refused, not executed.
    let mut other = backup.clone();
    other.digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333".into();
    assert!(matches!(ExecutionPlan::build(&scope_all(&other), &assessment.report), Err(PlanError::ReportMismatch(_))));
}
