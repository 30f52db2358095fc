//! ValidatingAdmissionPolicy as kube-apiserver evaluates it: matching, matchConditions,
//! variables, params, namespaceObject, the authorizer, failurePolicy, actions, messages, and
//! refusal of what the emulator does not emulate.

mod support;

use kube_emulator::{EmulatorConfig, EmulatorError, EmulatorHandle};
use serde_json::{Value, json};
use support::{emulator, emulator_with};

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn binding(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
           "metadata": {"name": name}, "spec": spec})
}

fn config_maps(operations: &[&str]) -> Value {
    json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": operations, "resources": ["configmaps"]}]})
}

/// Installs a policy on ConfigMaps and a Deny binding for it.
fn install(emu: &EmulatorHandle, spec: Value) {
    emu.create(policy("p", spec)).expect("the policy is accepted");
    emu.create(binding("b", json!({"policyName": "p", "validationActions": ["Deny"]})))
        .expect("the binding is accepted");
}

fn config_map(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

fn refusal(result: Result<Value, EmulatorError>) -> kube_emulator::ApiError {
    match result {
        Err(EmulatorError::Api(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_false_validation_denies_with_the_api_servers_message_reason_and_code() {
    let emu = emulator().await;
    install(
        &emu,
        json!({"matchConstraints": config_maps(&["CREATE", "UPDATE"]), "validations": [
            {"expression": "!has(object.data.bad)"},
            {"expression": "!has(object.data.forbidden)", "message": "no forbidden key", "reason": "Forbidden"},
            {"expression": "!has(object.data.named)", "messageExpression": "'key named in ' + object.metadata.name"}
        ]}),
    );
    emu.create(config_map("fine", json!({"ok": "1"}))).expect("a valid object passes");
    let error = refusal(emu.create(config_map("c1", json!({"bad": "1"}))));
    assert_eq!((error.code, error.reason), (422, "Invalid"), "reason Invalid is the default");
    assert_eq!(
        error.message,
        "configmaps \"c1\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression: !has(object.data.bad)"
    );
    let error = refusal(emu.create(config_map("c2", json!({"forbidden": "1"}))));
    assert_eq!((error.code, error.reason), (403, "Forbidden"));
    assert!(error.message.ends_with("denied request: no forbidden key"), "{}", error.message);
    let error = refusal(emu.create(config_map("c3", json!({"named": "1"}))));
    assert!(error.message.ends_with("denied request: key named in c3"), "{}", error.message);
}

#[tokio::test]
async fn policies_that_do_not_compile_or_use_unemulated_features_are_refused_when_written() {
    let emu = emulator().await;
    let base = || json!({"matchConstraints": config_maps(&["CREATE"]), "validations": [{"expression": "true"}]});
    let mut broken = base();
    broken["validations"][0]["expression"] = json!("object.data.(");
    assert_eq!(refusal(emu.create(policy("broken", broken))).code, 422);
    let mut audit_annotations = base();
    audit_annotations["auditAnnotations"] = json!([{"key": "k", "valueExpression": "'v'"}]);
    let error = refusal(emu.create(policy("audit", audit_annotations)));
    assert!(error.message.contains("does not emulate audit annotations"), "{}", error.message);
    let mut unknown = base();
    unknown["somethingNew"] = json!(true);
    assert!(refusal(emu.create(policy("unknown", unknown))).message.contains("spec.somethingNew"));
    let error = refusal(emu.create(binding("audit", json!({"policyName": "p", "validationActions": ["Audit"]}))));
    assert!(error.message.contains("Audit"), "{}", error.message);
    assert_eq!(refusal(emu.create(binding("none", json!({"policyName": "p", "validationActions": []})))).code, 422);
}

#[tokio::test]
async fn match_constraints_select_operations_namespaces_objects_and_exclusions() {
    let emu = emulator().await;
    emu.create(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "guarded", "labels": {"guard": "on"}}}),
    )
    .unwrap();
    install(
        &emu,
        json!({
            "matchConstraints": {
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["configmaps"]}],
                "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["configmaps"], "resourceNames": ["exempt"]}],
                "namespaceSelector": {"matchLabels": {"guard": "on"}},
                "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}
            },
            "validations": [{"expression": "false", "message": "frozen"}]
        }),
    );
    let in_guarded = |name: &str, labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "guarded", "labels": labels}, "data": {"v": "1"}});
    emu.create(in_guarded("a", json!({}))).expect("CREATE is not matched");
    let mut changed = in_guarded("a", json!({}));
    changed["data"]["v"] = json!("2");
    assert!(refusal(emu.create_or_replace(changed.clone())).message.ends_with("frozen"));
    emu.create(in_guarded("exempt", json!({}))).unwrap();
    let mut exempt = in_guarded("exempt", json!({}));
    exempt["data"]["v"] = json!("2");
    emu.create_or_replace(exempt).expect("excluded by name");
    emu.create(in_guarded("skipped", json!({"skip": "yes"}))).unwrap();
    let mut skipped = in_guarded("skipped", json!({"skip": "yes"}));
    skipped["data"]["v"] = json!("2");
    emu.create_or_replace(skipped).expect("the object selector does not match");
    emu.create(config_map("elsewhere", json!({"v": "1"}))).unwrap();
    emu.create_or_replace(config_map("elsewhere", json!({"v": "2"}))).expect("the namespace selector does not match");
}

