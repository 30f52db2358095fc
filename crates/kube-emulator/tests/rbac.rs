//! RBAC as kube-apiserver enforces it, over HTTP with impersonation: bindings by namespace,
//! ClusterRole aggregation, custom verbs and subresources, service accounts, access reviews.

mod support;

use kube_emulator::{EmulatorConfig, EmulatorHandle};
use serde_json::{Value, json};
use support::{emulator, emulator_with};

/// A client acting as `user` in `groups` (Impersonate-User / Impersonate-Group, as `kubectl --as`).
fn client_as(emu: &EmulatorHandle, user: &str, groups: &[&str]) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = kube::Config::new(emu.base_url().parse().unwrap());
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups = (!groups.is_empty()).then(|| groups.iter().map(|g| g.to_string()).collect());
    kube::Client::try_from(config).unwrap()
}

/// Sends a request; returns (HTTP code, body as JSON).
async fn send(client: &kube::Client, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    let response = client.send(request.map(kube::client::Body::from)).await.unwrap();
    let code = response.status().as_u16();
    let bytes = axum::body::to_bytes(axum::body::Body::new(response.into_body()), usize::MAX).await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn rbac_emulator() -> EmulatorConfig {
    EmulatorConfig { rbac: true, ..EmulatorConfig::default() }
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

async fn can_i(client: &kube::Client, attributes: Value) -> bool {
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes}});
    let (code, answer) =
        send(client, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", Some(review)).await;
    assert_eq!(code, 201, "{answer}");
    answer["status"]["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn rbac_is_off_by_default_so_older_tests_act_as_anyone() {
    let emu = emulator().await;
    let client = client_as(&emu, "nobody", &[]);
    let (code, body) = send(&client, "POST", "/api/v1/namespaces/default/configmaps", Some(config_map("a"))).await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn a_role_binding_grants_its_role_only_in_its_namespace_with_the_api_servers_message() {
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: cm-reader, namespace: default}\n\
         rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: alice-reads, namespace: default}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]\n",
    )
    .unwrap();
    emu.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}}))
        .unwrap();
    emu.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}))
        .unwrap();
    let alice = client_as(&emu, "alice", &[]);
    assert_eq!(send(&alice, "GET", "/api/v1/namespaces/default/configmaps/x", None).await.0, 200);
    let (code, status) = send(&alice, "GET", "/api/v1/namespaces/kube-system/configmaps/x", None).await;
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        "configmaps \"x\" is forbidden: User \"alice\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"kube-system\""
    );
    let (code, status) = send(&alice, "POST", "/api/v1/namespaces/default/configmaps", Some(config_map("y"))).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    // The admin (no impersonation, system:masters) may do anything.
    let admin = emu.client().unwrap();
    assert_eq!(send(&admin, "POST", "/api/v1/namespaces/default/configmaps", Some(config_map("y"))).await.0, 201);
}

#[tokio::test]
async fn cluster_role_aggregation_collects_the_rules_of_labelled_roles_transitively() {
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: view, labels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true'}}\n\
         aggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}]}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: edit}\n\
         aggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true'}}]}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: runs-viewer, labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}\n\
         rules: [{apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [get]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: editors}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: editors}]\n",
    )
    .unwrap();
    let editor = client_as(&emu, "erin", &["editors"]);
    let get_run = json!({"group": "tenantatlas.io", "resource": "restoreruns", "verb": "get", "namespace": "default"});
    assert!(can_i(&editor, get_run.clone()).await, "view's aggregated rule reaches edit");
    // Without the label the rule is no longer aggregated.
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: runs-viewer}\n\
         rules: [{apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [get]}]\n",
    )
    .unwrap();
    assert!(!can_i(&editor, get_run).await);
}

#[tokio::test]
async fn custom_verbs_subresources_and_resource_names_are_matched_like_rbac() {
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: approver}\n\
         rules:\n- {apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [approve, patch]}\n\
         - {apiGroups: [tenantatlas.io], resources: ['*/status'], verbs: [get], resourceNames: [only-this]}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: approvers}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: approver}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: approvers}]\n",
    )
    .unwrap();
    let bob = client_as(&emu, "bob", &["approvers"]);
    let check = |verb: &str, subresource: &str, name: &str| {
        json!({"group": "tenantatlas.io", "resource": "restoreruns", "subresource": subresource, "verb": verb,
               "namespace": "default", "name": name})
    };
    assert!(can_i(&bob, check("approve", "", "run-1")).await);
    assert!(!can_i(&bob, check("delete", "", "run-1")).await);
    assert!(!can_i(&bob, check("patch", "status", "run-1")).await, "restoreruns does not cover restoreruns/status");
    assert!(can_i(&bob, check("get", "status", "only-this")).await, "*/status matches any resource's status");
    assert!(!can_i(&bob, check("get", "status", "another")).await, "resourceNames restrict");
    let (code, status) = send(
        &bob,
        "PATCH",
        "/apis/tenantatlas.io/v1alpha1/namespaces/default/restoreruns/run-1/status",
        Some(json!({"status": {}})),
    )
    .await;
    assert_eq!(code, 403);
    assert!(status["message"].as_str().unwrap().contains("cannot patch resource \"restoreruns/status\""), "{status}");
}

