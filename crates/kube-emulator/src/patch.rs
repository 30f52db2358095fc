//! Patch bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge patch
//! for built-in kinds (simplified: lists replace, `$`-directives other than `$patch: delete` are dropped).

use serde_json::Value;

use crate::error::ApiError;

/// The patch types the API accepts, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchType {
    /// Reads the patch type from a `Content-Type` header.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            ))),
        }
    }
}

/// RFC 7386 merge patch: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch_map) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(target_map) = target {
                for (key, value) in patch_map {
                    if value.is_null() {
                        target_map.remove(key);
                    } else {
                        merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Strategic merge patch, simplified: merge-patch semantics where lists replace; `$patch: delete`
/// removes a map, `$patch: replace` replaces it, and other directives (`$setElementOrder/…`,
/// `$retainKeys`, `$deleteFromPrimitiveList/…`) are ignored.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        Some("replace") => {
            let mut replaced = patch.clone();
            if let Value::Object(map) = &mut replaced {
                map.remove("$patch");
            }
            *target = replaced;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if key.starts_with('$') {
                continue;
            }
            if value.is_null() {
                target_map.remove(key);
                continue;
            }
            let slot = target_map.entry(key.clone()).or_insert(Value::Null);
            strategic_merge_patch(slot, value);
            if slot.is_null() {
                target_map.remove(key);
            }
        }
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::bad_request(format!("the server rejected our request due to an error in our request: {e}"))
    })?;
    json_patch::patch(target, &ops).map_err(|e| ApiError::invalid_patch(e.to_string()))
}

impl ApiError {
    /// 422 for a JSON patch that cannot be applied (failed `test`, missing path…).
    pub fn invalid_patch(detail: String) -> Self {
        let mut error =
            Self::bad_request(format!("the server rejected our request due to an error in our request: {detail}"));
        error.code = 422;
        error.reason = "Invalid";
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn strategic_merge_patch_ignores_directives_and_honours_delete() {
        let mut doc = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "y"}}});
        let patch =
            json!({"$setElementOrder/data": [], "data": {"a": "3"}, "metadata": {"labels": {"$patch": "delete"}}});
        strategic_merge_patch(&mut doc, &patch);
        assert_eq!(doc, json!({"data": {"a": "3", "b": "2"}, "metadata": {}}));
    }

    #[test]
    fn json_patch_applies_and_reports_failed_tests() {
        let mut doc = json!({"spec": {"n": 1}});
        json_patch(&mut doc, &json!([{"op": "replace", "path": "/spec/n", "value": 2}])).unwrap();
        assert_eq!(doc, json!({"spec": {"n": 2}}));
        let err = json_patch(&mut doc, &json!([{"op": "test", "path": "/spec/n", "value": 9}])).unwrap_err();
        assert_eq!(err.code, 422);
    }
}
