//! Write bodies for Graph: the backup payload with server-managed fields stripped (top-level
//! `@odata.type` kept), references mapped into the target tenant, and scope tags never empty.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::backup::BackupItem;
use crate::catalog::ItemType;
use crate::engine::enrollment::strip_unwritten;
use crate::engine::mapping::{
    DEFAULT_SCOPE_TAG_ID, RefKind, RefTarget, ReferenceMapping, Rewrite, ensure_default_scope_tag, rewrite_refs,
};
use crate::engine::normalize::{ASSIGNMENTS, backup_document, strip_server_managed};

/// How a sub-resource reaches Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubResourceWrite {
    /// Inside the object's body, on create and on update (Settings Catalog `settings`, sent by PUT).
    InBody,
    /// Inside the create body; on update through an action (compliance `scheduledActionsForRule`
    /// through `scheduleActionsForRules`).
    InCreateThenAction {
        /// Action name under the object.
        action: &'static str,
        /// Key of the list in the action body.
        body_key: &'static str,
    },
    /// Through an action after create and on update (app protection `apps` through `targetApps`).
    Action {
        /// Action name under the object.
        action: &'static str,
        /// Key of the list in the action body.
        body_key: &'static str,
    },
    /// A sub-collection whose entries are created or updated one by one, matched by a key
    /// (notification template `localizedNotificationMessages` by `locale`). Never deleted.
    UpsertByKey {
        /// The matching key.
        key: &'static str,
    },
    /// Inside the create body; on update through an action that takes only the entries that
    /// changed, matched by a key (intent `settings` through `updateSettings`, by `definitionId`).
    InCreateThenChangedByKey {
        /// Action name under the object.
        action: &'static str,
        /// Key of the list in the action body.
        body_key: &'static str,
        /// The matching key.
        key: &'static str,
    },
    /// A sub-collection written after create and on update by one action carrying the difference
    /// between the tenant's entries and the backup's (Administrative Templates' `definitionValues`
    /// through `updateDefinitionValues`: `added`, `updated`, `deletedIds`).
    DiffAction {
        /// Action name under the object.
        action: &'static str,
    },
}

impl SubResourceWrite {
    /// Whether the create body carries it.
    pub fn in_create_body(self) -> bool {
        matches!(
            self,
            SubResourceWrite::InBody
                | SubResourceWrite::InCreateThenAction { .. }
                | SubResourceWrite::InCreateThenChangedByKey { .. }
        )
    }
}

/// How `sub` of `item_type` is written.
pub fn sub_resource_write(item_type: &ItemType, sub: &str) -> SubResourceWrite {
    match (item_type.name, sub) {
        ("compliancePolicy", "scheduledActionsForRule") => SubResourceWrite::InCreateThenAction {
            action: "scheduleActionsForRules",
            body_key: "deviceComplianceScheduledActionForRules",
        },
        ("settingsCatalogCompliancePolicy", "scheduledActionsForRule") => {
            SubResourceWrite::InCreateThenAction { action: "setScheduledActions", body_key: "scheduledActions" }
        }
        ("managedAppConfigurationPolicy", "settings") => {
            SubResourceWrite::Action { action: "changeSettings", body_key: "settings" }
        }
        (_, "apps") => SubResourceWrite::Action { action: "targetApps", body_key: "apps" },
        (_, "localizedNotificationMessages") => SubResourceWrite::UpsertByKey { key: "locale" },
        (crate::engine::intents::INTENT, "settings") => SubResourceWrite::InCreateThenChangedByKey {
            action: "updateSettings",
            body_key: "settings",
            key: crate::engine::intents::SETTING_KEY,
        },
        (crate::engine::admx::TYPE_NAME, crate::engine::admx::DEFINITION_VALUES) => {
            SubResourceWrite::DiffAction { action: crate::engine::admx::UPDATE_ACTION }
        }
        _ => SubResourceWrite::InBody,
    }
}

/// Whether an update of `item_type` replaces the object whole (PUT) instead of patching it: the
/// Settings Catalog kinds (configuration policies, and new-style compliance policies, whose settings
/// IntuneCD 2.6.0 updates with PUT).
pub fn updates_by_replace(item_type: &ItemType) -> bool {
    item_type.identity == crate::catalog::IdentityKey::NameAndTechnologies
}

