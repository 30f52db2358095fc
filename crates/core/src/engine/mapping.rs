//! References between Intune objects (scope tags, assignment filters, groups, notification templates):
//! where they sit in a payload, their id ↔ display-name tables, and how a source id maps into the target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backup::{BackupItem, NamedRef};

/// The id of the built-in `Default` scope tag, the same in every tenant.
pub const DEFAULT_SCOPE_TAG_ID: &str = "0";
/// The display name of the built-in scope tag.
pub const DEFAULT_SCOPE_TAG_NAME: &str = "Default";
/// Graph's "no object" id, used for an assignment without a filter and an action without a template.
pub const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// What a reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RefKind {
    /// A role scope tag (`roleScopeTagIds`).
    ScopeTag,
    /// An assignment filter (`target.deviceAndAppManagementAssignmentFilterId`).
    Filter,
    /// An Entra group (`target.groupId`).
    Group,
    /// A notification message template (`scheduledActionConfigurations[].notificationTemplateId`).
    NotificationTemplate,
    /// A Conditional Access named location (`conditions.locations`).
    NamedLocation,
    /// An Entra user (a Conditional Access policy's `conditions.users`).
    User,
    /// The Apple enrollment-program token (`depOnboardingSetting`) an enrollment profile lives under.
    EnrollmentToken,
}

impl RefKind {
    /// Every kind, in report order.
    pub const ALL: [RefKind; 7] = [
        RefKind::ScopeTag,
        RefKind::Filter,
        RefKind::Group,
        RefKind::NotificationTemplate,
        RefKind::NamedLocation,
        RefKind::User,
        RefKind::EnrollmentToken,
    ];

    /// Human name, used in messages.
    pub fn title(self) -> &'static str {
        match self {
            RefKind::ScopeTag => "scope tag",
            RefKind::Filter => "assignment filter",
            RefKind::Group => "group",
            RefKind::NotificationTemplate => "notification template",
            RefKind::NamedLocation => "named location",
            RefKind::User => "user",
            RefKind::EnrollmentToken => "enrollment program token",
        }
    }

    /// The catalogue type restoring objects of this kind, when the operator restores them.
    pub fn foundation_type(self) -> Option<&'static str> {
        match self {
            RefKind::ScopeTag => Some("scopeTag"),
            RefKind::Filter => Some("assignmentFilter"),
            RefKind::NotificationTemplate => Some("notificationTemplate"),
            RefKind::Group | RefKind::NamedLocation | RefKind::User | RefKind::EnrollmentToken => None,
        }
    }

    /// The kind a foundation catalogue type provides, if it is one.
    pub fn of_foundation_type(type_name: &str) -> Option<RefKind> {
        RefKind::ALL.into_iter().find(|k| k.foundation_type() == Some(type_name))
    }
}

/// Id → display name, per reference kind, for one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdNames {
    names: BTreeMap<RefKind, BTreeMap<String, String>>,
}

impl IdNames {
    /// Records that `id` is called `name`.
    pub fn insert(&mut self, kind: RefKind, id: &str, name: &str) {
        self.names.entry(kind).or_default().insert(id.to_string(), name.to_string());
    }

    /// The name of `id`, if known (the built-in scope tag is always known).
    pub fn name(&self, kind: RefKind, id: &str) -> Option<&str> {
        match self.names.get(&kind).and_then(|m| m.get(id)) {
            Some(name) => Some(name),
            None if kind == RefKind::ScopeTag && id == DEFAULT_SCOPE_TAG_ID => Some(DEFAULT_SCOPE_TAG_NAME),
            None => None,
        }
    }

    /// The name of `id`, or a marker naming the unknown id (so it never equals a real name).
    pub fn name_or_marker(&self, kind: RefKind, id: &str) -> String {
        self.name(kind, id).map(str::to_string).unwrap_or_else(|| unknown_marker(kind, id))
    }

