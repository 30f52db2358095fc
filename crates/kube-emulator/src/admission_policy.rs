//! ValidatingAdmissionPolicy and its Binding (admissionregistration.k8s.io/v1): checked when they
//! are written (unsupported features are refused, never ignored) and evaluated on every write.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::error::{ApiError, FieldCause};
use crate::rbac::{Attributes, RbacSnapshot};
use crate::resource::{Registry, ResourceType};
use crate::selector::label_selector_matches;
use crate::store::State;
use crate::vap_cel::{Bindings, Compiled, Environment, compile};

/// Where policies are stored.
pub const POLICIES: &str = "admissionregistration.k8s.io/validatingadmissionpolicies";
/// Where bindings are stored.
pub const BINDINGS: &str = "admissionregistration.k8s.io/validatingadmissionpolicybindings";

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// POST, or an apply that creates.
    Create,
    /// PUT or PATCH.
    Update,
    /// DELETE.
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// One write as admission sees it.
#[derive(Debug, Clone)]
pub struct AdmissionRequest<'a> {
    /// The operation.
    pub operation: Operation,
    /// The resource written.
    pub resource: &'a ResourceType,
    /// `""` or `status`.
    pub subresource: &'a str,
    /// Namespace (`""` for cluster scope).
    pub namespace: &'a str,
    /// Object name.
    pub name: &'a str,
    /// The object after the write (`None` on DELETE).
    pub object: Option<&'a Value>,
    /// The object before the write (`None` on CREATE).
    pub old_object: Option<&'a Value>,
    /// Who writes.
    pub user: &'a UserInfo,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl AdmissionRequest<'_> {
    fn request_json(&self) -> Value {
        let r = self.resource;
        json!({
            "kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "resource": {"group": r.group, "version": r.version, "resource": r.plural},
            "subResource": self.subresource,
            "requestKind": {"group": r.group, "version": r.version, "kind": r.kind},
            "requestResource": {"group": r.group, "version": r.version, "resource": r.plural},
            "requestSubResource": self.subresource,
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation.as_str(),
            "userInfo": {"username": self.user.username, "uid": self.user.uid, "groups": self.user.groups, "extra": {}},
            "dryRun": self.dry_run,
        })
    }

    fn as_attributes(&self) -> Attributes {
        Attributes::resource("", &self.resource.group, &self.resource.plural, self.namespace, self.name)
            .with_subresource(self.subresource)
    }
}

fn cause(field: &str, message: impl Into<String>) -> FieldCause {
    let message = message.into();
    FieldCause {
        reason: "FieldValueInvalid",
        message: format!("{field}: Invalid value: {message}"),
        field: field.into(),
    }
}

fn unsupported(field: &str, what: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueNotSupported",
        message: format!(
            "{field}: Unsupported value: kube-emulator does not emulate {what}; refusing instead of ignoring it"
        ),
        field: field.into(),
    }
}

const POLICY_SPEC_FIELDS: &[&str] = &[
    "paramKind",
    "matchConstraints",
    "validations",
    "failurePolicy",
    "matchConditions",
    "variables",
    "auditAnnotations",
];
const MATCH_FIELDS: &[&str] =
    &["namespaceSelector", "objectSelector", "resourceRules", "excludeResourceRules", "matchPolicy"];