/// Maps an item's source references to target ids, including objects created earlier in the run.
pub struct Resolver<'a> {
    /// The item's references, as the preview mapped them.
    pub references: &'a [ReferenceMapping],
    /// Target ids of the objects created so far, by item key.
    pub created: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    /// The target id for a source reference; `Ok(None)` drops it (an unmapped scope tag).
    pub fn target_id(&self, kind: RefKind, source_id: &str) -> Result<Option<String>, String> {
        if kind == RefKind::ScopeTag && source_id == DEFAULT_SCOPE_TAG_ID {
            return Ok(Some(DEFAULT_SCOPE_TAG_ID.to_string()));
        }
        let Some(mapping) = self.references.iter().find(|r| r.kind == kind && r.source_id == source_id) else {
            return Err(format!("{} {source_id} was not mapped by the preview", kind.title()));
        };
        let name = mapping.name.as_deref().unwrap_or(source_id);
        match &mapping.target {
            RefTarget::Existing { id } => Ok(Some(id.clone())),
            RefTarget::Created { item } => match self.created.get(item) {
                Some(id) => Ok(Some(id.clone())),
                None => Err(format!("{} {name:?} was not created by this run ({item} did not complete)", kind.title())),
            },
            RefTarget::Missing if kind == RefKind::ScopeTag => Ok(None),
            RefTarget::Missing => Err(format!("{} {name:?} does not exist in the target tenant", kind.title())),
            RefTarget::Ambiguous { ids } => {
                Err(format!("{} {name:?} is ambiguous in the target tenant ({} objects)", kind.title(), ids.len()))
            }
        }
    }

    /// Rewrites every reference in `doc` to its target id.
    fn map(&self, doc: &mut Value) -> Result<(), String> {
        let mut failure = None;
        rewrite_refs(doc, &mut |kind, id| match self.target_id(kind, id) {
            Ok(Some(target)) => Rewrite::Replace(target),
            Ok(None) => Rewrite::Drop,
            Err(e) => {
                failure.get_or_insert(e);
                Rewrite::Keep
            }
        });
        ensure_default_scope_tag(doc);
        failure.map_or(Ok(()), Err)
    }
}

/// The POST body: properties plus the sub-resources the create body carries.
pub fn create_body(item_type: &ItemType, item: &BackupItem, resolver: &Resolver) -> Result<Value, String> {
    let mut body = with_subs(item_type, item, resolver, false, |w| w.in_create_body())?;
    crate::engine::intents::shape_create_body(item_type, &mut body);
    crate::engine::apple_enrollment::strip_default_flag(Some(item_type), &mut body);
    Ok(body)
}

/// The PATCH body of an update, or the PUT body of a full replace: the object's properties plus its
/// in-body sub-resources (no assignments, no sub-resource written through an action).
pub fn update_body(item_type: &ItemType, item: &BackupItem, resolver: &Resolver) -> Result<Value, String> {
    let mut body = with_subs(item_type, item, resolver, true, |w| w == SubResourceWrite::InBody)?;
    crate::engine::intents::strip_update_body(item_type, &mut body);
    crate::engine::apple_enrollment::strip_default_flag(Some(item_type), &mut body);
    Ok(match crate::engine::singleton::singleton(item_type) {
        // A singleton is written through its parent, without the id the operator gave it.
        Some(singleton) => singleton.parent_body(body),
        None => body,
    })
}

fn with_subs(
    item_type: &ItemType,
    item: &BackupItem,
    resolver: &Resolver,
    updating: bool,
    keep: impl Fn(SubResourceWrite) -> bool,
) -> Result<Value, String> {
    let mut doc = backup_document(item, false);
    if let Value::Object(map) = &mut doc {
        for sub in item_type.sub_resources {
            if !keep(sub_resource_write(item_type, sub.name)) {
                map.remove(sub.name);
            }
        }
    }
    strip_server_managed(&mut doc);
    strip_unwritten(item_type, &mut doc, updating);
    resolver.map(&mut doc)?;
    Ok(doc)
}

/// The entries of one sub-resource, stripped and mapped, for its action or upsert.
pub fn sub_resource_values(item: &BackupItem, sub: &str, resolver: &Resolver) -> Result<Vec<Value>, String> {
    let values =
        item.sub_resources.get(sub).cloned().or_else(|| item.resource.get(sub).and_then(|v| v.as_array().cloned()));
    let mut doc = Value::Object(Map::from_iter([(sub.to_string(), Value::Array(values.unwrap_or_default()))]));
    strip_server_managed(&mut doc);
    resolver.map(&mut doc)?;
    Ok(match doc.get_mut(sub).map(Value::take) {
        Some(Value::Array(values)) => values,
        _ => Vec::new(),
    })
}