    /// Source-tenant names from a backup: every item's recorded references plus the foundation
    /// items themselves.
    pub fn from_backup<'a>(items: impl IntoIterator<Item = &'a BackupItem>) -> IdNames {
        let mut names = IdNames::default();
        for item in items {
            let refs = &item.references;
            for (kind, list) in [
                (RefKind::ScopeTag, &refs.scope_tags),
                (RefKind::Filter, &refs.filters),
                (RefKind::Group, &refs.groups),
                (RefKind::NotificationTemplate, &refs.notification_templates),
                (RefKind::NamedLocation, &refs.named_locations),
                (RefKind::User, &refs.users),
                (RefKind::EnrollmentToken, &refs.enrollment_tokens),
            ] {
                for r in list {
                    names.insert(kind, &r.id, &r.display_name);
                }
            }
            if let Some(kind) = RefKind::of_foundation_type(&item.item_type) {
                names.insert(kind, &item.id, &item.display_name);
            }
        }
        names
    }
}

/// How an id the tenant does not name is shown in normalized documents.
pub fn unknown_marker(kind: RefKind, id: &str) -> String {
    format!("?{}:{id}", kind.title().replace(' ', "-"))
}

/// The target tenant's referenceable objects seen by the preview: ids and display names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetMaps {
    /// Scope tags.
    #[serde(default)]
    pub scope_tags: Vec<NamedRef>,
    /// Assignment filters.
    #[serde(default)]
    pub filters: Vec<NamedRef>,
    /// Groups looked up (by the names the backup references, and the ids live assignments use).
    #[serde(default)]
    pub groups: Vec<NamedRef>,
    /// Notification message templates.
    #[serde(default)]
    pub notification_templates: Vec<NamedRef>,
    /// Named locations (read when Conditional Access policies are in scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_locations: Vec<NamedRef>,
    /// Users looked up (by the names Conditional Access conditions reference, and the ids live ones use).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<NamedRef>,
    /// ADMX definitions (with their presentations) that Administrative Templates in scope set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admx_definitions: Vec<crate::engine::admx::AdmxDefinition>,
    /// Apple enrollment-program tokens (read when Apple enrollment profiles are in scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enrollment_tokens: Vec<NamedRef>,
}

impl TargetMaps {
    /// The entries of one kind.
    pub fn entries(&self, kind: RefKind) -> &Vec<NamedRef> {
        match kind {
            RefKind::ScopeTag => &self.scope_tags,
            RefKind::Filter => &self.filters,
            RefKind::Group => &self.groups,
            RefKind::NotificationTemplate => &self.notification_templates,
            RefKind::NamedLocation => &self.named_locations,
            RefKind::User => &self.users,
            RefKind::EnrollmentToken => &self.enrollment_tokens,
        }
    }

    /// The entries of one kind, for adding.
    pub fn entries_mut(&mut self, kind: RefKind) -> &mut Vec<NamedRef> {
        match kind {
            RefKind::ScopeTag => &mut self.scope_tags,
            RefKind::Filter => &mut self.filters,
            RefKind::Group => &mut self.groups,
            RefKind::NotificationTemplate => &mut self.notification_templates,
            RefKind::NamedLocation => &mut self.named_locations,
            RefKind::User => &mut self.users,
            RefKind::EnrollmentToken => &mut self.enrollment_tokens,
        }
    }

    /// Adds an entry unless the same id is already there.
    pub fn add(&mut self, kind: RefKind, id: &str, name: &str) {
        let entries = self.entries_mut(kind);
        if !entries.iter().any(|e| e.id == id) {
            entries.push(NamedRef { id: id.to_string(), display_name: name.to_string() });
        }
    }

    /// Sorts every list so that equal tenants give equal maps.
    pub fn sort(&mut self) {
        for kind in RefKind::ALL {
            let entries = self.entries_mut(kind);
            entries.sort();
            entries.dedup();
        }
    }

    /// Target ids carrying `name`.
    pub fn ids_named(&self, kind: RefKind, name: &str) -> Vec<String> {
        let mut ids: Vec<String> =
            self.entries(kind).iter().filter(|e| e.display_name == name).map(|e| e.id.clone()).collect();
        if ids.is_empty() && kind == RefKind::ScopeTag && name == DEFAULT_SCOPE_TAG_NAME {
            ids.push(DEFAULT_SCOPE_TAG_ID.to_string());
        }
        ids
    }

    /// The id → name table.
    pub fn id_names(&self) -> IdNames {
        let mut names = IdNames::default();
        for kind in RefKind::ALL {
            for e in self.entries(kind) {
                names.insert(kind, &e.id, &e.display_name);
            }
        }
        names
    }
}

