//! Enrollment configurations: the tenant's built-in defaults (update-only), the priority list each
//! belongs to (set only through `setPriority`, see [`crate::engine::enrollment_priority`]), and what their write bodies leave out.

use serde_json::Value;

use crate::catalog::ItemType;

/// The catalogue name of enrollment configurations.
pub const ENROLLMENT_CONFIGURATION: &str = "enrollmentConfiguration";

/// The property Graph orders a priority list by.
pub const PRIORITY: &str = "priority";

/// Properties a restore never sends in a create or PATCH body for an enrollment configuration.
/// `priority` is set by Graph on create and changed only through the `setPriority` action (the SDK's
/// `deviceEnrollmentConfigurations/{id}/setPriority`; IntuneCD 2.6.0 strips it from its PATCH and
/// calls the action): a restore sends it as its own planned step. The configuration type is the
/// server's (it follows the `@odata.type`).
pub const UNWRITTEN_ON_CREATE: &[&str] = &["priority", "deviceEnrollmentConfigurationType"];

/// Also left out of an update: the platform of a single-platform restriction (IntuneCD 2.6.0 strips
/// it from its PATCH too).
pub const UNWRITTEN_ON_UPDATE: &[&str] = &["priority", "deviceEnrollmentConfigurationType", "platformType"];

/// Whether `item_type` is the enrollment configurations'.
pub fn is_enrollment(item_type: &ItemType) -> bool {
    item_type.name == ENROLLMENT_CONFIGURATION
}

/// The configuration's priority, when it records one.
pub fn priority(resource: &Value) -> Option<i64> {
    resource.get("priority").and_then(Value::as_i64)
}

/// Whether `resource` is one of the tenant's built-in default configurations (priority 0, or a
/// `default…` configuration type): every tenant has them, Graph never creates or deletes them.
pub fn is_default(item_type: &ItemType, resource: &Value) -> bool {
    let default_type = resource
        .get("deviceEnrollmentConfigurationType")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("default"));
    is_enrollment(item_type) && (priority(resource) == Some(0) || default_type)
}

/// Removes what a restore never writes from a create (`updating == false`) or update body.
pub fn strip_unwritten(item_type: &ItemType, body: &mut Value, updating: bool) {
    if !is_enrollment(item_type) {
        return;
    }
    if let Value::Object(map) = body {
        for key in if updating { UNWRITTEN_ON_UPDATE } else { UNWRITTEN_ON_CREATE } {
            map.remove(*key);
        }
    }
}

/// Removes the server-ordered fields from a normalized document before comparison: the body never
/// carries them; the preview puts back the planned `priority` of the configurations it orders.
pub fn drop_server_ordered(item_type: Option<&ItemType>, doc: &mut Value) {
    if let (Some(t), Value::Object(map)) = (item_type, doc)
        && is_enrollment(t)
    {
        for key in UNWRITTEN_ON_CREATE {
            map.remove(*key);
        }
    }
}

/// The priority list a configuration belongs to: Intune orders each configuration type on its own
/// (the admin center lists device limit, platform restrictions, Windows Hello, status pages… each
/// with its own order and default), and single-platform restrictions per platform (one tab and one
/// default per platform). `None` for another type. The split per type and platform is read off the
/// admin center, not documented by Graph (an assumption, see docs/intune-types.md).
pub fn priority_list(item_type: &ItemType, resource: &Value) -> Option<String> {
    if !is_enrollment(item_type) {
        return None;
    }
    let odata = resource.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let short = odata.trim_start_matches("#microsoft.graph.");
    Some(match identity_qualifier(item_type, resource) {
        Some(platform) => format!("{short}/{platform}"),
        None => short.to_string(),
    })
}

/// The part of an enrollment configuration's identity beyond type and name: the platform of a
/// single-platform restriction (each platform has its own default, all called the same).
pub fn identity_qualifier(item_type: &ItemType, object: &Value) -> Option<String> {
    let odata = object.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    if !is_enrollment(item_type) || !odata.ends_with(".deviceEnrollmentPlatformRestrictionConfiguration") {
        return None;
    }
    object.get("platformType").and_then(Value::as_str).map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use serde_json::json;

    fn enrollment() -> &'static ItemType {
        item_type(ENROLLMENT_CONFIGURATION).unwrap()
    }

    #[test]
    fn defaults_are_priority_zero_or_a_default_type() {
        let t = enrollment();
        assert!(is_default(t, &json!({"priority": 0, "deviceEnrollmentConfigurationType": "limit"})));
        assert!(is_default(t, &json!({"deviceEnrollmentConfigurationType": "defaultWindowsHelloForBusiness"})));
        assert!(!is_default(t, &json!({"priority": 2, "deviceEnrollmentConfigurationType": "limit"})));
        assert!(!is_default(item_type("deviceConfiguration").unwrap(), &json!({"priority": 0})));
    }

    #[test]
    fn priority_and_the_configuration_type_are_never_written_the_platform_only_on_create() {
        let t = enrollment();
        let doc = json!({"displayName": "iOS", "priority": 3, "platformType": "ios",
            "deviceEnrollmentConfigurationType": "singlePlatformRestriction"});
        let mut create = doc.clone();
        strip_unwritten(t, &mut create, false);
        assert_eq!(create, json!({"displayName": "iOS", "platformType": "ios"}));
        let mut update = doc;
        strip_unwritten(t, &mut update, true);
        assert_eq!(update, json!({"displayName": "iOS"}));
    }

    #[test]
    fn only_single_platform_restrictions_are_told_apart_by_platform() {
        let t = enrollment();
        let restriction = json!({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration",
            "platformType": "iOS"});
        assert_eq!(identity_qualifier(t, &restriction), Some("ios".to_string()));
        let notification = json!({"@odata.type": "#microsoft.graph.deviceEnrollmentNotificationConfiguration",
            "platformType": "allPlatforms"});
        assert_eq!(identity_qualifier(t, &notification), None);
    }

    #[test]
    fn each_configuration_type_and_restriction_platform_has_its_own_priority_list() {
        let t = enrollment();
        let limit = json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration"});
        assert_eq!(priority_list(t, &limit).as_deref(), Some("deviceEnrollmentLimitConfiguration"));
        let ios = json!({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration",
            "platformType": "iOS"});
        assert_eq!(priority_list(t, &ios).as_deref(), Some("deviceEnrollmentPlatformRestrictionConfiguration/ios"));
        assert_eq!(priority_list(item_type("deviceConfiguration").unwrap(), &limit), None);
    }
}
