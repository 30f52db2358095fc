//! Per-item analysis, shared by the checks, the preview and the plan: the target match, the mapped
//! references, the normalized desired and current states, the planned action and what is wrong.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ActionCounts, ExistingObjects};
use crate::backup::BackupItem;
use crate::canonical::{Remembered, SameTextAs};
use crate::catalog::{ItemType, TypeClass, carry_limits, is_built_in, platform_of};
use crate::engine::assignment_writes::assignments_not_removable;
use crate::engine::diff::{changed_paths, same_text, unified_diff};
use crate::engine::enrollment;
use crate::engine::mapping::{
    IdNames, RefKind, RefTarget, ReferenceMapping, Rewrite, collect_refs_in_place, resolve_reference, rewrite_refs,
};
use crate::engine::normalize::{
    backup_document, document_parts, find_unrestorable_secret_in, masked_stripped_document_noting_secrets,
    normalize_masked, normalize_owned, project_owned, with_marks,
};
use crate::engine::scope::{ResolvedScope, ScopedItem};
use crate::engine::snapshot::TenantSnapshot;

/// What the restore plans for an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlannedAction {
    /// The target has no such object: create it.
    Create,
    /// The target's object differs: update it.
    Update,
    /// The target's object already matches.
    Unchanged,
    /// Not written (see the reason).
    Skip,
    /// A type v1 shows but never writes.
    PreviewOnly,
}

impl PlannedAction {
    /// Whether the action writes to the tenant.
    pub fn writes(self) -> bool {
        matches!(self, PlannedAction::Create | PlannedAction::Update)
    }
}

/// One item as the preview shows it. `desired` and `current` are normalized and masked.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemPreview {
    /// `type/source id`.
    pub key: String,
    /// Catalogue type name.
    pub item_type: String,
    /// Display name.
    pub display_name: String,
    /// Platform.
    pub platform: String,
    /// Class of the type (`None`: unknown type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<TypeClass>,
    /// Planned action.
    pub action: PlannedAction,
    /// Why the item is skipped, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The target object, when exactly one matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Every matching target object (more than one is a blocker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
    /// Paths that differ between current and desired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    /// The backup's state, normalized (references by name, secrets masked).
    pub desired: Arc<Value>,
    /// The tenant's state, normalized and limited to the desired keys; `None` when absent. When it
    /// is written as the same text as `desired` it is the same allocation (most items are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Arc<Value>>,
    /// The item's references and where they land in the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceMapping>,
    /// Unified diff, tenant → backup.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// [`ItemPreview`] as it is written: the same fields, borrowed, with `current` marked as written
/// like `desired` when it is (the canonical writer then copies its text: most items are unchanged).
#[derive(Serialize)]
#[serde(rename = "ItemPreview", rename_all = "camelCase")]
struct ItemPreviewOut<'a> {
    key: &'a str,
    item_type: &'a str,
    display_name: &'a str,
    platform: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<TypeClass>,
    action: PlannedAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_id: Option<&'a str>,
    #[serde(skip_serializing_if = "is_empty")]
    matches: &'a [String],
    #[serde(skip_serializing_if = "is_empty")]
    changed_fields: &'a [String],
    desired: Remembered<'a, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<CurrentOut<'a>>,
    #[serde(skip_serializing_if = "is_empty")]
    references: &'a [ReferenceMapping],
    #[serde(skip_serializing_if = "str::is_empty")]
    diff: &'a str,
}

fn is_empty<T>(list: &&[T]) -> bool {
    list.is_empty()
}

/// The current state, and whether it is written as the same text as the desired one.
struct CurrentOut<'a> {
    value: &'a Value,
    same_text_as_desired: bool,
}

impl Serialize for CurrentOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.same_text_as_desired {
            SameTextAs(self.value).serialize(serializer)
        } else {
            self.value.serialize(serializer)
        }
    }
}