/// Where a source reference lands in the target tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum RefTarget {
    /// An object of that name exists in the target.
    Existing {
        /// Its target id.
        id: String,
    },
    /// A foundation item of this restore creates it.
    Created {
        /// Key of the foundation item.
        item: String,
    },
    /// Nothing of that name exists in the target, and this restore does not create it.
    Missing,
    /// More than one object of that name exists in the target.
    Ambiguous {
        /// Their target ids.
        ids: Vec<String>,
    },
}

/// One reference of an item and where it lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceMapping {
    /// What it points at.
    pub kind: RefKind,
    /// The id in the source tenant.
    pub source_id: String,
    /// The display name the backup recorded for it (`None` when it recorded none).
    pub name: Option<String>,
    /// Where it lands.
    pub target: RefTarget,
}

/// Maps a source reference by name into the target: existing object, created by a foundation item
/// of this restore (`foundations` maps a kind and name to the item key), missing, or ambiguous.
pub fn resolve_reference(
    kind: RefKind,
    source_id: &str,
    name: Option<&str>,
    target: &TargetMaps,
    foundations: &BTreeMap<(RefKind, String), String>,
) -> RefTarget {
    if kind == RefKind::ScopeTag && source_id == DEFAULT_SCOPE_TAG_ID {
        return RefTarget::Existing { id: DEFAULT_SCOPE_TAG_ID.to_string() };
    }
    let Some(name) = name else { return RefTarget::Missing };
    let ids = target.ids_named(kind, name);
    match ids.len() {
        1 => RefTarget::Existing { id: ids[0].clone() },
        0 => match foundations.get(&(kind, name.to_string())) {
            Some(item) => RefTarget::Created { item: item.clone() },
            None => RefTarget::Missing,
        },
        _ => RefTarget::Ambiguous { ids },
    }
}

/// What to do with one reference found in a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Leave it.
    Keep,
    /// Replace it (by a target id, or a name for comparison).
    Replace(String),
    /// Remove it (only scope-tag list entries can be removed).
    Drop,
}

/// Whether an id value is a real reference (not empty, not Graph's zero id).
fn is_reference(id: &str) -> bool {
    !id.is_empty() && id != ZERO_GUID
}

/// Top-level keys holding scope-tag id lists.
pub const SCOPE_TAG_KEYS: [&str; 2] = ["roleScopeTagIds", "roleScopeTags"];

/// Replaces an empty scope-tag list by the built-in tag (DESIGN §3: never sent empty).
pub fn ensure_default_scope_tag(doc: &mut Value) {
    for key in SCOPE_TAG_KEYS {
        if let Some(Value::Array(ids)) = doc.get_mut(key)
            && ids.is_empty()
        {
            ids.push(Value::String(DEFAULT_SCOPE_TAG_ID.to_string()));
        }
    }
}

/// Visits every reference in an item document (resource with its sub-resources and an
/// `assignments` list) and applies `f` to it.
pub fn rewrite_refs(doc: &mut Value, f: &mut impl FnMut(RefKind, &str) -> Rewrite) {
    for key in SCOPE_TAG_KEYS {
        if let Some(Value::Array(ids)) = doc.get_mut(key) {
            ids.retain_mut(|v| match v.as_str().filter(|s| is_reference(s)).map(|s| f(RefKind::ScopeTag, s)) {
                Some(Rewrite::Drop) => false,
                Some(Rewrite::Replace(new)) => {
                    *v = Value::String(new);
                    true
                }
                Some(Rewrite::Keep) | None => true,
            });
        }
    }
    if let Some(Value::Array(assignments)) = doc.get_mut("assignments") {
        for assignment in assignments {
            if let Some(target) = assignment.get_mut("target") {
                rewrite_field(target, "groupId", RefKind::Group, f);
                rewrite_field(target, "deviceAndAppManagementAssignmentFilterId", RefKind::Filter, f);
            }
        }
    }
    if let Some(Value::Array(rules)) = doc.get_mut("scheduledActionsForRule") {
        for rule in rules {
            if let Some(Value::Array(configs)) = rule.get_mut("scheduledActionConfigurations") {
                for config in configs {
                    rewrite_field(config, "notificationTemplateId", RefKind::NotificationTemplate, f);
                    rewrite_list(config, CC_LIST, RefKind::Group, f);
                }
            }
        }
    }
    crate::engine::conditional_access::rewrite_condition_refs(doc, f);
}

