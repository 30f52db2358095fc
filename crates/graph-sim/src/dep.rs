//! Apple automated device enrollment (ADE/DEP) as Intune serves it: the tenant's enrollment-program
//! tokens (`depOnboardingSettings`, seeded: a token is uploaded from Apple Business Manager, not
//! restored) and the enrollment profiles under each token, created, read, updated and deleted.
//!
//! Grounding: Microsoft Graph beta documents `depOnboardingSetting` (`tokenName`, `appleIdentifier`,
//! `tokenType`…) with its `enrollmentProfiles` navigation, `POST|GET|PATCH|DELETE
//! /deviceManagement/depOnboardingSettings/{id}/enrollmentProfiles[/{profileId}]` for
//! `depIOSEnrollmentProfile` / `depMacOSEnrollmentProfile`, and the profile's `setDefaultProfile`
//! action; the generated model lists the types (the catalogue collection with `{id}`). IntuneCD 2.6.0 reads profile
//! ids as `{tokenId}_{guid}`, which the simulator's ids follow. Guesses, marked where coded: that
//! `isDefault` in a create or update body is refused (it is set by `setDefaultProfile`), that
//! `setDefaultProfile` clears the flag of the token's other profiles of the same platform, and the
//! wording of the refusals.

use serde_json::{Map, Value, json};

use crate::api::{Api, ApiRequest, check_unknown_property, fill_server_defaults, select, stamp_times, touch};
use crate::model::{model, short_type};
use crate::odata::QueryOptions;
use crate::reply::{Reply, bad_request, method_not_allowed, model_validation, not_found};
use crate::store::{IdSource, Tenant, object};
use restore_core::backup::BackupItem;
use restore_core::catalog::ItemType;

/// The token collection.
pub(crate) const TOKENS: &str = "deviceManagement/depOnboardingSettings";
/// The enrollment-profile collection under a token, as the generated model names it.
pub(crate) const PROFILES_MODEL: &str = "deviceManagement/depOnboardingSettings/{id}/enrollmentProfiles";
/// The navigation under a token holding its profiles.
const PROFILES: &str = "enrollmentProfiles";
/// The profile's property the `setDefaultProfile` action sets.
const IS_DEFAULT: &str = "isDefault";

/// Where a token's profiles are stored (and the path Graph serves them at).
pub(crate) fn profiles_path(token_id: &str) -> String {
    format!("{TOKENS}/{token_id}/{PROFILES}")
}

/// The profile types the model allows in the collection (the element's derived types).
fn profile_type(body: &Map<String, Value>) -> Result<String, Reply> {
    let Some(nested) = model().collections.get(PROFILES_MODEL) else {
        return Err(bad_request("The enrollment profile collection is not in the model."));
    };
    let odata = body.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let short = short_type(odata);
    if nested.derived_types.iter().any(|d| d == short) {
        Ok(short.to_string())
    } else {
        Err(model_validation(format!(
            "'{odata}' is not a type of the enrollmentProfiles collection; name one of {:?} in @odata.type.",
            nested.derived_types
        )))
    }
}

/// Guess: `isDefault` is set by `setDefaultProfile`, so a body setting it is refused.
fn check_no_default_flag(body: &Map<String, Value>) -> Result<(), Reply> {
    if body.get(IS_DEFAULT).and_then(Value::as_bool) == Some(true) {
        return Err(bad_request("isDefault cannot be set in a create or update; use the setDefaultProfile action."));
    }
    Ok(())
}

/// Adds an enrollment-program token called `token_name` to `tenant`; returns its id.
pub(crate) fn add_token(tenant: &mut Tenant, id: String, token_name: &str, seq: u64, now: &str) -> String {
    let mut resource = object(json!({
        "@odata.type": "#microsoft.graph.depOnboardingSetting",
        "id": id,
        "tokenName": token_name,
        "appleIdentifier": format!("{}@example.com", token_name.replace(' ', ".").to_ascii_lowercase()),
        "tokenType": "dep",
        "lastModifiedDateTime": now,
        "roleScopeTagIds": ["0"],
    }));
    fill_server_defaults("depOnboardingSetting", &mut resource);
    tenant.insert(TOKENS, resource, seq);
    id
}

/// Where a seeded backup item is stored: a parent-scoped one (an enrollment profile) under the
/// token it records (by id and name, else the id prefix), the token created if the tenant lacks it.
pub(crate) fn seed_collection(tenant: &mut Tenant, ids: &mut IdSource, ty: &ItemType, item: &BackupItem) -> String {
    if !ty.collection.contains("{id}") {
        return ty.collection.to_string();
    }
    let recorded = item.references.enrollment_tokens.first();
    let token_id = recorded
        .map(|t| t.id.clone())
        .or_else(|| item.id.split_once('_').map(|(token, _)| token.to_string()))
        .unwrap_or_default();
    if !tenant.contains(TOKENS, &token_id) {
        let name =
            recorded.map(|t| t.display_name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| token_id.clone());
        let (seq, now) = (ids.next_seq(), ids.now());
        add_token(tenant, token_id.clone(), &name, seq, &now);
    }
    profiles_path(&token_id)
}

