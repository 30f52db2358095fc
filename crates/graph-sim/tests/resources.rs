//! The simulated Graph API over real HTTP: Microsoft-shaped fixtures for every catalogue type
//! are accepted, and the rules real Intune enforces are enforced with Graph's error shape.

use std::time::Duration;

use graph_sim::{AppCredential, FaultConfig, SimConfig, SimHandle, Simulator, ThrottleConfig};
use restore_core::backup::{BackupItem, BackupSet, NamedRef, References};
use restore_core::catalog::ITEM_TYPES;
use serde_json::{Value, json};

const TENANT: &str = "contoso.onmicrosoft.com";
const APP: &str = "app-1";
const SECRET: &str = "s3cret";

struct Harness {
    sim: SimHandle,
    http: reqwest::Client,
    token: String,
}

impl Harness {
    async fn start(config: SimConfig) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = Simulator::start(config).await.unwrap();
        sim.add_tenant(TENANT);
        sim.register_app(TENANT, APP, AppCredential::Secret(SECRET.into())).unwrap();
        let http = reqwest::Client::builder().build().unwrap();
        let token = token(&http, &sim, SECRET).await.1["access_token"].as_str().unwrap().to_string();
        Harness { sim, http, token }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = format!("{}/beta/{path}", self.sim.base_url());
        let mut request = self.http.request(method.parse().unwrap(), url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, headers, value)
    }
}