#[tokio::test]
async fn match_conditions_variables_namespace_object_and_failure_policy() {
    let emu = emulator().await;
    emu.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"max": "2"}}}))
        .unwrap();
    install(
        &emu,
        json!({
            "failurePolicy": "Fail",
            "matchConstraints": config_maps(&["CREATE"]),
            "matchConditions": [{"name": "only-checked", "expression": "has(object.metadata.labels) && 'checked' in object.metadata.labels && object.metadata.labels['checked'] == 'yes'"}],
            "variables": [{"name": "keys", "expression": "size(object.data)"},
                          {"name": "limit", "expression": "int(namespaceObject.metadata.labels['max'])"}],
            "validations": [{"expression": "variables.keys <= variables.limit", "messageExpression": "'at most ' + string(variables.limit) + ' keys'"}]
        }),
    );
    let object = |name: &str, checked: bool, keys: usize| {
        let data: serde_json::Map<String, Value> = (0..keys).map(|i| (format!("k{i}"), json!("v"))).collect();
        let labels = if checked { json!({"checked": "yes"}) } else { json!({}) };
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "team", "labels": labels}, "data": data})
    };
    emu.create(object("unchecked", false, 5)).expect("the match condition is false");
    emu.create(object("small", true, 2)).unwrap();
    assert!(refusal(emu.create(object("big", true, 3))).message.ends_with("at most 2 keys"));
    // An evaluation error under failurePolicy Fail denies; under Ignore it is ignored.
    let broken = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": {"checked": "yes"}}, "data": {"k": "v"}});
    let error = refusal(emu.create(broken("no-namespace-label")));
    assert!(error.message.contains("resulted in error"), "{}", error.message);
    let mut ignoring = emu.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", None, "p").unwrap();
    ignoring["spec"]["failurePolicy"] = json!("Ignore");
    emu.create_or_replace(ignoring).unwrap();
    emu.create(broken("ignored")).expect("failurePolicy Ignore admits on errors");
}

#[tokio::test]
async fn params_come_from_the_binding_and_missing_params_follow_the_not_found_action() {
    let emu = emulator().await;
    emu.create(policy("p", json!({
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["secrets"]}]},
        "validations": [{"expression": "object.metadata.name.startsWith(params.data.prefix)", "messageExpression": "'names start with ' + params.data.prefix"}]
    })))
    .unwrap();
    emu.create(binding(
        "b",
        json!({"policyName": "p", "validationActions": ["Deny"],
        "paramRef": {"name": "rules", "namespace": "default", "parameterNotFoundAction": "Deny"}}),
    ))
    .unwrap();
    let secret =
        |name: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}});
    assert!(refusal(emu.create(secret("s1"))).message.contains("no params found"));
    emu.create(config_map("rules", json!({"prefix": "team-"}))).unwrap();
    emu.create(secret("team-a")).unwrap();
    assert!(refusal(emu.create(secret("other"))).message.ends_with("names start with team-"));
    let mut allow = emu.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", None, "b").unwrap();
    allow["spec"]["paramRef"] = json!({"name": "absent", "namespace": "default", "parameterNotFoundAction": "Allow"});
    emu.create_or_replace(allow).unwrap();
    emu.create(secret("other")).expect("parameterNotFoundAction Allow skips the binding");
}

