//! Object metadata rules shared by every kind: names, generated names, namespaces,
//! server-managed fields, timestamps, label maps, and how served and stored forms convert.

use serde_json::{Map, Value, json};

use crate::builtin::{core_event_to_events_v1, events_v1_to_core_event};
use crate::error::{ApiError, FieldCause};
use crate::resource::{Codec, ResourceType};

/// Now as a metav1.Time (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The `metadata` object, created if missing; `None` only when `object` is not a JSON object.
pub fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let root = object.as_object_mut()?;
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

/// Whether `name` is a lowercase RFC 1123 subdomain.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `name` is a lowercase RFC 1123 label (namespaces).
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

/// Checks `metadata.name` for a resource, returning the 422 cause if invalid.
pub fn name_cause(resource: &ResourceType, name: &str) -> Option<FieldCause> {
    let (ok, what) = if resource.group == "rbac.authorization.k8s.io" {
        // RBAC names are path segments (`system:aggregate-to-view` is valid).
        (
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']),
            "may not be '.' or '..' and may not contain '/' or '%'",
        )
    } else if resource.kind == "Namespace" {
        (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )
    } else {
        (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    };
    (!ok).then(|| FieldCause {
        reason: "FieldValueInvalid",
        message: format!("metadata.name: Invalid value: \"{name}\": {what}"),
        field: "metadata.name".into(),
    })
}

/// A name from `generateName` plus five random characters, as the API server makes them.
pub fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes.iter().take(5).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("{prefix}{suffix}")
}

/// Checks that labels and annotations are maps of strings.
pub fn check_string_maps(object: &Value) -> Result<(), ApiError> {
    for field in ["labels", "annotations"] {
        match object.pointer(&format!("/metadata/{field}")) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
                    return Err(ApiError::bad_request(format!(
                        "json: cannot unmarshal non-string into Go struct field ObjectMeta.metadata.{field} of type string (key {key})"
                    )));
                }
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal into Go struct field ObjectMeta.metadata.{field} of type map[string]string"
                )));
            }
        }
    }
    Ok(())
}

/// Converts a stored object to the served form of `resource`.
pub fn to_served(resource: &ResourceType, stored: &Value) -> Value {
    let mut served = match resource.codec {
        Codec::EventsV1 => core_event_to_events_v1(stored),
        Codec::Identity => stored.clone(),
    };
    served["apiVersion"] = json!(resource.api_version());
    served["kind"] = json!(resource.kind);
    served
}

/// Converts a served object of `resource` to its stored form.
pub fn to_stored(resource: &ResourceType, served: &Value) -> Value {
    let mut stored = match resource.codec {
        Codec::EventsV1 => events_v1_to_core_event(served),
        Codec::Identity => served.clone(),
    };
    if resource.codec == Codec::Identity {
        let storage_api_version = if resource.group.is_empty() {
            resource.storage_version.clone()
        } else {
            format!("{}/{}", resource.group, resource.storage_version)
        };
        stored["apiVersion"] = json!(storage_api_version);
    }
    stored
}

/// The object without the fields every write changes (`resourceVersion`, `managedFields`), for no-op detection.
pub fn without_volatile(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(Value::Object(meta)) = copy.get_mut("metadata") {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    copy
}

/// The object without `metadata` (and without `status` when `drop_status`), for generation tracking.
pub fn generation_relevant(object: &Value, drop_status: bool) -> Value {
    let mut copy = object.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if drop_status {
            map.remove("status");
        }
    }
    copy
}

/// The finalizers of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// Replaces the finalizers of an object (removing the field when empty).
pub fn set_finalizers(object: &mut Value, list: &[String]) {
    if let Some(meta) = metadata_mut(object) {
        if list.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(list));
        }
    }
}

/// The resourceVersion of an object as a number (0 when absent or unparsable).
pub fn rv_of(object: &Value) -> u64 {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(0)
}
