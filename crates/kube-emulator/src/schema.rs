//! Structural-schema processing of objects, as the API server does it for custom resources:
//! pruning unknown fields, applying defaults, OpenAPI v3 validation and CEL rules.

use std::sync::Mutex;

use kube::core::cel::{CompiledSchema, ErrorKind, Validator, compile_schema};
use serde_json::{Map, Value};

use crate::error::FieldCause;

/// An `openAPIV3Schema` with its compiled CEL rules.
pub struct StructuralSchema {
    /// The schema as JSON.
    pub raw: Value,
    cel: Option<CompiledSchema>,
    validator: Mutex<Option<Validator>>,
}

impl std::fmt::Debug for StructuralSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StructuralSchema").field("has_cel", &self.cel.is_some()).finish()
    }
}

impl StructuralSchema {
    /// Compiles a schema. Rules that fail to compile are reported as errors.
    pub fn new(raw: Value) -> Result<Self, String> {
        let has_rules = contains_key(&raw, "x-kubernetes-validations");
        let cel = if has_rules {
            let compiled = compile_schema(&raw);
            let mut problems = Vec::new();
            collect_compile_errors(&compiled, &mut problems);
            if !problems.is_empty() {
                return Err(problems.join("; "));
            }
            Some(compiled)
        } else {
            None
        };
        Ok(Self { raw, cel, validator: Mutex::new(None) })
    }

    /// Removes fields the schema does not declare; returns the dotted paths that were removed.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let mut removed = Vec::new();
        if let Value::Object(map) = object {
            prune_object(map, &self.raw, "", true, &mut removed);
        }
        removed
    }

    /// Applies `default` values where fields are missing (structural defaulting).
    pub fn apply_defaults(&self, object: &mut Value) {
        *object = kube::core::cel::apply_defaults(&self.raw, object);
    }

    /// Validates an object (and, on update, its previous version for transition rules).
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        if let Value::Object(map) = object {
            let props = self.raw.get("properties").and_then(Value::as_object);
            for (key, value) in map {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    validate_value(value, prop, key, &mut causes);
                }
            }
            check_required(map, &self.raw, "", &mut causes);
            validate_junctors(object, &self.raw, "", &mut causes);
        }
        if causes.is_empty() {
            self.validate_cel(object, old, &mut causes);
        }
        causes
    }

    fn validate_cel(&self, object: &Value, old: Option<&Value>, causes: &mut Vec<FieldCause>) {
        let Some(compiled) = &self.cel else { return };
        let mut guard = match self.validator.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let validator = guard.get_or_insert_with(Validator::new);
        if let Err(errors) = validator.validate_compiled(compiled, object, old) {
            for error in errors.iter() {
                let field = error.field_path.trim_start_matches('.').to_string();
                let at = lookup_path(object, &field);
                let (reason, message) = match error.reason.as_deref() {
                    Some("FieldValueForbidden") => {
                        ("FieldValueForbidden", format!("{field}: Forbidden: {}", error.message))
                    }
                    Some("FieldValueRequired") => {
                        ("FieldValueRequired", format!("{field}: Required value: {}", error.message))
                    }
                    Some("FieldValueDuplicate") => {
                        ("FieldValueDuplicate", format!("{field}: Duplicate value: {}", error.message))
                    }
                    _ => {
                        let detail = match error.kind {
                            ErrorKind::ValidationFailure => error.message.clone(),
                            _ => format!("rule compile or evaluation error: {}", error.message),
                        };
                        ("FieldValueInvalid", format!("{field}: Invalid value: \"{}\": {detail}", type_name(at)))
                    }
                };
                causes.push(FieldCause { reason, message, field });
            }
        }
    }
}

fn contains_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| contains_key(v, key)),
        Value::Array(items) => items.iter().any(|v| contains_key(v, key)),
        _ => false,
    }
}

fn collect_compile_errors(compiled: &CompiledSchema, out: &mut Vec<String>) {
    for error in compiled.compilation_errors() {
        out.push(error.to_string());
    }
    for child in compiled.properties.values() {
        collect_compile_errors(child, out);
    }
    for child in compiled.items.iter().chain(compiled.additional_properties.iter()) {
        collect_compile_errors(child, out);
    }
}

