//! The `assignments` navigation written one assignment at a time (POST, PATCH, DELETE under
//! `{item}/assignments`), how Graph assigns Autopilot deployment profiles, which have no `/assign` of groups.

use serde_json::Value;

use crate::api::{
    Api, check_assignment, check_unknown_property, collection_type, fill_server_defaults, missing, touch,
};
use crate::model::model;
use crate::reply::{Reply, bad_request, method_not_allowed, not_found};
use crate::store::object;
use restore_core::catalog::ItemType;

impl Api<'_> {
    /// `POST {item}/assignments`: adds one assignment. Microsoft Graph documents it per
    /// assignment type ("Create windowsAutopilotDeploymentProfileAssignment", "Create
    /// deviceConfigurationAssignment"): the body is the assignment, the answer `201` with it.
    pub(crate) fn add_assignment(&mut self, ty: &'static ItemType, id: &str, body: Value) -> Reply {
        if !self.tenant.contains(ty.collection, id) {
            return missing(ty, id);
        }
        let Value::Object(_) = &body else { return bad_request("Empty Payload. JSON content expected.") };
        if let Err(reply) = check_assignment(self.tenant, &body) {
            return reply;
        }
        let mut assignment = object(body);
        if let Some(assignment_type) = model().navigation_element(&collection_type(ty), "assignments") {
            if let Err(reply) = check_unknown_property(assignment_type, &assignment) {
                return reply;
            }
            // `source` and `sourceId` are read-only in the published model; the server sets them.
            assignment.remove("source");
            assignment.remove("sourceId");
            fill_server_defaults(assignment_type, &mut assignment);
        }
        assignment.insert("id".into(), Value::String(format!("{id}_{}", self.ids.guid())));
        let now = self.ids.now();
        let Some(entity) = self.tenant.collection(ty.collection).entities.get_mut(id) else { return missing(ty, id) };
        entity.assignments.push(Value::Object(assignment.clone()));
        touch(entity, now);
        Reply::json(201, Value::Object(assignment))
    }

    /// `PATCH` / `DELETE {item}/assignments/{id}` (documented Update / Delete of the assignment types).
    pub(crate) fn assignment_item(
        &mut self,
        ty: &'static ItemType,
        method: &str,
        id: &str,
        assignment_id: &str,
        body: Value,
    ) -> Reply {
        if method == "PATCH"
            && body.get("target").is_some()
            && let Err(reply) = check_assignment(self.tenant, &body)
        {
            return reply;
        }
        let now = self.ids.now();
        let Some(entity) = self.tenant.collection(ty.collection).entities.get_mut(id) else { return missing(ty, id) };
        let Some(index) =
            entity.assignments.iter().position(|a| a.get("id").and_then(Value::as_str) == Some(assignment_id))
        else {
            return not_found(format!("Assignment '{assignment_id}' was not found."));
        };
        match method {
            "PATCH" => {
                let Value::Object(mut patch) = body else {
                    return bad_request("Empty Payload. JSON content expected.");
                };
                patch.remove("id");
                if let Value::Object(stored) = &mut entity.assignments[index] {
                    stored.extend(patch);
                }
            }
            "DELETE" => {
                entity.assignments.remove(index);
            }
            other => return method_not_allowed(other, "assignments"),
        }
        touch(entity, now);
        Reply::no_content()
    }
}
