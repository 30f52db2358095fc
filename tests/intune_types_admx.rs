//! Administrative Templates on the Graph simulator: a configuration with its ADMX definition values
//! through capture → native backup → restore, drift, cross-tenant definition mapping and IntuneCD import.

mod sim_support;

use std::collections::BTreeSet;

use restore_backup::Limits;
use restore_backup::source::load_local;
use restore_core::api::{BackupFormat, Environment, Phase, ScopeSpec};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::execute::{Executor, ProgressRecord};
use restore_core::engine::plan::ExecutionPlan;
use restore_core::engine::scope::resolve_scope;
use restore_core::engine::{EngineOptions, RestoreTarget, assess};
use restore_core::tenant::TenantError;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{GROUP_ALL, PortalAdmin, SimTenant};
use serde_json::{Value, json};
use sim_support::*;

const CONFIGURATIONS: &str = "deviceManagement/groupPolicyConfigurations";
const HOME_PAGE: (&str, &str) = ("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a01", "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b01");
const DISK_CACHE: (&str, &str) = ("98d69f26-2201-4aed-8927-d20c29b24ed5", "5c8d10ad-8a28-4fe2-bd16-170d88dceb82");
const POP_UPS: (&str, &str) = ("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a04", "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b04");
const AUTOPLAY: (&str, &str, &str) = (
    "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a06",
    "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b06",
    "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1c06",
);
const REGEDIT: &str = "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a05";

fn definition_bind(id: &str) -> String {
    format!("https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('{id}')")
}

fn presentation_value(odata: &str, definition: &str, presentation: &str, key: &str, value: Value) -> Value {
    json!({"@odata.type": format!("#microsoft.graph.{odata}"), key: value,
           "presentation@odata.bind": format!("{}/presentations('{presentation}')", definition_bind(definition))})
}

fn definition_value(definition: &str, enabled: bool, presentation_values: Vec<Value>) -> Value {
    json!({"enabled": enabled, "definition@odata.bind": definition_bind(definition), "presentationValues": presentation_values})
}

/// The custom ADMX definition "Contoso banner" a tenant ingests (its ids are the tenant's own).
fn contoso_banner() -> Value {
    json!({"displayName": "Contoso banner", "classType": "user", "categoryPath": "\\Contoso\\Branding",
           "explainText": "Shows the Contoso banner.", "supportedOn": "Windows 10",
           "presentations": [{"@odata.type": "#microsoft.graph.groupPolicyPresentationTextBox", "label": "Banner text",
                              "required": true, "maxLength": 255, "defaultValue": ""}]})
}

/// Creates "Edge baseline" in `tenant` through the portal: five built-in definitions (text, decimal,
/// list, drop-down + check box, a disabled user policy) and, when given, the custom banner definition
/// `banner` = (definition id, presentation id); assigned to All Staff. Returns its id.
async fn edge_baseline(sim: &graph_sim::SimHandle, tenant: &SimTenant, banner: Option<(String, String)>) -> String {
    let admin = PortalAdmin::sign_in(sim, tenant).await.unwrap();
    let created = admin
        .call(
            "POST",
            CONFIGURATIONS,
            Some(&json!({"displayName": "Edge baseline", "description": "Browser and Autoplay", "roleScopeTagIds": ["0"]})),
        )
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let mut added = vec![
        definition_value(
            HOME_PAGE.0,
            true,
            vec![presentation_value(
                "groupPolicyPresentationValueText",
                HOME_PAGE.0,
                HOME_PAGE.1,
                "value",
                json!("https://intranet.contoso.com"),
            )],
        ),
        definition_value(
            DISK_CACHE.0,
            true,
            vec![presentation_value(
                "groupPolicyPresentationValueDecimal",
                DISK_CACHE.0,
                DISK_CACHE.1,
                "value",
                json!(1024),
            )],
        ),
        definition_value(
            POP_UPS.0,
            true,
            vec![presentation_value(
                "groupPolicyPresentationValueList",
                POP_UPS.0,
                POP_UPS.1,
                "values",
                json!([{"name": "https://portal.contoso.com", "value": "https://portal.contoso.com"}]),
            )],
        ),
        definition_value(
            AUTOPLAY.0,
            true,
            vec![
                presentation_value("groupPolicyPresentationValueText", AUTOPLAY.0, AUTOPLAY.1, "value", json!("255")),
                presentation_value("groupPolicyPresentationValueBoolean", AUTOPLAY.0, AUTOPLAY.2, "value", json!(true)),
            ],
        ),
        definition_value(REGEDIT, false, vec![]),
    ];
    if let Some((definition, presentation)) = banner {
        added.push(definition_value(
            &definition,
            true,
            vec![presentation_value(
                "groupPolicyPresentationValueText",
                &definition,
                &presentation,
                "value",
                json!("Welcome to Contoso"),
            )],
        ));
    }
    let change = json!({"added": added, "updated": [], "deletedIds": []});
    admin.call("POST", &format!("{CONFIGURATIONS}/{id}/updateDefinitionValues"), Some(&change)).await.unwrap();
    let all_staff = sim.group_ids(&tenant.tenant_id, GROUP_ALL).unwrap().remove(0);
    let assign = json!({"assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": all_staff}}]});
    admin.call("POST", &format!("{CONFIGURATIONS}/{id}/assign"), Some(&assign)).await.unwrap();
    id
}

