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

/// The priority list a configuration belongs to: its `@odata.type`, and the platform of a
/// single-platform restriction (the admin center orders each restriction type, and each platform's
/// restrictions, on its own, each list with its own default; Graph does not document it: a guess).
fn priority_list(resource: &Map<String, Value>) -> String {
    let odata = resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let platform = resource.get("platformType").and_then(Value::as_str).unwrap_or_default();
    if odata.ends_with(".deviceEnrollmentPlatformRestrictionConfiguration") {
        format!("{odata}/{}", platform.to_ascii_lowercase())
    } else {
        odata.to_string()
    }
}

/// The ids of the custom (non-default) configurations of `list`, in priority order.
fn custom_configurations_of(tenant: &Tenant, list: &str) -> Vec<(i64, String)> {
    let mut members: Vec<(i64, String)> = tenant
        .collections
        .get(COLLECTION)
        .into_iter()
        .flat_map(|c| c.entities.iter())
        .filter(|(_, e)| !is_default(&e.resource) && priority_list(&e.resource) == list)
        .map(|(id, e)| (e.resource.get("priority").and_then(Value::as_i64).unwrap_or(i64::MAX), id.clone()))
        .collect();
    members.sort();
    members
}

/// Sets what the server owns on a new configuration: its type (from the `@odata.type`) and the
/// next priority of its list. Grounded: "When you create a restriction, it's added to the list
/// just above the default" (learn.microsoft.com, Create device limit restrictions in Intune).
pub(crate) fn server_fields(tenant: &Tenant, ty: &ItemType, resource: &mut Map<String, Value>) {
    if ty.collection != COLLECTION {
        return;
    }
    let odata = resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let kind = configuration_type(odata);
    let highest = custom_configurations_of(tenant, &priority_list(resource))
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != i64::MAX)
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

/// `POST {id}/setPriority {"priority": n}` (documented: the one `priority` parameter, `204 No
/// Content`). What happens to the others is not documented; the simulator does what the admin
/// center's drag and drop shows ("select and drag the priority to the desired position in the
/// list"): the configuration moves to position `n` of its list and the others shift, so the list
/// stays numbered 1..count. A default configuration (never reordered: "You can change the priority
/// of non-default restrictions") and a position outside 1..count are refused with a 400 (the
/// refusals' wording is a guess).
pub(crate) fn set_priority(tenant: &mut Tenant, id: &str, body: &Value) -> Reply {
    let keys_ok = body.as_object().is_some_and(|b| b.keys().all(|k| k == "priority"));
    let Some(priority) = body.get("priority").and_then(Value::as_i64).filter(|_| keys_ok) else {
        return bad_request("The body must carry an integer 'priority' and nothing else.");
    };
    let Some(entity) = tenant.entity(COLLECTION, id) else {
        return crate::reply::not_found(format!("Resource '{id}' was not found in '{COLLECTION}'."));
    };
    if is_default(&entity.resource) {
        return bad_request("The priority of a default enrollment configuration cannot be changed.");
    }
    let list = custom_configurations_of(tenant, &priority_list(&entity.resource));
    let count = i64::try_from(list.len()).unwrap_or(i64::MAX);
    if !(1..=count).contains(&priority) {
        return bad_request(format!("The priority must be between 1 and {count}."));
    }
    let mut order: Vec<String> = list.into_iter().map(|(_, other)| other).filter(|other| other != id).collect();
    let at = usize::try_from(priority - 1).unwrap_or(0).min(order.len());
    order.insert(at, id.to_string());
    let configurations = &mut tenant.collection(COLLECTION).entities;
    for (position, member) in order.iter().enumerate() {
        if let Some(e) = configurations.get_mut(member) {
            e.resource.insert("priority".into(), json!(position + 1));
        }
    }
    Reply::no_content()
}