async fn token(http: &reqwest::Client, sim: &SimHandle, secret: &str) -> (u16, Value) {
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", sim.authority_url());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", APP),
        ("client_secret", secret),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let response = http.post(url).form(&form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn fixture(type_name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{type_name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

/// Asserts Graph's error shape and returns `error.code`.
fn graph_error_code(body: &Value) -> String {
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message: {body}");
    assert!(error["innerError"]["request-id"].as_str().is_some(), "error.innerError.request-id: {body}");
    error["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_documented_fixture_for_every_catalogue_type_is_accepted() {
    let h = Harness::start(SimConfig::default()).await;
    // The tenant-wide singleton (device-management settings) is not a collection, and a collection
    // under a parent's item (Apple enrollment profiles under a token) has no path of its own: their
    // own tests (graph-sim's `dep` module for the profiles).
    let own_path = |t: &&restore_core::catalog::ItemType| {
        restore_core::engine::singleton::singleton(t).is_none()
            && !restore_core::engine::apple_enrollment::is_parent_scoped(t)
    };
    for ty in ITEM_TYPES.iter().filter(own_path) {
        let body = fixture(ty.name);
        let (status, _, created) = h.call("POST", ty.collection, Some(body.clone())).await;
        assert_eq!(status, 201, "{}: {created}", ty.name);
        let id = created["id"].as_str().unwrap();
        assert_ne!(id, body["id"].as_str().unwrap_or_default(), "{}: the server sets the id", ty.name);
        let short = graph_sim::model::short_type(created["@odata.type"].as_str().unwrap()).to_string();
        for stamp in ["createdDateTime", "lastModifiedDateTime"] {
            let modelled = graph_sim::model::model().property_type(&short, stamp).is_some();
            assert_eq!(
                created[stamp].is_string(),
                modelled,
                "{}: {stamp} is set exactly when the type has it",
                ty.name
            );
        }
        assert!(ty.accepts_odata(created["@odata.type"].as_str().unwrap()), "{}", ty.name);
        let (status, _, read) = h.call("GET", &format!("{}/{id}", ty.collection), None).await;
        assert_eq!(status, 200, "{}", ty.name);
        assert_eq!(read["id"], created["id"]);
        for sub in ty.sub_resources {
            if let Some(Value::Array(sent)) = body.get(sub.name) {
                let (status, _, listed) = h.call("GET", &format!("{}/{id}/{}", ty.collection, sub.name), None).await;
                assert_eq!(status, 200, "{}/{}", ty.name, sub.name);
                assert_eq!(listed["value"].as_array().unwrap().len(), sent.len(), "{}/{}", ty.name, sub.name);
                assert!(read.get(sub.name).is_none(), "{}: navigations are not inline without $expand", ty.name);
            }
        }
    }
    let (_, _, configs) = h.call("GET", "deviceManagement/deviceConfigurations/", None).await;
    let config = &configs["value"][0];
    assert_eq!(config["version"], 1, "a documented body's version is ignored; the server starts at 1");
    assert_eq!(config["supportsScopeTags"], true);
    let (_, _, tags) = h.call("GET", "deviceManagement/roleScopeTags", None).await;
    let ids: Vec<&str> = tags["value"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["0", "1"], "scope tag ids are small integers, 0 is Default");
}

#[tokio::test]
async fn a_wrong_or_abstract_odata_type_is_refused_with_model_validation_failure() {
    let h = Harness::start(SimConfig::default()).await;
    let cases = [
        (
            "deviceManagement/deviceConfigurations",
            json!({"@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "x"}),
        ),
        (
            "deviceManagement/deviceConfigurations",
            json!({"@odata.type": "#microsoft.graph.deviceConfiguration", "displayName": "x"}),
        ),
        ("deviceManagement/deviceConfigurations", json!({"displayName": "no type"})),
        ("deviceManagement/deviceCompliancePolicies", fixture("deviceConfiguration")),
        ("deviceManagement/configurationPolicies", {
            let mut body = fixture("settingsCatalogPolicy");
            body["@odata.type"] = json!("#microsoft.graph.windows10GeneralConfiguration");
            body
        }),
        ("deviceAppManagement/iosManagedAppProtections", fixture("androidAppProtectionPolicy")),
        (
            "deviceManagement/deviceConfigurations",
            json!({"@odata.type": "windows10GeneralConfiguration", "displayName": "x"}),
        ),
    ];
    for (collection, body) in cases {
        let (status, _, error) = h.call("POST", collection, Some(body.clone())).await;
        assert_eq!(status, 400, "{collection} {body}");
        assert_eq!(graph_error_code(&error), "ModelValidationFailure", "{collection} {body}");
    }
    let (_, _, created) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    let path = format!("deviceManagement/deviceConfigurations/{}", created["id"].as_str().unwrap());
    let (status, _, error) =
        h.call("PATCH", &path, Some(json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration"}))).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "ModelValidationFailure"), "the type cannot change");
    assert_eq!(h.sim.objects(TENANT, "deviceManagement/deviceConfigurations").unwrap().len(), 1);
}

#[tokio::test]
async fn forbidden_fields_and_missing_requirements_are_refused_and_nothing_is_stored() {
    let h = Harness::start(SimConfig::default()).await;
    let mut secret_ref = json!({
        "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "Encrypted OMA",
        "omaSettings": [{
            "@odata.type": "#microsoft.graph.omaSettingString",
            "displayName": "Key",
            "omaUri": "./Vendor/MSFT/Example",
            "isEncrypted": true,
            "secretReferenceValueId": "5c6d7a4e-0000-4000-8000-000000000001_value",
            "value": "****"
        }]
    });
    let mut no_rules = fixture("compliancePolicy");
    no_rules.as_object_mut().unwrap().remove("scheduledActionsForRule");
    let mut no_block = fixture("compliancePolicy");
    no_block["scheduledActionsForRule"][0]["scheduledActionConfigurations"] =
        json!([{"actionType": "notification", "gracePeriodHours": 1}]);
    let mut unknown_tag = fixture("deviceConfiguration");
    unknown_tag["roleScopeTagIds"] = json!(["42"]);
    let mut inline_assignments = fixture("deviceConfiguration");
    inline_assignments["assignments"] = json!([]);
    let mut bad_script = fixture("powerShellScript");
    bad_script["scriptContent"] = json!("not base64!");
    let mut bad_setting = fixture("settingsCatalogPolicy");
    bad_setting["settings"][0]["settingInstance"].as_object_mut().unwrap().remove("settingDefinitionId");
    let cases = [
        ("deviceManagement/deviceConfigurations", secret_ref.take(), "ModelValidationFailure"),
        ("deviceManagement/deviceCompliancePolicies", no_rules, "BadRequest"),
        ("deviceManagement/deviceCompliancePolicies", no_block, "BadRequest"),
        ("deviceManagement/deviceConfigurations", unknown_tag, "BadRequest"),
        ("deviceManagement/deviceConfigurations", inline_assignments, "BadRequest"),
        ("deviceManagement/deviceManagementScripts", bad_script, "ModelValidationFailure"),
        ("deviceManagement/configurationPolicies", bad_setting, "ModelValidationFailure"),
    ];
    for (collection, body, code) in cases {
        let (status, _, error) = h.call("POST", collection, Some(body.clone())).await;
        assert_eq!(status, 400, "{collection}: {error}");
        assert_eq!(graph_error_code(&error), code, "{collection}: {error}");
        assert!(h.sim.objects(TENANT, collection).unwrap().is_empty(), "{collection}: nothing stored");
    }
}

#[tokio::test]
async fn settings_come_25_to_a_page_and_put_replaces_the_whole_policy() {
    let h = Harness::start(SimConfig::default()).await;
    let mut body = fixture("settingsCatalogPolicy");
    let template = body["settings"][0].clone();
    body["settings"] = Value::Array(vec![template.clone(); 60]);
    let (_, _, created) = h.call("POST", "deviceManagement/configurationPolicies", Some(body.clone())).await;
    assert_eq!(created["settingCount"], 60);
    let id = created["id"].as_str().unwrap();
    let mut path = format!("deviceManagement/configurationPolicies/{id}/settings");
    let mut sizes = Vec::new();
    loop {
        let (status, _, page) = h.call("GET", &path, None).await;
        assert_eq!(status, 200);
        sizes.push(page["value"].as_array().unwrap().len());
        match page["@odata.nextLink"].as_str() {
            Some(next) => path = next.split_once("/beta/").unwrap().1.to_string(),
            None => break,
        }
    }
    assert_eq!(sizes, [25, 25, 10]);
    let (_, _, expanded) =
        h.call("GET", &format!("deviceManagement/configurationPolicies/{id}?$expand=settings"), None).await;
    assert_eq!(expanded["settings"].as_array().unwrap().len(), 60, "$expand=settings returns them all");

    let policy = format!("deviceManagement/configurationPolicies/{id}");
    let (status, _, error) = h.call("PATCH", &policy, Some(json!({"settings": []}))).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "BadRequest"), "settings change only by PUT");
    body["settings"] = Value::Array(vec![template; 2]);
    body["description"] = json!("replaced");
    let (status, _, _) = h.call("PUT", &policy, Some(body)).await;
    assert_eq!(status, 204);
    let (_, _, read) = h.call("GET", &policy, None).await;
    assert_eq!((read["settingCount"].clone(), read["description"].clone()), (json!(2), json!("replaced")));
    assert_eq!(read["createdDateTime"], created["createdDateTime"], "PUT keeps the identity and creation time");
}

#[tokio::test]
async fn assign_replaces_the_whole_set_and_checks_groups_and_filters() {
    let h = Harness::start(SimConfig::default()).await;
    let pilot = h.sim.add_group(TENANT, "Pilot").unwrap();
    let all = h.sim.add_group(TENANT, "All staff").unwrap();
    let filter = h
        .sim
        .add_assignment_filter(TENANT, "Corporate", "windows10AndLater", "(device.deviceOwnership -eq \"Corporate\")")
        .unwrap();
    let (_, _, script) =
        h.call("POST", "deviceManagement/deviceManagementScripts", Some(fixture("powerShellScript"))).await;
    let path = format!("deviceManagement/deviceManagementScripts/{}", script["id"].as_str().unwrap());
    let target = |group: &str| json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group, "deviceAndAppManagementAssignmentFilterId": filter, "deviceAndAppManagementAssignmentFilterType": "include"}});
    let (status, _, _) = h
        .call(
            "POST",
            &format!("{path}/assign"),
            Some(json!({"deviceManagementScriptAssignments": [target(&pilot), target(&all)]})),
        )
        .await;
    assert_eq!(status, 204, "the SDK's deviceManagementScript assign returns nothing");
    let (status, _, _) = h
        .call("POST", &format!("{path}/assign"), Some(json!({"deviceManagementScriptAssignments": [target(&all)]})))
        .await;
    assert_eq!(status, 204, "the SDK's deviceManagementScript assign returns nothing");
    let (_, _, listed) = h.call("GET", &format!("{path}/assignments"), None).await;
    let groups: Vec<&str> =
        listed["value"].as_array().unwrap().iter().map(|a| a["target"]["groupId"].as_str().unwrap()).collect();
    assert_eq!(groups, [all.as_str()], "the second /assign replaced the first set");

    let (status, _, error) = h
        .call(
            "POST",
            &format!("{path}/assign"),
            Some(json!({"deviceManagementScriptAssignments": [target("00000000-0000-0000-0000-0000000000ff")]})),
        )
        .await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "BadRequest"), "unknown group");
    let (status, _, _) = h.call("POST", &format!("{path}/assign"), Some(json!({"assignments": [target(&all)]}))).await;
    assert_eq!(status, 400, "scripts take deviceManagementScriptAssignments");

    let (_, _, list) = h.call("GET", "deviceManagement/deviceManagementScripts?$expand=assignments", None).await;
    let listed_script = &list["value"][0];
    assert!(listed_script["scriptContent"].is_null(), "lists leave the script body out");
    assert_eq!(listed_script["assignments"].as_array().unwrap().len(), 1);
    let (_, _, one) = h.call("GET", &path, None).await;
    assert_eq!(one["scriptContent"], fixture("powerShellScript")["scriptContent"]);
}

#[tokio::test]
async fn compliance_rules_are_replaced_by_schedule_actions_for_rules() {
    let h = Harness::start(SimConfig::default()).await;
    let (_, _, policy) =
        h.call("POST", "deviceManagement/deviceCompliancePolicies", Some(fixture("compliancePolicy"))).await;
    let path = format!("deviceManagement/deviceCompliancePolicies/{}", policy["id"].as_str().unwrap());
    let (_, _, read) = h
        .call("GET", &format!("{path}?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)"), None)
        .await;
    let configs = read["scheduledActionsForRule"][0]["scheduledActionConfigurations"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
    assert!(configs.iter().all(|c| c["id"].is_string()));
    let rules = json!({"deviceComplianceScheduledActionForRules": [{"ruleName": "PasswordRequired", "scheduledActionConfigurations": [{"actionType": "block", "gracePeriodHours": 12}]}]});
    let (status, _, _) = h.call("POST", &format!("{path}/scheduleActionsForRules"), Some(rules)).await;
    assert_eq!(status, 204);
    let (_, _, listed) = h.call("GET", &format!("{path}/scheduledActionsForRule"), None).await;
    assert_eq!(listed["value"][0]["scheduledActionConfigurations"][0]["gracePeriodHours"], 12);
    assert_eq!(listed["value"][0]["scheduledActionConfigurations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_action_is_named_in_any_case_as_graph_takes_it() {
    let h = Harness::start(SimConfig::default()).await;
    let (_, _, policy) =
        h.call("POST", "deviceManagement/deviceCompliancePolicies", Some(fixture("compliancePolicy"))).await;
    let path = format!("deviceManagement/deviceCompliancePolicies/{}", policy["id"].as_str().unwrap());
    let rules = json!({"deviceComplianceScheduledActionForRules": [{"ruleName": "PasswordRequired", "scheduledActionConfigurations": [{"actionType": "block", "gracePeriodHours": 6}]}]});
    let (status, _, _) = h.call("POST", &format!("{path}/scheduleactionsforrules"), Some(rules)).await;
    assert_eq!(status, 204, "IntuneCD spells actions in lower case");
    let (_, _, listed) = h.call("GET", &format!("{path}/scheduledActionsForRule"), None).await;
    assert_eq!(listed["value"][0]["scheduledActionConfigurations"][0]["gracePeriodHours"], 6);
    let (status, _, _) = h.call("POST", &format!("{path}/noSuchAction"), Some(json!({}))).await;
    assert!(status >= 400, "an action the type does not have is still refused: {status}");
}

#[tokio::test]
async fn query_options_filter_select_top_and_expand() {
    let h = Harness::start(SimConfig::default()).await;
    for name in ["Alpha", "Beta", "O'Hara"] {
        let mut body = fixture("deviceConfiguration");
        body["displayName"] = json!(name);
        h.call("POST", "deviceManagement/deviceConfigurations", Some(body)).await;
    }
    let (_, _, found) =
        h.call("GET", "deviceManagement/deviceConfigurations?$filter=displayName%20eq%20'o''hara'", None).await;
    assert_eq!(found["value"].as_array().unwrap().len(), 1);
    let (_, _, page) = h.call("GET", "deviceManagement/deviceConfigurations?$top=2&$select=id,displayName", None).await;
    let first = &page["value"][0];
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert!(first.get("cameraBlocked").is_none() && first["displayName"] == "Alpha");
    assert!(page["@odata.nextLink"].as_str().unwrap().contains("%24skiptoken=2"));
    let (status, _, error) = h.call("GET", "deviceManagement/deviceConfigurations?$expand=settings", None).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "BadRequest"));
    let (status, _, _) =
        h.call("GET", "deviceManagement/deviceConfigurations?$filter=displayName%20ne%20'x'", None).await;
    assert_eq!(status, 400);
    let (status, _, error) = h.call("GET", "deviceManagement/noSuchCollection", None).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn groups_are_filtered_by_display_name_and_created_with_required_fields() {
    let h = Harness::start(SimConfig::default()).await;
    let id = h.sim.add_group(TENANT, "Finance laptops").unwrap();
    let (_, _, found) =
        h.call("GET", "groups?$filter=displayName%20eq%20'Finance%20laptops'&$select=id,displayName", None).await;
    assert_eq!(found["value"][0]["id"], id.as_str());
    let (status, _, _) = h.call("POST", "groups", Some(json!({"displayName": "No nickname"}))).await;
    assert_eq!(status, 400);
    let body =
        json!({"displayName": "Created", "mailNickname": "created", "mailEnabled": false, "securityEnabled": true});
    let (status, _, created) = h.call("POST", "groups", Some(body)).await;
    assert_eq!(status, 201);
    let (status, _, _) = h.call("GET", &format!("groups/{}", created["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn batch_answers_each_request_and_refuses_more_than_20() {
    let h = Harness::start(SimConfig::default()).await;
    let (_, _, created) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    let id = created["id"].as_str().unwrap();
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/deviceManagement/deviceConfigurations/{id}")},
        {"id": "2", "method": "GET", "url": "/deviceManagement/deviceConfigurations/missing"},
        {"id": "3", "method": "PATCH", "url": format!("/deviceManagement/deviceConfigurations/{id}"), "body": {"description": "batched"}, "headers": {"Content-Type": "application/json"}},
        {"id": "4", "method": "GET", "url": "deviceManagement/roleScopeTags?$select=id"}
    ]});
    let (status, _, answer) = h.call("POST", "$batch", Some(batch)).await;
    assert_eq!(status, 200);
    let by_id = |i: &str| answer["responses"].as_array().unwrap().iter().find(|r| r["id"] == i).unwrap().clone();
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["id"], id);
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(graph_error_code(&by_id("2")["body"]), "ResourceNotFound");
    assert_eq!(by_id("3")["status"], 204);
    assert_eq!(by_id("4")["body"]["value"][0]["id"], "0");
    let too_many: Vec<Value> =
        (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/groups"})).collect();
    let (status, _, error) = h.call("POST", "$batch", Some(json!({"requests": too_many}))).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn the_write_limit_answers_429_with_retry_after_per_app() {
    let h = Harness::start(SimConfig {
        throttle: Some(ThrottleConfig { writes: 3, window: Duration::from_secs(20) }),
        ..SimConfig::default()
    })
    .await;
    for i in 0..3 {
        let mut body = fixture("deviceConfiguration");
        body["displayName"] = json!(format!("W{i}"));
        assert_eq!(h.call("POST", "deviceManagement/deviceConfigurations", Some(body)).await.0, 201);
    }
    let (status, headers, error) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (429, "TooManyRequests"));
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(h.call("GET", "deviceManagement/deviceConfigurations", None).await.0, 200, "reads are not limited");
    assert_eq!(h.sim.throttled_count(), 1);

    // Another app in the same tenant has its own window.
    h.sim.register_app(TENANT, "app-2", AppCredential::Secret("other".into())).unwrap();
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", h.sim.authority_url());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-2"),
        ("client_secret", "other"),
        ("scope", "x/.default"),
    ];
    let other: Value = h.http.post(url).form(&form).send().await.unwrap().json().await.unwrap();
    let response = h
        .http
        .post(format!("{}/beta/deviceManagement/deviceConfigurations", h.sim.base_url()))
        .bearer_auth(other["access_token"].as_str().unwrap())
        .json(&fixture("deviceConfiguration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn calls_without_a_valid_token_are_refused_and_a_wrong_secret_gets_no_token() {
    let h = Harness::start(SimConfig::default()).await;
    let response =
        h.http.get(format!("{}/beta/deviceManagement/deviceConfigurations", h.sim.base_url())).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(graph_error_code(&body), "InvalidAuthenticationToken");
    let (status, body) = token(&h.http, &h.sim, "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000215"));
    let (status, _, organization) = h.call("GET", "organization", None).await;
    assert_eq!((status, organization["value"][0]["id"].as_str()), (200, Some(TENANT)));
    let discovery: Value = h
        .http
        .get(format!("{}/{TENANT}/v2.0/.well-known/openid-configuration", h.sim.authority_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["token_endpoint"], format!("{}/{TENANT}/oauth2/v2.0/token", h.sim.authority_url()));
}

#[tokio::test]
async fn a_dropped_connection_gives_the_client_no_answer() {
    let h = Harness::start(SimConfig::default()).await;
    h.sim.set_faults(FaultConfig { drop_rate: 1.0, ..FaultConfig::default() });
    let result = h.http.get(format!("{}/beta/groups", h.sim.base_url())).bearer_auth(&h.token).send().await;
    assert!(result.is_err(), "connection closed without a response");
    assert_eq!(h.sim.request_log().last().unwrap().fault.as_deref(), Some("drop"));
}

fn backup_item(item_type: &str, id: &str, resource: Value, group: Option<(&str, &str)>) -> BackupItem {
    let display_name = resource["displayName"].as_str().or(resource["name"].as_str()).unwrap_or_default().to_string();
    BackupItem {
        item_type: item_type.into(),
        id: id.into(),
        display_name,
        platform: "windows".into(),
        assignments: group.map(|(gid, _)| {
            vec![json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid}})]
        }),
        resource,
        sub_resources: Default::default(),
        references: References {
            groups: group
                .map(|(id, name)| vec![NamedRef { id: id.into(), display_name: name.into() }])
                .unwrap_or_default(),
            scope_tags: vec![NamedRef { id: "7".into(), display_name: "Europe".into() }],
            ..References::default()
        },
    }
}