/// A tenant with the sample's groups (under its own ids) and, when `ingest`, the banner ADMX.
fn tenant_with_groups(
    sim: &graph_sim::SimHandle,
    id: &str,
    label: &str,
    ingest: bool,
) -> (SimTenant, Option<(String, String)>) {
    let tenant = SimTenant::create(sim, id, label, Environment::Staging).unwrap();
    for group in restore_operator::cli::demo_backup::GROUPS {
        sim.add_group(id, group).unwrap();
    }
    let banner = ingest.then(|| {
        let definition = sim.ingest_admx_definition(id, contoso_banner()).unwrap();
        (definition, String::new())
    });
    (tenant, banner)
}

/// The banner definition's presentation id in `tenant`, read through Graph.
async fn banner_ids(sim: &graph_sim::SimHandle, tenant: &SimTenant, definition: &str) -> (String, String) {
    let admin = PortalAdmin::sign_in(sim, tenant).await.unwrap();
    let read = admin
        .call("GET", &format!("deviceManagement/groupPolicyDefinitions/{definition}?$expand=presentations"), None)
        .await
        .unwrap();
    (definition.to_string(), read["presentations"][0]["id"].as_str().unwrap().to_string())
}

/// Writes the simulator logged for `tenant` on Administrative Templates, as `METHOD path-after-the-collection`.
fn template_writes(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant) && r.path.starts_with(CONFIGURATIONS))
        .map(|r| {
            let rest = r.path.trim_start_matches(CONFIGURATIONS);
            let shape: Vec<&str> = rest.split('/').map(|s| if s.len() > 30 { "{id}" } else { s }).collect();
            format!("{} {}", r.method, shape.join("/"))
        })
        .collect()
}

fn template(backup: &BackupSet) -> &BackupItem {
    backup.items.iter().find(|i| i.item_type == "administrativeTemplate").expect("the backup holds the template")
}

