//! Label selectors (`a=b,c!=d,e in (x,y),!f`) and field selectors (`metadata.name=x`),
//! parsed from list and watch query strings and matched against objects.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::jsonpath;
use crate::resource::ResourceType;

#[derive(Debug, Clone, PartialEq)]
enum LabelRequirement {
    Equal(String, String),
    NotEqual(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in input.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let inner =
        rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(|| {
            ApiError::bad_request(format!("unable to parse requirement: {whole}: expected '(' and ')'"))
        })?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(input) {
            let requirement = if let Some(key) = part.strip_prefix('!') {
                LabelRequirement::DoesNotExist(key.trim().to_string())
            } else if let Some((key, value)) = part.split_once("!=") {
                LabelRequirement::NotEqual(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==") {
                LabelRequirement::Equal(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once('=') {
                LabelRequirement::Equal(key.trim().into(), value.trim().into())
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                LabelRequirement::NotIn(key.trim().into(), parse_set(rest, &part)?)
            } else if let Some((key, rest)) = part.split_once(" in ") {
                LabelRequirement::In(key.trim().into(), parse_set(rest, &part)?)
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                LabelRequirement::Exists(part.clone())
            } else {
                return Err(ApiError::bad_request(format!("unable to parse requirement: {part}")));
            };
            requirements.push(requirement);
        }
        Ok(Self { requirements })
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            LabelRequirement::Equal(k, v) => labels.get(k) == Some(v),
            LabelRequirement::NotEqual(k, v) => labels.get(k) != Some(v),
            LabelRequirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelRequirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            LabelRequirement::Exists(k) => labels.contains_key(k),
            LabelRequirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(&labels_of(object))
    }
}

/// The labels of an object.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// One `field=value` or `field!=value` term with the JSONPath that reads the field.
#[derive(Debug, Clone, PartialEq)]
struct FieldRequirement {
    json_path: String,
    value: String,
    negated: bool,
}

/// A parsed field selector, checked against the fields the resource supports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` parameter for a resource; unsupported fields are a 400, as on a real server.
    pub fn parse(input: &str, resource: &ResourceType) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{input}'; can't understand '{part}'")));
            };
            let field = field.trim();
            let json_path = match field {
                "metadata.name" => ".metadata.name".to_string(),
                "metadata.namespace" if resource.namespaced => ".metadata.namespace".to_string(),
                _ => match resource.selectable_fields.iter().find(|(label, _)| label == field) {
                    Some((_, path)) => path.clone(),
                    None => {
                        return Err(ApiError::bad_request(format!("field label not supported: {field}")));
                    }
                },
            };
            requirements.push(FieldRequirement { json_path, value: value.trim().to_string(), negated });
        }
        Ok(Self { requirements })
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = jsonpath::evaluate(object, &r.json_path)
                .ok()
                .and_then(|values| values.into_iter().next())
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (actual == r.value) != r.negated
        })
    }
}

/// Whether an object's labels satisfy a `metav1.LabelSelector` given as JSON (`matchLabels`,
/// `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`); `{}` selects everything.
pub fn label_selector_matches(selector: &Value, object: &Value) -> Result<bool, String> {
    let labels = labels_of(object);
    if let Some(Value::Object(match_labels)) = selector.get("matchLabels") {
        for (key, value) in match_labels {
            if labels.get(key).map(String::as_str) != value.as_str() {
                return Ok(false);
            }
        }
    }
    for expression in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = expression.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let label = labels.get(key).map(String::as_str);
        let holds = match expression.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => label.is_some_and(|l| values.contains(&l)),
            "NotIn" => label.is_none_or(|l| !values.contains(&l)),
            "Exists" => label.is_some(),
            "DoesNotExist" => label.is_none(),
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}