/// The groups a compliance notification action also mails (`deviceComplianceActionItem`).
pub const CC_LIST: &str = "notificationMessageCCList";

/// Rewrites every id of a list of references (a group that maps to nothing keeps its id: the
/// preview reports it as missing, a blocker as for assignments).
fn rewrite_list(obj: &mut Value, key: &str, kind: RefKind, f: &mut impl FnMut(RefKind, &str) -> Rewrite) {
    let Some(Value::Array(ids)) = obj.get_mut(key) else { return };
    for slot in ids {
        let Some(id) = slot.as_str().filter(|s| is_reference(s)) else { continue };
        if let Rewrite::Replace(new) = f(kind, id) {
            *slot = Value::String(new);
        }
    }
}

fn rewrite_field(obj: &mut Value, key: &str, kind: RefKind, f: &mut impl FnMut(RefKind, &str) -> Rewrite) {
    let Some(slot) = obj.get_mut(key) else { return };
    let Some(id) = slot.as_str().filter(|s| is_reference(s)) else { return };
    match f(kind, id) {
        Rewrite::Replace(new) => *slot = Value::String(new),
        Rewrite::Keep | Rewrite::Drop => {}
    }
}

/// The top-level entries of an item document that [`rewrite_refs`] reads: references sit in
/// these alone, so a document's references are those of these entries.
pub const REFERENCE_HOLDERS: [&str; 5] =
    ["roleScopeTagIds", "roleScopeTags", "assignments", "scheduledActionsForRule", "conditions"];

/// Every reference in an item document, deduplicated, in a stable order (only the entries that
/// can hold one are copied to be walked).
pub fn collect_refs(doc: &Value) -> Vec<(RefKind, String)> {
    let holders = REFERENCE_HOLDERS.iter().filter_map(|key| doc.get(*key).map(|v| (key.to_string(), v.clone())));
    collect_refs_in_place(&mut Value::Object(holders.collect()))
}

/// Every reference in a backup item's document ([`crate::engine::normalize::backup_document`]),
/// without copying the entries that cannot hold one.
pub fn collect_item_refs(item: &BackupItem, with_assignments: bool) -> Vec<(RefKind, String)> {
    let parts = crate::engine::normalize::document_parts(item, with_assignments);
    let holders = parts
        .into_iter()
        .filter(|(key, _)| REFERENCE_HOLDERS.contains(key))
        .map(|(k, p)| (k.to_string(), p.to_value()));
    collect_refs_in_place(&mut Value::Object(holders.collect()))
}