impl Api<'_> {
    /// `deviceManagement/depOnboardingSettings/…`: tokens are read only; their profiles are written.
    pub(crate) fn dep_onboarding(&mut self, req: &ApiRequest<'_>, rest: &[&str], options: &QueryOptions) -> Reply {
        let body = req.body.clone().unwrap_or(Value::Null);
        match (req.method, rest) {
            ("GET", []) => self.list_plain(TOKENS, req, options, TOKENS),
            ("GET", [token]) => match self.tenant.entity(TOKENS, token) {
                Some(entity) => Reply::json(200, select(Value::Object(entity.resource.clone()), options)),
                None => not_found(format!("Resource '{token}' was not found in '{TOKENS}'.")),
            },
            (_, [token, PROFILES, ..]) if !self.tenant.contains(TOKENS, token) => {
                not_found(format!("Resource '{token}' was not found in '{TOKENS}'."))
            }
            ("GET", [token, PROFILES]) => self.list_plain(&profiles_path(token), req, options, &profiles_path(token)),
            ("POST", [token, PROFILES]) => self.create_profile(token, body),
            ("GET", [token, PROFILES, id]) => match self.tenant.entity(&profiles_path(token), id) {
                Some(entity) => Reply::json(200, select(Value::Object(entity.resource.clone()), options)),
                None => profile_missing(id),
            },
            ("PATCH", [token, PROFILES, id]) => self.update_profile(token, id, body),
            ("DELETE", [token, PROFILES, id]) => {
                match self.tenant.collection(&profiles_path(token)).entities.remove(*id) {
                    Some(_) => Reply::no_content(),
                    None => profile_missing(id),
                }
            }
            ("POST", [token, PROFILES, id, "setDefaultProfile"]) => self.set_default_profile(token, id),
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    fn create_profile(&mut self, token: &str, body: Value) -> Reply {
        let Value::Object(mut body) = body else {
            return bad_request("Empty Payload. JSON content expected.");
        };
        let type_name = match profile_type(&body) {
            Ok(name) => name,
            Err(reply) => return reply,
        };
        if let Err(reply) = check_unknown_property(&type_name, &body).and_then(|()| check_no_default_flag(&body)) {
            return reply;
        }
        if body.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
            return model_validation("An enrollment profile needs a displayName.");
        }
        for key in ["id", "createdDateTime", "lastModifiedDateTime", "@odata.context"] {
            body.remove(key);
        }
        let id = format!("{token}_{}", self.ids.guid());
        let now = self.ids.now();
        let mut resource = Map::new();
        resource.insert("@odata.type".into(), json!(format!("#microsoft.graph.{type_name}")));
        resource.insert("id".into(), json!(id));
        resource.extend(body.into_iter().filter(|(k, _)| k != "@odata.type"));
        stamp_times(&type_name, &mut resource, &now);
        fill_server_defaults(&type_name, &mut resource);
        let seq = self.ids.next_seq();
        let path = profiles_path(token);
        let entity = self.tenant.insert(&path, resource, seq);
        let mut created = entity.resource.clone();
        created.insert("@odata.context".into(), json!(format!("{}/$metadata#{path}/$entity", self.base)));
        Reply::json(201, Value::Object(created))
    }

    fn update_profile(&mut self, token: &str, id: &str, body: Value) -> Reply {
        let Value::Object(mut body) = body else {
            return bad_request("Empty Payload. JSON content expected.");
        };
        let path = profiles_path(token);
        let Some(existing) = self.tenant.entity(&path, id) else { return profile_missing(id) };
        let stored_type =
            short_type(existing.resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default()).to_string();
        if let Some(odata) = body.get("@odata.type").and_then(Value::as_str)
            && short_type(odata) != stored_type
        {
            return bad_request(format!("The @odata.type of profile '{id}' is {stored_type}; it cannot change."));
        }
        if let Err(reply) = check_unknown_property(&stored_type, &body).and_then(|()| check_no_default_flag(&body)) {
            return reply;
        }
        for key in ["id", "@odata.type", "createdDateTime", "lastModifiedDateTime", "@odata.context"] {
            body.remove(key);
        }
        let now = self.ids.now();
        let Some(entity) = self.tenant.collection(&path).entities.get_mut(id) else { return profile_missing(id) };
        entity.resource.extend(body);
        touch(entity, now);
        Reply::no_content()
    }

    /// Guess: the profile becomes its token's default for its platform (its `@odata.type`); the
    /// token's other profiles of that type stop being the default.
    fn set_default_profile(&mut self, token: &str, id: &str) -> Reply {
        let path = profiles_path(token);
        let Some(chosen) = self.tenant.entity(&path, id) else { return profile_missing(id) };
        let odata = chosen.resource.get("@odata.type").cloned();
        for entity in self.tenant.collection(&path).entities.values_mut() {
            if entity.resource.get("@odata.type") == odata.as_ref() {
                let is_chosen = entity.id() == id;
                entity.resource.insert(IS_DEFAULT.into(), json!(is_chosen));
            }
        }
        Reply::no_content()
    }
}