fn lookup_path<'a>(object: &'a Value, dotted: &str) -> Option<&'a Value> {
    let mut current = object;
    for part in dotted.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        current = current.get(name)?;
        if let Some(i) = index {
            current = current.get(i)?;
        }
    }
    Some(current)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn prune_object(map: &mut Map<String, Value>, schema: &Value, path: &str, root: bool, removed: &mut Vec<String>) {
    if is_true(schema, "x-kubernetes-preserve-unknown-fields") && schema.get("properties").is_none() {
        return;
    }
    let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields");
    let embedded = is_true(schema, "x-kubernetes-embedded-resource");
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let keep_meta = (root || embedded) && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
        let child_schema = props.and_then(|p| p.get(&key)).or(match additional {
            Some(Value::Object(_)) => additional,
            _ => None,
        });
        let child_path = join(path, &key);
        match child_schema {
            Some(child) if !(root && key == "metadata") => {
                if map.get(&key).is_some_and(Value::is_null) && !is_true(child, "nullable") {
                    map.remove(&key);
                    continue;
                }
                if let Some(value) = map.get_mut(&key) {
                    prune_value(value, child, &child_path, removed);
                }
            }
            Some(_) => {}
            None if keep_meta => {}
            None if preserve || additional == Some(&Value::Bool(true)) => {}
            None => {
                map.remove(&key);
                removed.push(child_path);
            }
        }
    }
}

fn prune_value(value: &mut Value, schema: &Value, path: &str, removed: &mut Vec<String>) {
    match value {
        Value::Object(map) => prune_object(map, schema, path, false, removed),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item, item_schema, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

/// The name of a JSON value's type, as the API server prints it in messages.
pub fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => "integer",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn type_matches(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => value.is_number(),
        _ => true,
    }
}

fn invalid(path: &str, shown: String, detail: String) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        message: format!("{path}: Invalid value: {shown}: {detail}"),
        field: path.into(),
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("\"{}\"", type_name(Some(other))),
    }
}

