//! Content marked secret per item type and field: normalized documents, reports and diffs show a
//! digest of it instead of the content (DESIGN rule 8), so a change is still seen, never its text.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;

use crate::canonical::sha256_digest;

/// What replaces marked content: this prefix and the content's `sha256:` digest.
pub const SECRET_DIGEST_PREFIX: &str = "secret ";

/// Which fields of which item types are secret. Paths are dotted keys from the item's top level;
/// a list on the way is entered element by element (`omaSettings.value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMarks {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Default for SecretMarks {
    /// The defaults: the payload of custom Apple and OMA profiles (`deviceConfiguration.payload`,
    /// a base64 mobileconfig that often embeds Wi-Fi keys and certificates). Encrypted OMA-URI
    /// values and secret settings are masked outright by `engine::normalize::mask_secrets`.
    fn default() -> Self {
        SecretMarks::none().marking("deviceConfiguration", "payload")
    }
}

impl SecretMarks {
    /// No field marked.
    pub fn none() -> Self {
        SecretMarks { fields: BTreeMap::new() }
    }

    /// Also marks `path` of `item_type`.
    pub fn marking(mut self, item_type: &str, path: &str) -> Self {
        self.fields.entry(item_type.to_string()).or_default().insert(path.to_string());
        self
    }

    /// Also marks PowerShell script bodies (the admin's `--secret-script-bodies`).
    pub fn with_script_bodies(self) -> Self {
        self.marking("powerShellScript", "scriptContent")
    }

    /// Also marks `TYPE.FIELD[.FIELD…]` (the admin's `--secret-field`).
    pub fn parse_and_mark(self, spec: &str) -> Result<Self, String> {
        match spec.split_once('.') {
            Some((item_type, path)) if !item_type.is_empty() && !path.is_empty() => Ok(self.marking(item_type, path)),
            _ => Err(format!("{spec:?} is not TYPE.FIELD (e.g. powerShellScript.scriptContent)")),
        }
    }

    /// The marked paths of `item_type`.
    pub fn fields_of(&self, item_type: &str) -> impl Iterator<Item = &str> {
        self.fields.get(item_type).into_iter().flatten().map(String::as_str)
    }

    /// Replaces every marked value of `doc` (an item of `item_type`) by its digest.
    pub fn apply(&self, item_type: &str, doc: &mut Value) {
        for path in self.fields_of(item_type) {
            let keys: Vec<&str> = path.split('.').collect();
            replace_at(doc, &keys);
        }
    }

    /// Whether `item_type` has marked fields.
    pub fn marks_type(&self, item_type: &str) -> bool {
        self.fields.contains_key(item_type)
    }

    /// Whether every marked value `doc` holds (`item_type`'s paths) is a scalar: its digest is then
    /// the same whatever object keys around it are left out or reordered.
    pub fn marks_only_scalars(&self, item_type: &str, doc: &Value) -> bool {
        self.fields_of(item_type).all(|path| {
            let keys: Vec<&str> = path.split('.').collect();
            only_scalars_at(doc, &keys)
        })
    }
}

fn only_scalars_at(value: &Value, keys: &[&str]) -> bool {
    match (value, keys) {
        (Value::Array(items), _) => items.iter().all(|item| only_scalars_at(item, keys)),
        (Value::Object(map), [last]) => map.get(*last).is_none_or(|found| !found.is_object() && !found.is_array()),
        (Value::Object(map), [first, rest @ ..]) => map.get(*first).is_none_or(|next| only_scalars_at(next, rest)),
        _ => true,
    }
}

fn replace_at(value: &mut Value, keys: &[&str]) {
    match (value, keys) {
        (Value::Array(items), _) => items.iter_mut().for_each(|item| replace_at(item, keys)),
        (Value::Object(map), [last]) => {
            if let Some(found) = map.get_mut(*last)
                && !found.is_null()
            {
                *found = Value::String(secret_digest(found));
            }
        }
        (Value::Object(map), [first, rest @ ..]) => {
            if let Some(next) = map.get_mut(*first) {
                replace_at(next, rest);
            }
        }
        _ => {}
    }
}

/// The marker shown for secret content: `secret sha256:…` of its text (or its JSON).
pub fn secret_digest(content: &Value) -> String {
    let bytes = match content {
        Value::String(text) => text.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    };
    format!("{SECRET_DIGEST_PREFIX}{}", sha256_digest(&bytes))
}

static CONFIGURED: OnceLock<SecretMarks> = OnceLock::new();

/// Sets the process's marks once, at start-up (the operator's and the CLI's flags). Returns false
/// if they were set already. The preview digest covers the marked form, so the CLI and the
/// operator must be given the same marks to produce the same digest.
pub fn configure(marks: SecretMarks) -> bool {
    CONFIGURED.set(marks).is_ok()
}