fn labels(item: &BackupItem) -> BTreeSet<String> {
    item.sub_resources["definitionValues"]
        .iter()
        .filter_map(|v| v["definition"]["displayName"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn an_administrative_template_round_trips_capture_native_backup_and_restore_into_an_empty_tenant() {
    let sim = quiet_simulator().await;
    let (source, _) = tenant_with_groups(&sim, "contoso", "Contoso", false);
    edge_baseline(&sim, &source, None).await;
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let captured = template(&backup);
    assert_eq!(captured.sub_resources["definitionValues"].len(), 5, "every definition value is captured");
    let autoplay = captured.sub_resources["definitionValues"]
        .iter()
        .find(|v| v["definition"]["id"] == AUTOPLAY.0)
        .expect("the definition is expanded with its id");
    assert_eq!(autoplay["presentationValues"].as_array().unwrap().len(), 2);
    assert!(autoplay["presentationValues"][0]["presentation"]["label"].is_string(), "presentations are expanded");
    // The native backup round-trips the values unchanged.
    let archive = restore_backup::native::to_tar_gz(&backup).unwrap();
    let reloaded = restore_backup::native::read_tar_gz(&archive, None, &Limits::default()).unwrap();
    assert_eq!(template(&reloaded.set).sub_resources, captured.sub_resources);

    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&backup, &target, &client, "admx").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Create), [captured.key()]);
    assert_eq!(
        template_writes(&sim, "fabrikam"),
        ["POST ", "POST /{id}/updateDefinitionValues", "POST /{id}/assign"],
        "the configuration, then all its values in one action, then its assignment"
    );
    let now = capture_tenant(&client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
    assert_eq!(labels(template(&now)), labels(captured));

    // A second preview finds nothing to do.
    let (phase, report) = restore_on_approval(&backup, &target, &client, "admx-again").await;
    assert_eq!(phase, Phase::Succeeded);
    let again = report.items.iter().find(|i| i.key == captured.key()).unwrap();
    assert_eq!(again.action, PlannedAction::Unchanged, "{}", again.diff);
}

#[tokio::test]
async fn rule_7_a_drifted_template_gets_its_changed_added_and_removed_values_back_in_one_write_never_a_delete() {
    let sim = quiet_simulator().await;
    let (source, _) = tenant_with_groups(&sim, "contoso", "Contoso", false);
    let id = edge_baseline(&sim, &source, None).await;
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let captured = template(&backup);
    let value_of = |definition: &str| {
        captured.sub_resources["definitionValues"].iter().find(|v| v["definition"]["id"] == definition).unwrap().clone()
    };
    let home = value_of(HOME_PAGE.0);
    let cache = value_of(DISK_CACHE.0);

    // In the portal: the home page changed, the disk cache value removed, a user policy added.
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let changed = json!({"id": home["id"], "enabled": true, "definition@odata.bind": definition_bind(HOME_PAGE.0),
        "presentationValues": [{"id": home["presentationValues"][0]["id"],
            "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": "https://changed.example",
            "presentation@odata.bind": format!("{}/presentations('{}')", definition_bind(HOME_PAGE.0), HOME_PAGE.1)}]});
    let drift = json!({"added": [definition_value("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a02", true, vec![presentation_value(
            "groupPolicyPresentationValueText", "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a02", "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b02",
            "value", json!("5"))])],
        "updated": [changed], "deletedIds": [cache["id"]]});
    admin.call("POST", &format!("{CONFIGURATIONS}/{id}/updateDefinitionValues"), Some(&drift)).await.unwrap();
    let before = template_writes(&sim, "contoso").len();

    let (phase, report) = restore_on_approval(&backup, &source, &client, "admx-drift").await;
    assert_eq!(phase, Phase::Succeeded);
    let planned = report.items.iter().find(|i| i.key == captured.key()).unwrap();
    assert_eq!(planned.action, PlannedAction::Update);
    assert!(planned.changed_fields.iter().all(|f| f.starts_with("definitionValues")), "{:?}", planned.changed_fields);
    assert_eq!(template_writes(&sim, "contoso")[before..], ["POST /{id}/updateDefinitionValues"]);
    let now = capture_tenant(&client, &source).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
}

#[tokio::test]
async fn a_custom_admx_definition_is_mapped_by_name_across_tenants_and_a_missing_one_blocks_every_write() {
    let sim = quiet_simulator().await;
    let (source, ingested) = tenant_with_groups(&sim, "contoso", "Contoso", true);
    let banner = banner_ids(&sim, &source, &ingested.unwrap().0).await;
    edge_baseline(&sim, &source, Some(banner.clone())).await;
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let captured = template(&backup);
    assert_eq!(captured.sub_resources["definitionValues"].len(), 6);

    // A target that never ingested the ADMX: a blocker naming the definition, and no write at all.
    let (bare, _) = tenant_with_groups(&sim, "northwind", "Northwind", false);
    let (phase, report) = restore_on_approval(&backup, &bare, &unpaced_client(&sim, &bare), "admx-missing").await;
    assert_eq!(phase, Phase::Blocked);
    let blocker = report.findings.iter().find(|f| f.code == FindingCode::AdmxDefinitionNotMapped).unwrap();
    assert!(blocker.message.contains("\"Contoso banner\""), "{}", blocker.message);
    assert_eq!(writes_to(&sim, "northwind"), 0, "nothing is written, not even the configuration");

    // A target that ingested the same ADMX: another id there, mapped by name, class and category.
    let (target, ingested) = tenant_with_groups(&sim, "fabrikam", "Fabrikam", true);
    let target_banner = banner_ids(&sim, &target, &ingested.unwrap().0).await;
    assert_ne!(target_banner, banner, "the ingested definition has the target's own ids");
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&backup, &target, &client, "admx-custom").await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(!codes_for(&report, &captured.key()).contains(&FindingCode::AdmxDefinitionNotMapped));
    let now = capture_tenant(&client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
    let restored = template(&now);
    let banner_value = restored.sub_resources["definitionValues"]
        .iter()
        .find(|v| v["definition"]["displayName"] == "Contoso banner")
        .unwrap();
    assert_eq!(banner_value["definition"]["id"], target_banner.0.as_str());
    assert_eq!(banner_value["presentationValues"][0]["presentation"]["id"], target_banner.1.as_str());
}

#[tokio::test]
async fn an_intunecd_administrative_template_imports_by_definition_name_and_restores() {
    // IntuneCD 2.6.0 writes the configuration with its values inline; its remove_keys strips every id,
    // so definitions are named by displayName + classType + categoryPath and options by label.
    let file = json!({
        "@odata.type": "#microsoft.graph.groupPolicyConfiguration",
        "displayName": "Edge from IntuneCD", "description": "", "roleScopeTagIds": ["0"],
        "policyConfigurationIngestionType": "builtIn",
        "definitionValues": [
            {"enabled": true, "configurationType": "policy",
             "definition": {"classType": "machine", "displayName": "Configure the home page URL",
                            "categoryPath": "\\Microsoft Edge\\Startup, home page and new tab page",
                            "explainText": "", "policyType": "admxBacked", "supportedOn": "", "hasRelatedDefinitions": false},
             "presentationValues": [{"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                                     "value": "https://intunecd.example",
                                     "presentation": {"@odata.type": "#microsoft.graph.groupPolicyPresentationTextBox",
                                                      "label": "Home page URL", "required": false}}]},
            {"enabled": false, "configurationType": "policy",
             "definition": {"classType": "user", "displayName": "Prevent access to registry editing tools",
                            "categoryPath": "\\System"},
             "presentationValues": []}
        ],
        "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
                                                       "groupName": GROUP_ALL}}]
    });
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Group Policy Configurations");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("Edge from IntuneCD.json"), serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    let mut loaded = load_local(dir.path(), None, BackupFormat::IntuneCd, &Limits::default()).unwrap();
    loaded.set.tenant = Some(BackupTenant { id: "intunecd-source".into(), label: "IntuneCD".into() });
    loaded.set.captured_at = Some("2026-02-01T12:00:00Z".into());
    let item = template(&loaded.set).clone();
    assert_eq!(item.sub_resources["definitionValues"].len(), 2);

    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&loaded.set, &target, &client, "admx-intunecd").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Create), [item.key()]);
    let now = capture_tenant(&client, &target).await;
    let restored = template(&now);
    assert_eq!(labels(restored), labels(&item));
    let home = restored.sub_resources["definitionValues"]
        .iter()
        .find(|v| v["definition"]["id"] == HOME_PAGE.0)
        .expect("mapped by name to the built-in definition's id");
    assert_eq!(home["presentationValues"][0]["value"], "https://intunecd.example");
    assert_eq!(home["presentationValues"][0]["presentation"]["id"], HOME_PAGE.1);
    let pilot = restored.references.groups.iter().find(|g| g.display_name == GROUP_ALL).map(|g| g.id.clone());
    assert_eq!(restored.assignments.as_ref().unwrap()[0]["target"]["groupId"].as_str().map(str::to_string), pilot);
}

