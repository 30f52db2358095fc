//! Intents as Intune makes them: `deviceManagement/templates` (a few of Microsoft's templates),
//! an intent created by its template's `createInstance`, its settings changed by `updateSettings`.
//!
//! Grounding: Microsoft Graph beta documents `deviceManagementTemplate` (properties `versionInfo`,
//! `isDeprecated` — "intents cannot be created from a deprecated template" —, `templateType`,
//! `templateSubtype`, `platformType`), its `createInstance` action (parameters `displayName`,
//! `description`, `settingsDelta`, `roleScopeTagIds`; returns the intent) and the intent's
//! `updateSettings` action (parameter `settings`; the published model's signature). Guesses, marked
//! where they are coded: the wording of the refusals, that `updateSettings` matches settings by
//! `definitionId`, and the template ids other than the two IntuneCD names.

use serde_json::{Map, Value, json};

use crate::api::{Api, ApiRequest, select};
use crate::odata::QueryOptions;
use crate::reply::{Reply, bad_request, method_not_allowed, model_validation, not_found};
use restore_core::catalog::{ItemType, item_type};

/// The template collection.
pub(crate) const TEMPLATES: &str = "deviceManagement/templates";
/// The intent collection.
const INTENTS: &str = "endpointSecurityIntent";

/// Microsoft's templates, the same in every tenant (templates are global; a new version is a new
/// template, the old one deprecated). `e44c2ca3-…` is the endpoint detection and response template
/// IntuneCD 2.6.0 names; `034ccd46-…` the Windows security baseline of IntuneCD backups; the
/// deprecated older baseline's id is illustrative (a guess).
fn built_in_templates() -> Vec<Value> {
    vec![
        json!({"@odata.type": "#microsoft.graph.securityBaselineTemplate",
            "id": "034ccd46-190c-4afc-adf1-ad7cc11262eb", "displayName": "Security Baseline for Windows 10 and later",
            "description": "Security Baseline for Windows 10 and later", "versionInfo": "November 2021",
            "isDeprecated": false, "intentCount": 0, "templateType": "securityBaseline", "templateSubtype": "none",
            "platformType": "windows10AndLater", "publishedDateTime": "2021-11-15T00:00:00Z"}),
        json!({"@odata.type": "#microsoft.graph.securityBaselineTemplate",
            "id": "a8d6fa0e-1e66-455b-bb51-8ce0dde1559e", "displayName": "Security Baseline for Windows 10 and later",
            "description": "Security Baseline for Windows 10 and later", "versionInfo": "August 2020",
            "isDeprecated": true, "intentCount": 0, "templateType": "securityBaseline", "templateSubtype": "none",
            "platformType": "windows10AndLater", "publishedDateTime": "2020-08-01T00:00:00Z"}),
        json!({"@odata.type": "#microsoft.graph.deviceManagementTemplate",
            "id": "e44c2ca3-2f9a-400a-a113-6cc88efd773d", "displayName": "Endpoint detection and response",
            "description": "Endpoint detection and response", "versionInfo": "1", "isDeprecated": false,
            "intentCount": 0, "templateType": "securityTemplate", "templateSubtype": "endpointDetectionReponse",
            "platformType": "windows10AndLater", "publishedDateTime": "2020-05-01T00:00:00Z"}),
    ]
}

fn template(id: &str) -> Option<Value> {
    built_in_templates()
        .into_iter()
        .find(|t| t.get("id").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(id)))
}

/// The setting-instance types of the published model (`deviceManagementSettingInstance` and its
/// derived types): a setting of another type is refused.
fn is_setting_type(odata: &str) -> bool {
    let short = odata.strip_prefix("#microsoft.graph.").unwrap_or(odata);
    let graph = crate::model::model();
    short == "deviceManagementSettingInstance" || graph.is_a(short, "deviceManagementSettingInstance")
}

/// Every setting needs a `definitionId` and a setting-instance `@odata.type` of the model.
fn check_settings(settings: &[Value]) -> Result<(), Reply> {
    for setting in settings {
        let Some(map) = setting.as_object() else {
            return Err(model_validation("A setting instance must be an object."));
        };
        if map.get("definitionId").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(model_validation("A setting instance needs a definitionId."));
        }
        let odata = map.get("@odata.type").and_then(Value::as_str).unwrap_or("deviceManagementSettingInstance");
        if !is_setting_type(odata) {
            return Err(model_validation(format!("'{odata}' is not a deviceManagementSettingInstance type.")));
        }
    }
    Ok(())
}

fn settings_of(body: &Map<String, Value>, key: &str) -> Result<Vec<Value>, Reply> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => check_settings(items).map(|()| items.clone()),
        Some(_) => Err(model_validation(format!("'{key}' must be an array."))),
    }
}