impl Serialize for ItemPreview {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ItemPreviewOut {
            key: &self.key,
            item_type: &self.item_type,
            display_name: &self.display_name,
            platform: &self.platform,
            class: self.class,
            action: self.action,
            reason: self.reason.as_deref(),
            target_id: self.target_id.as_deref(),
            matches: &self.matches,
            changed_fields: &self.changed_fields,
            desired: Remembered(&self.desired),
            current: self.current.as_ref().map(|value| CurrentOut {
                value,
                same_text_as_desired: Arc::ptr_eq(value, &self.desired) || same_text(value, &self.desired),
            }),
            references: &self.references,
            diff: &self.diff,
        }
        .serialize(serializer)
    }
}

/// What the checks need to know about an item beyond its preview.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemIssues {
    /// Why the type cannot be restored by this build.
    pub unsupported: Option<String>,
    /// Where the first secret that cannot be written back sits.
    pub unrestorable_secret: Option<String>,
    /// Required sub-resources the backup lacks.
    pub missing_required: Vec<String>,
    /// The type has assignments but the backup did not capture them.
    pub assignments_not_captured: bool,
    /// The platform the item's type and payload imply, when it differs from the recorded one.
    pub recorded_platform_mismatch: Option<String>,
    /// The matched target object's platform, when it differs from the item's.
    pub target_platform_mismatch: Option<String>,
    /// A built-in object (the Default scope tag) that is never written.
    pub built_in: bool,
    /// An app protection policy whose backup holds no targeted apps (IntuneCD's format does not
    /// carry them): it would be restored protecting no app.
    pub apps_not_captured: bool,
    /// A Settings Catalog policy whose `settingCount` disagrees with the settings the backup
    /// holds (declared, present): an incomplete snapshot a full replace would make live.
    pub setting_count_mismatch: Option<(u64, usize)>,
    /// Write-only secrets (Wi-Fi pre-shared key, VPN shared secret) the backup holds no value for:
    /// the object is written without them and the admin must re-enter them.
    pub secrets_to_reenter: Vec<String>,
    /// Certificate-profile links the backup does not carry: the object is written without them.
    pub certificate_links: Vec<String>,
    /// Why this item, of a restorable type, can only be previewed (its `@odata.type`).
    pub preview_only_subtype: Option<String>,
    /// Assignments the target object holds that the backup lacks, for a type whose assignments
    /// are written one by one (Autopilot profiles): removing them would take a DELETE.
    pub assignments_not_removable: Vec<String>,
    /// One of the tenant's built-in default enrollment configurations: updated in place, never
    /// created, its assignments never written.
    pub default_enrollment: bool,
    /// A restored enrollment configuration whose planned priority differs from the backup's.
    pub priority_adjusted: Option<crate::engine::enrollment_priority::PriorityAdjustment>,
    /// A restored custom enrollment configuration whose backup records no priority: Graph places
    /// it, the restore does not order it.
    pub priority_not_in_backup: bool,
    /// Why an intent the restore would create cannot be made from its template in the target
    /// (missing, deprecated, or not named in the backup).
    pub intent_template: Option<String>,
    /// Settings (`definitionId`s) the target's intent has and the backup does not name: left as
    /// they are (`updateSettings` only sets values) and out of the comparison.
    pub intent_settings_left: Vec<String>,
    /// ADMX definitions or presentations an Administrative Template sets that the target lacks or
    /// holds more than once (described): the configuration cannot be written whole.
    pub admx_unmapped: Vec<String>,
    /// The backup's Apple enrollment profile was its token's default, which a restore does not set.
    pub apple_default_not_set: bool,
}

/// One analysed item.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemAnalysis {
    /// The item as the preview shows it.
    pub preview: ItemPreview,
    /// What is wrong with it.
    pub issues: ItemIssues,
    /// Human label, `type/display name`.
    pub label: String,
}

/// Counts of planned actions.
pub fn count_actions<'a>(items: impl IntoIterator<Item = &'a ItemPreview>) -> ActionCounts {
    let mut counts = ActionCounts::default();
    for item in items {
        match item.action {
            PlannedAction::Create => counts.create += 1,
            PlannedAction::Update => counts.update += 1,
            PlannedAction::Unchanged => counts.unchanged += 1,
            PlannedAction::Skip => counts.skip += 1,
            PlannedAction::PreviewOnly => counts.preview_only += 1,
        }
    }
    counts
}