/// The `/assign` body: the full desired assignment set, ids mapped into the target.
pub fn assign_body(item_type: &ItemType, item: &BackupItem, resolver: &Resolver) -> Result<Value, String> {
    let mut doc = Value::Object(Map::from_iter([(
        ASSIGNMENTS.to_string(),
        Value::Array(item.assignments.clone().unwrap_or_default()),
    )]));
    strip_server_managed(&mut doc);
    if let Some(Value::Array(list)) = doc.get_mut(ASSIGNMENTS) {
        for a in list.iter_mut() {
            if let Value::Object(map) = a {
                map.remove("source");
                map.remove("sourceId");
            }
        }
    }
    resolver.map(&mut doc)?;
    let list = doc.get_mut(ASSIGNMENTS).map(Value::take).unwrap_or(Value::Array(Vec::new()));
    Ok(Value::Object(Map::from_iter([(item_type.assign_body_key.to_string(), list)])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::References;
    use crate::catalog::item_type;
    use serde_json::json;

    fn compliance() -> BackupItem {
        BackupItem {
            item_type: "compliancePolicy".into(),
            id: "c1".into(),
            display_name: "C".into(),
            platform: "windows".into(),
            resource: json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "id": "c1",
                             "displayName": "C", "version": 4, "roleScopeTagIds": ["5", "6"]}),
            assignments: Some(vec![json!({"id": "a", "source": "direct", "target": {"groupId": "g-src"}})]),
            sub_resources: BTreeMap::from([(
                "scheduledActionsForRule".to_string(),
                vec![json!({"id": "r", "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                    {"id": "x", "actionType": "notification", "notificationTemplateId": "t-src"}]})],
            )]),
            references: References::default(),
        }
    }

    fn mapping(kind: RefKind, source: &str, target: RefTarget) -> ReferenceMapping {
        ReferenceMapping { kind, source_id: source.into(), name: Some(format!("name-{source}")), target }
    }

    #[test]
    fn bodies_are_stripped_mapped_and_keep_the_odata_type() {
        let refs = vec![
            mapping(RefKind::ScopeTag, "5", RefTarget::Existing { id: "50".into() }),
            mapping(RefKind::ScopeTag, "6", RefTarget::Missing),
            mapping(RefKind::Group, "g-src", RefTarget::Existing { id: "g-tgt".into() }),
            mapping(
                RefKind::NotificationTemplate,
                "t-src",
                RefTarget::Created { item: "notificationTemplate/t".into() },
            ),
        ];
        let created = BTreeMap::from([("notificationTemplate/t".to_string(), "t-new".to_string())]);
        let r = Resolver { references: &refs, created: &created };
        let t = item_type("compliancePolicy").unwrap();
        let item = compliance();

        let create = create_body(t, &item, &r).unwrap();
        assert_eq!(create["@odata.type"], "#microsoft.graph.windows10CompliancePolicy");
        assert!(create.get("id").is_none() && create.get("version").is_none());
        assert_eq!(create["roleScopeTagIds"], json!(["50"]), "the unmapped tag is dropped");
        assert_eq!(
            create["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["notificationTemplateId"],
            "t-new"
        );

        let patch = update_body(t, &item, &r).unwrap();
        assert!(patch.get("scheduledActionsForRule").is_none());

        let assign = assign_body(t, &item, &r).unwrap();
        assert_eq!(assign, json!({"assignments": [{"target": {"groupId": "g-tgt"}}]}));
    }

    #[test]
    fn a_foundation_not_yet_created_fails_the_body() {
        let refs = vec![mapping(RefKind::Filter, "f", RefTarget::Created { item: "assignmentFilter/f".into() })];
        let created = BTreeMap::new();
        let r = Resolver { references: &refs, created: &created };
        assert!(r.target_id(RefKind::Filter, "f").unwrap_err().contains("was not created"));
        let only_missing_tags_drop = vec![mapping(RefKind::Group, "g", RefTarget::Missing)];
        let r = Resolver { references: &only_missing_tags_drop, created: &created };
        assert!(r.target_id(RefKind::Group, "g").is_err());
    }

    #[test]
    fn scope_tags_are_never_sent_empty() {
        let refs = vec![mapping(RefKind::ScopeTag, "6", RefTarget::Missing)];
        let created = BTreeMap::new();
        let r = Resolver { references: &refs, created: &created };
        let mut item = compliance();
        item.resource["roleScopeTagIds"] = json!(["6"]);
        let t = item_type("compliancePolicy").unwrap();
        assert_eq!(update_body(t, &item, &r).unwrap()["roleScopeTagIds"], json!(["0"]));
    }
}