/// Refuses a body key the action does not take (as the `assign` action does).
fn check_parameters(body: &Map<String, Value>, parameters: &[&str], action: &str) -> Result<(), Reply> {
    match body.keys().find(|k| !parameters.contains(&k.as_str())) {
        Some(unknown) => {
            Err(bad_request(format!("The parameter '{unknown}' is not a parameter of action '{action}'.")))
        }
        None => Ok(()),
    }
}

impl Api<'_> {
    /// `deviceManagement/templates[/{id}[/createInstance]]`.
    pub(crate) fn templates(&mut self, req: &ApiRequest<'_>, rest: &[&str], options: &QueryOptions) -> Reply {
        match (req.method, rest) {
            ("GET", []) => {
                let items: Vec<Value> = built_in_templates()
                    .into_iter()
                    .filter(|t| options.filter.as_ref().is_none_or(|f| t.as_object().is_some_and(|m| f.matches(m))))
                    .map(|t| select(t, options))
                    .collect();
                let context = format!("{}/$metadata#{TEMPLATES}", self.base);
                self.page(items, options, self.paging.page_size, &context, req)
            }
            ("GET", [id]) => match template(id) {
                Some(t) => Reply::json(200, select(t, options)),
                None => not_found(format!("Resource '{id}' was not found in '{TEMPLATES}'.")),
            },
            ("POST", [id, "createInstance"]) => self.create_instance(id, req.body.clone().unwrap_or(Value::Null)),
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    /// `createInstance`: a new intent of the template, its settings the delta given.
    fn create_instance(&mut self, template_id: &str, body: Value) -> Reply {
        let Some(template) = template(template_id) else {
            return not_found(format!("Resource '{template_id}' was not found in '{TEMPLATES}'."));
        };
        if template.get("isDeprecated").and_then(Value::as_bool) == Some(true) {
            // The refusal's wording is a guess; that Graph refuses is documented.
            return bad_request(format!(
                "Template '{template_id}' is deprecated; an intent cannot be created from it."
            ));
        }
        let Value::Object(body) = body else { return bad_request("Empty Payload. JSON content expected.") };
        let parameters = ["displayName", "description", "settingsDelta", "roleScopeTagIds"];
        if let Err(reply) = check_parameters(&body, &parameters, "createInstance") {
            return reply;
        }
        let settings = match settings_of(&body, "settingsDelta") {
            Ok(settings) => settings,
            Err(reply) => return reply,
        };
        let Some(ty) = item_type(INTENTS) else { return bad_request("intents are not in this build's catalogue") };
        let mut intent = Map::new();
        intent.insert("@odata.type".into(), Value::String(ty.base_odata()));
        for key in ["displayName", "description", "roleScopeTagIds"] {
            if let Some(value) = body.get(key) {
                intent.insert(key.into(), value.clone());
            }
        }
        intent.insert("templateId".into(), template["id"].clone());
        intent.insert("settings".into(), Value::Array(settings));
        let created = self.create(ty, Value::Object(intent));
        // An action answers 200 with the object it returns, not 201.
        match (created.status, created.body) {
            (201, Some(body)) => Reply::json(200, body),
            (status, body) => Reply { status, body, ..Reply::no_content() },
        }
    }

    /// `intents/{id}/updateSettings`: each setting given replaces the intent's setting of the same
    /// `definitionId`, or is added (matching by `definitionId` is a guess).
    pub(crate) fn update_intent_settings(&mut self, ty: &'static ItemType, id: &str, body: Value) -> Reply {
        let Value::Object(body) = body else { return bad_request("Empty Payload. JSON content expected.") };
        if let Err(reply) = check_parameters(&body, &["settings"], "updateSettings") {
            return reply;
        }
        let settings = match settings_of(&body, "settings") {
            Ok(settings) => settings,
            Err(reply) => return reply,
        };
        let now = self.ids.now();
        let Some(entity) = self.tenant.collection(ty.collection).entities.get_mut(id) else {
            return crate::api::missing(ty, id);
        };
        let current = entity.subs.entry("settings".into()).or_default();
        for mut setting in settings {
            let key = setting.get("definitionId").cloned();
            match current.iter_mut().find(|s| s.get("definitionId") == key.as_ref()) {
                Some(existing) => {
                    if let (Value::Object(new), Some(old_id)) = (&mut setting, existing.get("id").cloned()) {
                        new.insert("id".into(), old_id);
                    }
                    *existing = setting;
                }
                None => {
                    if let Value::Object(new) = &mut setting {
                        new.insert("id".into(), Value::String(current.len().to_string()));
                    }
                    current.push(setting);
                }
            }
        }
        crate::api::touch(entity, now);
        Reply::no_content()
    }
}