#[tokio::test]
async fn a_value_changed_after_the_preview_is_drift_and_the_values_are_not_written() {
    let sim = quiet_simulator().await;
    let (source, _) = tenant_with_groups(&sim, "contoso", "Contoso", false);
    let id = edge_baseline(&sim, &source, None).await;
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let captured = template(&backup);
    let home = captured.sub_resources["definitionValues"]
        .iter()
        .find(|v| v["definition"]["id"] == HOME_PAGE.0)
        .unwrap()
        .clone();
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let set_home = |url: &str| {
        json!({"added": [], "deletedIds": [], "updated": [{"id": home["id"], "enabled": true,
            "definition@odata.bind": definition_bind(HOME_PAGE.0),
            "presentationValues": [{"id": home["presentationValues"][0]["id"],
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": url,
                "presentation@odata.bind": format!("{}/presentations('{}')", definition_bind(HOME_PAGE.0), HOME_PAGE.1)}]}]})
    };
    let path = format!("{CONFIGURATIONS}/{id}/updateDefinitionValues");
    admin.call("POST", &path, Some(&set_home("https://first.example"))).await.unwrap();

    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("admx-late-drift", &source, &objects, &fetcher, &client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed);
    let digest = run.digest().unwrap().to_string();
    // Between the preview and the approval, someone edits the same value again.
    admin.call("POST", &path, Some(&set_home("https://second.example"))).await.unwrap();
    let before = template_writes(&sim, "contoso").len();
    approve(&mut run, &digest, &source.label);
    let phase = run.drive(|_| {}).await.unwrap();
    assert_ne!(phase, Phase::Succeeded, "the drifted item is reported, not written");
    assert_eq!(template_writes(&sim, "contoso").len(), before, "no updateDefinitionValues over the later edit");
    let now = capture_tenant(&client, &source).await;
    let value = template(&now).sub_resources["definitionValues"]
        .iter()
        .find(|v| v["definition"]["id"] == HOME_PAGE.0)
        .unwrap()
        .clone();
    assert_eq!(value["presentationValues"][0]["value"], "https://second.example");
}

