//! Administrative Templates (`groupPolicyConfigurations`): definition values compared by the ADMX
//! definition they set, definitions looked up in the target, and the `updateDefinitionValues` diff.
//!
//! A definition value references its ADMX definition (and each presentation value a presentation
//! of it) by id. Built-in ADMX ids are Microsoft's, the same in every tenant; ingested (custom)
//! ADMX get ids per tenant, and IntuneCD backups carry no ids at all. So every definition a backup
//! references is looked up in the target — by id, and when that id is absent there, by
//! `displayName` + `classType` + `categoryPath` (what IntuneCD matches on) — and a presentation by
//! id, else by `label`. A definition or presentation the target lacks, or holds twice, is a blocker:
//! a configuration is never written half.
//!
//! Writes go through the documented `updateDefinitionValues` action (`added`, `updated`,
//! `deletedIds`): one request carries the whole difference, so one plan step is one write.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::backup::BackupItem;
use crate::canonical::canonical_json;
use crate::catalog::ItemType;
use crate::engine::identity::encode_query_value;
use crate::engine::scope::ResolvedScope;
use crate::engine::snapshot::TenantSnapshot;
use crate::tenant::{TenantError, TenantPort};

/// The catalogue name of the kind.
pub const TYPE_NAME: &str = "administrativeTemplate";
/// The sub-resource holding the definition values.
pub const DEFINITION_VALUES: &str = "definitionValues";
/// The action writing definition values.
pub const UPDATE_ACTION: &str = "updateDefinitionValues";
/// The tenant's ADMX definitions (built-in and ingested).
pub const DEFINITIONS: &str = "deviceManagement/groupPolicyDefinitions";
/// How a read expands a configuration's definition values whole.
pub const EXPAND_VALUES: &str = "definitionValues($expand=definition,presentationValues($expand=presentation))";
/// How a read of a configuration's `definitionValues` sub-collection expands each value.
pub const EXPAND_VALUE_PARTS: &str = "definition,presentationValues($expand=presentation)";

const PRESENTATION_VALUES: &str = "presentationValues";
/// The value keys a presentation value carries, by subtype (`value` or `values`).
const VALUE_KEYS: [&str; 2] = ["value", "values"];

/// Whether `item_type` is the Administrative Templates kind.
pub fn is_admx(item_type: &ItemType) -> bool {
    item_type.name == TYPE_NAME
}

/// What identifies an ADMX definition across tenants (IntuneCD's match key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionIdentity {
    /// `user` or `machine`.
    pub class_type: String,
    /// The policy's name.
    pub display_name: String,
    /// Its category path, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_path: Option<String>,
}

impl DefinitionIdentity {
    /// The identity of a definition object (from Graph or a backup).
    pub fn of(definition: &Value) -> Option<DefinitionIdentity> {
        let text = |k: &str| definition.get(k).and_then(Value::as_str).map(str::to_string);
        Some(DefinitionIdentity {
            class_type: text("classType")?,
            display_name: text("displayName")?,
            category_path: text("categoryPath"),
        })
    }

    /// Whether `other` (a target definition) is this one: same class and name, and the same
    /// category when this one records it.
    fn matches(&self, other: &DefinitionIdentity) -> bool {
        self.class_type.eq_ignore_ascii_case(&other.class_type)
            && self.display_name == other.display_name
            && (self.category_path.is_none() || self.category_path == other.category_path)
    }

    /// `"name" (class, category)`, for messages.
    pub fn describe(&self) -> String {
        match &self.category_path {
            Some(path) => format!("{:?} ({}, {path})", self.display_name, self.class_type),
            None => format!("{:?} ({})", self.display_name, self.class_type),
        }
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("classType".into(), Value::String(self.class_type.clone()));
        map.insert("displayName".into(), Value::String(self.display_name.clone()));
        if let Some(path) = &self.category_path {
            map.insert("categoryPath".into(), Value::String(path.clone()));
        }
        Value::Object(map)
    }
}

/// One presentation (an option of a definition) of a target definition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmxPresentation {
    /// Its target id.
    pub id: String,
    /// Its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One ADMX definition the preview found in the target, with its presentations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmxDefinition {
    /// Its target id.
    pub id: String,
    /// What identifies it across tenants.
    #[serde(flatten)]
    pub identity: DefinitionIdentity,
    /// Its presentations.
    #[serde(default)]
    pub presentations: Vec<AdmxPresentation>,
}

impl AdmxDefinition {
    /// A definition as Graph returns it with `$expand=presentations`.
    pub fn from_graph(definition: &Value) -> Option<AdmxDefinition> {
        let mut presentations: Vec<AdmxPresentation> = definition
            .get("presentations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(AdmxPresentation {
                    id: p.get("id")?.as_str()?.to_string(),
                    label: p.get("label").and_then(Value::as_str).map(str::to_string),
                })
            })
            .collect();
        presentations.sort();
        Some(AdmxDefinition {
            id: definition.get("id")?.as_str()?.to_string(),
            identity: DefinitionIdentity::of(definition)?,
            presentations,
        })
    }
}

