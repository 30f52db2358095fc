//! The RBAC authorizer: Roles, ClusterRoles (with aggregation), RoleBindings and
//! ClusterRoleBindings decide whether a user may do a verb, as kube-apiserver's RBAC mode does.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::auth::{UserInfo, service_account_of};
use crate::selector::label_selector_matches;
use crate::store::State;

/// Where RBAC objects are stored.
pub const ROLES: &str = "rbac.authorization.k8s.io/roles";
/// Where ClusterRoles are stored.
pub const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
/// Where RoleBindings are stored.
pub const ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/rolebindings";
/// Where ClusterRoleBindings are stored.
pub const CLUSTER_ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/clusterrolebindings";

/// What a request asks to do (kube-apiserver's `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or a custom verb.
    pub verb: String,
    /// A resource request (else a non-resource path such as `/version`).
    pub resource_request: bool,
    /// API group (`""` for core).
    pub api_group: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: String,
    /// Namespace (`""` for cluster scope).
    pub namespace: String,
    /// Object name (`""` for collections).
    pub name: String,
    /// Path of a non-resource request.
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(verb: &str, api_group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            verb: verb.into(),
            resource_request: true,
            api_group: api_group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Self::default()
        }
    }

    /// The same request on a subresource.
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.into();
        self
    }

    /// From SubjectAccessReview `spec.resourceAttributes` or `spec.nonResourceAttributes`.
    pub fn from_review_spec(spec: &Value) -> Self {
        let text = |v: Option<&Value>, k: &str| {
            v.and_then(|v| v.get(k)).and_then(Value::as_str).unwrap_or_default().to_string()
        };
        if let Some(resource) = spec.get("resourceAttributes") {
            let r = Some(resource);
            Self {
                verb: text(r, "verb"),
                resource_request: true,
                api_group: text(r, "group"),
                resource: text(r, "resource"),
                subresource: text(r, "subresource"),
                namespace: text(r, "namespace"),
                name: text(r, "name"),
                path: String::new(),
            }
        } else {
            let n = spec.get("nonResourceAttributes");
            Self { verb: text(n, "verb"), path: text(n, "path"), ..Self::default() }
        }
    }

    /// The resource as RBAC rules name it: `plural` or `plural/subresource`.
    fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The text kube-apiserver puts after `is forbidden: `.
    pub fn forbidden_message(&self, username: &str) -> String {
        if !self.resource_request {
            return format!("User {username:?} cannot {} path {:?}", self.verb, self.path);
        }
        let resource = self.combined_resource();
        if self.namespace.is_empty() {
            format!(
                "User {username:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                self.verb, self.api_group
            )
        } else {
            format!(
                "User {username:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                self.verb, self.api_group, self.namespace
            )
        }
    }
}

/// An authorization decision with the reason RBAC gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Which binding allowed it (empty when denied).
    pub reason: String,
}

/// The RBAC objects of the store at one moment, owned (the CEL authorizer outlives the store lock).
#[derive(Debug, Clone, Default)]
pub struct RbacSnapshot {
    /// When `false` every request is allowed (kube-apiserver's `AlwaysAllow` mode).
    pub enforced: bool,
    roles: Vec<Value>,
    cluster_roles: Vec<Value>,
    role_bindings: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
}

fn name_of(object: &Value) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

fn namespace_of(object: &Value) -> &str {
    object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default()
}

impl RbacSnapshot {
    /// Copies the RBAC objects out of the store.
    pub fn from_state(st: &State, enforced: bool) -> Self {
        let all = |storage: &str| st.list(storage, None).into_iter().map(|(_, v)| v).collect();
        Self {
            enforced,
            roles: all(ROLES),
            cluster_roles: all(CLUSTER_ROLES),
            role_bindings: all(ROLE_BINDINGS),
            cluster_role_bindings: all(CLUSTER_ROLE_BINDINGS),
        }
    }