/// A tenant port whose `updateDefinitionValues` Graph applies and then answers 504 (the gateway
/// timed out): the outcome is unknown to the caller.
struct ValuesAnswerLost<'a>(&'a graph_sim::SimHandle);

impl WriteHook for ValuesAnswerLost<'_> {
    fn before(&self, _kind: WriteKind, path: &str, _body: &Value) {
        if path.ends_with("/updateDefinitionValues") {
            self.0.set_faults(graph_sim::FaultConfig { rate_504: 1.0, ..graph_sim::FaultConfig::default() });
        }
    }
    fn after(&self, _path: &str, _applied: bool) -> Option<TenantError> {
        self.0.set_faults(graph_sim::FaultConfig::default());
        None
    }
}

#[tokio::test]
async fn rule_5_definition_values_whose_answer_is_lost_are_never_added_twice_and_the_retry_finds_them_written() {
    let sim = quiet_simulator().await;
    let (source, _) = tenant_with_groups(&sim, "contoso", "Contoso", false);
    edge_baseline(&sim, &source, None).await;
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let restore_target = RestoreTarget { tenant_id: target.tenant_id.clone(), environment: target.environment };
    let approved = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    let plan = || ExecutionPlan::build(&scope, &approved.report).unwrap();

    let lossy = HookedWrites { inner: &client, hook: ValuesAnswerLost(&sim) };
    let mut first = Executor::new(plan(), ProgressRecord::new(&approved.digest)).unwrap();
    assert!(first.run_to_end(&lossy).await.is_err(), "an unknown outcome leaves the step to be retried");
    let sent = template_writes(&sim, "fabrikam").iter().filter(|w| w.ends_with("/updateDefinitionValues")).count();
    assert_eq!(sent, 1, "sent once, not resent by the client");

    let mut resumed = Executor::new(plan(), first.progress().clone()).unwrap();
    let facts = resumed.run_to_end(&client).await.unwrap();
    assert_eq!((facts.counts.created, facts.counts.failed, facts.counts.drifted), (1, 0, 0));
    let sent = template_writes(&sim, "fabrikam").iter().filter(|w| w.ends_with("/updateDefinitionValues")).count();
    assert_eq!(sent, 1, "the retried step read the values back and found nothing left to add");
    let now = capture_tenant(&client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
}