#[tokio::test]
async fn request_carries_user_operation_and_subresource_and_warn_only_warns() {
    let emu = emulator().await;
    emu.create(policy("p", json!({
        "matchConstraints": {"resourceRules": [{"apiGroups": ["tenantatlas.io"], "apiVersions": ["v1alpha1"], "operations": ["UPDATE"], "resources": ["restoreruns/status"]}]},
        "validations": [{"expression": "request.subResource != 'status' || request.userInfo.username == 'kubernetes-admin'",
                         "messageExpression": "request.operation + ' of ' + request.subResource + ' by ' + request.userInfo.username"}]
    })))
    .unwrap();
    emu.create(binding("b", json!({"policyName": "p", "validationActions": ["Deny"]}))).unwrap();
    let run = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "metadata": {"name": "r", "namespace": "default"},
                     "spec": {"tenantRef": {"name": "t"}, "source": {"configMapRef": {"name": "b"}}}});
    emu.create(run).unwrap();
    let client = emu.client().unwrap();
    let patch = |user: &'static str| {
        axum::http::Request::patch("/apis/tenantatlas.io/v1alpha1/namespaces/default/restoreruns/r/status")
            .header("Content-Type", "application/merge-patch+json")
            .header("Impersonate-User", user)
            .body(br#"{"status":{"phase":"Pending"}}"#.to_vec())
            .unwrap()
    };
    let error = client.request_text(patch("eve")).await.unwrap_err();
    assert!(error.to_string().contains("UPDATE of status by eve"), "{error}");
    // The main resource is not matched by a rule on restoreruns/status.
    let spec_patch = axum::http::Request::patch("/apis/tenantatlas.io/v1alpha1/namespaces/default/restoreruns/r")
        .header("Content-Type", "application/merge-patch+json")
        .header("Impersonate-User", "eve")
        .body(br#"{"spec":{"dryRun":true}}"#.to_vec())
        .unwrap();
    client.request_text(spec_patch).await.expect("the main resource is not matched");
    // Warn: the write goes through with a warning.
    let mut warn = emu.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", None, "b").unwrap();
    warn["spec"]["validationActions"] = json!(["Warn"]);
    emu.create_or_replace(warn).unwrap();
    let response = client.send(patch("eve").map(kube::client::Body::from)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let warning = response.headers().get("warning").map(|w| w.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(warning.contains("UPDATE of status by eve"), "{warning}");
}

#[tokio::test]
async fn the_authorizer_asks_rbac_for_the_requesting_user_and_delete_sees_the_old_object() {
    let emu = emulator_with(EmulatorConfig { rbac: true, ..EmulatorConfig::default() }).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cm-all}\n\
         rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list, create, update, patch, delete]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: unlocker}\n\
         rules: [{apiGroups: [''], resources: [configmaps], verbs: [unlock]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: all}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cm-all}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: unlockers}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: unlocker}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: ursula}]\n",
    )
    .unwrap();
    install(
        &emu,
        json!({"matchConstraints": config_maps(&["DELETE"]), "validations": [{
            "expression": "oldObject.data.locked != 'true' || authorizer.group('').resource('configmaps').namespace(oldObject.metadata.namespace).name(oldObject.metadata.name).check('unlock').allowed()",
            "message": "locked"}]}),
    );
    emu.create(config_map("vault", json!({"locked": "true"}))).unwrap();
    let delete = |user: &'static str| {
        axum::http::Request::delete("/api/v1/namespaces/default/configmaps/vault")
            .header("Impersonate-User", user)
            .body(Vec::new())
            .unwrap()
    };
    let client = emu.client().unwrap();
    let error = client.request_text(delete("mallory")).await.unwrap_err();
    assert!(error.to_string().contains("denied request: locked"), "{error}");
    client.request_text(delete("ursula")).await.expect("ursula may unlock");
}

#[tokio::test]
async fn match_policy_equivalent_covers_other_served_versions_and_exact_does_not() {
    let emu = emulator().await;
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    };
    emu.create(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [version("v1", true), version("v2", false)]}}))
        .unwrap();
    let rules = |match_policy: &str| {
        json!({"matchPolicy": match_policy, "resourceRules": [{"apiGroups": ["example.com"], "apiVersions": ["v1"],
               "operations": ["CREATE"], "resources": ["widgets"]}]})
    };
    install(
        &emu,
        json!({"matchConstraints": rules("Equivalent"), "validations": [{"expression": "false", "message": "no widgets"}]}),
    );
    let widget = |name: &str| json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": name, "namespace": "default"}});
    assert!(refusal(emu.create(widget("w1"))).message.ends_with("no widgets"), "a v2 request matches a v1 rule");
    let mut exact = emu.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", None, "p").unwrap();
    exact["spec"]["matchConstraints"] = rules("Exact");
    emu.create_or_replace(exact).unwrap();
    emu.create(widget("w2")).expect("Exact matches only v1 requests");
}