#[tokio::test]
async fn seeding_keeps_source_ids_and_creates_what_items_reference() {
    let h = Harness::start(SimConfig::default()).await;
    let set = BackupSet {
        tenant: None,
        captured_at: None,
        digest: "sha256:00".into(),
        items: vec![
            backup_item("deviceConfiguration", "cfg-1", fixture("deviceConfiguration"), Some(("grp-1", "Pilot"))),
            backup_item("settingsCatalogPolicy", "sc-1", fixture("settingsCatalogPolicy"), None),
        ],
    };
    let summary = h.sim.seed(TENANT, &set).unwrap();
    assert_eq!((summary.items, summary.groups, summary.scope_tags), (2, 1, 1));
    let (status, _, config) =
        h.call("GET", "deviceManagement/deviceConfigurations/cfg-1?$expand=assignments", None).await;
    assert_eq!(status, 200);
    assert_eq!(config["assignments"][0]["target"]["groupId"], "grp-1");
    let (_, _, settings) = h.call("GET", "deviceManagement/configurationPolicies/sc-1/settings", None).await;
    assert_eq!(settings["value"].as_array().unwrap().len(), 2, "inline settings became the sub-collection");
    assert_eq!(h.sim.group_ids(TENANT, "Pilot").unwrap(), ["grp-1"]);
    let (_, _, tag) = h.call("GET", "deviceManagement/roleScopeTags/7", None).await;
    assert_eq!(tag["displayName"], "Europe");
    let (_, _, created) = h.call("POST", "deviceManagement/roleScopeTags", Some(fixture("scopeTag"))).await;
    assert_eq!(created["id"], "8", "new scope tag ids continue after the seeded ones");
}