/// Checks a ValidatingAdmissionPolicy before it is stored: expressions compile, every field is one
/// the emulator evaluates (auditAnnotations and unknown fields are refused).
pub fn check_policy(policy: &Value) -> Result<(), Vec<FieldCause>> {
    let mut causes = Vec::new();
    let spec = policy.get("spec").cloned().unwrap_or(Value::Null);
    for key in spec.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !POLICY_SPEC_FIELDS.contains(&key.as_str()) {
            causes.push(unsupported(&format!("spec.{key}"), "this field"));
        }
    }
    if spec.get("auditAnnotations").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        causes.push(unsupported("spec.auditAnnotations", "audit annotations (there is no audit log)"));
    }
    match spec.get("failurePolicy").and_then(Value::as_str) {
        None | Some("Fail") | Some("Ignore") => {}
        Some(other) => causes.push(cause("spec.failurePolicy", format!("{other:?}: must be Fail or Ignore"))),
    }
    match spec.get("matchConstraints") {
        Some(m) if m.get("resourceRules").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) => {
            check_match_resources(m, "spec.matchConstraints", &mut causes)
        }
        _ => causes.push(FieldCause {
            reason: "FieldValueRequired",
            message: "spec.matchConstraints.resourceRules: Required value".into(),
            field: "spec.matchConstraints.resourceRules".into(),
        }),
    }
    let validations = spec.get("validations").and_then(Value::as_array).cloned().unwrap_or_default();
    if validations.is_empty() {
        causes.push(FieldCause {
            reason: "FieldValueRequired",
            message: "spec.validations: Required value: validations or auditAnnotations must contain at least one item"
                .into(),
            field: "spec.validations".into(),
        });
    }
    for (i, validation) in validations.iter().enumerate() {
        let at = format!("spec.validations[{i}]");
        check_expression(validation.get("expression"), &format!("{at}.expression"), true, &mut causes);
        check_expression(validation.get("messageExpression"), &format!("{at}.messageExpression"), false, &mut causes);
        match validation.get("reason").and_then(Value::as_str) {
            None | Some("Unauthorized" | "Forbidden" | "Invalid" | "RequestEntityTooLarge") => {}
            Some(other) => causes.push(unsupported(&format!("{at}.reason"), &format!("the reason {other:?}"))),
        }
    }
    for (list, what) in [("matchConditions", "name"), ("variables", "name")] {
        for (i, item) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let at = format!("spec.{list}[{i}]");
            if item.get(what).and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(cause(&format!("{at}.name"), "a name is required"));
            }
            check_expression(item.get("expression"), &format!("{at}.expression"), true, &mut causes);
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(causes) }
}

fn check_expression(expression: Option<&Value>, at: &str, required: bool, causes: &mut Vec<FieldCause>) {
    match expression.and_then(Value::as_str) {
        None if required => causes.push(FieldCause {
            reason: "FieldValueRequired",
            message: format!("{at}: Required value"),
            field: at.into(),
        }),
        None => {}
        Some(source) => {
            if let Err(error) = compile(source) {
                causes.push(cause(at, format!("{source:?}: compilation failed: {error}")));
            }
        }
    }
}

fn check_match_resources(m: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    for key in m.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !MATCH_FIELDS.contains(&key.as_str()) {
            causes.push(unsupported(&format!("{at}.{key}"), "this field"));
        }
    }
    match m.get("matchPolicy").and_then(Value::as_str) {
        None | Some("Exact" | "Equivalent") => {}
        Some(other) => {
            causes.push(cause(&format!("{at}.matchPolicy"), format!("{other:?}: must be Exact or Equivalent")))
        }
    }
    for selector in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = m.get(selector)
            && let Err(e) = label_selector_matches(s, &json!({}))
        {
            causes.push(cause(&format!("{at}.{selector}"), e));
        }
    }
    for list in ["resourceRules", "excludeResourceRules"] {
        for (i, rule) in m.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for operation in strings(rule, "operations") {
                if !matches!(operation.as_str(), "*" | "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
                    causes.push(cause(&format!("{at}.{list}[{i}].operations"), format!("{operation:?}")));
                }
            }
            match rule.get("scope").and_then(Value::as_str) {
                None | Some("*" | "Cluster" | "Namespaced") => {}
                Some(other) => causes.push(cause(&format!("{at}.{list}[{i}].scope"), format!("{other:?}"))),
            }
        }
    }
}

/// Checks a ValidatingAdmissionPolicyBinding before it is stored (`Audit` is refused: there is no
/// audit log to write to).
pub fn check_binding(binding: &Value) -> Result<(), Vec<FieldCause>> {
    let mut causes = Vec::new();
    let spec = binding.get("spec").cloned().unwrap_or(Value::Null);
    for key in spec.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !["policyName", "paramRef", "matchResources", "validationActions"].contains(&key.as_str()) {
            causes.push(unsupported(&format!("spec.{key}"), "this field"));
        }
    }
    if spec.get("policyName").and_then(Value::as_str).is_none_or(str::is_empty) {
        causes.push(FieldCause {
            reason: "FieldValueRequired",
            message: "spec.policyName: Required value".into(),
            field: "spec.policyName".into(),
        });
    }
    let actions = strings(&spec, "validationActions");
    if actions.is_empty() {
        causes.push(FieldCause {
            reason: "FieldValueRequired",
            message: "spec.validationActions: Required value".into(),
            field: "spec.validationActions".into(),
        });
    }
    for action in &actions {
        match action.as_str() {
            "Deny" | "Warn" => {}
            "Audit" => causes.push(unsupported("spec.validationActions", "the Audit action (there is no audit log)")),
            other => causes.push(cause("spec.validationActions", format!("{other:?}"))),
        }
    }
    if actions.iter().any(|a| a == "Deny") && actions.iter().any(|a| a == "Warn") {
        causes.push(cause("spec.validationActions", "Deny and Warn may not be used together"));
    }
    if let Some(m) = spec.get("matchResources") {
        check_match_resources(m, "spec.matchResources", &mut causes);
    }
    if let Some(param_ref) = spec.get("paramRef") {
        if param_ref.get("name").is_some() == param_ref.get("selector").is_some() {
            causes.push(cause("spec.paramRef", "exactly one of name or selector is required"));
        }
        match param_ref.get("parameterNotFoundAction").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => causes.push(cause("spec.paramRef.parameterNotFoundAction", "must be Allow or Deny")),
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(causes) }
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

