//! How an item's assignments reach Graph: the `/assign` action with the full desired set, or one
//! assignment at a time in the `assignments` collection (Autopilot profiles), never deleting one.

use serde_json::Value;

use crate::catalog::ItemType;
use crate::engine::normalize::ASSIGNMENTS;
use crate::tenant::{TenantError, TenantPort};

/// The way a type's assignments are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignmentWrite {
    /// `POST {item}/assign` with the whole desired set (it replaces the set).
    AssignAction,
    /// `POST {item}/assignments` per missing assignment, `PATCH {item}/assignments/{id}` per changed
    /// one. Graph has no replace-all for these types (the Autopilot profile's `assign` action takes
    /// device ids), and removing an assignment would take a DELETE the operator never sends.
    OneByOne,
}

/// How `item_type` writes its assignments.
pub fn assignment_write(item_type: &ItemType) -> AssignmentWrite {
    match item_type.name {
        "autopilotProfile" => AssignmentWrite::OneByOne,
        _ => AssignmentWrite::AssignAction,
    }
}

/// One write of a [`AssignmentWrite::OneByOne`] assignment set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignmentChange {
    /// POST this assignment.
    Add(Value),
    /// PATCH the live assignment `id` with this body.
    Update {
        /// The live assignment's id.
        id: String,
        /// The desired assignment.
        body: Value,
    },
}

/// What identifies an assignment's target: its kind and group (or collection).
fn target_key(assignment: &Value) -> (String, String) {
    let target = assignment.get("target");
    let field = |name: &str| target.and_then(|t| t.get(name)).and_then(Value::as_str).unwrap_or_default().to_string();
    let group = field("groupId");
    (field("@odata.type"), if group.is_empty() { field("collectionId") } else { group })
}

/// Whether the live target holds every non-null field of the desired one with the same value.
fn same_target(live: &Value, desired: &Value) -> bool {
    let (Some(live), Some(Value::Object(wanted))) = (live.get("target"), desired.get("target")) else {
        return false;
    };
    wanted.iter().filter(|(_, v)| !v.is_null()).all(|(k, v)| live.get(k) == Some(v))
}

/// The writes that bring `live` (raw assignments of the target object) to hold every `desired`
/// assignment (mapped into the target tenant). Live assignments the desired set lacks are left.
pub fn one_by_one_changes(live: &[Value], desired: Vec<Value>) -> Vec<AssignmentChange> {
    desired
        .into_iter()
        .filter_map(|wanted| match live.iter().find(|l| target_key(l) == target_key(&wanted)) {
            None => Some(AssignmentChange::Add(wanted)),
            Some(found) if same_target(found, &wanted) => None,
            Some(found) => found
                .get("id")
                .and_then(Value::as_str)
                .map(|id| AssignmentChange::Update { id: id.to_string(), body: wanted.clone() }),
        })
        .collect()
}

/// Sends the [`one_by_one_changes`] to `collection` (`{item}/assignments`), counting each write.
pub async fn write_one_by_one<T: TenantPort>(
    port: &T,
    collection: &str,
    live: &[Value],
    desired: Vec<Value>,
    writes: &mut u32,
) -> Result<(), TenantError> {
    for change in one_by_one_changes(live, desired) {
        match change {
            AssignmentChange::Add(body) => {
                port.create(collection, &body).await?;
            }
            AssignmentChange::Update { id, body } => port.update(&format!("{collection}/{id}"), &body).await?,
        }
        *writes += 1;
    }
    Ok(())
}