fn validate_value(value: &Value, schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if value.is_null() {
        if !is_true(schema, "nullable") && schema.get("type").is_some() {
            causes.push(invalid(
                path,
                "\"null\"".into(),
                format!("{path} in body must be of type {}: \"null\"", schema_type(schema)),
            ));
        }
        return;
    }
    if is_true(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || type_matches(value, "integer")) {
            let t = type_name(Some(value));
            causes.push(invalid(
                path,
                format!("\"{t}\""),
                format!("{path} in body must be of type integer,string: \"{t}\""),
            ));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(value, expected)
    {
        let t = type_name(Some(value));
        causes.push(invalid(path, format!("\"{t}\""), format!("{path} in body must be of type {expected}: \"{t}\"")));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list = allowed.iter().map(shown).collect::<Vec<_>>().join(", ");
        causes.push(FieldCause {
            reason: "FieldValueNotSupported",
            message: format!("{path}: Unsupported value: {}: supported values: {list}", shown(value)),
            field: path.into(),
        });
    }
    match value {
        Value::Number(n) => validate_number(n.as_f64().unwrap_or_default(), value, schema, path, causes),
        Value::String(s) => validate_string(s, schema, path, causes),
        Value::Array(items) => validate_array(items, schema, path, causes),
        Value::Object(map) => validate_object(map, schema, path, causes),
        _ => {}
    }
    validate_junctors(value, schema, path, causes);
}

fn schema_type(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("object")
}

fn validate_number(n: f64, value: &Value, schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = is_true(schema, "exclusiveMaximum");
        if (exclusive && n >= max) || (!exclusive && n > max) {
            let relation = if exclusive { "less than" } else { "less than or equal to" };
            causes.push(invalid(path, shown(value), format!("{path} in body should be {relation} {}", fmt_num(max))));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = is_true(schema, "exclusiveMinimum");
        if (exclusive && n <= min) || (!exclusive && n < min) {
            let relation = if exclusive { "greater than" } else { "greater than or equal to" };
            causes.push(invalid(path, shown(value), format!("{path} in body should be {relation} {}", fmt_num(min))));
        }
    }
    if let Some(multiple) = schema.get("multipleOf").and_then(Value::as_f64)
        && multiple != 0.0
        && (n / multiple).fract() != 0.0
    {
        causes.push(invalid(
            path,
            shown(value),
            format!("{path} in body should be a multiple of {}", fmt_num(multiple)),
        ));
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}

fn validate_string(s: &str, schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        causes.push(FieldCause {
            reason: "FieldValueTooLong",
            message: format!("{path}: Too long: may not be more than {max} bytes"),
            field: path.into(),
        });
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        causes.push(invalid(path, format!("\"{s}\""), format!("{path} in body should be at least {min} chars long")));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => {
                causes.push(invalid(path, format!("\"{s}\""), format!("{path} in body should match '{pattern}'")))
            }
            Ok(_) => {}
            Err(e) => causes.push(invalid(path, format!("\"{s}\""), format!("invalid pattern '{pattern}': {e}"))),
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        causes.push(invalid(path, format!("\"{s}\""), format!("{path} in body must be of type {format}: \"{s}\"")));
    }
}

fn format_ok(format: &str, s: &str) -> bool {
    use base64::Engine;
    match format {
        "date-time" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok(),
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok(),
        _ => true,
    }
}

fn validate_array(items: &[Value], schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        causes.push(FieldCause {
            reason: "FieldValueTooMany",
            message: format!("{path}: Too many: {}: must have at most {max} items", items.len()),
            field: path.into(),
        });
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        causes.push(invalid(path, "\"array\"".to_string(), format!("{path} in body should have at least {min} items")));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate_value(item, item_schema, &format!("{path}[{i}]"), causes);
        }
    }
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if matches!(list_type, Some("set") | Some("map")) || is_true(schema, "uniqueItems") {
        let mut seen: Vec<Value> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let identity = if list_type == Some("map") {
                Value::Array(keys.iter().map(|k| item.get(*k).cloned().unwrap_or(Value::Null)).collect())
            } else {
                item.clone()
            };
            if seen.contains(&identity) {
                causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    message: format!("{path}[{i}]: Duplicate value: {}", compact(&identity)),
                    field: format!("{path}[{i}]"),
                });
            } else {
                seen.push(identity);
            }
        }
    }
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn validate_object(map: &Map<String, Value>, schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, value) in map {
        let child_path = join(path, key);
        if let Some(prop) = props.and_then(|p| p.get(key)) {
            validate_value(value, prop, &child_path, causes);
        } else if let Some(add) = additional {
            validate_value(value, add, &child_path, causes);
        }
    }
    check_required(map, schema, path, causes);
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        causes.push(FieldCause {
            reason: "FieldValueTooMany",
            message: format!("{path}: Too many: {}: must have at most {max} items", map.len()),
            field: path.into(),
        });
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        causes.push(invalid(
            path,
            "\"object\"".into(),
            format!("{path} in body should have at least {min} properties"),
        ));
    }
}

fn check_required(map: &Map<String, Value>, schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                let field = join(path, name);
                causes.push(FieldCause {
                    reason: "FieldValueRequired",
                    message: format!("{field}: Required value"),
                    field,
                });
            }
        }
    }
}

/// `oneOf`, `anyOf`, `allOf` and `not` as value validations (structural schemas allow no types in them).
fn validate_junctors(value: &Value, schema: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    let shown_path = if path.is_empty() { "<root>" } else { path };
    let passes = |branch: &Value| {
        let mut inner = Vec::new();
        validate_branch(value, branch, path, &mut inner);
        inner.is_empty()
    };
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = branches.iter().filter(|b| passes(b)).count();
        if matching != 1 {
            causes.push(invalid(
                shown_path,
                format!("\"{}\"", type_name(Some(value))),
                format!("{shown_path} in body must validate one and only one schema (oneOf). Found {matching} valid alternatives"),
            ));
        }
    }
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array)
        && !branches.iter().any(passes)
    {
        causes.push(invalid(
            shown_path,
            format!("\"{}\"", type_name(Some(value))),
            format!("{shown_path} in body must validate at least one schema (anyOf)"),
        ));
    }
    if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
        for branch in branches {
            validate_branch(value, branch, path, causes);
        }
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        causes.push(invalid(
            shown_path,
            format!("\"{}\"", type_name(Some(value))),
            format!("{shown_path} in body must not validate the schema (not)"),
        ));
    }
}

/// Validates a junctor branch: its value validations, including `required` and nested properties.
fn validate_branch(value: &Value, branch: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if value.is_null() {
        return;
    }
    validate_value(value, branch, path, causes);
}