/// Foundation items of the scope that a restore may create, by kind and display name.
pub fn scoped_foundations(scope: &ResolvedScope) -> BTreeMap<(RefKind, String), String> {
    scope
        .items
        .iter()
        .filter_map(|i| {
            RefKind::of_foundation_type(&i.item.item_type).map(|k| ((k, i.item.display_name.clone()), i.key()))
        })
        .collect()
}

/// The references of a backup document and where each lands in the target (the document is
/// walked in place, not changed).
pub fn map_references(
    doc: &mut Value,
    source: &IdNames,
    snapshot: &TenantSnapshot,
    foundations: &BTreeMap<(RefKind, String), String>,
) -> Vec<ReferenceMapping> {
    collect_refs_in_place(doc)
        .into_iter()
        .map(|(kind, source_id)| {
            let name = source.name(kind, &source_id).map(str::to_string);
            let target = resolve_reference(kind, &source_id, name.as_deref(), &snapshot.maps, foundations);
            ReferenceMapping { kind, source_id, name, target }
        })
        .collect()
}

/// Drops the scope tags that map to nothing in the target: a restore writes the item without them.
pub fn drop_unmapped_scope_tags(doc: &mut Value, references: &[ReferenceMapping]) {
    rewrite_refs(doc, &mut |kind, id| {
        let missing = references.iter().any(|r| r.kind == kind && r.source_id == id && r.target == RefTarget::Missing);
        if kind == RefKind::ScopeTag && missing { Rewrite::Drop } else { Rewrite::Keep }
    });
}

/// The app protection sub-resource of targeted apps.
const APPS: &str = "apps";

/// How many entries a sub-resource of the item holds (in `sub_resources` or inline), if present.
fn sub_resource_len(item: &BackupItem, name: &str) -> Option<usize> {
    item.sub_resources
        .get(name)
        .map(Vec::len)
        .or_else(|| item.resource.get(name).and_then(Value::as_array).map(Vec::len))
}

/// `settingCount` against the settings held, for Settings Catalog policies that record both.
fn setting_count_mismatch(item_type: &ItemType, item: &BackupItem) -> Option<(u64, usize)> {
    if item_type.identity != crate::catalog::IdentityKey::NameAndTechnologies {
        return None;
    }
    let declared = item.resource.get("settingCount").and_then(Value::as_u64)?;
    let present = sub_resource_len(item, "settings").unwrap_or(0);
    (usize::try_from(declared).ok() != Some(present)).then_some((declared, present))
}

/// Whether the type accepts the item's `@odata.type` (an item without one is read as the base type).
fn accepts(item_type: &ItemType, resource: &Value) -> bool {
    resource.get("@odata.type").and_then(Value::as_str).is_none_or(|o| item_type.accepts_odata(o))
}

/// Analyses every scoped item against the snapshot.
pub fn analyze(scope: &ResolvedScope, snapshot: &TenantSnapshot, existing: ExistingObjects) -> Vec<ItemAnalysis> {
    let foundations = scoped_foundations(scope);
    let target_names = snapshot.maps.id_names();
    let mut items: Vec<ItemAnalysis> = scope
        .items
        .iter()
        .map(|scoped| {
            let live = snapshot.live.get(&scoped.key()).map(Cow::Borrowed);
            analyze_item(scope, scoped, snapshot, live, existing, &foundations, &target_names)
        })
        .collect();
    plan_enrollment_priorities(&mut items, scope, snapshot, existing);
    items
}

/// The enrollment configurations' planned priorities, from the target's listing.
fn plan_enrollment_priorities(
    items: &mut [ItemAnalysis],
    scope: &ResolvedScope,
    snapshot: &TenantSnapshot,
    existing: ExistingObjects,
) {
    let listed = snapshot.enrollment_configurations.as_deref().unwrap_or_default();
    crate::engine::enrollment_priority::plan_priorities(items, scope, listed, existing);
}

