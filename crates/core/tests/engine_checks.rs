//! The safety checks as a specification: each finding code, its severity, and what it does to the
//! plan. Scenarios run the whole engine against the in-memory tenant.

mod support;

use restore_core::api::{Environment, IncludeOrSkip, ScopeSpec, Severity};
use restore_core::backup::BackupSet;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::{Finding, FindingCode};
use restore_core::engine::plan::{ExecutionPlan, PlanError, StepKind};
use restore_core::engine::scope::{ResolvedScope, resolve_scope};
use restore_core::engine::{Assessment, EngineOptions, RestoreTarget, assess};
use serde_json::json;
use support::seed::*;
use support::*;

async fn source_backup(policies: usize) -> BackupSet {
    seeded("source", policies).await.1
}

fn with_code(a: &Assessment, code: FindingCode) -> Vec<&Finding> {
    a.report.findings.iter().filter(|f| f.code == code).collect()
}

fn foundations_skipped(backup: &BackupSet) -> ResolvedScope {
    resolve_scope(&ScopeSpec { foundations: IncludeOrSkip::Skip, ..Default::default() }, backup).unwrap()
}

#[tokio::test]
async fn two_target_objects_with_the_items_identity_are_an_ambiguous_match_blocker() {
    let backup = source_backup(1).await;
    let target = FakeTenant::new("target");
    seed_tenant(&target, 1);
    target.insert(
        col("deviceConfiguration"),
        json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "Win10 custom 00", "roleScopeTagIds": ["0"]}),
    );
    let a = preview(&target, &scope_all(&backup)).await;
    let found = with_code(&a, FindingCode::AmbiguousMatch);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Blocker);
    assert_eq!(found[0].item.as_deref(), Some("deviceConfiguration/Win10 custom 00"));
    let item = a.report.items.iter().find(|i| i.display_name == "Win10 custom 00").unwrap();
    assert_eq!((item.action, item.matches.len()), (PlannedAction::Skip, 2));
}

#[tokio::test]
async fn two_target_groups_with_the_name_are_an_ambiguous_group_blocker() {
    let backup = source_backup(1).await;
    let target = groups_only("target");
    target.add_group(GROUP_PILOT);
    let a = preview(&target, &scope_all(&backup)).await;
    let found = with_code(&a, FindingCode::AmbiguousGroup);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Blocker);
    assert!(found[0].message.contains("2 target objects are called group Pilot"), "{}", found[0].message);
}

#[tokio::test]
async fn an_unmapped_scope_tag_is_a_warning_and_the_item_is_written_with_the_default_tag() {
    let backup = source_backup(1).await;
    let scope = foundations_skipped(&backup);
    let target = groups_only("target");
    seed_foundations(&target);
    target.remove(col("scopeTag"), &target.id_named(col("scopeTag"), TAG_PARIS));
    let a = preview(&target, &scope).await;
    let found = with_code(&a, FindingCode::UnmappedScopeTag);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(a.report.blockers(), 0);
    execute(&target, &scope, &a).await;
    assert_eq!(target.objects(col("deviceConfiguration"))[0]["roleScopeTagIds"], json!(["0"]));
    assert_eq!(preview(&target, &scope).await.report.counts.changes(), 0);
}

#[tokio::test]
async fn an_unmapped_filter_or_notification_template_is_a_blocker() {
    let backup = source_backup(3).await;
    let scope = foundations_skipped(&backup);
    let target = groups_only("target");
    let a = preview(&target, &scope).await;
    let filter = with_code(&a, FindingCode::UnmappedFilter);
    let template = with_code(&a, FindingCode::UnmappedNotificationTemplate);
    assert_eq!((filter.len(), template.len()), (1, 1));
    assert!(filter[0].message.contains("would widen"));
    assert_eq!((filter[0].severity, template[0].severity), (Severity::Blocker, Severity::Blocker));
    assert_eq!(ExecutionPlan::build(&scope, &a.report), Err(PlanError::Blocked(2)));
}

#[tokio::test]
async fn certificate_issuing_profiles_are_shown_never_planned() {
    let mut backup = source_backup(8).await;
    // A SCEP profile's certification authority and connector are not in a backup: preview-only.
    backup.items.push(restore_core::backup::BackupItem {
        item_type: "deviceConfiguration".into(),
        id: "scep-1".into(),
        display_name: "Wi-Fi client certificate".into(),
        platform: "windows".into(),
        resource: json!({"@odata.type": "#microsoft.graph.windows81SCEPCertificateProfile", "id": "scep-1",
                         "displayName": "Wi-Fi client certificate", "description": "", "roleScopeTagIds": ["0"]}),
        assignments: Some(Vec::new()),
        sub_resources: Default::default(),
        references: Default::default(),
    });
    let scope = scope_all(&backup);
    let target = groups_only("target");
    let a = preview(&target, &scope).await;
    let found = with_code(&a, FindingCode::PreviewOnlySubtype);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Warning);
    let item = a.report.items.iter().find(|i| i.display_name == "Wi-Fi client certificate").unwrap();
    assert_eq!(item.action, PlannedAction::PreviewOnly);
    assert!(item.diff.contains("+  \"displayName\": \"Wi-Fi client certificate\""), "the preview still shows it");
    let plan = ExecutionPlan::build(&scope, &a.report).unwrap();
    assert!(plan.steps().iter().all(|s| s.item != item.key));
}

