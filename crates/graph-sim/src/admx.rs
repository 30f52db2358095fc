//! Administrative Templates in the simulated Graph: the ADMX definitions a tenant has (a few
//! built-in ones every tenant shares, plus the custom ones ingested into it) and the definition values
//! of its `groupPolicyConfigurations` — read with nested `$expand`, written by `updateDefinitionValues`
//! or `POST …/definitionValues`, each value checked against the published model and the catalogue.
//!
//! Grounding: Microsoft Graph docs ("groupPolicyConfiguration: updateDefinitionValues", "Create
//! groupPolicyDefinitionValue", the presentation value resource pages: a text value is for a text
//! box, drop-down list or combo box, a decimal for a decimal text box, …) and the published model.
//! Guesses, marked where coded: the wording of the 400 answers; that an unknown definition or
//! presentation, a second value for the same definition, or a value of the wrong subtype is refused
//! with 400; the built-in definitions' names and most of their ids (see [`BUILT_IN`]).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::api::{Api, ApiRequest, check_unknown_property, missing, touch};
use crate::model::{model, short_type};
use crate::odata::QueryOptions;
use crate::reply::{Reply, bad_request, method_not_allowed, not_found};
use crate::store::Tenant;
use restore_core::catalog::ItemType;

/// The configurations' collection.
pub(crate) const CONFIGURATIONS: &str = "deviceManagement/groupPolicyConfigurations";
/// The definitions' collection.
pub(crate) const DEFINITIONS: &str = "deviceManagement/groupPolicyDefinitions";
const VALUES: &str = "definitionValues";
const PRESENTATION_VALUES: &str = "presentationValues";
const BIND_PREFIX: &str = "groupPolicyDefinitions('";

/// A presentation of a built-in definition: (id, presentation type, label).
type BuiltInPresentation = (&'static str, &'static str, &'static str);
/// A built-in definition: (id, classType, displayName, categoryPath, presentations).
type BuiltIn = (&'static str, &'static str, &'static str, &'static str, &'static [BuiltInPresentation]);

/// Built-in ADMX definitions every simulated tenant has: (id, classType, displayName, categoryPath,
/// [(presentation id, presentation type, label)]). Shapes follow the published model. The ids of
/// the disk-cache definition and its presentation are those of a public Graph example (the
/// terraform-provider-microsoft365 test fixtures' `groupPolicyPresentationValueDecimal` example);
/// the other ids, and every name and category, are the simulator's own (a guess at Edge's and
/// Windows' real ADMX, not read from a tenant).
const BUILT_IN: &[BuiltIn] = &[
    (
        "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a01",
        "machine",
        "Configure the home page URL",
        "\\Microsoft Edge\\Startup, home page and new tab page",
        &[("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b01", "groupPolicyPresentationTextBox", "Home page URL")],
    ),
    (
        "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a02",
        "machine",
        "Action to take on startup",
        "\\Microsoft Edge\\Startup, home page and new tab page",
        &[("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b02", "groupPolicyPresentationDropdownList", "Action to take on startup")],
    ),
    (
        "98d69f26-2201-4aed-8927-d20c29b24ed5",
        "machine",
        "Set disk cache size, in bytes",
        "\\Microsoft Edge",
        &[("5c8d10ad-8a28-4fe2-bd16-170d88dceb82", "groupPolicyPresentationDecimalTextBox", "Set disk cache size")],
    ),
    (
        "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a04",
        "machine",
        "Allow pop-up windows on specific sites",
        "\\Microsoft Edge\\Content settings",
        &[(
            "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b04",
            "groupPolicyPresentationListBox",
            "Allow pop-up windows on these sites",
        )],
    ),
    (
        "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a05",
        "user",
        "Prevent access to registry editing tools",
        "\\System",
        &[(
            "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b05",
            "groupPolicyPresentationDropdownList",
            "Disable regedit from running silently?",
        )],
    ),
    (
        "9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1a06",
        "machine",
        "Turn off Autoplay",
        "\\Windows Components\\AutoPlay Policies",
        &[
            ("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1b06", "groupPolicyPresentationDropdownList", "Turn off Autoplay on:"),
            ("9a2c2b4e-58f5-4a0f-8d1c-0e5d6b2f1c06", "groupPolicyPresentationCheckBox", "Also for non-volume devices"),
        ],
    ),
];

pub(crate) fn built_in() -> &'static [Value] {
    static DEFINITIONS: OnceLock<Vec<Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        BUILT_IN
            .iter()
            .map(|(id, class, name, category, presentations)| {
                let presentations: Vec<Value> = presentations
                    .iter()
                    .map(|(pid, kind, label)| {
                        json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": pid, "label": label,
                               "lastModifiedDateTime": "2024-01-01T00:00:00Z"})
                    })
                    .collect();
                json!({"@odata.type": "#microsoft.graph.groupPolicyDefinition", "id": id, "classType": class,
                       "displayName": name, "categoryPath": category, "explainText": "", "supportedOn": "",
                       "policyType": "admxBacked", "hasRelatedDefinitions": false, "version": "1.0",
                       "groupPolicyCategoryId": "00000000-0000-0000-0000-000000000000",
                       "minDeviceCspVersion": "", "minUserCspVersion": "",
                       "lastModifiedDateTime": "2024-01-01T00:00:00Z", "presentations": presentations})
            })
            .collect()
    })
}