/// [`analyze`] that takes the live objects out of the snapshot: each is normalized where it lies
/// instead of copied first, and let go once its item is analysed (`snapshot.live` ends empty).
pub fn analyze_taking(
    scope: &ResolvedScope,
    snapshot: &mut TenantSnapshot,
    existing: ExistingObjects,
) -> Vec<ItemAnalysis> {
    let foundations = scoped_foundations(scope);
    let target_names = snapshot.maps.id_names();
    let mut live = std::mem::take(&mut snapshot.live);
    // A key scoped twice (never in a loaded backup) keeps its object for every item that has it.
    let mut seen = HashSet::new();
    let repeated: HashSet<String> =
        scope.items.iter().map(ScopedItem::key).filter(|k| !seen.insert(k.clone())).collect();
    let mut items: Vec<ItemAnalysis> = scope
        .items
        .iter()
        .map(|scoped| {
            let key = scoped.key();
            let object = if repeated.contains(&key) { live.get(&key).cloned() } else { live.remove(&key) };
            analyze_item(scope, scoped, snapshot, object.map(Cow::Owned), existing, &foundations, &target_names)
        })
        .collect();
    plan_enrollment_priorities(&mut items, scope, snapshot, existing);
    items
}

/// One item against the snapshot; `live` is the tenant's object matched to it (`snapshot.live`'s).
fn analyze_item(
    scope: &ResolvedScope,
    scoped: &ScopedItem,
    snapshot: &TenantSnapshot,
    live: Option<Cow<'_, Value>>,
    existing: ExistingObjects,
    foundations: &BTreeMap<(RefKind, String), String>,
    target_names: &IdNames,
) -> ItemAnalysis {
    let key = scoped.key();
    // Conditional Access: the state the run writes (report-only on create, untouched on update).
    let creating = live.is_none();
    let written = crate::engine::conditional_access::written_item(scope, &scoped.item, creating);
    let item = written.as_ref().unwrap_or(&scoped.item);
    let t = scoped.item_type;
    let mut issues = ItemIssues::default();
    let default_enrollment = t.is_some_and(|t| enrollment::is_default(t, &item.resource));
    let with_assignments = scope.with_assignments() && t.is_some_and(|t| t.assignable) && !default_enrollment;
    // The backup's document is copied once, masked and stripped: references are where they were.
    let parts = document_parts(item, with_assignments);
    let (mut doc, secret_seen) = masked_stripped_document_noting_secrets(&parts);
    issues.unrestorable_secret = secret_seen.then(|| find_unrestorable_secret_in(&parts)).flatten();
    let mut references = map_references(&mut doc, &scope.source_names, snapshot, foundations);
    references.extend(snapshot.enrollment_tokens.get(&scoped.key()).cloned());
    drop_unmapped_scope_tags(&mut doc, &references);
    let doc = with_marks(t, doc, || {
        let mut whole = backup_document(item, with_assignments);
        drop_unmapped_scope_tags(&mut whole, &references);
        whole
    });
    let mut desired = normalize_masked(t, doc, &scope.source_names);
    enrollment::drop_server_ordered(t, &mut desired);
    crate::engine::apple_enrollment::strip_default_flag(t, &mut desired);
    issues.apple_default_not_set = t.is_some_and(|t| crate::engine::apple_enrollment::was_default(t, &item.resource));
    issues.default_enrollment = default_enrollment;

    match t {
        None => issues.unsupported = Some(format!("type {:?} is not in this build's catalogue", item.item_type)),
        Some(t) if !accepts(t, &item.resource) => {
            issues.unsupported = Some(format!(
                "@odata.type {} does not belong to {}",
                item.resource.get("@odata.type").and_then(Value::as_str).unwrap_or("?"),
                t.title
            ))
        }
        Some(t) => {
            issues.missing_required = t
                .sub_resources
                .iter()
                .filter(|s| {
                    s.required && !item.sub_resources.contains_key(s.name) && item.resource.get(s.name).is_none()
                })
                .map(|s| s.name.to_string())
                .collect();
            issues.assignments_not_captured = with_assignments && item.assignments.is_none();
            issues.apps_not_captured =
                t.sub_resources.iter().any(|s| s.name == APPS) && sub_resource_len(item, APPS).is_none_or(|n| n == 0);
            issues.setting_count_mismatch = setting_count_mismatch(t, item);
            let limits = carry_limits(t, &item.resource);
            issues.secrets_to_reenter = limits
                .write_only_secrets
                .iter()
                .filter(|p| item.resource.get(**p).and_then(Value::as_str).is_none_or(str::is_empty))
                .map(|p| p.to_string())
                .collect();
            issues.certificate_links = limits.certificate_links.iter().map(|p| p.to_string()).collect();
            issues.preview_only_subtype = limits.preview_only;
            issues.built_in = is_built_in(t, &item.id, &item.resource);
            if crate::engine::admx::is_admx(t) {
                issues.admx_unmapped = crate::engine::admx::unmapped(item, &snapshot.maps.admx_definitions);
            }
            let derived = platform_of(t, &item.resource);
            if !item.platform.is_empty() && !derived.eq_ignore_ascii_case(&item.platform) && derived != "any" {
                issues.recorded_platform_mismatch = Some(derived.clone());
            }
            if let Some(live) = live.as_deref() {
                let live_platform = platform_of(t, live);
                if live_platform != "any" && derived != "any" && live_platform != derived {
                    issues.target_platform_mismatch = Some(live_platform);
                }
            }
        }
    }

    let matches = snapshot.matches.get(&key).cloned().unwrap_or_default();
    let target_id = match matches.as_slice() {
        [id] if live.is_some() => Some(id.clone()),
        _ => None,
    };
    let live = live.filter(|_| target_id.is_some());
    if let (Some(t), true) = (t, live.is_none()) {
        issues.intent_template =
            crate::engine::intents::template_problem(t, &item.resource, snapshot.intent_templates.as_ref());
    }
    let mut current = live.map(|live| project_owned(normalize_owned(t, live.into_owned(), target_names), &desired));
    if let (Some(t), Some(current)) = (t, current.as_mut()) {
        issues.intent_settings_left = crate::engine::intents::project_settings(t, current, &desired);
    }

    if let Some(t) = t.filter(|_| with_assignments) {
        issues.assignments_not_removable = assignments_not_removable(t, current.as_ref(), &desired);
    }
    let same_text_as_desired = current.as_ref().is_some_and(|current| same_text(current, &desired));
    let (action, reason) =
        decide(scoped, &issues, matches.len(), current.as_ref(), &desired, same_text_as_desired, existing);
    let (changed_fields, diff) = match (&current, action) {
        (_, PlannedAction::Unchanged) => (Vec::new(), String::new()),
        (Some(current), _) => (changed_paths(current, &desired), unified_diff(Some(current), &desired)),
        (None, _) => (Vec::new(), unified_diff(None, &desired)),
    };
    let desired = Arc::new(desired);
    let current = current.map(|current| if same_text_as_desired { Arc::clone(&desired) } else { Arc::new(current) });
    ItemAnalysis {
        label: scoped.label(),
        preview: ItemPreview {
            key,
            item_type: item.item_type.clone(),
            display_name: item.display_name.clone(),
            platform: item.platform.clone(),
            class: scoped.class(),
            action,
            reason,
            target_id,
            matches: if matches.len() > 1 { matches } else { Vec::new() },
            changed_fields,
            desired,
            current,
            references,
            diff,
        },
        issues,
    }
}