#[tokio::test]
async fn service_accounts_get_their_groups_and_match_service_account_subjects() {
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: cm-writer, namespace: default}\n\
         rules: [{apiGroups: [''], resources: [configmaps], verbs: [create]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: robot-writes, namespace: default}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-writer}\n\
         subjects: [{kind: ServiceAccount, name: robot}]\n",
    )
    .unwrap();
    let robot = client_as(&emu, "system:serviceaccount:default:robot", &[]);
    let (code, review) =
        send(&robot, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", Some(json!({}))).await;
    assert_eq!(code, 201);
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"])
    );
    assert_eq!(send(&robot, "POST", "/api/v1/namespaces/default/configmaps", Some(config_map("r"))).await.0, 201);
    let other = client_as(&emu, "system:serviceaccount:kube-system:robot", &[]);
    assert_eq!(send(&other, "POST", "/api/v1/namespaces/default/configmaps", Some(config_map("s"))).await.0, 403);
}

#[tokio::test]
async fn subject_access_reviews_need_create_on_them_and_answer_for_the_spec_user() {
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: approver}\n\
         rules: [{apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [approve]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: approvers}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: approver}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: approvers}]\n",
    )
    .unwrap();
    let review = |groups: Value| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": "bob", "groups": groups,
            "resourceAttributes": {"group": "tenantatlas.io", "resource": "restoreruns", "verb": "approve", "namespace": "ns"}}})
    };
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let nobody = client_as(&emu, "nobody", &[]);
    assert_eq!(send(&nobody, "POST", path, Some(review(json!([])))).await.0, 403);
    let admin = emu.client().unwrap();
    let (code, answer) = send(&admin, "POST", path, Some(review(json!(["approvers"])))).await;
    assert_eq!((code, answer["status"]["allowed"].clone()), (201, json!(true)), "{answer}");
    let (_, answer) = send(&admin, "POST", path, Some(review(json!([])))).await;
    assert_eq!(answer["status"]["allowed"], json!(false));
}

#[tokio::test]
async fn impersonating_groups_without_a_user_is_a_bad_request() {
    let emu = emulator().await;
    let request = axum::http::Request::get("/api/v1/namespaces/default/configmaps")
        .header("Impersonate-Group", "system:masters")
        .body(Vec::new())
        .unwrap();
    let client = emu.client().unwrap();
    let response = client.send(request.map(kube::client::Body::from)).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn kubectl_auth_can_i_as_another_user_answers_from_rbac() {
    if !support::kubectl_available("kubectl_auth_can_i_as_another_user_answers_from_rbac") {
        return;
    }
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: approver}\n\
         rules: [{apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [approve]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: approvers}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: approver}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: approvers}]\n",
    )
    .unwrap();
    let can_i = |who: &'static [&'static str]| {
        let emu = &emu;
        async move {
            let mut args = vec!["auth", "can-i", "approve", "restoreruns.tenantatlas.io"];
            args.extend_from_slice(who);
            let out = support::kubectl(emu, &args).await;
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    assert_eq!(can_i(&["--as", "bob", "--as-group", "approvers"]).await, "yes");
    assert_eq!(can_i(&["--as", "mallory"]).await, "no");
    assert_eq!(can_i(&[]).await, "yes", "the admin may");
    let listed = support::kubectl(&emu, &["auth", "can-i", "--list", "--as", "bob", "--as-group", "approvers"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("restoreruns.tenantatlas.io") && listed.contains("[approve]"), "{listed}");
}

#[tokio::test]
async fn the_bootstrap_edit_role_aggregates_roles_labelled_for_it_and_view() {
    let emu = emulator_with(rbac_emulator()).await;
    emu.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: runs-editor, labels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true'}}\n\
         rules: [{apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [create, update, patch]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: runs-viewer, labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}\n\
         rules: [{apiGroups: [tenantatlas.io], resources: [restoreruns], verbs: [get, list, watch]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: team-edits, namespace: default}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: team}]\n",
    )
    .unwrap();
    let member = client_as(&emu, "tom", &["team"]);
    let run = |verb: &str, namespace: &str| json!({"group": "tenantatlas.io", "resource": "restoreruns", "verb": verb, "namespace": namespace});
    assert!(can_i(&member, run("create", "default")).await, "edit aggregates the editor role");
    assert!(can_i(&member, run("get", "default")).await, "edit aggregates view, which aggregates the viewer role");
    assert!(!can_i(&member, run("approve", "default")).await);
    assert!(!can_i(&member, run("create", "kube-system")).await, "a RoleBinding grants in its namespace only");
    let configmaps = json!({"resource": "configmaps", "verb": "create", "namespace": "default"});
    assert!(can_i(&member, configmaps).await, "edit's own base rules");
}