/// Every definition the tenant has, with its presentations: the built-in ones and those ingested.
fn definitions(tenant: &Tenant) -> impl Iterator<Item = &Value> {
    built_in().iter().chain(tenant.admx_definitions.iter())
}

fn find_definition<'t>(tenant: &'t Tenant, id: &str) -> Option<&'t Value> {
    definitions(tenant).find(|d| d.get("id").and_then(Value::as_str) == Some(id))
}

/// Adds an ingested (custom ADMX) definition to a tenant: ids are given where the body lacks them.
pub(crate) fn ingest(
    tenant: &mut Tenant,
    mut definition: Map<String, Value>,
    guid: &mut impl FnMut() -> String,
) -> String {
    let id = definition.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(&mut *guid);
    definition.insert("id".into(), Value::String(id.clone()));
    definition.entry("@odata.type").or_insert(json!("#microsoft.graph.groupPolicyDefinition"));
    definition.entry("policyType").or_insert(json!("admxIngested"));
    if let Some(Value::Array(presentations)) = definition.get_mut("presentations") {
        for p in presentations.iter_mut().filter_map(Value::as_object_mut) {
            if !p.contains_key("id") {
                p.insert("id".into(), Value::String(guid()));
            }
        }
    }
    tenant.admx_definitions.push(Value::Object(definition));
    id
}

fn without_presentations(definition: &Value) -> Value {
    let mut d = definition.clone();
    if let Value::Object(map) = &mut d {
        map.remove("presentations");
    }
    d
}

// -- `$expand` trees ---------------------------------------------------------------------------

/// One `$expand` item: a navigation and what is expanded below it.
#[derive(Debug, Default, PartialEq)]
struct Expand {
    name: String,
    nested: Vec<Expand>,
}

/// Parses an `$expand` value (`a,b($expand=c($expand=d))`), ignoring other nested options.
fn parse_expand(text: &str) -> Vec<Expand> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let bytes = text.as_bytes();
    for i in 0..=bytes.len() {
        let at_end = i == bytes.len();
        let c = if at_end { b',' } else { bytes[i] };
        match c {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                let part = text[start..i].trim();
                start = i + 1;
                if part.is_empty() {
                    continue;
                }
                let (name, inner) = match part.find('(') {
                    Some(open) => (&part[..open], part[open + 1..].strip_suffix(')').unwrap_or("")),
                    None => (part, ""),
                };
                let nested = inner
                    .split(';')
                    .find_map(|option| option.trim().strip_prefix("$expand=").or(option.trim().strip_prefix("expand=")))
                    .map(parse_expand)
                    .unwrap_or_default();
                items.push(Expand { name: name.trim().to_string(), nested });
            }
            _ => {}
        }
    }
    items
}

