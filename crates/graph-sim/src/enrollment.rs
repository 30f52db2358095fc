//! Enrollment configurations as Intune keeps them: the server gives each new one its type and the
//! next priority, and the tenant's built-in defaults (priority 0) can be neither created nor deleted.

use serde_json::{Map, Value, json};

use crate::reply::{Reply, bad_request};
use crate::store::Tenant;
use restore_core::catalog::ItemType;

const COLLECTION: &str = "deviceManagement/deviceEnrollmentConfigurations";

/// `deviceEnrollmentConfigurationType` per `@odata.type`: the members of the published enum that
/// name each derived type (the pairing is read off the names; a guess where they differ).
const CONFIGURATION_TYPES: &[(&str, &str)] = &[
    ("deviceEnrollmentLimitConfiguration", "limit"),
    ("deviceEnrollmentPlatformRestrictionsConfiguration", "platformRestrictions"),
    ("deviceEnrollmentPlatformRestrictionConfiguration", "singlePlatformRestriction"),
    ("deviceEnrollmentWindowsHelloForBusinessConfiguration", "windowsHelloForBusiness"),
    ("windows10EnrollmentCompletionPageConfiguration", "windows10EnrollmentCompletionPageConfiguration"),
    ("deviceComanagementAuthorityConfiguration", "deviceComanagementAuthorityConfiguration"),
    ("deviceEnrollmentNotificationConfiguration", "enrollmentNotificationsConfiguration"),
    ("windowsRestoreDeviceEnrollmentConfiguration", "windowsRestore"),
];

fn is_default(resource: &Map<String, Value>) -> bool {
    resource.get("priority").and_then(Value::as_i64) == Some(0)
        || resource
            .get("deviceEnrollmentConfigurationType")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("default"))
}

/// A create may not make a default configuration (guess: every tenant has its defaults; IntuneCD
/// never creates nor removes them).
pub(crate) fn check_create(ty: &ItemType, body: &Map<String, Value>) -> Result<(), Reply> {
    if ty.collection == COLLECTION && is_default(body) {
        return Err(bad_request("A default enrollment configuration cannot be created."));
    }
    Ok(())
}

/// Sets what the server owns on a new configuration: its type (from the `@odata.type`) and the
/// next priority among the tenant's configurations of that type (guess: new ones go last, as in
/// the admin center; the priority is changed only through `setPriority`).
pub(crate) fn server_fields(tenant: &Tenant, ty: &ItemType, resource: &mut Map<String, Value>) {
    if ty.collection != COLLECTION {
        return;
    }
    let odata = resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let kind = configuration_type(odata);
    let highest = tenant
        .collections
        .get(COLLECTION)
        .into_iter()
        .flat_map(|c| c.entities.values())
        .filter(|e| e.resource.get("@odata.type").and_then(Value::as_str) == Some(odata))
        .filter_map(|e| e.resource.get("priority").and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    resource.insert("deviceEnrollmentConfigurationType".into(), json!(kind));
    resource.insert("priority".into(), json!(highest + 1));
}

fn configuration_type(odata: &str) -> &'static str {
    let short = odata.trim_start_matches("#microsoft.graph.");
    CONFIGURATION_TYPES.iter().find(|(o, _)| *o == short).map_or("unknown", |(_, k)| *k)
}

/// A seeded configuration without a type gets the server's (every stored one has one).
pub(crate) fn seed_fields(ty: &ItemType, resource: &mut Map<String, Value>) {
    if ty.collection == COLLECTION && !resource.contains_key("deviceEnrollmentConfigurationType") {
        let odata = resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
        let kind = configuration_type(odata);
        resource.insert("deviceEnrollmentConfigurationType".into(), json!(kind));
    }
}

/// A default configuration cannot be deleted (guess, as for create).
pub(crate) fn refuse_delete(tenant: &Tenant, collection: &str, id: &str) -> Option<Reply> {
    let entity = tenant.entity(collection, id)?;
    (collection == COLLECTION && is_default(&entity.resource))
        .then(|| bad_request("A default enrollment configuration cannot be deleted."))
}

/// A PATCH may not carry `priority`: Graph changes it through `setPriority` (the SDK's action;
/// IntuneCD strips it from its PATCH). The refusal's wording is a guess.
pub(crate) fn check_update(ty: &ItemType, body: &Map<String, Value>) -> Result<(), Reply> {
    if ty.collection == COLLECTION && body.contains_key("priority") {
        return Err(bad_request("The priority of an enrollment configuration is set with the setPriority action."));
    }
    Ok(())
}

/// `POST {id}/setPriority {"priority": n}` on a configuration that is not a default. Whether Intune
/// renumbers the other configurations is not documented; the simulator sets this one only.
pub(crate) fn set_priority(tenant: &mut Tenant, id: &str, body: &Value) -> Reply {
    let Some(priority) = body.get("priority").and_then(Value::as_i64).filter(|p| *p > 0) else {
        return bad_request("The body must carry a positive 'priority'.");
    };
    match tenant.collection(COLLECTION).entities.get_mut(id) {
        Some(entity) if is_default(&entity.resource) => {
            bad_request("The priority of a default enrollment configuration cannot be changed.")
        }
        Some(entity) => {
            entity.resource.insert("priority".into(), json!(priority));
            Reply::no_content()
        }
        None => crate::reply::not_found(format!("Resource '{id}' was not found in '{COLLECTION}'.")),
    }
}
