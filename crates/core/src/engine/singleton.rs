//! Tenant-wide singletons (the `deviceManagement` `settings`): read at their own path, matched
//! without identity, never created or deleted, updated by a PATCH of their parent carrying them.

use serde_json::{Map, Value};

use crate::catalog::ItemType;

/// Where a singleton lives in Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Singleton {
    /// The catalogue type.
    pub type_name: &'static str,
    /// The path reading it (`GET`), also the catalogue's `collection`.
    pub read_path: &'static str,
    /// The object a write PATCHes (IntuneCD 2.6.0: `PATCH /deviceManagement` with `{"settings": …}`).
    pub parent_path: &'static str,
    /// The parent's property holding it.
    pub property: &'static str,
    /// The fixed id the operator gives it (Graph gives a complex property none).
    pub id: &'static str,
}

/// The device-management settings: tenant-wide Intune settings (compliance check-in threshold,
/// inactivity retirement, diagnostics, …), `deviceManagementSettings` in the published model.
pub const DEVICE_MANAGEMENT_SETTINGS: Singleton = Singleton {
    type_name: "deviceManagementSettings",
    read_path: "deviceManagement/settings",
    parent_path: "deviceManagement",
    property: "settings",
    id: "settings",
};

const SINGLETONS: &[Singleton] = &[DEVICE_MANAGEMENT_SETTINGS];

/// The singleton `item_type` is, if it is one.
pub fn singleton(item_type: &ItemType) -> Option<&'static Singleton> {
    SINGLETONS.iter().find(|s| s.type_name == item_type.name)
}

impl Singleton {
    /// The object as read (`@odata.context`, no id) as the operator holds it: with its fixed id.
    pub fn as_object(&self, read: Value) -> Value {
        let mut map = match read {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        map.remove("@odata.context");
        map.insert("id".into(), Value::String(self.id.to_string()));
        Value::Object(map)
    }

    /// The PATCH body of the parent carrying `body` under the singleton's property.
    pub fn parent_body(&self, body: Value) -> Value {
        Value::Object(Map::from_iter([(self.property.to_string(), body)]))
    }
}

/// The path a write of object `id` of `item_type` goes to: the parent for a singleton.
pub fn write_path(item_type: &ItemType, id: &str) -> String {
    match singleton(item_type) {
        Some(s) => s.parent_path.to_string(),
        None => format!("{}/{id}", item_type.collection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use serde_json::json;

    #[test]
    fn the_settings_singleton_is_read_at_its_path_and_written_through_its_parent() {
        let t = item_type("deviceManagementSettings").unwrap();
        let s = singleton(t).unwrap();
        assert_eq!(t.collection, s.read_path);
        assert_eq!(write_path(t, "settings"), "deviceManagement");
        assert_eq!(s.parent_body(json!({"secureByDefault": true})), json!({"settings": {"secureByDefault": true}}));
        let read = json!({"@odata.context": "x", "secureByDefault": true});
        assert_eq!(s.as_object(read), json!({"id": "settings", "secureByDefault": true}));
        assert_eq!(write_path(item_type("scopeTag").unwrap(), "5"), "deviceManagement/roleScopeTags/5");
        assert!(singleton(item_type("scopeTag").unwrap()).is_none());
    }

    fn settings_backup() -> crate::backup::BackupSet {
        crate::backup::BackupSet {
            tenant: Some(crate::backup::BackupTenant { id: "source".into(), label: "Source".into() }),
            captured_at: Some("2026-01-01T00:00:00Z".into()),
            digest: String::new(),
            items: vec![crate::backup::BackupItem {
                item_type: "deviceManagementSettings".into(),
                id: "settings".into(),
                display_name: "Device management settings (tenant-wide)".into(),
                platform: "any".into(),
                resource: json!({"id": "settings", "secureByDefault": true}),
                assignments: None,
                sub_resources: Default::default(),
                references: Default::default(),
            }],
        }
    }

    #[test]
    fn settings_the_tenant_does_not_show_are_never_created() {
        use crate::engine::analysis::{PlannedAction, analyze};
        let scope = crate::engine::scope::resolve_scope(&Default::default(), &settings_backup()).unwrap();
        let unread = crate::engine::snapshot::TenantSnapshot::default();
        let analysed = analyze(&scope, &unread, crate::api::ExistingObjects::Update);
        assert_eq!(analysed[0].preview.action, PlannedAction::Skip, "{:?}", analysed[0].preview.reason);
        assert!(analysed[0].preview.reason.as_deref().is_some_and(|r| r.contains("only ever updated")));
    }
}
