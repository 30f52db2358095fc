//! The CEL environment of ValidatingAdmissionPolicy: `object`, `oldObject`, `request`, `params`,
//! `namespaceObject`, `variables` and the `authorizer` library, on the `cel` + `kube-cel` crates.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map, Opaque};
use cel::{Context, ExecutionError, Program, Value as Cel};
use kube_cel::KubeCelExt;
use serde_json::Value;

use crate::auth::UserInfo;
use crate::rbac::{Attributes, RbacSnapshot};

/// JSON as CEL sees it: integers are `int`, other numbers `double`, objects maps.
pub fn json_to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(fields) => cel_map(fields.iter().map(|(k, v)| (k.clone(), json_to_cel(v)))),
    }
}

fn cel_map(entries: impl IntoIterator<Item = (String, Cel)>) -> Cel {
    let map: HashMap<Key, Cel> = entries.into_iter().map(|(k, v)| (Key::String(Arc::new(k)), v)).collect();
    Cel::Map(Map { map: Arc::new(map) })
}

fn cel_string(text: &str) -> Cel {
    Cel::String(Arc::new(text.to_string()))
}

/// A compiled expression and its source text.
pub struct Compiled {
    /// The CEL source.
    pub source: String,
    program: Program,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("source", &self.source).finish()
    }
}

/// Parses an expression; the error text is what the API server would list as the compile error.
pub fn compile(source: &str) -> Result<Compiled, String> {
    Program::compile(source).map(|program| Compiled { source: source.to_string(), program }).map_err(|e| e.to_string())
}

/// The values an admission request binds (JSON, converted once per evaluation).
#[derive(Debug, Clone)]
pub struct Bindings {
    /// `object` (null on DELETE).
    pub object: Value,
    /// `oldObject` (null on CREATE).
    pub old_object: Value,
    /// `request`.
    pub request: Value,
    /// `params`, when the policy has a `paramKind` (may be null).
    pub params: Option<Value>,
    /// `namespaceObject` (null for cluster-scoped objects).
    pub namespace_object: Value,
}

/// An evaluation context with the bindings, the `authorizer` of the requesting user and the
/// `variables` evaluated so far.
pub struct Environment {
    context: Context<'static>,
    variables: HashMap<String, Result<Cel, String>>,
}

impl Environment {
    /// Binds the request's values and an authorizer that decides with `rbac` for `user`.
    pub fn new(bindings: &Bindings, user: &UserInfo, rbac: Arc<RbacSnapshot>, request_resource: Attributes) -> Self {
        let mut context = Context::default().with_all();
        context.add_variable_from_value("object", json_to_cel(&bindings.object));
        context.add_variable_from_value("oldObject", json_to_cel(&bindings.old_object));
        context.add_variable_from_value("request", json_to_cel(&bindings.request));
        context.add_variable_from_value("namespaceObject", json_to_cel(&bindings.namespace_object));
        if let Some(params) = &bindings.params {
            context.add_variable_from_value("params", json_to_cel(params));
        }
        context.add_variable_from_value("authorizer", authorizer_value(user.clone(), &request_resource));
        register_authorizer(&mut context, rbac);
        context.add_variable_from_value("variables", cel_map(Vec::new()));
        Self { context, variables: HashMap::new() }
    }

    /// Evaluates a variable and makes it visible as `variables.NAME` to later expressions. An
    /// error is kept and surfaces in every expression that uses the variable (as in kube-apiserver).
    pub fn define_variable(&mut self, name: &str, expression: &Compiled) {
        let value = self.evaluate(expression);
        self.variables.insert(name.to_string(), value);
        let defined = self.variables.iter().filter_map(|(k, v)| v.as_ref().ok().map(|v| (k.clone(), v.clone())));
        self.context.add_variable_from_value("variables", cel_map(defined.collect::<Vec<_>>()));
    }

    /// Evaluates an expression to a CEL value, or the error text.
    pub fn evaluate(&self, expression: &Compiled) -> Result<Cel, String> {
        for (name, value) in &self.variables {
            if let Err(error) = value
                && mentions_variable(&expression.source, name)
            {
                return Err(format!("variables.{name}: {error}"));
            }
        }
        expression.program.execute(&self.context).map_err(|e| e.to_string())
    }

    /// Evaluates an expression that must give a boolean.
    pub fn evaluate_bool(&self, expression: &Compiled) -> Result<bool, String> {
        match self.evaluate(expression)? {
            Cel::Bool(b) => Ok(b),
            other => Err(format!("expression must evaluate to bool, got {other:?}")),
        }
    }
}

