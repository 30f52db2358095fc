//! Apple automated device enrollment (ADE/DEP) profiles on the Graph simulator: written under the
//! target's enrollment-program token of the recorded name (same tenant: the source token), a token
//! missing in the target a blocker with nothing written, `isDefault` never written, IntuneCD import.

mod sim_support;

use restore_backup::Limits;
use restore_backup::source::load_local;
use restore_core::api::{BackupFormat, Environment, Phase};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{
    PortalAdmin, SAMPLE_DEP_TOKEN_NAME, SimTenant, every_kind_samples, sample_dep_token_id,
};
use serde_json::{Value, json};
use sim_support::*;

const TOKENS: &str = "deviceManagement/depOnboardingSettings";
const APPLE: &str = "appleEnrollmentProfile";

/// The demo sample's enrollment profile, as a backup to seed.
fn apple_sample() -> BackupSet {
    let items: Vec<BackupItem> = every_kind_samples().into_iter().filter(|i| i.item_type == APPLE).collect();
    assert_eq!(items.len(), 1, "the demo sample has one Apple enrollment profile");
    BackupSet { tenant: None, captured_at: None, digest: String::new(), items }
}

/// Writes the simulator logged for `tenant` under the tokens, as `METHOD path`.
fn token_writes(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<(String, String)> {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant) && r.path.starts_with(TOKENS))
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect()
}

fn profiles(sim: &graph_sim::SimHandle, tenant: &str, token: &str) -> Vec<serde_json::Map<String, Value>> {
    sim.objects(tenant, &format!("{TOKENS}/{token}/enrollmentProfiles")).unwrap()
}

#[tokio::test]
async fn a_profile_is_restored_into_another_tenant_under_its_token_of_the_same_name() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &apple_sample()).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let profile = backup.items.iter().find(|i| i.item_type == APPLE).expect("capture reads the token's profiles");
    let token = &profile.references.enrollment_tokens;
    assert_eq!(token.len(), 1);
    assert_eq!(
        (token[0].id.as_str(), token[0].display_name.as_str()),
        (sample_dep_token_id().as_str(), SAMPLE_DEP_TOKEN_NAME)
    );

    let target = empty_target(&sim);
    let target_token = sim.objects("fabrikam", TOKENS).unwrap()[0]["id"].as_str().unwrap().to_string();
    assert_ne!(target_token, token[0].id, "the target's token has its own id");
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&backup, &target, &client, "apple").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert_eq!(keys_with(&report, PlannedAction::Create), [profile.key()]);
    assert_eq!(
        token_writes(&sim, "fabrikam"),
        [("POST".to_string(), format!("{TOKENS}/{target_token}/enrollmentProfiles"))],
        "one create, under the target's token of the same name"
    );
    let now = capture_tenant(&client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
    let restored = now.items.iter().find(|i| i.item_type == APPLE).unwrap();
    assert_eq!(restored.references.enrollment_tokens[0].id, target_token);
}

#[tokio::test]
async fn a_profile_changed_in_the_portal_is_put_back_under_the_source_token_in_the_same_tenant() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &apple_sample()).unwrap();
    let client = unpaced_client(&sim, &source);
    let mut backup = capture_tenant(&client, &source).await;
    backup.items.retain(|i| i.item_type == APPLE);
    let profile = backup.items.iter().find(|i| i.item_type == APPLE).unwrap();
    let path = format!("{TOKENS}/{}/enrollmentProfiles/{}", sample_dep_token_id(), profile.id);
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    admin.call("PATCH", &path, Some(&json!({"description": "changed by hand", "isMandatory": false}))).await.unwrap();

    let before = token_writes(&sim, "contoso").len();
    let (phase, report) = restore_on_approval(&backup, &source, &client, "apple-drift").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert_eq!(keys_with(&report, PlannedAction::Update), [profile.key()]);
    let writes = token_writes(&sim, "contoso");
    assert_eq!(writes[before..], [("PATCH".to_string(), path.clone())], "one PATCH of the profile under its token");
    let now = capture_tenant(&client, &source).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());

    let (_, again) = restore_on_approval(&backup, &source, &client, "apple-again").await;
    assert_eq!(keys_with(&again, PlannedAction::Unchanged), [profile.key()], "a second preview has nothing to do");
}