fn expand_text(options: &QueryOptions) -> String {
    options
        .pairs
        .iter()
        .filter(|(k, _)| k == "$expand" || k == "expand")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn child<'e>(expand: &'e [Expand], name: &str) -> Option<&'e Expand> {
    expand.iter().find(|e| e.name == name)
}

/// Stored definition values as Graph answers them under `expand` (the items expanded below
/// `definitionValues`): `definition` and `presentationValues` only when expanded, and each
/// presentation value's `presentation` only when expanded below it.
fn render_values(stored: &[Value], expand: &[Expand]) -> Vec<Value> {
    let presentation_values = child(expand, PRESENTATION_VALUES);
    let with_presentation = presentation_values.is_some_and(|pv| child(&pv.nested, "presentation").is_some());
    stored
        .iter()
        .map(|value| {
            let mut out = value.clone();
            let Value::Object(map) = &mut out else { return out };
            if child(expand, "definition").is_none() {
                map.remove("definition");
            }
            match presentation_values {
                None => {
                    map.remove(PRESENTATION_VALUES);
                }
                Some(_) if !with_presentation => {
                    for pv in map.get_mut(PRESENTATION_VALUES).and_then(Value::as_array_mut).into_iter().flatten() {
                        if let Value::Object(pv) = pv {
                            pv.remove("presentation");
                        }
                    }
                }
                Some(_) => {}
            }
            out
        })
        .collect()
}

/// A configuration's `definitionValues` as a read with `options` expands them on the configuration.
pub(crate) fn render_on_configuration(stored: &[Value], options: &QueryOptions) -> Value {
    let tree = parse_expand(&expand_text(options));
    let nested = child(&tree, VALUES).map(|e| e.nested.as_slice()).unwrap_or_default();
    Value::Array(render_values(stored, nested))
}

/// Whether `ty` is the configurations' collection.
pub(crate) fn is_configurations(ty: &ItemType) -> bool {
    ty.collection == CONFIGURATIONS
}

// -- routes ------------------------------------------------------------------------------------