/// Where a backup's definition (or presentation) lands in the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved<'a, T> {
    /// Exactly one target object.
    Found(&'a T),
    /// None.
    Missing,
    /// Several: their ids.
    Ambiguous(Vec<String>),
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The definition a backup's definition value references, among the target's `known` ones: by id
/// when the target has that id (and, when the backup names it, it is the same definition), else by
/// identity.
pub fn resolve_definition<'a>(definition: &Value, known: &'a [AdmxDefinition]) -> Resolved<'a, AdmxDefinition> {
    let identity = DefinitionIdentity::of(definition);
    if let Some(by_id) = text(definition, "id").and_then(|id| known.iter().find(|k| k.id == id))
        && identity.as_ref().is_none_or(|i| i.matches(&by_id.identity))
    {
        return Resolved::Found(by_id);
    }
    let Some(identity) = identity else { return Resolved::Missing };
    let found: Vec<&AdmxDefinition> = known.iter().filter(|k| identity.matches(&k.identity)).collect();
    match found.as_slice() {
        [one] => Resolved::Found(one),
        [] => Resolved::Missing,
        many => Resolved::Ambiguous(many.iter().map(|k| k.id.clone()).collect()),
    }
}

/// The presentation a backup's presentation value references, in the target `definition`: by id,
/// else by label (IntuneCD matches presentations by label).
pub fn resolve_presentation<'a>(
    presentation: &Value,
    definition: &'a AdmxDefinition,
) -> Resolved<'a, AdmxPresentation> {
    if let Some(by_id) = text(presentation, "id").and_then(|id| definition.presentations.iter().find(|p| p.id == id)) {
        return Resolved::Found(by_id);
    }
    let Some(label) = text(presentation, "label") else { return Resolved::Missing };
    let found: Vec<&AdmxPresentation> =
        definition.presentations.iter().filter(|p| p.label.as_deref() == Some(label)).collect();
    match found.as_slice() {
        [one] => Resolved::Found(one),
        [] => Resolved::Missing,
        many => Resolved::Ambiguous(many.iter().map(|p| p.id.clone()).collect()),
    }
}