/// For a [`AssignmentWrite::OneByOne`] type: the tenant's assignments (normalized) that the desired
/// set (normalized) lacks. A restore cannot remove them without a DELETE, so the item is not written.
pub fn assignments_not_removable(item_type: &ItemType, current: Option<&Value>, desired: &Value) -> Vec<String> {
    if assignment_write(item_type) != AssignmentWrite::OneByOne {
        return Vec::new();
    }
    let (Some(Value::Array(live)), Some(Value::Array(wanted))) =
        (current.and_then(|c| c.get(ASSIGNMENTS)), desired.get(ASSIGNMENTS))
    else {
        return Vec::new();
    };
    live.iter()
        .filter(|l| !wanted.iter().any(|w| target_key(w) == target_key(l)))
        .map(|l| {
            let (kind, group) = target_key(l);
            let kind = kind.trim_start_matches("#microsoft.graph.");
            if group.is_empty() { kind.to_string() } else { format!("{kind} {group}") }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use serde_json::json;

    fn to_group(group: &str, filter: Option<&str>) -> Value {
        json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group,
            "deviceAndAppManagementAssignmentFilterId": filter}})
    }

    #[test]
    fn autopilot_profiles_write_assignments_one_by_one_others_through_assign() {
        assert_eq!(assignment_write(item_type("autopilotProfile").unwrap()), AssignmentWrite::OneByOne);
        assert_eq!(assignment_write(item_type("deviceConfiguration").unwrap()), AssignmentWrite::AssignAction);
    }

    #[test]
    fn missing_assignments_are_added_changed_ones_patched_and_extra_ones_left() {
        let mut live_a = to_group("a", None);
        live_a["id"] = json!("la");
        let mut live_b = to_group("b", None);
        live_b["id"] = json!("lb");
        let mut live_x = to_group("x", None);
        live_x["id"] = json!("lx");
        let changes = one_by_one_changes(
            &[live_a, live_b, live_x],
            vec![to_group("a", None), to_group("b", Some("f")), to_group("c", None)],
        );
        assert_eq!(
            changes,
            vec![
                AssignmentChange::Update { id: "lb".into(), body: to_group("b", Some("f")) },
                AssignmentChange::Add(to_group("c", None)),
            ],
            "a is already there, x is never removed"
        );
    }

    /// Records every write it is sent; reads find nothing.
    #[derive(Default)]
    struct Recorder {
        writes: std::sync::Mutex<Vec<String>>,
    }

    impl Recorder {
        fn record(&self, method: &str, path: &str, body: &Value) {
            let group = body["target"]["groupId"].as_str().unwrap_or_default();
            self.writes.lock().unwrap().push(format!("{method} {path} {group}"));
        }
    }

    impl TenantPort for Recorder {
        async fn get(&self, _: &str) -> Result<Option<Value>, TenantError> {
            Ok(None)
        }
        async fn list(&self, _: &str) -> Result<Vec<Value>, TenantError> {
            Ok(Vec::new())
        }
        async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
            Ok(paths.iter().map(|_| Ok(None)).collect())
        }
        async fn create(&self, collection: &str, body: &Value) -> Result<Value, TenantError> {
            self.record("POST", collection, body);
            Ok(json!({"id": "new"}))
        }
        async fn update(&self, path: &str, body: &Value) -> Result<(), TenantError> {
            self.record("PATCH", path, body);
            Ok(())
        }
        async fn replace(&self, path: &str, body: &Value) -> Result<(), TenantError> {
            self.record("PUT", path, body);
            Ok(())
        }
        async fn action(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
            self.record("ACTION", path, body);
            Ok(None)
        }
    }

    #[tokio::test]
    async fn each_change_is_one_counted_write_to_the_assignments_collection() {
        let mut live_a = to_group("a", None);
        live_a["id"] = json!("la");
        let mut live_b = to_group("b", None);
        live_b["id"] = json!("lb");
        let port = Recorder::default();
        let mut writes = 1;
        let desired = vec![to_group("a", None), to_group("b", Some("f")), to_group("c", None)];
        write_one_by_one(&port, "p/assignments", &[live_a, live_b], desired, &mut writes).await.unwrap();
        assert_eq!(*port.writes.lock().unwrap(), ["PATCH p/assignments/lb b", "POST p/assignments c"]);
        assert_eq!(writes, 3, "two writes added to the one before");
    }

    #[test]
    fn assignments_the_backup_lacks_are_named_for_one_by_one_types_only() {
        let current = json!({"assignments": [to_group("All staff", None), to_group("Pilot", None)]});
        let desired = json!({"assignments": [to_group("All staff", None)]});
        let autopilot = item_type("autopilotProfile").unwrap();
        assert_eq!(assignments_not_removable(autopilot, Some(&current), &desired), ["groupAssignmentTarget Pilot"]);
        assert!(assignments_not_removable(autopilot, None, &desired).is_empty());
        let dc = item_type("deviceConfiguration").unwrap();
        assert!(assignments_not_removable(dc, Some(&current), &desired).is_empty());
    }
}