impl Api<'_> {
    /// `GET deviceManagement/groupPolicyDefinitions[/{id}[/presentations]]` (read-only: ingesting
    /// ADMX files is not simulated through the API; tests call `GraphSim::ingest_admx_definition`).
    pub(crate) fn admx_definitions(&mut self, req: &ApiRequest<'_>, rest: &[&str], options: &QueryOptions) -> Reply {
        let expand_presentations = options.expand.iter().any(|e| e == "presentations");
        let shown = |d: &Value| if expand_presentations { d.clone() } else { without_presentations(d) };
        match (req.method, rest) {
            ("GET", []) => {
                let items: Vec<Value> = definitions(self.tenant)
                    .filter(|d| options.filter.as_ref().is_none_or(|f| d.as_object().is_some_and(|m| f.matches(m))))
                    .map(shown)
                    .collect();
                let context = format!("{}/$metadata#{DEFINITIONS}", self.base);
                self.page(items, options, self.paging.page_size, &context, req)
            }
            ("GET", [id]) => match find_definition(self.tenant, id) {
                Some(d) => Reply::json(200, shown(d)),
                None => {
                    not_found(format!("Resource '{id}' of type 'microsoft.graph.groupPolicyDefinition' was not found."))
                }
            },
            ("GET", [id, "presentations"]) => match find_definition(self.tenant, id) {
                Some(d) => {
                    let items = d.get("presentations").and_then(Value::as_array).cloned().unwrap_or_default();
                    let context = format!("{}/$metadata#{DEFINITIONS}('{id}')/presentations", self.base);
                    self.page(items, options, self.paging.page_size, &context, req)
                }
                None => {
                    not_found(format!("Resource '{id}' of type 'microsoft.graph.groupPolicyDefinition' was not found."))
                }
            },
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    /// `…/groupPolicyConfigurations/{id}/definitionValues[/{valueId}[/presentationValues]]`.
    pub(crate) fn admx_values(
        &mut self,
        ty: &'static ItemType,
        req: &ApiRequest<'_>,
        id: &str,
        rest: &[&str],
        options: &QueryOptions,
    ) -> Reply {
        let Some(entity) = self.tenant.entity(ty.collection, id) else { return missing(ty, id) };
        let stored = entity.subs.get(VALUES).cloned().unwrap_or_default();
        let tree = parse_expand(&expand_text(options));
        match (req.method, rest) {
            ("GET", []) => {
                let context = format!("{}/$metadata#{}('{id}')/{VALUES}", self.base, ty.collection);
                self.page(render_values(&stored, &tree), options, self.paging.page_size, &context, req)
            }
            ("GET", [value_id, rest @ ..]) => {
                let Some(value) = stored.iter().find(|v| v.get("id").and_then(Value::as_str) == Some(value_id)) else {
                    return not_found(format!("'{VALUES}' item '{value_id}' was not found."));
                };
                match rest {
                    [] => Reply::json(200, render_values(std::slice::from_ref(value), &tree).remove(0)),
                    [PRESENTATION_VALUES] => {
                        let as_value = [Expand { name: PRESENTATION_VALUES.into(), nested: tree }];
                        let rendered = render_values(std::slice::from_ref(value), &as_value).remove(0);
                        let items =
                            rendered.get(PRESENTATION_VALUES).and_then(Value::as_array).cloned().unwrap_or_default();
                        let context = format!(
                            "{}/$metadata#{}('{id}')/{VALUES}('{value_id}')/{PRESENTATION_VALUES}",
                            self.base, ty.collection
                        );
                        self.page(items, options, self.paging.page_size, &context, req)
                    }
                    _ => bad_request(format!(
                        "Resource not found for the segment '{}'.",
                        rest.last().copied().unwrap_or_default()
                    )),
                }
            }
            ("POST", []) => {
                let body = req.body.clone().unwrap_or(Value::Null);
                let change = json!({"added": [body], "updated": [], "deletedIds": []});
                match self.apply_definition_values(ty, id, &change) {
                    Ok(mut created) => Reply::json(201, created.pop().unwrap_or(Value::Null)),
                    Err(reply) => reply,
                }
            }
            // Graph documents PATCH and DELETE of one value too; the simulator answers them through
            // `updateDefinitionValues` only (no client of it sends them).
            (method, _) => method_not_allowed(method, req.path),
        }
    }

    /// `POST …/groupPolicyConfigurations/{id}/updateDefinitionValues`: `added`, `updated` and
    /// `deletedIds` applied together, or nothing when any part is refused. 204 No Content.
    pub(crate) fn update_definition_values(&mut self, ty: &'static ItemType, id: &str, body: Value) -> Reply {
        if let Some(unknown) =
            body.as_object().and_then(|m| m.keys().find(|k| !["added", "updated", "deletedIds"].contains(&k.as_str())))
        {
            return bad_request(format!(
                "The parameter '{unknown}' in the request payload is not a valid parameter for the operation 'updateDefinitionValues'."
            ));
        }
        match self.apply_definition_values(ty, id, &body) {
            Ok(_) => Reply::no_content(),
            Err(reply) => reply,
        }
    }

    /// Checks then applies a change; returns the values added, as stored.
    fn apply_definition_values(
        &mut self,
        ty: &'static ItemType,
        id: &str,
        change: &Value,
    ) -> Result<Vec<Value>, Reply> {
        let Some(entity) = self.tenant.entity(ty.collection, id) else { return Err(missing(ty, id)) };
        let mut values = entity.subs.get(VALUES).cloned().unwrap_or_default();
        let list = |key: &str| change.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        for deleted in list("deletedIds") {
            let Some(deleted) = deleted.as_str() else {
                return Err(bad_request("'deletedIds' holds a non-string id."));
            };
            let Some(at) = values.iter().position(|v| v.get("id").and_then(Value::as_str) == Some(deleted)) else {
                return Err(not_found(format!("'{VALUES}' item '{deleted}' was not found.")));
            };
            values.remove(at);
        }
        let now = self.ids.now();
        for updated in list("updated") {
            let value = checked_value(self.tenant, &updated, true)?;
            let Some(value_id) = updated.get("id").and_then(Value::as_str) else {
                return Err(bad_request("An updated definition value needs its 'id'."));
            };
            let Some(current) = values.iter_mut().find(|v| v.get("id").and_then(Value::as_str) == Some(value_id))
            else {
                return Err(not_found(format!("'{VALUES}' item '{value_id}' was not found.")));
            };
            merge_update(current, value, &now, self.ids);
        }
        let mut added_out = Vec::new();
        for added in list("added") {
            let mut value = checked_value(self.tenant, &added, false)?;
            let def_id = definition_id_of(&value);
            if values.iter().any(|v| definition_id_of(v) == def_id) {
                // Guess: Graph refuses a second value for the same definition in a configuration.
                return Err(bad_request(format!("The configuration already has a value for definition '{def_id}'.")));
            }
            stamp(&mut value, self.ids.guid(), &now);
            for pv in value.get_mut(PRESENTATION_VALUES).and_then(Value::as_array_mut).into_iter().flatten() {
                stamp(pv, self.ids.guid(), &now);
            }
            added_out.push(value.clone());
            values.push(value);
        }
        let Some(entity) = self.tenant.collection(ty.collection).entities.get_mut(id) else {
            return Err(missing(ty, id));
        };
        entity.subs.insert(VALUES.into(), values);
        touch(entity, now);
        Ok(added_out)
    }
}

/// The definition values a configuration is created with (a deep insert; that Graph takes one is a
/// guess, the documented way being `updateDefinitionValues` after the create), checked like `added`.
pub(crate) fn checked_new_values(
    tenant: &Tenant,
    ids: &mut crate::store::IdSource,
    values: Vec<Value>,
) -> Result<Vec<Value>, Reply> {
    let now = ids.now();
    let mut out: Vec<Value> = Vec::with_capacity(values.len());
    for value in values {
        let mut value = checked_value(tenant, &value, false)?;
        if out.iter().any(|v| definition_id_of(v) == definition_id_of(&value)) {
            return Err(bad_request(format!(
                "The configuration already has a value for definition '{}'.",
                definition_id_of(&value)
            )));
        }
        stamp(&mut value, ids.guid(), &now);
        for pv in value.get_mut(PRESENTATION_VALUES).and_then(Value::as_array_mut).into_iter().flatten() {
            stamp(pv, ids.guid(), &now);
        }
        out.push(value);
    }
    Ok(out)
}

fn stamp(value: &mut Value, id: String, now: &str) {
    if let Value::Object(map) = value {
        map.insert("id".into(), Value::String(id));
        map.insert("createdDateTime".into(), Value::String(now.to_string()));
        map.insert("lastModifiedDateTime".into(), Value::String(now.to_string()));
    }
}

fn definition_id_of(value: &Value) -> String {
    value.get("definition").and_then(|d| d.get("id")).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// An updated value replaces `enabled` and the presentation values it names (by id, or by
/// presentation); presentation values it does not name stay.
fn merge_update(current: &mut Value, update: Value, now: &str, ids: &mut crate::store::IdSource) {
    let Value::Object(update) = update else { return };
    let Value::Object(map) = current else { return };
    if let Some(enabled) = update.get("enabled") {
        map.insert("enabled".into(), enabled.clone());
    }
    map.insert("lastModifiedDateTime".into(), Value::String(now.to_string()));
    let current_pvs = map.entry(PRESENTATION_VALUES).or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(current_pvs) = current_pvs else { return };
    for pv in update.get(PRESENTATION_VALUES).and_then(Value::as_array).into_iter().flatten() {
        let presentation = pv.get("presentation").and_then(|p| p.get("id")).cloned();
        let slot = current_pvs.iter_mut().find(|c| {
            (pv.get("id").is_some() && c.get("id") == pv.get("id"))
                || c.get("presentation").and_then(|p| p.get("id")).cloned() == presentation
        });
        match slot {
            Some(slot) => {
                let id = slot.get("id").cloned();
                let created = slot.get("createdDateTime").cloned();
                *slot = pv.clone();
                if let Value::Object(slot) = slot {
                    slot.insert("id".into(), id.unwrap_or(Value::Null));
                    slot.insert("createdDateTime".into(), created.unwrap_or(Value::Null));
                    slot.insert("lastModifiedDateTime".into(), Value::String(now.to_string()));
                }
            }
            None => {
                let mut pv = pv.clone();
                stamp(&mut pv, ids.guid(), now);
                current_pvs.push(pv);
            }
        }
    }
}

/// The id inside a `…groupPolicyDefinitions('{id}')…` bind, and the presentation id after it.
fn bind_ids(bind: &str) -> Option<(&str, Option<&str>)> {
    let rest = &bind[bind.find(BIND_PREFIX)? + BIND_PREFIX.len()..];
    let (definition, rest) = rest.split_once("')")?;
    let presentation = rest.strip_prefix("/presentations('").and_then(|p| p.split_once("')")).map(|(p, _)| p);
    Some((definition, presentation))
}

/// Which presentation value subtype each presentation type takes (Microsoft's presentation value
/// resource pages: text for a text box, drop-down list or combo box; decimal and long decimal for
/// their text boxes; boolean for a check box; list for a list box; multi-text for a multi-line box).
fn value_type_for(presentation_type: &str) -> Option<&'static str> {
    Some(match short_type(presentation_type) {
        "groupPolicyPresentationTextBox"
        | "groupPolicyPresentationDropdownList"
        | "groupPolicyPresentationComboBox" => "groupPolicyPresentationValueText",
        "groupPolicyPresentationDecimalTextBox" => "groupPolicyPresentationValueDecimal",
        "groupPolicyPresentationLongDecimalTextBox" => "groupPolicyPresentationValueLongDecimal",
        "groupPolicyPresentationCheckBox" => "groupPolicyPresentationValueBoolean",
        "groupPolicyPresentationListBox" => "groupPolicyPresentationValueList",
        "groupPolicyPresentationMultiTextBox" => "groupPolicyPresentationValueMultiText",
        _ => return None,
    })
}

/// Whether a JSON value fits a declared model type (`string`, `number`, `boolean`, collections).
fn fits(value: &Value, element: &str, collection: bool) -> bool {
    if value.is_null() {
        return true;
    }
    if collection {
        return value.as_array().is_some_and(|items| items.iter().all(|v| fits(v, element, false)));
    }
    match element {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => value.is_object(),
    }
}

/// Checks one posted definition value (`updating`: the definition bind may be left out) and turns
/// it into the stored form: `definition` and each `presentation` as the tenant's objects.
fn checked_value(tenant: &Tenant, posted: &Value, updating: bool) -> Result<Value, Reply> {
    let Value::Object(body) = posted else { return Err(bad_request("A definition value must be a JSON object.")) };
    check_unknown_property("groupPolicyDefinitionValue", body)?;
    let bind = body.get("definition@odata.bind").and_then(Value::as_str);
    let definition = match bind.and_then(bind_ids) {
        Some((def_id, _)) => match find_definition(tenant, def_id) {
            Some(d) => d,
            // Guess for the wording; Graph answers 400 for a bind to an unknown entity.
            None => return Err(bad_request(format!("No groupPolicyDefinition with id '{def_id}' was found."))),
        },
        None if updating => return Ok(Value::Object(body.clone())),
        None => return Err(bad_request("A definition value needs 'definition@odata.bind'.")),
    };
    let def_id = definition.get("id").and_then(Value::as_str).unwrap_or_default();
    let presentations = definition.get("presentations").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut stored_pvs = Vec::new();
    for pv in body.get(PRESENTATION_VALUES).and_then(Value::as_array).into_iter().flatten() {
        let Some(pv_map) = pv.as_object() else {
            return Err(bad_request("A presentation value must be a JSON object."));
        };
        let Some(odata) = pv_map.get("@odata.type").and_then(Value::as_str) else {
            return Err(bad_request("A presentation value needs its '@odata.type'."));
        };
        if !model().is_a(short_type(odata), "groupPolicyPresentationValue")
            || short_type(odata) == "groupPolicyPresentationValue"
        {
            return Err(bad_request(format!("'{odata}' is not a group policy presentation value type.")));
        }
        let bound = pv_map.get("presentation@odata.bind").and_then(Value::as_str).and_then(bind_ids);
        let presentation = match bound {
            Some((bound_def, Some(pid))) if bound_def == def_id => {
                presentations.iter().find(|p| p.get("id").and_then(Value::as_str) == Some(pid))
            }
            _ => None,
        };
        let Some(presentation) = presentation else {
            return Err(bad_request(format!(
                "The presentation value does not bind a presentation of definition '{def_id}'."
            )));
        };
        let presentation_type = presentation.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
        if value_type_for(presentation_type) != Some(short_type(odata)) {
            return Err(bad_request(format!(
                "'{odata}' is not a value for a presentation of type '{presentation_type}'."
            )));
        }
        for key in ["value", "values"] {
            if let Some(v) = pv_map.get(key) {
                let declared = model().property_type(short_type(odata), key);
                if !declared.is_some_and(|d| fits(v, d.element, d.collection)) {
                    return Err(bad_request(format!("The value of '{key}' does not fit type '{odata}'.")));
                }
            }
        }
        let mut stored = pv_map.clone();
        stored.remove("presentation@odata.bind");
        stored.insert("presentation".into(), presentation.clone());
        stored_pvs.push(Value::Object(stored));
    }
    let mut stored = body.clone();
    stored.remove("definition@odata.bind");
    stored.entry("enabled").or_insert(json!(false));
    stored.entry("configurationType").or_insert(json!("policy"));
    stored.insert("definition".into(), without_presentations(definition));
    stored.insert(PRESENTATION_VALUES.into(), Value::Array(stored_pvs));
    Ok(Value::Object(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_trees_parse_nested_options() {
        let tree =
            parse_expand("assignments,definitionValues($expand=definition,presentationValues($expand=presentation))");
        assert_eq!(tree.len(), 2);
        let values = child(&tree, "definitionValues").unwrap();
        assert!(child(&values.nested, "definition").is_some());
        let pvs = child(&values.nested, "presentationValues").unwrap();
        assert!(child(&pvs.nested, "presentation").is_some());
        assert!(parse_expand("").is_empty());
    }

    #[test]
    fn binds_name_the_definition_and_presentation() {
        let bind = "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('d1')/presentations('p1')";
        assert_eq!(bind_ids(bind), Some(("d1", Some("p1"))));
        assert_eq!(bind_ids("…/groupPolicyDefinitions('d1')"), Some(("d1", None)));
        assert_eq!(bind_ids("nothing"), None);
    }

    #[test]
    fn every_built_in_presentation_takes_a_published_value_type() {
        for definition in built_in() {
            for p in definition["presentations"].as_array().unwrap() {
                let kind = p["@odata.type"].as_str().unwrap();
                let value_type = value_type_for(kind).unwrap_or_else(|| panic!("{kind}"));
                assert!(model().is_a(value_type, "groupPolicyPresentationValue"), "{value_type}");
                assert!(model().is_a(short_type(kind), "groupPolicyPresentation"), "{kind}");
            }
        }
    }
}