#[tokio::test]
async fn the_dump_is_deterministic_with_seeded_ids_and_a_frozen_clock() {
    async fn run() -> Value {
        let h = Harness::start(SimConfig {
            id_seed: Some(42),
            frozen_time: Some("2025-01-01T00:00:00Z".into()),
            ..SimConfig::default()
        })
        .await;
        h.sim.add_group(TENANT, "Pilot").unwrap();
        h.call("POST", "deviceManagement/deviceCompliancePolicies", Some(fixture("compliancePolicy"))).await;
        h.call("POST", "deviceManagement/configurationPolicies", Some(fixture("settingsCatalogPolicy"))).await;
        h.sim.dump(TENANT).unwrap()
    }
    let (first, second) = (run().await, run().await);
    assert_eq!(first, second);
    let compliance = first["collections"]["deviceManagement/deviceCompliancePolicies"].as_object().unwrap();
    assert_eq!(compliance.len(), 1);
    let (_, entry) = compliance.iter().next().unwrap();
    assert_eq!(entry["scheduledActionsForRule"][0]["ruleName"], "PasswordRequired");
    assert_eq!(first["apps"], json!([APP]));
}

// -- fidelity to Microsoft's published model and documentation (docs/graph-fidelity.md) --------

#[tokio::test]
async fn an_unknown_property_is_refused_with_model_validation_failure_and_nothing_is_stored() {
    let h = Harness::start(SimConfig::default()).await;
    let mut body = fixture("compliancePolicy");
    body["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["notificationTemplateName"] = json!("x");
    let (status, _, error) = h.call("POST", "deviceManagement/deviceCompliancePolicies", Some(body)).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "ModelValidationFailure"), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("'notificationTemplateName' does not exist on type"));
    assert!(h.sim.objects(TENANT, "deviceManagement/deviceCompliancePolicies").unwrap().is_empty());

    let mut top_level = fixture("deviceConfiguration");
    top_level["madeUpSetting"] = json!(true);
    let (status, _, error) = h.call("POST", "deviceManagement/deviceConfigurations", Some(top_level)).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "ModelValidationFailure"), "{error}");

    let (_, _, created) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    let path = format!("deviceManagement/deviceConfigurations/{}", created["id"].as_str().unwrap());
    let (status, _, error) = h.call("PATCH", &path, Some(json!({"madeUpSetting": 1}))).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "ModelValidationFailure"), "PATCH: {error}");
}