    /// Decides a request. `system:masters` is always allowed; with RBAC off, everyone is.
    pub fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Decision {
        if !self.enforced {
            return Decision { allowed: true, reason: "kube-emulator: RBAC is not enforced".into() };
        }
        if user.is_superuser() {
            return Decision { allowed: true, reason: "the user is in system:masters".into() };
        }
        for binding in &self.cluster_role_bindings {
            if binds(binding, user, "") && self.role_rules(binding, "").iter().any(|r| rule_allows(r, attributes)) {
                return allowed_by("ClusterRoleBinding", binding, "");
            }
        }
        let namespace = attributes.namespace.as_str();
        if !namespace.is_empty() {
            for binding in self.role_bindings.iter().filter(|b| namespace_of(b) == namespace) {
                if binds(binding, user, namespace)
                    && self.role_rules(binding, namespace).iter().any(|r| rule_allows(r, attributes))
                {
                    return allowed_by("RoleBinding", binding, namespace);
                }
            }
        }
        Decision { allowed: false, reason: String::new() }
    }

    /// Every rule that applies to the user in a namespace (SelfSubjectRulesReview): its
    /// ClusterRoleBindings' and the namespace's RoleBindings' roles. Everything for superusers.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<Value> {
        if !self.enforced || user.is_superuser() {
            return vec![
                serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                serde_json::json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
            ];
        }
        let mut rules = Vec::new();
        for binding in self.cluster_role_bindings.iter().filter(|b| binds(b, user, "")) {
            rules.extend(self.role_rules(binding, ""));
        }
        for binding in self.role_bindings.iter().filter(|b| !namespace.is_empty() && namespace_of(b) == namespace) {
            if binds(binding, user, namespace) {
                rules.extend(self.role_rules(binding, namespace));
            }
        }
        rules
    }

    /// The rules of the role a binding refers to (a missing role grants nothing).
    fn role_rules(&self, binding: &Value, namespace: &str) -> Vec<Value> {
        let kind = binding.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
        let name = binding.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "ClusterRole" => self.cluster_role_rules(name, &mut BTreeSet::new()),
            "Role" if !namespace.is_empty() => self
                .roles
                .iter()
                .find(|r| name_of(r) == name && namespace_of(r) == namespace)
                .map(rules_of)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// A ClusterRole's rules; with an `aggregationRule`, the union of the rules of every ClusterRole
    /// its selectors match (what the cluster-role aggregation controller writes into it), resolved
    /// transitively (kube's `view` is aggregated into `edit`, `edit` into `admin`).
    pub fn cluster_role_rules(&self, name: &str, visited: &mut BTreeSet<String>) -> Vec<Value> {
        if !visited.insert(name.to_string()) {
            return Vec::new();
        }
        let Some(role) = self.cluster_roles.iter().find(|r| name_of(r) == name) else { return Vec::new() };
        let Some(selectors) = role.pointer("/aggregationRule/clusterRoleSelectors").and_then(Value::as_array) else {
            return rules_of(role);
        };
        let mut rules = Vec::new();
        for other in &self.cluster_roles {
            let other_name = name_of(other);
            if other_name != name && selectors.iter().any(|s| label_selector_matches(s, other).unwrap_or(false)) {
                rules.extend(self.cluster_role_rules(other_name, visited));
            }
        }
        rules
    }
}

fn allowed_by(kind: &str, binding: &Value, namespace: &str) -> Decision {
    let role = binding.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
    let role_kind = binding.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
    let place = if namespace.is_empty() { String::new() } else { format!(" of namespace {namespace:?}") };
    Decision {
        allowed: true,
        reason: format!("RBAC: allowed by {kind} {:?}{place} of {role_kind} {role:?}", name_of(binding)),
    }
}