fn one_of(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// Whether a rule (`NamedRuleWithOperations`) covers the request. With `matchPolicy: Equivalent`
/// (the default) a rule naming another served version of the same resource matches too (the
/// emulator's versions of one resource differ only in `apiVersion`).
fn rule_matches(rule: &Value, request: &AdmissionRequest<'_>, ctx: &MatchContext<'_>) -> bool {
    let r = request.resource;
    let resource =
        if request.subresource.is_empty() { r.plural.clone() } else { format!("{}/{}", r.plural, request.subresource) };
    let resources = strings(rule, "resources");
    let resource_matches = resources.iter().any(|candidate| {
        candidate == "*/*"
            || *candidate == resource
            || (candidate == "*" && request.subresource.is_empty())
            || candidate.strip_prefix("*/").is_some_and(|sub| sub == request.subresource)
            || candidate.strip_suffix("/*").is_some_and(|plural| plural == r.plural && !request.subresource.is_empty())
    });
    let scope_matches = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !r.namespaced,
        "Namespaced" => r.namespaced,
        _ => true,
    };
    let names = strings(rule, "resourceNames");
    one_of(&strings(rule, "operations"), request.operation.as_str())
        && one_of(&strings(rule, "apiGroups"), &r.group)
        && version_matches(&strings(rule, "apiVersions"), &r.version, ctx)
        && resource_matches
        && scope_matches
        && (names.is_empty() || names.iter().any(|n| n == request.name))
}

fn version_matches(versions: &[String], version: &str, ctx: &MatchContext<'_>) -> bool {
    one_of(versions, version) || (ctx.equivalent && ctx.served_versions.iter().any(|v| versions.contains(v)))
}

/// What matching needs besides the request: the other served versions of the resource.
struct MatchContext<'a> {
    served_versions: &'a [String],
    equivalent: bool,
    namespace_object: &'a Value,
}

/// Whether `matchConstraints` / `matchResources` select the request.
fn resources_match(m: &Value, request: &AdmissionRequest<'_>, ctx: &MatchContext<'_>) -> bool {
    let ctx = &MatchContext { equivalent: m.get("matchPolicy").and_then(Value::as_str) != Some("Exact"), ..*ctx };
    let namespace_object = ctx.namespace_object;
    let rules = m.get("resourceRules").and_then(Value::as_array).cloned().unwrap_or_default();
    let included = rules.iter().any(|rule| rule_matches(rule, request, ctx));
    let excluded = m
        .get("excludeResourceRules")
        .and_then(Value::as_array)
        .is_some_and(|rules| rules.iter().any(|rule| rule_matches(rule, request, ctx)));
    let object = request.object.or(request.old_object).cloned().unwrap_or(Value::Null);
    let namespace_ok = match m.get("namespaceSelector") {
        None => true,
        Some(selector) if !request.resource.namespaced => {
            // Cluster-scoped objects match any namespaceSelector, except Namespaces themselves.
            request.resource.kind != "Namespace" || label_selector_matches(selector, &object).unwrap_or(false)
        }
        Some(selector) => label_selector_matches(selector, namespace_object).unwrap_or(false),
    };
    let object_ok = match m.get("objectSelector") {
        None => true,
        Some(selector) => [request.object, request.old_object]
            .into_iter()
            .flatten()
            .any(|o| label_selector_matches(selector, o).unwrap_or(false)),
    };
    included && !excluded && namespace_ok && object_ok
}

/// What a policy decided for one request.
#[derive(Debug)]
enum Verdict {
    Pass,
    Deny { message: String, reason: String },
}

/// Whether any binding exists (admission has nothing to do otherwise).
pub fn any_binding(st: &State) -> bool {
    !st.list(BINDINGS, None).is_empty()
}

/// What admission answers: warnings to pass on, or the refusal.
pub type Outcome = Result<Vec<String>, ApiError>;