#[tokio::test]
async fn reads_carry_the_server_defaults_of_the_published_type() {
    let h = Harness::start(SimConfig::default()).await;
    let (_, _, created) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    let (_, _, read) = h
        .call("GET", &format!("deviceManagement/deviceConfigurations/{}", created["id"].as_str().unwrap()), None)
        .await;
    for (property, value) in
        [("description", json!(created["description"].clone())), ("supportsScopeTags", json!(true))]
    {
        assert_eq!(read[property], value, "{property}");
    }
    assert!(
        read.as_object().unwrap().contains_key("deviceManagementApplicabilityRuleOsEdition"),
        "nullable → null: {read}"
    );
}

#[tokio::test]
async fn empty_role_scope_tag_ids_get_the_default_tag() {
    let h = Harness::start(SimConfig::default()).await;
    let mut body = fixture("deviceConfiguration");
    body["roleScopeTagIds"] = json!([]);
    let (status, _, created) = h.call("POST", "deviceManagement/deviceConfigurations", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["roleScopeTagIds"], json!(["0"]));
}

#[tokio::test]
async fn select_always_returns_the_id_and_query_options_work_without_dollar() {
    let h = Harness::start(SimConfig::default()).await;
    let (_, _, created) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    let id = created["id"].as_str().unwrap();
    let (_, _, one) =
        h.call("GET", &format!("deviceManagement/deviceConfigurations/{id}?$select=displayName"), None).await;
    assert_eq!(one["id"], json!(id));
    let (_, _, one) =
        h.call("GET", &format!("deviceManagement/deviceConfigurations/{id}?select=displayName"), None).await;
    assert_eq!(one.as_object().unwrap().keys().filter(|k| !k.starts_with('@')).count(), 2, "select= works: {one}");
    let (status, _, error) = h.call("GET", "deviceManagement/deviceConfigurations?$select=noSuchProperty", None).await;
    assert_eq!((status, graph_error_code(&error).as_str()), (400, "BadRequest"), "{error}");
    let (status, _, _) = h.call("GET", "deviceManagement/deviceConfigurations?$select=omaSettings", None).await;
    assert_eq!(status, 200, "a derived type's property can be selected");
}