fn decide(
    scoped: &ScopedItem,
    issues: &ItemIssues,
    match_count: usize,
    current: Option<&Value>,
    desired: &Value,
    same_text_as_desired: bool,
    existing: ExistingObjects,
) -> (PlannedAction, Option<String>) {
    let skip = |why: &str| (PlannedAction::Skip, Some(why.to_string()));
    if let Some(why) = &issues.unsupported {
        return skip(&format!("unsupported: {why}"));
    }
    if scoped.preview_only() {
        return (PlannedAction::PreviewOnly, Some("this type is shown but not restored in v1".into()));
    }
    if let Some(why) = &issues.preview_only_subtype {
        return (PlannedAction::PreviewOnly, Some(format!("shown but not restored: {why}")));
    }
    if issues.built_in {
        return skip("built-in object: never written");
    }
    if !issues.missing_required.is_empty() {
        return skip(&format!("incomplete in the backup: {} missing", issues.missing_required.join(", ")));
    }
    if let Some((declared, present)) = issues.setting_count_mismatch {
        return skip(&format!("incomplete in the backup: settingCount {declared}, {present} settings"));
    }
    if match_count > 1 {
        return skip(&format!("{match_count} objects in the tenant match it"));
    }
    if issues.default_enrollment && current.is_none() {
        return skip(
            "a built-in default enrollment configuration is never created; the target tenant has no matching default",
        );
    }
    if !issues.assignments_not_removable.is_empty() {
        return skip(&format!(
            "the tenant's object has assignments the backup lacks ({}); Graph removes them only by a delete, which a restore never sends",
            issues.assignments_not_removable.join(", ")
        ));
    }
    if current.is_none() && scoped.item_type.and_then(crate::engine::singleton::singleton).is_some() {
        return skip("tenant-wide settings are only ever updated; the tenant's could not be read");
    }
    let action = match current {
        None => PlannedAction::Create,
        // The same text first: the same documents in the same order, decided without hashing keys.
        Some(current) if same_text_as_desired || current == desired => return (PlannedAction::Unchanged, None),
        Some(_) if existing == ExistingObjects::Skip => {
            return skip("exists in the tenant and existingObjects is skip");
        }
        Some(_) => PlannedAction::Update,
    };
    if let Some(path) = &issues.unrestorable_secret {
        return skip(&format!("holds an encrypted secret at {path} that cannot be restored"));
    }
    (action, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonical_digest, canonical_digest_of, canonical_json};
    use serde_json::json;

    fn preview(current: Option<Value>) -> ItemPreview {
        ItemPreview {
            key: "deviceConfiguration/1".into(),
            item_type: "deviceConfiguration".into(),
            display_name: "A".into(),
            platform: "windows".into(),
            class: None,
            action: PlannedAction::Unchanged,
            reason: None,
            target_id: None,
            matches: Vec::new(),
            changed_fields: Vec::new(),
            desired: Arc::new(json!({"displayName": "A", "settings": [{"b": 1, "a": "x"}]})),
            current: current.map(Arc::new),
            references: Vec::new(),
            diff: String::new(),
        }
    }

    #[test]
    fn a_preview_is_written_with_its_fields_in_camel_case_and_empty_ones_left_out() {
        let bare = preview(None);
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"key": "deviceConfiguration/1", "itemType": "deviceConfiguration", "displayName": "A",
                   "platform": "windows", "action": "unchanged", "desired": bare.desired})
        );
        let full = ItemPreview {
            class: Some(TypeClass::Policy),
            action: PlannedAction::Skip,
            reason: Some("why".into()),
            target_id: Some("t".into()),
            matches: vec!["t".into(), "u".into()],
            changed_fields: vec!["displayName".into()],
            references: vec![ReferenceMapping {
                kind: crate::engine::mapping::RefKind::Group,
                source_id: "g".into(),
                name: None,
                target: RefTarget::Missing,
            }],
            diff: "-a\n+b\n".into(),
            ..preview(Some(json!({"displayName": "B"})))
        };
        let written = serde_json::to_value(&full).unwrap();
        for key in ["class", "reason", "targetId", "matches", "changedFields", "current", "references", "diff"] {
            assert!(written.get(key).is_some(), "{key} in {written}");
        }
        assert_eq!(serde_json::from_value::<ItemPreview>(written).unwrap(), full);
        assert_eq!(serde_json::from_value::<ItemPreview>(serde_json::to_value(&bare).unwrap()).unwrap(), bare);
    }

    #[test]
    fn rule_2_a_preview_digest_is_that_of_its_json_whether_current_is_the_same_text_as_desired_or_not() {
        let same = preview(Some((*preview(None).desired).clone()));
        let mut shared = preview(None);
        shared.current = Some(Arc::clone(&shared.desired));
        let reordered = preview(Some(json!({"settings": [{"a": "x", "b": 1}], "displayName": "A"})));
        let other = preview(Some(json!({"displayName": "B"})));
        for item in [same, shared, reordered, other, preview(None)] {
            let as_json = serde_json::to_value(&item).unwrap();
            assert_eq!(canonical_digest_of(&item, &[]).unwrap(), canonical_digest(&as_json));
            assert_eq!(
                canonical_digest_of(&vec![&item, &item], &[]).unwrap(),
                canonical_digest(&json!([as_json, as_json]))
            );
            assert_eq!(
                canonical_json(&as_json).matches("\"displayName\"").count(),
                2 + usize::from(item.current.is_some())
            );
        }
    }
}
