//! The simulated Graph surface of the policy kinds of issue 14b: a managed-app configuration's
//! `changeSettings`, a new-style compliance policy's `setScheduledActions`, the device-management
//! settings, and what Conditional Access policies reference (users, named locations).

use serde_json::{Map, Value, json};

use crate::api::{
    Api, ApiRequest, check_compliance_rules, check_navigation_item, check_unknown_property, fill_server_defaults,
    missing, number_sub_items, select,
};
use crate::model::{model, short_type};
use crate::odata::QueryOptions;
use crate::reply::{Reply, bad_request, graph_error, method_not_allowed, model_validation, not_found};
use crate::store::{GROUPS, Tenant, object};
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

/// Where the simulator keeps the device-management settings singleton: a one-entity collection
/// under the catalogue type's path, keyed by the operator's fixed id (what a seed stores).
const SETTINGS_PATH: &str = "deviceManagement/settings";
const SETTINGS_ID: &str = "settings";
const SETTINGS_TYPE: &str = "deviceManagementSettings";

impl Api<'_> {
    /// `GET /deviceManagement/settings` (IntuneCD's DeviceManagementSettings backup reads it): the
    /// complex property alone, every property of the published type (a tenant always has it; never
    /// set ones read as their defaults), no id, no `@odata.type`.
    pub(crate) fn device_management_settings(&mut self, req: &ApiRequest<'_>, rest: &[&str]) -> Reply {
        match (req.method, rest) {
            ("GET", []) => {
                let mut settings = self.current_settings();
                settings.insert(
                    "@odata.context".into(),
                    Value::String(format!("{}/$metadata#deviceManagement/settings", self.base)),
                );
                Reply::json(200, Value::Object(settings))
            }
            ("GET", [segment, ..]) => bad_request(format!("Resource not found for the segment '{segment}'.")),
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    /// `GET` / `PATCH /deviceManagement`. A PATCH carrying `settings` (as IntuneCD's update sends it)
    /// merges them into the tenant's settings (a guess: OData 4.01 updates a complex property's
    /// nested properties with PATCH semantics; a restore sends the whole object either way) and
    /// answers 204. Other properties of the singleton are not simulated and are refused.
    pub(crate) fn device_management(&mut self, req: &ApiRequest<'_>) -> Reply {
        match req.method {
            "GET" => {
                let settings = self.current_settings();
                Reply::json(
                    200,
                    json!({"@odata.context": format!("{}/$metadata#deviceManagement", self.base),
                        "id": self.tenant_id, "settings": settings}),
                )
            }
            "PATCH" => {
                let Some(Value::Object(body)) = req.body.clone() else {
                    return bad_request("Empty Payload. JSON content expected.");
                };
                if let Some(other) = body.keys().find(|k| k.as_str() != "settings" && !k.contains('@')) {
                    return bad_request(format!(
                        "The simulator updates only 'settings' of deviceManagement, not '{other}'."
                    ));
                }
                let Some(Value::Object(patch)) = body.get("settings").cloned() else {
                    return model_validation("'settings' must be an object of type deviceManagementSettings.");
                };
                if let Err(reply) = check_unknown_property(SETTINGS_TYPE, &patch) {
                    return reply;
                }
                let mut settings = self.current_settings();
                settings.extend(patch.into_iter().filter(|(k, _)| !k.contains('@')));
                settings.insert("id".into(), Value::String(SETTINGS_ID.into()));
                let seq = self.ids.next_seq();
                self.tenant.insert(SETTINGS_PATH, settings, seq);
                Reply::no_content()
            }
            method => method_not_allowed(method, req.path),
        }
    }

    /// The tenant's settings as Graph shows them: stored values over the type's defaults.
    fn current_settings(&self) -> Map<String, Value> {
        let mut settings = Map::new();
        fill_server_defaults(SETTINGS_TYPE, &mut settings);
        if let Some(stored) = self.tenant.entity(SETTINGS_PATH, SETTINGS_ID) {
            for (key, value) in &stored.resource {
                if !matches!(key.as_str(), "id" | "@odata.type") {
                    settings.insert(key.clone(), value.clone());
                }
            }
        }
        settings
    }
}

/// Entra users, kept like groups (Conditional Access conditions name users by id).
pub(crate) const USERS: &str = "users";
/// Named locations (Conditional Access `conditions.locations` name them by id).
pub(crate) const NAMED_LOCATIONS: &str = "identity/conditionalAccess/namedLocations";
/// The derived types a named location is created as (`namedLocation` itself is abstract in the
/// docs' create examples, which always send one of these).
const NAMED_LOCATION_TYPES: &[&str] = &["#microsoft.graph.ipNamedLocation", "#microsoft.graph.countryNamedLocation"];

impl Api<'_> {
    /// `users`: list (`$filter` on displayName, `$select`), get by id, create (the docs' create
    /// example sends displayName, mailNickname, userPrincipalName, accountEnabled and a password
    /// profile; the simulator needs displayName and userPrincipalName).
    pub(crate) fn users(&mut self, req: &ApiRequest<'_>, rest: &[&str], options: &QueryOptions) -> Reply {
        match (req.method, rest) {
            ("GET", []) => self.list_plain(USERS, req, options, "users"),
            ("GET", [id]) => self.get_directory_object(USERS, id, options),
            ("POST", []) => {
                let body = object(req.body.clone().unwrap_or(Value::Null));
                if let Some(missing) = ["displayName", "userPrincipalName"].iter().find(|k| !body.contains_key(**k)) {
                    return graph_error(
                        400,
                        "Request_BadRequest",
                        format!("A value is required for property '{missing}' of resource 'User'."),
                    );
                }
                Reply::json(201, self.store_plain(USERS, "#microsoft.graph.user", body))
            }
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    /// `identity/conditionalAccess/namedLocations` (Microsoft Graph docs, "Create namedLocation"):
    /// list, get, create as `ipNamedLocation` or `countryNamedLocation` (checked against the
    /// published model), update (204), delete.
    pub(crate) fn named_locations(&mut self, req: &ApiRequest<'_>, rest: &[&str], options: &QueryOptions) -> Reply {
        match (req.method, rest) {
            ("GET", []) => self.list_plain(NAMED_LOCATIONS, req, options, "identity/conditionalAccess/namedLocations"),
            ("GET", [id]) => match self.tenant.entity(NAMED_LOCATIONS, id) {
                Some(location) => Reply::json(200, select(Value::Object(location.resource.clone()), options)),
                None => not_found(format!("Resource '{id}' was not found in 'namedLocations'.")),
            },
            ("POST", []) => {
                let body = object(req.body.clone().unwrap_or(Value::Null));
                let odata = body.get("@odata.type").and_then(Value::as_str).unwrap_or_default().to_string();
                if !NAMED_LOCATION_TYPES.contains(&odata.as_str()) {
                    return model_validation(format!(
                        "A named location needs '@odata.type' {}, not '{odata}'.",
                        NAMED_LOCATION_TYPES.join(" or ")
                    ));
                }
                if let Err(reply) = check_unknown_property(short_type(&odata), &body) {
                    return reply;
                }
                if body.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return model_validation("A value is required for property 'displayName' of 'namedLocation'.");
                }
                let mut created = object(self.store_plain(NAMED_LOCATIONS, &odata, body));
                created.insert(
                    "@odata.context".into(),
                    Value::String(format!("{}/$metadata#identity/conditionalAccess/namedLocations/$entity", self.base)),
                );
                Reply::json(201, Value::Object(created))
            }
            ("PATCH", [id]) => {
                let body = object(req.body.clone().unwrap_or(Value::Null));
                let Some(existing) = self.tenant.entity(NAMED_LOCATIONS, id) else {
                    return not_found(format!("Resource '{id}' was not found in 'namedLocations'."));
                };
                let odata =
                    existing.resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default().to_string();
                if let Err(reply) = check_unknown_property(short_type(&odata), &body) {
                    return reply;
                }
                let now = self.ids.now();
                let entity = self.tenant.collection(NAMED_LOCATIONS).entities.get_mut(*id);
                if let Some(entity) = entity {
                    entity
                        .resource
                        .extend(body.into_iter().filter(|(k, _)| !matches!(k.as_str(), "id" | "@odata.type")));
                    entity.resource.insert("modifiedDateTime".into(), Value::String(now));
                }
                Reply::no_content()
            }
            ("DELETE", [id]) => match self.tenant.collection(NAMED_LOCATIONS).entities.remove(*id) {
                Some(_) => Reply::no_content(),
                None => not_found(format!("Resource '{id}' was not found in 'namedLocations'.")),
            },
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    /// `GET {collection}/{id}` of a directory object (a group or a user), as Entra answers it.
    pub(crate) fn get_directory_object(&self, collection: &str, id: &str, options: &QueryOptions) -> Reply {
        match self.tenant.entity(collection, id) {
            Some(object) => Reply::json(200, select(Value::Object(object.resource.clone()), options)),
            None => graph_error(
                404,
                "Request_ResourceNotFound",
                format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            ),
        }
    }

    pub(crate) fn list_plain(
        &self,
        collection: &str,
        req: &ApiRequest<'_>,
        options: &QueryOptions,
        context: &str,
    ) -> Reply {
        let items: Vec<Value> = self
            .tenant
            .collections
            .get(collection)
            .map(|c| c.ordered())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| options.filter.as_ref().is_none_or(|f| f.matches(&e.resource)))
            .map(|e| select(Value::Object(e.resource.clone()), options))
            .collect();
        let context = format!("{}/$metadata#{context}", self.base);
        self.page(items, options, self.paging.page_size, &context, req)
    }

    fn store_plain(&mut self, collection: &str, odata: &str, body: Map<String, Value>) -> Value {
        let id = self.ids.guid();
        let mut resource = Map::new();
        resource.insert("@odata.type".into(), Value::String(odata.to_string()));
        resource.insert("id".into(), Value::String(id));
        resource.extend(body.into_iter().filter(|(k, _)| !matches!(k.as_str(), "id" | "@odata.type")));
        if collection == NAMED_LOCATIONS {
            resource.insert("createdDateTime".into(), Value::String(self.ids.now()));
            resource.entry("modifiedDateTime").or_insert(Value::Null);
        }
        let seq = self.ids.next_seq();
        Value::Object(self.tenant.insert(collection, resource, seq).resource.clone())
    }
}

/// What a Conditional Access policy needs on create (docs: `conditions` with `applications` and
/// `users` is required; every docs example sends `displayName` and `state`), and that the groups,
/// users and named locations its conditions name exist in the tenant (a guess for the error's
/// shape: Graph refuses unknown object ids in a policy with 400).
pub(crate) fn check_conditional_access(
    tenant: &Tenant,
    body: &Map<String, Value>,
    creating: bool,
) -> Result<(), Reply> {
    if creating {
        for key in ["displayName", "state"] {
            if body.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(model_validation(format!(
                    "A value is required for property '{key}' of 'conditionalAccessPolicy'."
                )));
            }
        }
        let conditions = body.get("conditions");
        if ["applications", "users"].iter().any(|k| conditions.and_then(|c| c.get(*k)).is_none_or(Value::is_null)) {
            return Err(bad_request("conditions.applications and conditions.users are required."));
        }
    }
    let Some(conditions) = body.get("conditions") else { return Ok(()) };
    let ids = |pointer: &str| -> Vec<&str> {
        conditions.pointer(pointer).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
    };
    let checks: [(&str, &str, &[&str]); 6] = [
        ("/users/includeGroups", GROUPS, &[]),
        ("/users/excludeGroups", GROUPS, &[]),
        ("/users/includeUsers", USERS, &["All", "None", "GuestsOrExternalUsers"]),
        ("/users/excludeUsers", USERS, &["All", "None", "GuestsOrExternalUsers"]),
        (
            "/locations/includeLocations",
            NAMED_LOCATIONS,
            &["All", "AllTrusted", "00000000-0000-0000-0000-000000000000"],
        ),
        (
            "/locations/excludeLocations",
            NAMED_LOCATIONS,
            &["All", "AllTrusted", "00000000-0000-0000-0000-000000000000"],
        ),
    ];
    for (pointer, collection, keywords) in checks {
        if let Some(id) = ids(pointer).into_iter().find(|id| !keywords.contains(id) && !tenant.contains(collection, id))
        {
            return Err(bad_request(format!("conditions{pointer}: object '{id}' was not found in this tenant.")));
        }
    }
    Ok(())
}