#[tokio::test]
async fn top_raises_the_page_size_up_to_the_service_maximum() {
    let h = Harness::start(SimConfig { page_size: 2, settings_page_size: 2, ..SimConfig::default() }).await;
    let mut body = fixture("settingsCatalogPolicy");
    let setting = body["settings"][0].clone();
    body["settings"] = json!(vec![setting; 5]);
    let (_, _, created) = h.call("POST", "deviceManagement/configurationPolicies", Some(body)).await;
    let path = format!("deviceManagement/configurationPolicies/{}/settings", created["id"].as_str().unwrap());
    let (_, _, page) = h.call("GET", &path, None).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    for query in ["?$top=1000", "?top=1000"] {
        let (_, _, page) = h.call("GET", &format!("{path}{query}"), None).await;
        assert_eq!(page["value"].as_array().unwrap().len(), 5, "{query}");
        assert!(page.get("@odata.nextLink").is_none(), "{query}");
    }
}

#[tokio::test]
async fn filter_with_or_matches_either_side() {
    let h = Harness::start(SimConfig::default()).await;
    h.sim.add_scope_tag(TENANT, "Paris").unwrap();
    h.sim.add_scope_tag(TENANT, "Lyon").unwrap();
    h.sim.add_scope_tag(TENANT, "Nice").unwrap();
    let (status, _, list) = h
        .call(
            "GET",
            "deviceManagement/roleScopeTags?$filter=displayName%20eq%20'Paris'%20or%20displayName%20eq%20'Nice'",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        list["value"].as_array().unwrap().iter().map(|t| t["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Paris", "Nice"]);
}

#[tokio::test]
async fn batch_accepts_numeric_request_ids() {
    let h = Harness::start(SimConfig::default()).await;
    let body = json!({"requests": [
        {"id": 1, "method": "GET", "url": "/deviceManagement/roleScopeTags"},
        {"id": 2, "method": "GET", "url": "/deviceManagement/assignmentFilters"},
    ]});
    let (status, _, answer) = h.call("POST", "$batch", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<&str> = answer["responses"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert!(answer["responses"].as_array().unwrap().iter().all(|r| r["status"] == 200));
}

#[tokio::test]
async fn assignments_read_back_with_source_and_source_id() {
    let h = Harness::start(SimConfig::default()).await;
    let group = h.sim.add_group(TENANT, "Pilot").unwrap();
    let (_, _, created) =
        h.call("POST", "deviceManagement/deviceConfigurations", Some(fixture("deviceConfiguration"))).await;
    let path = format!("deviceManagement/deviceConfigurations/{}", created["id"].as_str().unwrap());
    let target = json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}});
    let (status, _, _) = h.call("POST", &format!("{path}/assign"), Some(json!({"assignments": [target]}))).await;
    assert_eq!(status, 200, "deviceConfiguration assign returns the assignments (SDK: AssignPostResponse)");
    let (_, _, listed) = h.call("GET", &format!("{path}/assignments"), None).await;
    assert_eq!(listed["value"][0]["source"], json!("direct"));
    assert!(listed["value"][0].as_object().unwrap().contains_key("sourceId"));
}