#[tokio::test]
async fn a_token_missing_in_the_target_is_a_blocker_naming_it_and_nothing_is_written() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &apple_sample()).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let key = backup.items.iter().find(|i| i.item_type == APPLE).unwrap().key();

    // A tenant with the groups but another token, then one with two tokens of the sample's name.
    for (tenant, tokens) in
        [("other", &["Fabrikam ABM"][..]), ("twice", &[SAMPLE_DEP_TOKEN_NAME, SAMPLE_DEP_TOKEN_NAME][..])]
    {
        let target = SimTenant::create(&sim, tenant, tenant, Environment::Staging).unwrap();
        for name in tokens {
            sim.add_dep_token(tenant, name).unwrap();
        }
        let writes_before = writes_to(&sim, tenant);
        let (phase, report) = restore_on_approval(&backup, &target, &unpaced_client(&sim, &target), tenant).await;
        assert_eq!(phase, Phase::Blocked, "{tenant}");
        let code =
            if tokens.len() == 1 { FindingCode::EnrollmentTokenMissing } else { FindingCode::AmbiguousEnrollmentToken };
        assert!(codes_for(&report, &key).contains(&code), "{tenant}: {}", report.summary_text());
        let finding = report.findings.iter().find(|f| f.code == code).unwrap();
        assert!(finding.message.contains(SAMPLE_DEP_TOKEN_NAME), "names the token: {}", finding.message);
        assert_eq!(writes_to(&sim, tenant), writes_before, "{tenant}: nothing was written");
    }
}

#[tokio::test]
async fn a_default_profile_is_restored_without_is_default_and_a_warning_says_the_admin_sets_it() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &apple_sample()).unwrap();
    let client = unpaced_client(&sim, &source);
    let mut backup = capture_tenant(&client, &source).await;
    let profile = backup.items.iter_mut().find(|i| i.item_type == APPLE).unwrap();
    profile.resource["isDefault"] = json!(true);
    let key = profile.key();

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&backup, &target, &target_client, "apple-default").await;
    // The simulator refuses `isDefault: true` in a body (it is set by setDefaultProfile): the run
    // succeeds only because the restore never sends it.
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert!(codes_for(&report, &key).contains(&FindingCode::AppleDefaultProfileNotSet), "{}", report.summary_text());
    let token = sim.objects("fabrikam", TOKENS).unwrap()[0]["id"].as_str().unwrap().to_string();
    let written = profiles(&sim, "fabrikam", &token);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["isDefault"], json!(false), "isDefault is never written");
}

#[tokio::test]
async fn an_intunecd_profile_maps_its_token_by_id_in_the_same_tenant_and_is_a_blocker_across_tenants() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &apple_sample()).unwrap();
    let client = unpaced_client(&sim, &source);
    let captured = capture_tenant(&client, &source).await;
    let profile = captured.items.iter().find(|i| i.item_type == APPLE).unwrap();

    // IntuneCD 2.6.0 (`AppleEnrollmentProfiles`) writes the profile without its token's name;
    // the file name carries the id (`name__id`), whose prefix is the token id.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Enrollment Profiles/Apple");
    std::fs::create_dir_all(&folder).unwrap();
    let mut file = profile.resource.clone();
    for key in ["id", "createdDateTime", "lastModifiedDateTime", "isDefault"] {
        file.as_object_mut().unwrap().remove(key);
    }
    file["description"] = json!("from IntuneCD");
    let name = format!("{}__{}.json", profile.display_name, profile.id);
    std::fs::write(folder.join(name), serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    let mut loaded = load_local(dir.path(), None, BackupFormat::IntuneCd, &Limits::default()).unwrap();
    assert!(loaded.findings.iter().all(|f| !format!("{f:?}").contains("UnknownFolder")), "{:?}", loaded.findings);
    loaded.set.captured_at = Some("2026-02-01T12:00:00Z".into());
    let item = loaded.set.items.iter().find(|i| i.item_type == APPLE).unwrap().clone();
    assert_eq!(item.references.enrollment_tokens[0].id, sample_dep_token_id(), "the token id from the id prefix");

    // Across tenants: the token has no name to be found by.
    loaded.set.tenant = Some(BackupTenant { id: "intunecd-source".into(), label: "IntuneCD".into() });
    let target = empty_target(&sim);
    let writes_before = writes_to(&sim, "fabrikam");
    let (phase, report) =
        restore_on_approval(&loaded.set, &target, &unpaced_client(&sim, &target), "apple-intunecd-other").await;
    assert_eq!(phase, Phase::Blocked);
    let finding = report.findings.iter().find(|f| f.code == FindingCode::EnrollmentTokenMissing).unwrap();
    assert!(
        finding.message.contains("IntuneCD") && finding.message.contains(&sample_dep_token_id()),
        "{}",
        finding.message
    );
    assert_eq!(writes_to(&sim, "fabrikam"), writes_before);

    // The same tenant: mapped by the token id, the profile updated in place.
    loaded.set.tenant = Some(BackupTenant { id: "contoso".into(), label: "Contoso".into() });
    let (phase, report) = restore_on_approval(&loaded.set, &source, &client, "apple-intunecd-same").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert_eq!(keys_with(&report, PlannedAction::Update), [item.key()]);
    let stored = profiles(&sim, "contoso", &sample_dep_token_id());
    assert_eq!(stored[0]["description"], json!("from IntuneCD"));
}