fn mentions_variable(source: &str, name: &str) -> bool {
    let needle = format!("variables.{name}");
    source.match_indices(&needle).any(|(at, _)| {
        let next = source[at + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The `authorizer` variable: a map whose hidden root entry carries the user to check, and
/// whose `requestResource` is a resource check of the request itself.
const ROOT_KEY: &str = "__kube_emulator_authorizer";

#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthorizerRoot {
    user: UserInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourceCheck {
    user: UserInfo,
    attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthorizerDecision {
    allowed: bool,
    reason: String,
}

impl Opaque for AuthorizerRoot {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Authorizer"
    }
}

impl Opaque for ResourceCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.ResourceCheck"
    }
}

impl Opaque for AuthorizerDecision {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Decision"
    }
}

fn authorizer_value(user: UserInfo, request_resource: &Attributes) -> Cel {
    let request_check = ResourceCheck { user: user.clone(), attributes: request_resource.clone() };
    cel_map([
        (ROOT_KEY.to_string(), Cel::Opaque(Arc::new(AuthorizerRoot { user }))),
        ("requestResource".to_string(), Cel::Opaque(Arc::new(request_check))),
    ])
}

fn root_of(value: &Cel) -> Option<AuthorizerRoot> {
    let Cel::Map(map) = value else { return None };
    match map.map.get(&Key::String(Arc::new(ROOT_KEY.to_string()))) {
        Some(Cel::Opaque(o)) => o.downcast_ref::<AuthorizerRoot>().cloned(),
        _ => None,
    }
}

fn opaque<T: Clone + 'static>(value: &Cel) -> Option<T> {
    match value {
        Cel::Opaque(o) => o.downcast_ref::<T>().cloned(),
        _ => None,
    }
}

fn misuse(function: &str, target: &Cel) -> ExecutionError {
    ExecutionError::function_error(function, format!("not supported on {target:?}"))
}

type CelResult = Result<Cel, ExecutionError>;

/// Registers the Kubernetes authorizer library (`group`, `resource`, `subresource`, `namespace`,
/// `name`, `check`, `allowed`, `reason`, `errored`, `error`, `serviceAccount`). `path(...)`
/// checks are not emulated and fail the expression.
fn register_authorizer(context: &mut Context<'static>, rbac: Arc<RbacSnapshot>) {
    context.add_function(
        "group",
        |cel::extractors::This(this): cel::extractors::This<Cel>, group: Arc<String>| -> CelResult {
            let root = root_of(&this).ok_or_else(|| misuse("group", &this))?;
            let attributes = Attributes {
                verb: String::new(),
                resource_request: true,
                api_group: group.to_string(),
                ..Attributes::default()
            };
            Ok(Cel::Opaque(Arc::new(ResourceCheck { user: root.user, attributes })))
        },
    );
    context.add_function(
        "serviceAccount",
        |cel::extractors::This(this): cel::extractors::This<Cel>,
         namespace: Arc<String>,
         name: Arc<String>|
         -> CelResult {
            root_of(&this).ok_or_else(|| misuse("serviceAccount", &this))?;
            let user = UserInfo::impersonated(&format!("system:serviceaccount:{namespace}:{name}"), &[]);
            let resource = Attributes { resource_request: true, ..Attributes::default() };
            Ok(authorizer_value(user, &resource))
        },
    );
    context.add_function(
        "path",
        |cel::extractors::This(this): cel::extractors::This<Cel>, _path: Arc<String>| -> CelResult {
            Err(ExecutionError::function_error(
                "path",
                format!("kube-emulator does not emulate non-resource authorizer checks ({this:?})"),
            ))
        },
    );
    for field in ["resource", "subresource", "namespace", "name"] {
        context.add_function(
            field,
            move |cel::extractors::This(this): cel::extractors::This<Cel>, value: Arc<String>| -> CelResult {
                let mut check: ResourceCheck = opaque(&this).ok_or_else(|| misuse(field, &this))?;
                let target = match field {
                    "resource" => &mut check.attributes.resource,
                    "subresource" => &mut check.attributes.subresource,
                    "namespace" => &mut check.attributes.namespace,
                    _ => &mut check.attributes.name,
                };
                *target = value.to_string();
                Ok(Cel::Opaque(Arc::new(check)))
            },
        );
    }
    context.add_function(
        "check",
        move |cel::extractors::This(this): cel::extractors::This<Cel>, verb: Arc<String>| -> CelResult {
            let mut check: ResourceCheck = opaque(&this).ok_or_else(|| misuse("check", &this))?;
            check.attributes.verb = verb.to_string();
            let decision = rbac.authorize(&check.user, &check.attributes);
            Ok(Cel::Opaque(Arc::new(AuthorizerDecision { allowed: decision.allowed, reason: decision.reason })))
        },
    );
    context.add_function("allowed", |cel::extractors::This(this): cel::extractors::This<Cel>| -> CelResult {
        let decision: AuthorizerDecision = opaque(&this).ok_or_else(|| misuse("allowed", &this))?;
        Ok(Cel::Bool(decision.allowed))
    });
    context.add_function("reason", |cel::extractors::This(this): cel::extractors::This<Cel>| -> CelResult {
        let decision: AuthorizerDecision = opaque(&this).ok_or_else(|| misuse("reason", &this))?;
        Ok(cel_string(&decision.reason))
    });
    context.add_function("errored", |cel::extractors::This(this): cel::extractors::This<Cel>| -> CelResult {
        let _: AuthorizerDecision = opaque(&this).ok_or_else(|| misuse("errored", &this))?;
        Ok(Cel::Bool(false))
    });
    context.add_function("error", |cel::extractors::This(this): cel::extractors::This<Cel>| -> CelResult {
        let _: AuthorizerDecision = opaque(&this).ok_or_else(|| misuse("error", &this))?;
        Ok(cel_string(""))
    });
}
