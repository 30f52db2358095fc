//! The differences between an item's normalized current state and its desired state: the changed
//! field paths and a unified text diff of the canonical pretty JSON (inputs are already masked).

use serde_json::Value;
use similar::TextDiff;

use crate::engine::normalize::{join_key, pretty};

/// At most this many changed paths are listed per item (the diff text shows everything).
pub const MAX_CHANGED_PATHS: usize = 100;

/// Paths where `current` and `desired` differ, e.g. `displayName`, `omaSettings[0].value`,
/// `assignments` (a list whose length changed is one path). Sorted by position, capped.
pub fn changed_paths(current: &Value, desired: &Value) -> Vec<String> {
    if same_text(current, desired) {
        return Vec::new();
    }
    let mut paths = Vec::new();
    walk(current, desired, "", &mut paths);
    paths.truncate(MAX_CHANGED_PATHS);
    paths
}

fn walk(current: &Value, desired: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_CHANGED_PATHS || current == desired {
        return;
    }
    match (current, desired) {
        (Value::Object(c), Value::Object(d)) => {
            let mut keys: Vec<&String> = c.keys().chain(d.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (cv, dv) = (c.get(key).unwrap_or(&Value::Null), d.get(key).unwrap_or(&Value::Null));
                walk(cv, dv, &join_key(path, key), out);
            }
        }
        (Value::Array(c), Value::Array(d)) if c.len() == d.len() => {
            for (i, (cv, dv)) in c.iter().zip(d).enumerate() {
                walk(cv, dv, &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(if path.is_empty() { "(root)".to_string() } else { path.to_string() }),
    }
}

/// A unified diff from the tenant's current state (`None`: the object does not exist) to the
/// backup's desired state. Empty when they are equal.
pub fn unified_diff(current: Option<&Value>, desired: &Value) -> String {
    if current.is_some_and(|current| same_text(current, desired)) {
        return String::new();
    }
    let old = current.map(pretty).unwrap_or_default();
    let new = pretty(desired);
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(&old, &new).unified_diff().context_radius(3).header("tenant", "backup").to_string()
}

/// Whether two documents are written as the same text: the same keys in the same order and the
/// same values at every depth (floats bit for bit: `-0.0` and `0.0` compare equal but print
/// differently). A cheap walk with no hashing; `true` implies `a == b` and `pretty(a) == pretty(b)`,
/// while `false` decides nothing (the same maps in another key order).
pub fn same_text(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same_text(vx, vy))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(vx, vy)| same_text(vx, vy)),
        (Value::Number(x), Value::Number(y)) => {
            x == y && (!x.is_f64() || x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_each_changed_leaf() {
        let current = json!({"a": 1, "b": {"c": [1, 2], "d": "x"}, "e": [1], "f": null});
        let desired = json!({"a": 1, "b": {"c": [1, 3], "d": "y"}, "e": [1, 2], "g": true});
        assert_eq!(changed_paths(&current, &desired), ["b.c[1]", "b.d", "e", "g"]);
        assert!(changed_paths(&desired, &desired).is_empty());
    }

    #[test]
    fn the_diff_is_unified_and_empty_when_equal() {
        let current = json!({"displayName": "A", "enabled": true});
        let desired = json!({"displayName": "B", "enabled": true});
        let diff = unified_diff(Some(&current), &desired);
        assert!(diff.starts_with("--- tenant\n+++ backup\n"), "{diff}");
        assert!(diff.contains("-  \"displayName\": \"A\",\n+  \"displayName\": \"B\",\n"), "{diff}");
        assert_eq!(unified_diff(Some(&desired), &desired), "");
        assert!(unified_diff(None, &desired).contains("+  \"enabled\": true\n"));
    }

    #[test]
    fn the_same_text_is_decided_without_printing_and_only_when_it_is_the_same() {
        let doc = json!({"a": [1, 2.5, {"b": null}], "c": "x"});
        assert!(same_text(&doc, &doc.clone()));
        let reordered: Value = serde_json::from_str(r#"{"c": "x", "a": [1, 2.5, {"b": null}]}"#).unwrap();
        assert!(!same_text(&doc, &reordered) && doc == reordered, "another key order decides nothing");
        assert_eq!(unified_diff(Some(&reordered), &doc), "", "and is still no difference");
        assert!(changed_paths(&reordered, &doc).is_empty());
        for other in [json!({"a": [1, 2.5, {"b": 0}], "c": "x"}), json!({"a": [1, 2.5], "c": "x"}), json!({"c": "x"})] {
            assert!(!same_text(&doc, &other), "{other}");
        }
        let (zero, negative_zero) = (json!({"n": 0.0}), json!({"n": -0.0}));
        assert!(zero == negative_zero && !same_text(&zero, &negative_zero), "equal floats that print differently");
        assert_ne!(unified_diff(Some(&negative_zero), &zero), "", "the diff shows what the text shows");
    }
}