/// [`collect_refs`] of a document the caller holds mutably: walked where it is instead of copied
/// (every reference is kept, so nothing in it changes).
pub fn collect_refs_in_place(doc: &mut Value) -> Vec<(RefKind, String)> {
    let mut found = std::collections::BTreeSet::new();
    rewrite_refs(doc, &mut |kind, id| {
        found.insert((kind, id.to_string()));
        Rewrite::Keep
    });
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "roleScopeTagIds": ["0", "7"],
            "assignments": [
                {"target": {"groupId": "g1", "deviceAndAppManagementAssignmentFilterId": "f1"}},
                {"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget",
                            "deviceAndAppManagementAssignmentFilterId": ZERO_GUID}}
            ],
            "scheduledActionsForRule": [{"scheduledActionConfigurations": [{"notificationTemplateId": "t1"}]}]
        })
    }

    #[test]
    fn notification_cc_list_groups_are_references_mapped_like_assignment_groups() {
        let mut d = json!({"scheduledActionsForRule": [{"scheduledActionConfigurations": [
            {"actionType": "notification", "notificationTemplateId": ZERO_GUID, "notificationMessageCCList": ["g7", "g8"]}]}]});
        assert_eq!(collect_refs(&d), vec![(RefKind::Group, "g7".to_string()), (RefKind::Group, "g8".to_string())]);
        rewrite_refs(&mut d, &mut |kind, id| Rewrite::Replace(format!("{kind:?}-{id}")));
        assert_eq!(
            d["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["notificationMessageCCList"],
            json!(["Group-g7", "Group-g8"])
        );
    }

    #[test]
    fn every_reference_site_is_visited_and_zero_ids_are_not_references() {
        let refs = collect_refs(&doc());
        assert_eq!(
            refs,
            vec![
                (RefKind::ScopeTag, "0".to_string()),
                (RefKind::ScopeTag, "7".to_string()),
                (RefKind::Filter, "f1".to_string()),
                (RefKind::Group, "g1".to_string()),
                (RefKind::NotificationTemplate, "t1".to_string()),
            ]
        );
    }

    #[test]
    fn a_documents_references_are_those_of_its_reference_holders_and_nothing_else_is_rewritten() {
        let mut d = doc();
        d["conditions"] = json!({"users": {"includeGroups": ["g2"], "excludeUsers": ["u1"]},
            "locations": {"includeLocations": ["l1"]}});
        d["omaSettings"] = json!([{"groupId": "g9", "target": {"groupId": "g9"}, "roleScopeTagIds": ["9"]}]);
        d["settings"] = json!([{"assignments": [{"target": {"groupId": "g9"}}]}]);
        assert_eq!(collect_refs(&d), collect_refs_in_place(&mut d.clone()));
        assert_eq!(collect_refs(&d).len(), 8);
        let mut rewritten = d.clone();
        rewrite_refs(&mut rewritten, &mut |kind, id| Rewrite::Replace(format!("{kind:?}-{id}")));
        for (key, value) in d.as_object().into_iter().flatten() {
            if REFERENCE_HOLDERS.contains(&key.as_str()) {
                assert_ne!(&rewritten[key], value, "{key} holds references");
            } else {
                assert_eq!(&rewritten[key], value, "{key} holds none");
            }
        }
    }

    #[test]
    fn rewriting_replaces_ids_and_drops_scope_tags() {
        let mut d = doc();
        rewrite_refs(&mut d, &mut |kind, id| match (kind, id) {
            (RefKind::ScopeTag, "7") => Rewrite::Drop,
            (_, id) => Rewrite::Replace(format!("T-{id}")),
        });
        assert_eq!(d["roleScopeTagIds"], json!(["T-0"]));
        assert_eq!(d["assignments"][0]["target"]["groupId"], "T-g1");
        assert_eq!(d["assignments"][1]["target"]["deviceAndAppManagementAssignmentFilterId"], ZERO_GUID);
        assert_eq!(
            d["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["notificationTemplateId"],
            "T-t1"
        );
    }

    #[test]
    fn an_empty_scope_tag_list_becomes_the_default_tag() {
        let mut d = json!({"roleScopeTagIds": []});
        ensure_default_scope_tag(&mut d);
        assert_eq!(d, json!({"roleScopeTagIds": ["0"]}));
    }

    #[test]
    fn references_resolve_by_name_to_existing_created_missing_or_ambiguous() {
        let mut maps = TargetMaps::default();
        maps.add(RefKind::Group, "a", "Sales");
        maps.add(RefKind::Group, "b", "Ops");
        maps.add(RefKind::Group, "c", "Ops");
        let mut foundations = BTreeMap::new();
        foundations.insert((RefKind::ScopeTag, "Paris".to_string()), "scopeTag/5".to_string());
        let r = |kind, name| resolve_reference(kind, "src", name, &maps, &foundations);
        assert_eq!(r(RefKind::Group, Some("Sales")), RefTarget::Existing { id: "a".into() });
        assert_eq!(r(RefKind::Group, Some("Ops")), RefTarget::Ambiguous { ids: vec!["b".into(), "c".into()] });
        assert_eq!(r(RefKind::Group, Some("HR")), RefTarget::Missing);
        assert_eq!(r(RefKind::Group, None), RefTarget::Missing);
        assert_eq!(r(RefKind::ScopeTag, Some("Paris")), RefTarget::Created { item: "scopeTag/5".into() });
        assert_eq!(
            resolve_reference(RefKind::ScopeTag, "0", None, &maps, &foundations),
            RefTarget::Existing { id: "0".into() }
        );
    }
}