#[tokio::test]
async fn app_protection_assign_answers_204() {
    let h = Harness::start(SimConfig::default()).await;
    let group = h.sim.add_group(TENANT, "Pilot").unwrap();
    let (_, _, created) =
        h.call("POST", "deviceAppManagement/iosManagedAppProtections", Some(fixture("iosAppProtectionPolicy"))).await;
    let path = format!("deviceAppManagement/iosManagedAppProtections/{}", created["id"].as_str().unwrap());
    let target = json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}});
    let (status, _, body) = h.call("POST", &format!("{path}/assign"), Some(json!({"assignments": [target]}))).await;
    assert_eq!((status, body), (204, Value::Null));
}

#[tokio::test]
async fn localized_messages_are_identified_by_template_and_locale() {
    let h = Harness::start(SimConfig::default()).await;
    let (_, _, created) =
        h.call("POST", "deviceManagement/notificationMessageTemplates", Some(fixture("notificationTemplate"))).await;
    let id = created["id"].as_str().unwrap();
    let message = json!({"locale": "en-us", "subject": "s", "messageTemplate": "m", "isDefault": true});
    let (status, _, added) = h
        .call(
            "POST",
            &format!("deviceManagement/notificationMessageTemplates/{id}/localizedNotificationMessages"),
            Some(message),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["id"], json!(format!("{id}_en-us")));
}

#[tokio::test]
async fn collections_of_the_published_model_exist_even_when_not_simulated() {
    let h = Harness::start(SimConfig::default()).await;
    for path in [
        "deviceAppManagement/managedAppPolicies",
        "deviceManagement/compliancePolicies",
        "deviceManagement/deviceHealthScripts",
    ] {
        let (status, _, list) = h.call("GET", path, None).await;
        assert_eq!((status, list["value"].clone()), (200, json!([])), "{path}");
    }
    let (status, _, _) = h.call("GET", "deviceManagement/noSuchThings", None).await;
    assert_eq!(status, 400, "a segment the model does not have is still unknown");
}