fn profile_missing(id: &str) -> Reply {
    not_found(format!("Resource '{id}' was not found in '{PROFILES}'."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Paging;

    struct Sim {
        tenant: Tenant,
        ids: IdSource,
    }

    impl Sim {
        fn new() -> (Sim, String) {
            let mut ids = IdSource::new(Some(7), Some("2026-01-01T00:00:00Z".into()));
            let mut tenant = Tenant::new(&mut ids);
            let (token_id, seq, now) = (ids.guid(), ids.next_seq(), ids.now());
            let token = add_token(&mut tenant, token_id, "Contoso ABM", seq, &now);
            (Sim { tenant, ids }, token)
        }

        fn call(&mut self, method: &'static str, path: &str, body: Option<Value>) -> Reply {
            let paging = Paging { page_size: 100, settings_page_size: 100 };
            let mut api =
                Api { tenant_id: "t", tenant: &mut self.tenant, ids: &mut self.ids, paging, base: "http://sim/beta" };
            let rest: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(2).collect();
            api.dep_onboarding(&ApiRequest { method, path, raw_query: "", body }, &rest, &QueryOptions::default())
        }
    }

    fn profile(name: &str) -> Value {
        json!({"@odata.type": "#microsoft.graph.depIOSEnrollmentProfile", "displayName": name,
            "description": "", "isMandatory": true, "supervisedModeEnabled": true, "enabledSkipKeys": ["Siri"]})
    }

    fn body(reply: &Reply) -> Value {
        reply.body.clone().unwrap_or(Value::Null)
    }

    #[test]
    fn a_profile_is_created_read_updated_and_deleted_under_its_token_with_the_token_prefixed_id() {
        let (mut sim, token) = Sim::new();
        let profiles = format!("{TOKENS}/{token}/enrollmentProfiles");
        let created = sim.call("POST", &profiles, Some(profile("iPads")));
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = body(&created)["id"].as_str().unwrap_or_default().to_string();
        assert!(id.starts_with(&format!("{token}_")), "{id}");
        assert_eq!(body(&created)["isDefault"], json!(false), "a server default from the model");

        let patched = sim.call("PATCH", &format!("{profiles}/{id}"), Some(json!({"description": "shop iPads"})));
        assert_eq!(patched.status, 204);
        let read = sim.call("GET", &format!("{profiles}/{id}"), None);
        assert_eq!(body(&read)["description"], json!("shop iPads"));
        assert_eq!(body(&sim.call("GET", &profiles, None))["value"].as_array().map(Vec::len), Some(1));

        assert_eq!(sim.call("DELETE", &format!("{profiles}/{id}"), None).status, 204);
        assert_eq!(sim.call("GET", &format!("{profiles}/{id}"), None).status, 404);
    }

    #[test]
    fn bodies_are_checked_against_the_published_model_and_tokens_are_read_only() {
        let (mut sim, token) = Sim::new();
        let profiles = format!("{TOKENS}/{token}/enrollmentProfiles");
        let mut unknown = profile("x");
        unknown["notAProperty"] = json!(1);
        assert_eq!(sim.call("POST", &profiles, Some(unknown)).status, 400);
        let untyped = json!({"displayName": "x"});
        assert_eq!(sim.call("POST", &profiles, Some(untyped)).status, 400, "the derived type must be named");
        let mut default = profile("x");
        default["isDefault"] = json!(true);
        assert_eq!(sim.call("POST", &profiles, Some(default)).status, 400, "isDefault is set by setDefaultProfile");
        assert_eq!(sim.call("POST", &format!("{TOKENS}/nope/enrollmentProfiles"), Some(profile("x"))).status, 404);
        assert_eq!(sim.call("POST", TOKENS, Some(json!({"tokenName": "x"}))).status, 405);
        let tokens = body(&sim.call("GET", TOKENS, None));
        assert_eq!(tokens["value"][0]["tokenName"], json!("Contoso ABM"));
    }

    #[test]
    fn set_default_profile_makes_one_profile_of_a_platform_the_default() {
        let (mut sim, token) = Sim::new();
        let profiles = format!("{TOKENS}/{token}/enrollmentProfiles");
        let first =
            body(&sim.call("POST", &profiles, Some(profile("a"))))["id"].as_str().unwrap_or_default().to_string();
        let second =
            body(&sim.call("POST", &profiles, Some(profile("b"))))["id"].as_str().unwrap_or_default().to_string();
        assert_eq!(sim.call("POST", &format!("{profiles}/{first}/setDefaultProfile"), None).status, 204);
        assert_eq!(sim.call("POST", &format!("{profiles}/{second}/setDefaultProfile"), None).status, 204);
        assert_eq!(body(&sim.call("GET", &format!("{profiles}/{first}"), None))["isDefault"], json!(false));
        assert_eq!(body(&sim.call("GET", &format!("{profiles}/{second}"), None))["isDefault"], json!(true));
    }
}