/// Evaluates every binding whose policy matches the request (kube-apiserver's validating
/// admission policy plugin). The first denial refuses the write.
pub fn admit(st: &State, registry: &Registry, rbac: Arc<RbacSnapshot>, request: &AdmissionRequest<'_>) -> Outcome {
    let mut warnings = Vec::new();
    let namespace_object = if request.namespace.is_empty() {
        Value::Null
    } else {
        st.get("namespaces", "", request.namespace).cloned().unwrap_or(Value::Null)
    };
    let r = request.resource;
    let served_versions: Vec<String> = registry
        .all()
        .iter()
        .filter(|t| t.group == r.group && t.plural == r.plural)
        .map(|t| t.version.clone())
        .collect();
    let ctx = MatchContext { served_versions: &served_versions, equivalent: true, namespace_object: &namespace_object };
    for (_, binding) in st.list(BINDINGS, None) {
        let policy_name = binding.pointer("/spec/policyName").and_then(Value::as_str).unwrap_or_default();
        let Some(policy) = st.get(POLICIES, "", policy_name) else { continue };
        let spec = &policy["spec"];
        let binding_selects = match binding.pointer("/spec/matchResources") {
            None => true,
            Some(m) if m.get("resourceRules").is_some() => resources_match(m, request, &ctx),
            Some(m) => selectors_match(m, request, &ctx),
        };
        if !binding_selects || !resources_match(&spec["matchConstraints"], request, &ctx) {
            continue;
        }
        let fail = spec.get("failurePolicy").and_then(Value::as_str) != Some("Ignore");
        let verdicts = match params_for(st, registry, spec, &binding, request) {
            Ok(ParamSet::Skip) => continue,
            Ok(ParamSet::Deny(message)) => vec![Verdict::Deny { message, reason: "Invalid".into() }],
            Ok(ParamSet::Each(params)) => {
                params.into_iter().map(|p| evaluate(spec, request, &namespace_object, p, rbac.clone(), fail)).collect()
            }
            Err(message) if fail => vec![Verdict::Deny { message, reason: "Invalid".into() }],
            Err(_) => continue,
        };
        let policy_label = format!(
            "ValidatingAdmissionPolicy '{policy_name}' with binding '{}' denied request",
            binding.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
        );
        let actions = strings(&binding["spec"], "validationActions");
        for verdict in verdicts {
            let Verdict::Deny { message, reason } = verdict else { continue };
            let text = format!("{policy_label}: {message}");
            if actions.iter().any(|a| a == "Deny") {
                return Err(denial(request, &text, &reason));
            }
            warnings.push(text);
        }
    }
    Ok(warnings)
}

