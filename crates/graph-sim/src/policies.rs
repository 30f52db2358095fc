//! Simulated Graph actions of the policy kinds of issue 14b: a managed-app configuration's
//! `changeSettings` and a new-style compliance policy's `setScheduledActions` (both from the SDK).

use serde_json::{Value, json};

use crate::api::{Api, check_compliance_rules, check_navigation_item, missing, number_sub_items};
use crate::model::model;
use crate::reply::{Reply, bad_request};
use restore_core::catalog::ItemType;

impl Api<'_> {
    /// `changeSettings` (managed-app configuration, SDK `ChangeSettingsPostRequestBody`, no answer
    /// body): the body's `settings` replace the policy's settings.
    pub(crate) fn change_settings(&mut self, ty: &'static ItemType, id: &str, body: Value) -> Reply {
        match self.replace_sub_through_action(ty, id, "settings", "settings", &body) {
            Ok(_) => Reply::no_content(),
            Err(reply) => reply,
        }
    }

    /// `setScheduledActions` (new-style compliance, SDK `SetScheduledActionsPostRequestBody` with
    /// `scheduledActions`, answering the rules as `SetScheduledActionsPostResponse`): replaces the
    /// rules and their action configurations. The rule that each needs a `block` action is the same
    /// guess as for the classic compliance policies.
    pub(crate) fn set_scheduled_actions(&mut self, ty: &'static ItemType, id: &str, body: Value) -> Reply {
        if let Some(Value::Array(rules)) = body.get("scheduledActions")
            && let Err(reply) = check_compliance_rules(rules)
        {
            return reply;
        }
        match self.replace_sub_through_action(ty, id, "scheduledActionsForRule", "scheduledActions", &body) {
            Ok(stored) => {
                let element = model().navigation_element(ty.base_odata_type, "scheduledActionsForRule");
                let context = format!(
                    "{}/$metadata#Collection(microsoft.graph.{})",
                    self.base,
                    element.unwrap_or("deviceManagementComplianceScheduledActionForRule")
                );
                Reply::json(200, json!({"@odata.context": context, "value": stored}))
            }
            Err(reply) => reply,
        }
    }

    /// Replaces sub-resource `sub` of object `id` by the array under `body_key`, each entry checked
    /// against the navigation's element type and given server ids.
    fn replace_sub_through_action(
        &mut self,
        ty: &'static ItemType,
        id: &str,
        sub: &str,
        body_key: &str,
        body: &Value,
    ) -> Result<Vec<Value>, Reply> {
        if !self.tenant.contains(ty.collection, id) {
            return Err(missing(ty, id));
        }
        let Some(Value::Array(mut items)) = body.get(body_key).cloned() else {
            return Err(bad_request(format!("The body must carry an array '{body_key}'.")));
        };
        if let Some(reply) =
            items.iter().filter_map(Value::as_object).find_map(|i| check_navigation_item(ty, sub, i).err())
        {
            return Err(reply);
        }
        number_sub_items(sub, id, &mut items, self.ids);
        let now = self.ids.now();
        let Some(entity) = self.tenant.collection(ty.collection).entities.get_mut(id) else {
            return Err(missing(ty, id));
        };
        entity.subs.insert(sub.to_string(), items.clone());
        crate::api::touch(entity, now);
        Ok(items)
    }
}