#[tokio::test]
async fn the_same_item_twice_or_two_items_with_one_name_across_tenants_are_duplicates() {
    let mut backup = source_backup(1).await;
    let dc = backup.items.iter().find(|i| i.item_type == "deviceConfiguration").unwrap().clone();
    let mut same_name = dc.clone();
    same_name.id = "another-id".into();
    backup.items.extend([dc, same_name]);
    let target = groups_only("target");
    let a = preview(&target, &scope_all(&backup)).await;
    let found = with_code(&a, FindingCode::DuplicateInBackup);
    assert!(found.iter().any(|f| f.message.contains("more than once")));
    assert!(found.iter().any(|f| f.message.contains("same name")));
    assert!(found.iter().all(|f| f.severity == Severity::Blocker));

    // In the backup's own tenant items are matched by id: a shared name is only a warning.
    let (source, mut backup, _scope) = seeded("source", 1).await;
    let mut twin = backup.items.iter().find(|i| i.item_type == "deviceConfiguration").unwrap().clone();
    twin.resource.as_object_mut().unwrap().remove("id");
    twin.id = source.insert(col("deviceConfiguration"), twin.resource.clone());
    twin.resource["id"] = json!(twin.id);
    backup.items.push(twin);
    let a = preview(&source, &scope_all(&backup)).await;
    let found = with_code(&a, FindingCode::DuplicateInBackup);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|f| f.severity == Severity::Warning));
}

#[tokio::test]
async fn a_platform_that_disagrees_with_the_payload_is_a_warning() {
    let mut backup = source_backup(1).await;
    let item = backup.items.iter_mut().find(|i| i.item_type == "deviceConfiguration").unwrap();
    item.platform = "iOS".into();
    let target = groups_only("target");
    let a = preview(&target, &scope_all(&backup)).await;
    let found = with_code(&a, FindingCode::PlatformMismatch);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Warning);
    assert!(found[0].message.contains("records platform iOS but the payload is for windows"));
}

#[tokio::test]
async fn assignments_not_captured_are_a_warning_and_left_alone() {
    let mut backup = source_backup(1).await;
    let item = backup.items.iter_mut().find(|i| i.item_type == "deviceConfiguration").unwrap();
    item.assignments = None;
    let key = item.key();
    let target = groups_only("target");
    let scope = scope_all(&backup);
    let a = preview(&target, &scope).await;
    assert_eq!(with_code(&a, FindingCode::AssignmentsNotCaptured).len(), 1);
    let plan = ExecutionPlan::build(&scope, &a.report).unwrap();
    assert!(!plan.steps().iter().any(|s| s.item == key && s.kind == StepKind::Assign));
}

#[tokio::test]
async fn a_built_in_scope_tag_is_never_written() {
    let mut backup = source_backup(0).await;
    let mut default_tag = backup.items.iter().find(|i| i.item_type == "scopeTag").unwrap().clone();
    default_tag.id = "0".into();
    default_tag.display_name = "Default".into();
    default_tag.resource = json!({"id": "0", "displayName": "Default", "isBuiltIn": true});
    backup.items.push(default_tag);
    let target = FakeTenant::new("target");
    let a = preview(&target, &scope_all(&backup)).await;
    assert_eq!(with_code(&a, FindingCode::BuiltInObject).len(), 1);
    assert_eq!(a.report.items.iter().find(|i| i.key == "scopeTag/0").unwrap().action, PlannedAction::Skip);
}

#[tokio::test]
async fn a_production_target_and_a_large_change_set_are_warnings() {
    let backup = source_backup(8).await;
    let scope = scope_all(&backup);
    let target = groups_only("target");
    let production = RestoreTarget { tenant_id: "target".into(), environment: Environment::Production };
    let options = EngineOptions { large_change_threshold: 10, ..Default::default() };
    let a = assess(&target, &scope, &production, &options).await.unwrap();
    assert_eq!(with_code(&a, FindingCode::ProductionTarget)[0].severity, Severity::Warning);
    let large = with_code(&a, FindingCode::LargeChangeSet);
    assert_eq!(large.len(), 1);
    assert!(large[0].message.contains("12 objects would change"), "{}", large[0].message);

    let relaxed = EngineOptions { large_change_threshold: 12, ..Default::default() };
    let a = assess(&target, &scope, &support::target(&target), &relaxed).await.unwrap();
    assert!(with_code(&a, FindingCode::LargeChangeSet).is_empty());
    assert!(with_code(&a, FindingCode::ProductionTarget).is_empty());
}

#[tokio::test]
async fn an_empty_scope_is_a_warning() {
    let backup = BackupSet { tenant: None, captured_at: None, digest: "sha256:00".into(), items: Vec::new() };
    let target = FakeTenant::new("target");
    let a = preview(&target, &scope_all(&backup)).await;
    assert_eq!(with_code(&a, FindingCode::EmptyScope).len(), 1);
    assert_eq!(
        with_code(&a, FindingCode::CrossTenantRestore).len(),
        1,
        "an unrecorded origin counts as another tenant"
    );
}

#[tokio::test]
async fn status_keeps_counts_and_the_first_twenty_findings_most_severe_first() {
    let backup = source_backup(24).await;
    let scope = foundations_skipped(&backup);
    let target = groups_only("target");
    let a = preview(&target, &scope).await;
    let status = a.checks_status();
    let all = &a.report.findings;
    assert!(all.len() > 20);
    assert_eq!(status.findings.len(), 20);
    assert_eq!(
        (status.blockers + status.warnings + status.infos) as usize,
        all.len(),
        "the counts cover every finding, not just the listed ones"
    );
    assert!(status.findings.windows(2).all(|w| w[0].severity <= w[1].severity));
    assert_eq!(status.findings[0].severity, Severity::Blocker);
    assert!(status.findings.iter().all(|f| f.message.len() <= 1024));
    assert_eq!(a.preview_facts().digest, a.digest);
}