/// Whether a binding's subjects include the user. ServiceAccount subjects match
/// `system:serviceaccount:NS:NAME`; a RoleBinding's subject namespace defaults to its own.
fn binds(binding: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else { return false };
    subjects.iter().any(|subject| {
        let field = |k: &str| subject.get(k).and_then(Value::as_str).unwrap_or_default();
        match field("kind") {
            "User" => field("name") == user.username,
            "Group" => user.groups.iter().any(|g| g == field("name")),
            "ServiceAccount" => {
                let namespace = if field("namespace").is_empty() { binding_namespace } else { field("namespace") };
                service_account_of(&user.username) == Some((namespace, field("name")))
            }
            _ => false,
        }
    })
}

fn rules_of(role: &Value) -> Vec<Value> {
    role.get("rules").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn strings(rule: &Value, key: &str) -> Vec<String> {
    rule.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// One PolicyRule against a request (kube's `RuleAllows`).
pub fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    let verbs = strings(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || *v == attributes.verb) {
        return false;
    }
    if !attributes.resource_request {
        return strings(rule, "nonResourceURLs").iter().any(|url| {
            url == "*"
                || *url == attributes.path
                || url.strip_suffix('*').is_some_and(|p| attributes.path.starts_with(p))
        });
    }
    let groups = strings(rule, "apiGroups");
    if !groups.iter().any(|g| g == "*" || *g == attributes.api_group) {
        return false;
    }
    let combined = attributes.combined_resource();
    let resource_matches = strings(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attributes.subresource.is_empty() && r.strip_prefix("*/") == Some(attributes.subresource.as_str()))
    });
    if !resource_matches {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attributes.name)
}

/// The bootstrap ClusterRoles every cluster has: `cluster-admin`, and `admin` ⊃ `edit` ⊃ `view`
/// built by aggregation (`view` carries `aggregate-to-edit`, `edit` `aggregate-to-admin`), with
/// `system:aggregate-to-*` base rules cut down to the kinds the emulator serves (a subset of
/// kube's bootstrap policy, written from it by hand).
pub fn bootstrap_cluster_roles() -> Vec<Value> {
    let role = |name: &str, labels: Value, body: Value| {
        let mut role = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels}});
        if let (Some(role), Value::Object(body)) = (role.as_object_mut(), body) {
            role.extend(body);
        }
        role
    };
    let aggregate = |label: &str| serde_json::json!({"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}, "rules": []});
    let defaults = |extra: Option<&str>| {
        let mut labels = serde_json::json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
        if let Some(label) = extra {
            labels[label] = Value::String("true".into());
        }
        labels
    };
    const READ: [&str; 3] = ["get", "list", "watch"];
    const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];
    vec![
        role(
            "cluster-admin",
            defaults(None),
            serde_json::json!({"rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        ),
        role("admin", defaults(None), aggregate("rbac.authorization.k8s.io/aggregate-to-admin")),
        role(
            "edit",
            defaults(Some("rbac.authorization.k8s.io/aggregate-to-admin")),
            aggregate("rbac.authorization.k8s.io/aggregate-to-edit"),
        ),
        role(
            "view",
            defaults(Some("rbac.authorization.k8s.io/aggregate-to-edit")),
            aggregate("rbac.authorization.k8s.io/aggregate-to-view"),
        ),
        role(
            "system:aggregate-to-view",
            defaults(Some("rbac.authorization.k8s.io/aggregate-to-view")),
            serde_json::json!({"rules": [
            {"apiGroups": [""], "resources": ["configmaps", "events", "serviceaccounts", "namespaces", "namespaces/status"], "verbs": READ},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": READ}]}),
        ),
        role(
            "system:aggregate-to-edit",
            defaults(Some("rbac.authorization.k8s.io/aggregate-to-edit")),
            serde_json::json!({"rules": [
            {"apiGroups": [""], "resources": ["configmaps", "secrets", "serviceaccounts"], "verbs": WRITE},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": READ},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]}),
        ),
        role(
            "system:aggregate-to-admin",
            defaults(Some("rbac.authorization.k8s.io/aggregate-to-admin")),
            serde_json::json!({"rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": WRITE.iter().chain(READ.iter()).collect::<Vec<_>>()}]}),
        ),
    ]
}