/// The process's marks: what [`configure`] set, else the defaults.
pub fn marks() -> &'static SecretMarks {
    static DEFAULTS: OnceLock<SecretMarks> = OnceLock::new();
    CONFIGURED.get().unwrap_or_else(|| DEFAULTS.get_or_init(SecretMarks::default))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_types_given_marks_are_marked() {
        let marks = SecretMarks::none().marking("powerShellScript", "scriptContent");
        assert!(marks.marks_type("powerShellScript"));
        assert!(!marks.marks_type("deviceConfiguration"));
        assert!(!SecretMarks::none().marks_type("powerShellScript"));
    }

    #[test]
    fn marked_values_are_scalars_only_when_every_value_found_on_every_path_is_one() {
        let marks = SecretMarks::none().marking("t", "omaSettings.value").marking("t", "payload");
        let scalars = json!({"payload": "b64", "omaSettings": [{"value": "x"}, {"value": null}, {"other": {}}]});
        assert!(marks.marks_only_scalars("t", &scalars));
        assert!(marks.marks_only_scalars("u", &json!({"payload": {}})), "no path for that type");
        for structured in [
            json!({"payload": {"a": 1}}),
            json!({"payload": [1]}),
            json!({"omaSettings": [{"value": "x"}, {"value": {"id": 1}}]}),
            json!({"omaSettings": {"value": [1]}}),
        ] {
            assert!(!marks.marks_only_scalars("t", &structured), "{structured}");
        }
        assert!(marks.marks_only_scalars("t", &json!([{"payload": "a"}, {"omaSettings": [{"value": 1}]}])));
        assert!(!marks.marks_only_scalars("t", &json!([{"payload": "a"}, {"omaSettings": [{"value": {}}]}])));
    }

    #[test]
    fn finding_10_marked_fields_show_a_digest_never_the_content() {
        let body = "JHBhc3N3b3JkID0gJ2h1bnRlcjIn"; // base64 of a script holding a password
        let mut script = json!({"displayName": "Set wallpaper", "scriptContent": body});
        SecretMarks::default().apply("powerShellScript", &mut script);
        assert_eq!(script["scriptContent"], body, "script bodies are shown unless the admin marks them");

        let marks = SecretMarks::default().with_script_bodies();
        marks.apply("powerShellScript", &mut script);
        let shown = script["scriptContent"].as_str().unwrap().to_string();
        assert!(shown.starts_with("secret sha256:") && !shown.contains(body), "{shown}");

        let mut changed = json!({"scriptContent": "b3RoZXI="});
        marks.apply("powerShellScript", &mut changed);
        assert_ne!(changed["scriptContent"], script["scriptContent"], "a changed body still shows as changed");

        let mut profile = json!({"payload": "PD94bWwgcGFzc3dvcmQ+", "nested": [{"payload": "kept"}]});
        SecretMarks::default().apply("deviceConfiguration", &mut profile);
        assert!(profile["payload"].as_str().unwrap().starts_with("secret sha256:"));
        assert_eq!(profile["nested"][0]["payload"], "kept", "only the marked path is replaced");
    }

    #[test]
    fn rule8_a_profile_payload_never_appears_in_a_normalized_document_or_its_diff() {
        use crate::engine::diff::unified_diff;
        use crate::engine::mapping::IdNames;
        use crate::engine::normalize::normalize;
        let device_configuration = crate::catalog::item_type("deviceConfiguration");
        let payload = "PHBsaXN0PjxrZXk+UGFzc3dvcmQ8L2tleT48c3RyaW5nPmh1bnRlcjI8L3N0cmluZz48L3BsaXN0Pg==";
        let doc = json!({"@odata.type": "#microsoft.graph.macOSCustomConfiguration", "displayName": "Wi-Fi",
            "payloadFileName": "wifi.mobileconfig", "payload": payload});
        let desired = normalize(device_configuration, &doc, &IdNames::default());
        let current =
            normalize(device_configuration, &json!({"displayName": "Wi-Fi", "payload": "b2xk"}), &IdNames::default());
        let diff = unified_diff(Some(&current), &desired);
        for shown in [desired.to_string(), diff.clone()] {
            assert!(!shown.contains(payload) && !shown.contains("b2xk"), "{shown}");
        }
        assert!(diff.contains("secret sha256:"), "the change is still visible as a digest change:\n{diff}");
    }

    #[test]
    fn fields_inside_lists_and_admin_specs_are_marked() {
        let marks = SecretMarks::none().parse_and_mark("compliancePolicy.rules.secretValue").unwrap();
        let mut doc = json!({"rules": [{"secretValue": "a"}, {"secretValue": null}, {"other": 1}]});
        marks.apply("compliancePolicy", &mut doc);
        assert!(doc["rules"][0]["secretValue"].as_str().unwrap().starts_with("secret "));
        assert!(doc["rules"][1]["secretValue"].is_null());
        assert!(SecretMarks::none().parse_and_mark("nodot").is_err());
    }
}