/// The definition values a backup item holds (captured as a sub-resource, or inline as IntuneCD writes them).
pub fn definition_values(item: &BackupItem) -> Vec<Value> {
    item.sub_resources
        .get(DEFINITION_VALUES)
        .cloned()
        .or_else(|| item.resource.get(DEFINITION_VALUES).and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn presentation_values(value: &Value) -> &[Value] {
    value.get(PRESENTATION_VALUES).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn describe_definition(definition: &Value) -> String {
    DefinitionIdentity::of(definition)
        .map(|i| i.describe())
        .or_else(|| text(definition, "id").map(|id| format!("with id {id}")))
        .unwrap_or_else(|| "without an id or a name".to_string())
}

/// What of the item's definition values the target cannot take: each definition or presentation
/// missing or ambiguous there, described for a blocker finding.
pub fn unmapped(item: &BackupItem, known: &[AdmxDefinition]) -> Vec<String> {
    let mut problems = Vec::new();
    for value in definition_values(item) {
        let definition = value.get("definition").cloned().unwrap_or(Value::Null);
        let target = match resolve_definition(&definition, known) {
            Resolved::Found(target) => target,
            Resolved::Missing => {
                problems.push(format!("definition {} is not in the target tenant", describe_definition(&definition)));
                continue;
            }
            Resolved::Ambiguous(ids) => {
                problems.push(format!(
                    "definition {} matches {} definitions in the target tenant ({})",
                    describe_definition(&definition),
                    ids.len(),
                    ids.join(", ")
                ));
                continue;
            }
        };
        for pv in presentation_values(&value) {
            let presentation = pv.get("presentation").cloned().unwrap_or(Value::Null);
            let label = text(&presentation, "label").or_else(|| text(&presentation, "id")).unwrap_or("?");
            match resolve_presentation(&presentation, target) {
                Resolved::Found(_) => {}
                Resolved::Missing => problems.push(format!(
                    "option {label:?} of definition {} is not in the target tenant",
                    target.identity.describe()
                )),
                Resolved::Ambiguous(ids) => problems.push(format!(
                    "option {label:?} of definition {} matches {} options in the target tenant",
                    target.identity.describe(),
                    ids.len()
                )),
            }
        }
    }
    problems
}

// -- normalization ------------------------------------------------------------------------------

/// Rewrites an Administrative Template's definition values (server fields already stripped) into
/// the form compared across tenants: each value as its definition's identity, `enabled`, and its
/// presentation values by label with their values. Ids and the definitions' other properties
/// (explanations, versions) are not part of a restore.
pub(crate) fn normalize_definition_values(item_type: Option<&ItemType>, doc: &mut Value) {
    if !item_type.is_some_and(is_admx) {
        return;
    }
    if let Some(Value::Array(values)) = doc.get_mut(DEFINITION_VALUES) {
        for value in values.iter_mut() {
            *value = comparable_value(value);
        }
    }
}

fn comparable_value(value: &Value) -> Value {
    let definition = value.get("definition").cloned().unwrap_or(Value::Null);
    let definition = DefinitionIdentity::of(&definition).map_or(definition, |i| i.to_json());
    let mut presentations: Vec<Value> = presentation_values(value)
        .iter()
        .map(|pv| {
            let mut out = Map::new();
            if let Some(odata) = pv.get("@odata.type") {
                out.insert("@odata.type".into(), odata.clone());
            }
            let label = pv.get("presentation").and_then(|p| p.get("label")).cloned().unwrap_or(Value::Null);
            out.insert("presentation".into(), json!({ "label": label }));
            for key in VALUE_KEYS {
                if let Some(v) = pv.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
            Value::Object(out)
        })
        .collect();
    presentations.sort_by_cached_key(canonical_json);
    json!({
        "definition": definition,
        "enabled": value.get("enabled").cloned().unwrap_or(Value::Null),
        "presentationValues": presentations,
    })
}

/// Orders captured definition values by their definition (class, category, name) and each one's
/// presentation values by label, so that backups of equal configurations are equal files in any
/// tenant (ids, and the order Graph lists them in, differ).
pub fn sort_for_backup(values: &mut [Value]) {
    for value in values.iter_mut() {
        if let Some(Value::Array(pvs)) = value.get_mut(PRESENTATION_VALUES) {
            pvs.sort_by_cached_key(|pv| pv.get("presentation").and_then(|p| text(p, "label")).map(str::to_string));
        }
    }
    values.sort_by_cached_key(|v| {
        let definition = v.get("definition").cloned().unwrap_or(Value::Null);
        (DefinitionIdentity::of(&definition), text(&definition, "id").map(str::to_string))
    });
}

// -- reading the target's definitions ------------------------------------------------------------

/// The path reading one definition with its presentations.
pub fn definition_path(id: &str) -> String {
    format!("{DEFINITIONS}/{}?$expand=presentations", encode_query_value(id))
}

/// The path looking definitions up by name (class and category are compared on the answer).
pub fn definitions_named_path(display_name: &str) -> String {
    let filter = format!("displayName eq '{}'", display_name.replace('\'', "''"));
    format!("{DEFINITIONS}?$filter={}&$expand=presentations", encode_query_value(&filter))
}

/// What the snapshot's live configurations show of the target's definitions: each definition a
/// live value sets (read expanded), with the presentations live values set, by id.
fn seen_in_live(scope: &ResolvedScope, snap: &TenantSnapshot) -> BTreeMap<String, AdmxDefinition> {
    let mut seen: BTreeMap<String, AdmxDefinition> = BTreeMap::new();
    for scoped in scope.items.iter().filter(|i| i.item_type.is_some_and(is_admx)) {
        let Some(live) = snap.live.get(&scoped.key()) else { continue };
        for value in live.get(DEFINITION_VALUES).and_then(Value::as_array).into_iter().flatten() {
            let Some(definition) = value.get("definition").and_then(AdmxDefinition::from_graph) else { continue };
            let entry = seen.entry(definition.id.clone()).or_insert(definition);
            for pv in presentation_values(value) {
                let Some(p) = pv.get("presentation") else { continue };
                if let Some(id) = text(p, "id")
                    && !entry.presentations.iter().any(|known| known.id == id)
                {
                    let label = text(p, "label").map(str::to_string);
                    entry.presentations.push(AdmxPresentation { id: id.to_string(), label });
                }
            }
        }
    }
    seen
}

/// Whether a backup value's definition and every option it sets are known by their ids.
fn known_by_ids(value: &Value, seen: &BTreeMap<String, AdmxDefinition>) -> bool {
    let definition = value.get("definition").cloned().unwrap_or(Value::Null);
    let Some(known) = text(&definition, "id").and_then(|id| seen.get(id)) else { return false };
    DefinitionIdentity::of(&definition).is_none_or(|i| i.matches(&known.identity))
        && presentation_values(value).iter().all(|pv| {
            pv.get("presentation")
                .and_then(|p| text(p, "id"))
                .is_some_and(|id| known.presentations.iter().any(|p| p.id == id))
        })
}

/// The definitions the scope's Administrative Templates reference that the live configurations do
/// not already show by id, as the backup names them.
fn definitions_to_look_up(scope: &ResolvedScope, seen: &BTreeMap<String, AdmxDefinition>) -> Vec<Value> {
    let mut listed = BTreeSet::new();
    let mut out = Vec::new();
    for scoped in scope.items.iter().filter(|i| i.item_type.is_some_and(is_admx)) {
        for value in definition_values(&scoped.item).iter().filter(|v| !known_by_ids(v, seen)) {
            let definition = value.get("definition").cloned().unwrap_or(Value::Null);
            if listed.insert(canonical_json(&json!([text(&definition, "id"), DefinitionIdentity::of(&definition)]))) {
                out.push(definition);
            }
        }
    }
    out
}

fn definitions_in_page(page: Option<Value>) -> Vec<AdmxDefinition> {
    let page = page.unwrap_or(Value::Null);
    page.get("value").and_then(Value::as_array).into_iter().flatten().filter_map(AdmxDefinition::from_graph).collect()
}

/// Looks up in the target every definition the scope references. A definition and the options a
/// value sets that the live configuration already binds by the same ids cost nothing (a same-tenant
/// restore reads none); the others are read by id in one batch, then by name when the target lacks
/// the id (a custom ADMX ingested there got another id; an IntuneCD backup has no ids). Nothing is
/// read when no Administrative Template is in scope.
pub async fn read_targets<T: TenantPort>(
    port: &T,
    scope: &ResolvedScope,
    snap: &mut TenantSnapshot,
) -> Result<(), TenantError> {
    let mut known = seen_in_live(scope, snap);
    let wanted = definitions_to_look_up(scope, &known);
    let ids: BTreeSet<&str> = wanted.iter().filter_map(|d| text(d, "id")).collect();
    let mut read: Vec<AdmxDefinition> = Vec::new();
    if !ids.is_empty() {
        let paths: Vec<String> = ids.iter().map(|id| definition_path(id)).collect();
        let results = port.get_many(&paths).await?;
        snap.stats.record_batch(paths.len());
        for result in results {
            read.extend(result?.as_ref().and_then(AdmxDefinition::from_graph));
        }
    }
    let names: BTreeSet<String> = wanted
        .iter()
        .filter(|d| !matches!(resolve_definition(d, &read), Resolved::Found(_)))
        .filter_map(|d| DefinitionIdentity::of(d).map(|i| i.display_name))
        .collect();
    if !names.is_empty() {
        let paths: Vec<String> = names.iter().map(|n| definitions_named_path(n)).collect();
        let results = port.get_many(&paths).await?;
        snap.stats.record_batch(paths.len());
        for result in results {
            read.extend(definitions_in_page(result?));
        }
    }
    // A definition read whole replaces what the live values showed of it.
    for definition in read {
        known.insert(definition.id.clone(), definition);
    }
    snap.maps.admx_definitions = known
        .into_values()
        .map(|mut d| {
            d.presentations.sort();
            d
        })
        .collect();
    Ok(())
}

// -- the write ---------------------------------------------------------------------------------

/// The `@odata.bind` of a target definition.
pub fn definition_bind(definition_id: &str) -> String {
    format!("https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('{definition_id}')")
}

/// The `@odata.bind` of a presentation of a target definition.
pub fn presentation_bind(definition_id: &str, presentation_id: &str) -> String {
    format!("{}/presentations('{presentation_id}')", definition_bind(definition_id))
}

/// One presentation value in target terms.
struct MappedPresentation {
    /// The target presentation's id.
    id: String,
    /// Its `@odata.type`.
    odata: Value,
    /// `value` or `values`, as set.
    values: Vec<(&'static str, Value)>,
}

/// One desired definition value, mapped into the target.
struct MappedValue {
    definition_id: String,
    enabled: Value,
    presentations: Vec<MappedPresentation>,
}

fn set_values(pv: &Value) -> Vec<(&'static str, Value)> {
    VALUE_KEYS.iter().filter_map(|k| pv.get(*k).map(|v| (*k, v.clone()))).collect()
}

fn map_value(value: &Value, known: &[AdmxDefinition]) -> Result<MappedValue, String> {
    let definition = value.get("definition").cloned().unwrap_or(Value::Null);
    let target = match resolve_definition(&definition, known) {
        Resolved::Found(target) => target,
        _ => {
            return Err(format!(
                "definition {} was not mapped into the target tenant by the preview",
                describe_definition(&definition)
            ));
        }
    };
    let mut presentations = Vec::new();
    for pv in presentation_values(value) {
        let presentation = pv.get("presentation").cloned().unwrap_or(Value::Null);
        let Resolved::Found(p) = resolve_presentation(&presentation, target) else {
            return Err(format!(
                "an option of definition {} was not mapped into the target tenant by the preview",
                target.identity.describe()
            ));
        };
        presentations.push(MappedPresentation {
            id: p.id.clone(),
            odata: pv.get("@odata.type").cloned().unwrap_or(Value::Null),
            values: set_values(pv),
        });
    }
    presentations.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(MappedValue {
        definition_id: target.id.clone(),
        enabled: value.get("enabled").cloned().unwrap_or(Value::Bool(true)),
        presentations,
    })
}

/// A live definition value (read with its definition and presentations expanded) in the same terms.
fn live_value(value: &Value) -> Option<(String, MappedValue)> {
    let id = text(value, "id")?.to_string();
    let definition_id = value.get("definition").and_then(|d| text(d, "id"))?.to_string();
    let mut presentations: Vec<MappedPresentation> = presentation_values(value)
        .iter()
        .filter_map(|pv| {
            Some(MappedPresentation {
                id: pv.get("presentation").and_then(|p| text(p, "id"))?.to_string(),
                odata: pv.get("@odata.type").cloned().unwrap_or(Value::Null),
                values: set_values(pv),
            })
        })
        .collect();
    presentations.sort_by(|a, b| a.id.cmp(&b.id));
    Some((
        id,
        MappedValue { definition_id, enabled: value.get("enabled").cloned().unwrap_or(Value::Null), presentations },
    ))
}

fn same_value(a: &MappedValue, b: &MappedValue) -> bool {
    let strip = |m: &MappedValue| -> Value {
        json!([
            m.enabled,
            m.presentations
                .iter()
                .map(|p| json!([p.id, p.values.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()]))
                .collect::<Vec<_>>()
        ])
    };
    a.definition_id == b.definition_id && strip(a) == strip(b)
}

fn value_body(value: &MappedValue, live_id: Option<&str>, live_presentations: &[Value]) -> Value {
    let presentations: Vec<Value> = value
        .presentations
        .iter()
        .map(|MappedPresentation { id: pid, odata, values }| {
            let mut out = Map::new();
            out.insert("@odata.type".into(), odata.clone());
            let existing = live_presentations
                .iter()
                .find(|pv| pv.get("presentation").and_then(|p| text(p, "id")) == Some(pid.as_str()))
                .and_then(|pv| text(pv, "id"));
            if let Some(existing) = existing {
                out.insert("id".into(), Value::String(existing.to_string()));
            }
            for (key, v) in values {
                out.insert((*key).into(), v.clone());
            }
            out.insert("presentation@odata.bind".into(), Value::String(presentation_bind(&value.definition_id, pid)));
            Value::Object(out)
        })
        .collect();
    let mut body = Map::new();
    if let Some(id) = live_id {
        body.insert("id".into(), Value::String(id.to_string()));
    }
    body.insert("enabled".into(), value.enabled.clone());
    body.insert("definition@odata.bind".into(), Value::String(definition_bind(&value.definition_id)));
    body.insert(PRESENTATION_VALUES.into(), Value::Array(presentations));
    Value::Object(body)
}

/// The `updateDefinitionValues` body taking the live configuration (`live`, read with its
/// definition values expanded) to the backup's values: values of definitions the configuration
/// lacks are `added`, values that differ are `updated` (by the live value's id, presentation values
/// by theirs), values of definitions the backup lacks are in `deletedIds`. `Ok(None)`: nothing to do.
pub fn update_definition_values_body(
    item: &BackupItem,
    live: &Value,
    known: &[AdmxDefinition],
) -> Result<Option<Value>, String> {
    let live_values: Vec<&Value> =
        live.get(DEFINITION_VALUES).and_then(Value::as_array).into_iter().flatten().collect();
    let (mut added, mut updated) = (Vec::new(), Vec::new());
    let mut wanted_definitions = BTreeSet::new();
    for value in definition_values(item) {
        let mapped = map_value(&value, known)?;
        if !wanted_definitions.insert(mapped.definition_id.clone()) {
            return Err(format!("the backup sets definition {} twice", mapped.definition_id));
        }
        let existing = live_values
            .iter()
            .filter_map(|lv| live_value(lv).map(|(id, m)| (id, m, *lv)))
            .find(|(_, m, _)| m.definition_id == mapped.definition_id);
        match existing {
            None => added.push(value_body(&mapped, None, &[])),
            Some((_, current, _)) if same_value(&current, &mapped) => {}
            Some((id, _, lv)) => updated.push(value_body(&mapped, Some(&id), presentation_values(lv))),
        }
    }
    let deleted: Vec<Value> = live_values
        .iter()
        .filter_map(|lv| live_value(lv))
        .filter(|(_, m)| !wanted_definitions.contains(&m.definition_id))
        .map(|(id, _)| Value::String(id))
        .collect();
    if added.is_empty() && updated.is_empty() && deleted.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({"added": added, "updated": updated, "deletedIds": deleted})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::References;
    use std::collections::BTreeMap;

    fn known() -> Vec<AdmxDefinition> {
        vec![
            AdmxDefinition {
                id: "d-home".into(),
                identity: DefinitionIdentity {
                    class_type: "machine".into(),
                    display_name: "Configure the home page URL".into(),
                    category_path: Some("\\Microsoft Edge\\Startup".into()),
                },
                presentations: vec![AdmxPresentation { id: "p-url".into(), label: Some("Home page URL".into()) }],
            },
            AdmxDefinition {
                id: "d-custom-target".into(),
                identity: DefinitionIdentity {
                    class_type: "user".into(),
                    display_name: "Contoso banner".into(),
                    category_path: Some("\\Contoso".into()),
                },
                presentations: vec![AdmxPresentation { id: "p-text".into(), label: Some("Banner text".into()) }],
            },
        ]
    }

    fn value(def_id: Option<&str>, name: &str, class: &str, label: &str, text_value: &str) -> Value {
        let mut definition = json!({"displayName": name, "classType": class});
        if let Some(id) = def_id {
            definition["id"] = json!(id);
        }
        json!({"enabled": true, "definition": definition, "presentationValues": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": text_value,
             "presentation": {"label": label}}]})
    }

    fn item(values: Vec<Value>) -> BackupItem {
        BackupItem {
            item_type: TYPE_NAME.into(),
            id: "gp1".into(),
            display_name: "Edge".into(),
            platform: "windows".into(),
            resource: json!({"@odata.type": "#microsoft.graph.groupPolicyConfiguration", "displayName": "Edge"}),
            assignments: None,
            sub_resources: BTreeMap::from([(DEFINITION_VALUES.to_string(), values)]),
            references: References::default(),
        }
    }

    fn live(values: Value) -> Value {
        json!({"id": "gp9", "definitionValues": values})
    }

    #[test]
    fn only_administrative_templates_are_the_admx_kind() {
        assert!(is_admx(crate::catalog::item_type(TYPE_NAME).unwrap()));
        assert!(!is_admx(crate::catalog::item_type("deviceConfiguration").unwrap()));
    }

    #[test]
    fn definitions_are_read_and_bound_by_the_paths_graph_documents() {
        assert_eq!(definition_path("d-1"), "deviceManagement/groupPolicyDefinitions/d-1?$expand=presentations");
        let named = definitions_named_path("O'Neil's banner");
        assert!(named.starts_with("deviceManagement/groupPolicyDefinitions?$filter="), "{named}");
        assert!(named.ends_with("&$expand=presentations"), "{named}");
        assert!(named.contains("O%27%27Neil%27%27s") || named.contains("O''Neil''s"), "quotes doubled: {named}");
        assert_eq!(
            definition_bind("d-1"),
            "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('d-1')"
        );
        assert_eq!(
            presentation_bind("d-1", "p-2"),
            "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('d-1')/presentations('p-2')"
        );
    }

    /// The target's definitions, answered by id and by name as Graph would.
    struct Definitions(Vec<Value>);

    impl crate::tenant::TenantPort for Definitions {
        async fn get(&self, _: &str) -> Result<Option<Value>, TenantError> {
            Ok(None)
        }
        async fn list(&self, _: &str) -> Result<Vec<Value>, TenantError> {
            Ok(Vec::new())
        }
        async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
            let answer = |path: &String| {
                if let Some(d) = self.0.iter().find(|d| *path == definition_path(d["id"].as_str().unwrap())) {
                    return Some(d.clone());
                }
                let named: Vec<Value> = (self.0.iter())
                    .filter(|d| *path == definitions_named_path(d["displayName"].as_str().unwrap()))
                    .cloned()
                    .collect();
                path.contains("$filter=").then(|| json!({"value": named}))
            };
            Ok(paths.iter().map(|p| Ok(answer(p))).collect())
        }
        async fn create(&self, _: &str, _: &Value) -> Result<Value, TenantError> {
            unreachable!("a lookup never writes")
        }
        async fn update(&self, _: &str, _: &Value) -> Result<(), TenantError> {
            unreachable!("a lookup never writes")
        }
        async fn replace(&self, _: &str, _: &Value) -> Result<(), TenantError> {
            unreachable!("a lookup never writes")
        }
        async fn action(&self, _: &str, _: &Value) -> Result<Option<Value>, TenantError> {
            unreachable!("a lookup never writes")
        }
    }

    #[tokio::test]
    async fn the_targets_definitions_are_read_by_id_then_by_name_into_the_previews_mappings() {
        let target = Definitions(vec![
            json!({"id": "d-home", "displayName": "Configure the home page URL", "classType": "machine",
                   "presentations": [{"id": "p-url", "label": "Home page URL"}]}),
            json!({"id": "d-custom-target", "displayName": "Contoso banner", "classType": "user",
                   "presentations": [{"id": "p-text", "label": "Banner text"}]}),
        ]);
        let backup = crate::backup::BackupSet {
            tenant: None,
            captured_at: None,
            digest: String::new(),
            items: vec![item(vec![
                value(Some("d-home"), "Configure the home page URL", "machine", "Home page URL", "x"),
                value(Some("d-custom-source"), "Contoso banner", "user", "Banner text", "hi"),
            ])],
        };
        let scope = crate::engine::scope::resolve_scope(&Default::default(), &backup).unwrap();
        let mut snap = TenantSnapshot::default();
        read_targets(&target, &scope, &mut snap).await.unwrap();
        let ids: Vec<&str> = snap.maps.admx_definitions.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d-custom-target", "d-home"], "by id, and the custom ADMX by its name");
        assert_eq!(snap.maps.admx_definitions[1].presentations[0].id, "p-url");
        assert_eq!(unmapped(&scope.items[0].item, &snap.maps.admx_definitions), Vec::<String>::new());
    }

    #[test]
    fn a_definition_is_found_by_id_else_by_name_class_and_category() {
        let known = known();
        let by_id = json!({"id": "d-home"});
        assert_eq!(resolve_definition(&by_id, &known), Resolved::Found(&known[0]));
        let custom_other_id = json!({"id": "d-custom-source", "displayName": "Contoso banner", "classType": "user"});
        assert_eq!(resolve_definition(&custom_other_id, &known), Resolved::Found(&known[1]));
        let wrong_category =
            json!({"displayName": "Contoso banner", "classType": "user", "categoryPath": "\\Fabrikam"});
        assert_eq!(resolve_definition(&wrong_category, &known), Resolved::Missing);
        let wrong_class = json!({"displayName": "Contoso banner", "classType": "machine"});
        assert_eq!(resolve_definition(&wrong_class, &known), Resolved::Missing);
        let mut twice = known.clone();
        twice.push(AdmxDefinition { id: "d-dup".into(), ..known[1].clone() });
        assert_eq!(
            resolve_definition(&json!({"displayName": "Contoso banner", "classType": "user"}), &twice),
            Resolved::Ambiguous(vec!["d-custom-target".into(), "d-dup".into()])
        );
    }

    #[test]
    fn a_value_the_live_configuration_binds_by_the_same_ids_needs_no_lookup() {
        let seen = BTreeMap::from([("d-home".to_string(), known()[0].clone())]);
        let mut same = value(Some("d-home"), "Configure the home page URL", "machine", "Home page URL", "x");
        same["presentationValues"][0]["presentation"]["id"] = json!("p-url");
        assert!(known_by_ids(&same, &seen));
        let by_label_only = value(Some("d-home"), "Configure the home page URL", "machine", "Home page URL", "x");
        assert!(!known_by_ids(&by_label_only, &seen), "an option named only by label is looked up");
        let other_id = value(Some("d-elsewhere"), "Configure the home page URL", "machine", "Home page URL", "x");
        assert!(!known_by_ids(&other_id, &seen));
        let renamed = value(Some("d-home"), "Another policy", "machine", "Home page URL", "x");
        assert!(!known_by_ids(&renamed, &seen), "the same id naming another definition is looked up");
    }

    #[test]
    fn missing_or_ambiguous_definitions_and_options_are_named() {
        let known = known();
        let item = item(vec![
            value(None, "Contoso banner", "user", "Banner text", "hi"),
            value(None, "Not ingested here", "machine", "x", "y"),
            value(Some("d-home"), "Configure the home page URL", "machine", "No such option", "y"),
        ]);
        let problems = unmapped(&item, &known);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("\"Not ingested here\" (machine) is not in the target tenant"));
        assert!(problems[1].contains("option \"No such option\""));
    }

    #[test]
    fn normalized_values_compare_by_definition_identity_and_option_label_not_ids() {
        let t = crate::catalog::item_type(TYPE_NAME);
        let mut source = json!({"definitionValues": [value(Some("d-custom-source"), "Contoso banner", "user", "Banner text", "hi")]});
        let mut target = json!({"definitionValues": [{"id": "v1", "enabled": true, "configurationType": "policy",
            "definition": {"id": "d-custom-target", "displayName": "Contoso banner", "classType": "user",
                           "explainText": "long help"},
            "presentationValues": [{"id": "pv1", "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                "value": "hi", "presentation": {"id": "p-text", "label": "Banner text", "required": false}}]}]});
        crate::engine::normalize::strip_server_managed(&mut source);
        crate::engine::normalize::strip_server_managed(&mut target);
        normalize_definition_values(t, &mut source);
        normalize_definition_values(t, &mut target);
        assert_eq!(source, target);
        assert_eq!(
            source[DEFINITION_VALUES][0]["definition"],
            json!({"classType": "user", "displayName": "Contoso banner"})
        );
    }

    #[test]
    fn the_value_diff_adds_updates_and_deletes_by_target_ids() {
        let known = known();
        let desired = item(vec![
            value(None, "Contoso banner", "user", "Banner text", "new text"),
            value(Some("d-home"), "Configure the home page URL", "machine", "Home page URL", "https://contoso"),
        ]);
        let live = live(json!([
            {"id": "v-banner", "enabled": true, "definition": {"id": "d-custom-target"},
             "presentationValues": [{"id": "pv-banner", "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                "value": "old text", "presentation": {"id": "p-text"}}]},
            {"id": "v-gone", "enabled": false, "definition": {"id": "d-other"}, "presentationValues": []}
        ]));
        let body = update_definition_values_body(&desired, &live, &known).unwrap().unwrap();
        assert_eq!(body["deletedIds"], json!(["v-gone"]));
        assert_eq!(body["added"].as_array().unwrap().len(), 1);
        assert_eq!(body["added"][0]["definition@odata.bind"], definition_bind("d-home"));
        assert_eq!(
            body["added"][0]["presentationValues"][0]["presentation@odata.bind"],
            presentation_bind("d-home", "p-url")
        );
        assert!(body["added"][0]["presentationValues"][0].get("id").is_none());
        assert_eq!(body["updated"][0]["id"], "v-banner");
        assert_eq!(body["updated"][0]["presentationValues"][0]["id"], "pv-banner");
        assert_eq!(body["updated"][0]["presentationValues"][0]["value"], "new text");
    }

    #[test]
    fn an_unchanged_value_is_not_written_and_nothing_to_do_is_none() {
        let known = known();
        let desired = item(vec![value(None, "Contoso banner", "user", "Banner text", "same")]);
        let same = live(json!([{"id": "v", "enabled": true, "definition": {"id": "d-custom-target"},
            "presentationValues": [{"id": "pv", "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                "value": "same", "presentation": {"id": "p-text"}}]}]));
        assert_eq!(update_definition_values_body(&desired, &same, &known), Ok(None));
        let changed = live(json!([{"id": "v", "enabled": false, "definition": {"id": "d-custom-target"},
            "presentationValues": [{"id": "pv", "value": "same", "presentation": {"id": "p-text"}}]}]));
        let body = update_definition_values_body(&desired, &changed, &known).unwrap().unwrap();
        assert_eq!(body["updated"][0]["enabled"], true);
    }

    #[test]
    fn an_unmapped_definition_fails_the_body_instead_of_writing_part_of_it() {
        let known = known();
        let desired = item(vec![
            value(None, "Contoso banner", "user", "Banner text", "x"),
            value(None, "Not ingested here", "machine", "x", "y"),
        ]);
        let err = update_definition_values_body(&desired, &live(json!([])), &known).unwrap_err();
        assert!(err.contains("Not ingested here"), "{err}");
    }

    #[test]
    fn an_option_named_by_id_is_that_option_of_the_definition_else_the_one_of_its_label() {
        let mut definition = known()[0].clone();
        definition.presentations.push(AdmxPresentation { id: "p-port".into(), label: Some("Port".into()) });
        let by_id = json!({"id": "p-port", "label": "Home page URL"});
        assert_eq!(resolve_presentation(&by_id, &definition), Resolved::Found(&definition.presentations[1]));
        let by_label = json!({"id": "p-elsewhere", "label": "Home page URL"});
        assert_eq!(resolve_presentation(&by_label, &definition), Resolved::Found(&definition.presentations[0]));
        assert_eq!(resolve_presentation(&json!({"label": "Proxy"}), &definition), Resolved::Missing);
    }

    #[test]
    fn a_backup_lists_values_by_definition_and_options_by_label_whatever_order_graph_answered_in() {
        let option = |label: &str| json!({"value": label, "presentation": {"label": label}});
        let with_options = |name: &str, labels: &[&str]| {
            let mut v = value(None, name, "machine", "x", "x");
            v["presentationValues"] = labels.iter().map(|l| option(l)).collect();
            v
        };
        let mut values = vec![with_options("Zone B", &["Port", "Host"]), with_options("Zone A", &["b", "a"])];
        sort_for_backup(&mut values);
        let names: Vec<&str> = values.iter().map(|v| v["definition"]["displayName"].as_str().unwrap()).collect();
        assert_eq!(names, ["Zone A", "Zone B"]);
        let labels: Vec<&str> = values[1]["presentationValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pv| pv["presentation"]["label"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["Host", "Port"]);
    }

    #[tokio::test]
    async fn a_same_tenant_restore_reads_no_definition_its_live_configuration_already_binds_by_id() {
        let mut backed_up = value(Some("d-home"), "Configure the home page URL", "machine", "Home page URL", "x");
        backed_up["presentationValues"][0]["presentation"]["id"] = json!("p-url");
        let port_option = json!({"@odata.type": "#microsoft.graph.groupPolicyPresentationValueDecimal", "value": 8080,
            "presentation": {"id": "p-port", "label": "Port"}});
        backed_up["presentationValues"].as_array_mut().unwrap().push(port_option);
        let backup = crate::backup::BackupSet {
            tenant: None,
            captured_at: None,
            digest: String::new(),
            items: vec![item(vec![backed_up])],
        };
        let scope = crate::engine::scope::resolve_scope(&Default::default(), &backup).unwrap();
        let mut snap = TenantSnapshot::default();
        snap.live.insert(
            scope.items[0].key(),
            live(json!([{"id": "v1", "enabled": true,
                "definition": {"id": "d-home", "displayName": "Configure the home page URL", "classType": "machine"},
                "presentationValues": [
                    {"id": "pv1", "value": "old", "presentation": {"id": "p-url", "label": "Home page URL"}},
                    {"id": "pv2", "value": 80, "presentation": {"id": "p-port", "label": "Port"}}]}])),
        );
        read_targets(&Definitions(Vec::new()), &scope, &mut snap).await.unwrap();
        assert_eq!(snap.stats.get_many_calls, 0, "nothing to look up");
        assert_eq!(snap.maps.admx_definitions.len(), 1);
        assert_eq!(snap.maps.admx_definitions[0].id, "d-home");
        let options: Vec<&str> = snap.maps.admx_definitions[0].presentations.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(options, ["p-port", "p-url"]);
        assert_eq!(unmapped(&scope.items[0].item, &snap.maps.admx_definitions), Vec::<String>::new());
    }
}