/// A binding's `matchResources` without rules narrows by its selectors only.
fn selectors_match(m: &Value, request: &AdmissionRequest<'_>, ctx: &MatchContext<'_>) -> bool {
    let mut with_all_rules = m.clone();
    with_all_rules["resourceRules"] =
        json!([{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*", "*/*"]}]);
    resources_match(&with_all_rules, request, ctx)
}

/// The API server's answer: `admission.NewForbidden` with the validation's reason and its code.
fn denial(request: &AdmissionRequest<'_>, text: &str, reason: &str) -> ApiError {
    let r = request.resource;
    let qualified = if r.group.is_empty() { r.plural.clone() } else { format!("{}.{}", r.plural, r.group) };
    let message = if request.name.is_empty() {
        format!("{qualified} is forbidden: {text}")
    } else {
        format!("{qualified} {:?} is forbidden: {text}", request.name)
    };
    let (code, reason) = match reason {
        "Unauthorized" => (401, "Unauthorized"),
        "Forbidden" => (403, "Forbidden"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    };
    ApiError {
        code,
        reason,
        message,
        details: Some(json!({"name": request.name, "group": r.group, "kind": r.plural, "causes": [{"message": text}]})),
    }
}

enum ParamSet {
    /// No params found and `parameterNotFoundAction: Allow`: the binding does not apply.
    Skip,
    /// No params found and `parameterNotFoundAction: Deny`.
    Deny(String),
    /// Evaluate once per param (`None` when the policy has no `paramKind`).
    Each(Vec<Option<Value>>),
}

/// The params a binding selects for this request (`paramRef` by name or selector).
fn params_for(
    st: &State,
    registry: &Registry,
    spec: &Value,
    binding: &Value,
    request: &AdmissionRequest<'_>,
) -> Result<ParamSet, String> {
    let Some(param_kind) = spec.get("paramKind") else { return Ok(ParamSet::Each(vec![None])) };
    let api_version = param_kind.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = param_kind.get("kind").and_then(Value::as_str).unwrap_or_default();
    let Some(param_ref) = binding.pointer("/spec/paramRef") else {
        return Err("policy has a paramKind but the binding has no paramRef".into());
    };
    let Some(resource) = registry.find_kind(api_version, kind) else {
        return Err(format!("paramKind {api_version} {kind} is not served"));
    };
    let namespace = match param_ref.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ if resource.namespaced && request.namespace.is_empty() => {
            return Err("a namespaced paramKind needs paramRef.namespace for cluster-scoped requests".into());
        }
        _ if resource.namespaced => request.namespace.to_string(),
        _ => String::new(),
    };
    let found: Vec<Value> = match param_ref.get("name").and_then(Value::as_str) {
        Some(name) => st.get(&resource.storage, &namespace, name).cloned().into_iter().collect(),
        None => {
            let selector = param_ref.get("selector").cloned().unwrap_or_else(|| json!({}));
            let scope = resource.namespaced.then_some(namespace.as_str());
            st.list(&resource.storage, scope)
                .into_iter()
                .map(|(_, v)| v)
                .filter(|o| label_selector_matches(&selector, o).unwrap_or(false))
                .collect()
        }
    };
    if !found.is_empty() {
        return Ok(ParamSet::Each(found.into_iter().map(|p| Some(crate::meta::to_served(&resource, &p))).collect()));
    }
    Ok(match param_ref.get("parameterNotFoundAction").and_then(Value::as_str) {
        Some("Allow") => ParamSet::Skip,
        _ => ParamSet::Deny(
            "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
                .into(),
        ),
    })
}

fn compiled(source: &Value) -> Result<Compiled, String> {
    compile(source.as_str().unwrap_or_default())
}

/// One policy against one request and one param.
fn evaluate(
    spec: &Value,
    request: &AdmissionRequest<'_>,
    namespace_object: &Value,
    params: Option<Value>,
    rbac: Arc<RbacSnapshot>,
    fail: bool,
) -> Verdict {
    let bindings = Bindings {
        object: request.object.cloned().unwrap_or(Value::Null),
        old_object: request.old_object.cloned().unwrap_or(Value::Null),
        request: request.request_json(),
        params: spec.get("paramKind").map(|_| params.unwrap_or(Value::Null)),
        namespace_object: namespace_object.clone(),
    };
    let mut env = Environment::new(&bindings, request.user, rbac, request.as_attributes());
    let error = |message: String| {
        if fail { Verdict::Deny { message, reason: "Invalid".into() } } else { Verdict::Pass }
    };
    for condition in spec.get("matchConditions").and_then(Value::as_array).into_iter().flatten() {
        let name = condition.get("name").and_then(Value::as_str).unwrap_or_default();
        match compiled(&condition["expression"]).and_then(|c| env.evaluate_bool(&c)) {
            Ok(true) => {}
            Ok(false) => return Verdict::Pass,
            Err(e) => return error(format!("failed to evaluate match condition {name:?}: {e}")),
        }
    }
    for variable in spec.get("variables").and_then(Value::as_array).into_iter().flatten() {
        let name = variable.get("name").and_then(Value::as_str).unwrap_or_default();
        match compiled(&variable["expression"]) {
            Ok(c) => env.define_variable(name, &c),
            Err(e) => return error(format!("variable {name:?} does not compile: {e}")),
        }
    }
    for validation in spec.get("validations").and_then(Value::as_array).into_iter().flatten() {
        let source = validation.get("expression").and_then(Value::as_str).unwrap_or_default();
        let reason = validation.get("reason").and_then(Value::as_str).unwrap_or("Invalid").to_string();
        match compiled(&validation["expression"]).and_then(|c| env.evaluate_bool(&c)) {
            Ok(true) => {}
            Ok(false) => return Verdict::Deny { message: failure_message(&env, validation, source), reason },
            Err(e) if fail => {
                return Verdict::Deny { message: format!("expression '{source}' resulted in error: {e}"), reason };
            }
            Err(_) => {}
        }
    }
    Verdict::Pass
}

/// `messageExpression` if it gives a non-empty string, else `message`, else `failed expression: …`.
fn failure_message(env: &Environment, validation: &Value, source: &str) -> String {
    if let Some(expression) = validation.get("messageExpression")
        && let Ok(compiled) = compiled(expression)
        && let Ok(cel::Value::String(text)) = env.evaluate(&compiled)
        && !text.trim().is_empty()
        && !text.contains('\n')
    {
        return text.to_string();
    }
    match validation.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => message.to_string(),
        _ => format!("failed expression: {source}"),
    }
}
