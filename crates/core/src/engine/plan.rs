//! The execution plan (DESIGN §3): foundations, then policies without assignments, then assignments,
//! then a verifying re-read — one step per write, rebuilt identically from the scope and the report.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::ItemOutcome;
use crate::backup::BackupItem;
use crate::catalog::{ItemType, TypeClass};
use crate::engine::analysis::PlannedAction;
use crate::engine::mapping::{ReferenceMapping, TargetMaps};
use crate::engine::normalize::ASSIGNMENTS;
use crate::engine::payload::{SubResourceWrite, sub_resource_write, updates_by_replace};
use crate::engine::preview::PreviewReport;
use crate::engine::scope::ResolvedScope;
use crate::engine::{enrollment, enrollment_priority};

/// What a step does. There is no delete: the operator never deletes tenant objects (rule 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    /// POST the object (with the sub-resources its create body carries), after checking by identity
    /// that it does not exist yet.
    Create,
    /// PATCH the object's properties.
    Update,
    /// PUT the object whole (Settings Catalog: properties and settings).
    Replace,
    /// Write one sub-resource through its action or sub-collection.
    SyncSubResource,
    /// POST `/assign` with the full desired assignment set.
    Assign,
    /// Re-read the object and compare it with the backup.
    Verify,
    /// POST `setPriority` with the planned priority (enrollment configurations), after the item's
    /// writes and assignments: once per pass of [`enrollment_priority::PASSES`].
    SetPriority,
}

impl StepKind {
    /// The kind's name in step ids.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Create => "create",
            StepKind::Update => "update",
            StepKind::Replace => "replace",
            StepKind::SyncSubResource => "sync",
            StepKind::Assign => "assign",
            StepKind::Verify => "verify",
            StepKind::SetPriority => "priority",
        }
    }
}

/// The stage a step belongs to, in execution order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Scope tags, assignment filters, notification templates.
    Foundations,
    /// Policies, without their assignments.
    Policies,
    /// `/assign` of every item.
    Assignments,
    /// `setPriority` of the enrollment configurations: a pass in descending, then one in ascending
    /// planned priority.
    Priorities,
    /// The verifying re-read.
    Verify,
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// Stable id, `kind[:sub-resource]:item key`: what the progress record stores.
    pub id: String,
    /// Key of the item.
    pub item: String,
    /// What the step does.
    pub kind: StepKind,
    /// The sub-resource a [`StepKind::SyncSubResource`] step writes, or the pass of a
    /// [`StepKind::SetPriority`] step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    /// Its stage.
    pub stage: Stage,
}

/// Why no plan can be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The preview has blocker findings (rule 1, defence in depth: the wizard's gate stops first).
    #[error("the preview has {0} blocker finding(s); nothing may be written")]
    Blocked(u32),
    /// The report was not made for this backup and scope.
    #[error("the preview report does not match the backup and scope: {0}; preview again")]
    ReportMismatch(String),
}

/// A part of an item's normalized document that one kind of write changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Concern {
    /// The object's own properties.
    Properties,
    /// One sub-resource.
    SubResource(String),
    /// The assignment list.
    Assignments,
    /// The place in a priority list (enrollment configurations), written by `setPriority` only.
    Priority,
}

/// What the executor needs of one item that writes.
#[derive(Clone, PartialEq)]
pub struct PlanItem {
    /// `type/source id`.
    pub key: String,
    /// `type/display name`.
    pub label: String,
    /// Its type.
    pub item_type: &'static ItemType,
    /// Create or update.
    pub action: PlannedAction,
    /// The object to update (create: set once created).
    pub target_id: Option<String>,
    /// Normalized desired state, from the report.
    pub desired: Arc<Value>,
    /// Normalized state of the object at the preview (`None` for a create): the drift baseline.
    pub expected: Option<Arc<Value>>,
    /// References and where they land.
    pub references: Vec<ReferenceMapping>,
    /// The backup item: the source of every write body. May hold secrets; never printed.
    pub backup: BackupItem,
    /// Whether assignments are part of the restore for this item.
    pub with_assignments: bool,
}

impl PlanItem {
    /// The concerns the desired document covers.
    pub fn concerns(&self) -> Vec<Concern> {
        let mut concerns = vec![Concern::Properties];
        concerns.extend(
            self.item_type
                .sub_resources
                .iter()
                .filter(|s| self.desired.get(s.name).is_some())
                .map(|s| Concern::SubResource(s.name.to_string())),
        );
        if self.desired.get(ASSIGNMENTS).is_some() {
            concerns.push(Concern::Assignments);
        }
        if self.has_priority() {
            concerns.push(Concern::Priority);
        }
        concerns
    }

    /// Whether the item's place in a priority list is part of the restore.
    pub fn has_priority(&self) -> bool {
        enrollment::is_enrollment(self.item_type) && self.desired.get(enrollment::PRIORITY).is_some()
    }

    /// The planned priority, when the item has one.
    pub fn planned_priority(&self) -> Option<i64> {
        self.has_priority().then(|| enrollment::priority(&self.desired)).flatten()
    }

    /// The part of a normalized document one concern covers.
    pub fn concern_of(&self, doc: &Value, concern: &Concern) -> Value {
        match concern {
            Concern::Properties => {
                let subs: Vec<&str> = self.item_type.sub_resources.iter().map(|s| s.name).collect();
                let priority = self.has_priority().then_some(enrollment::PRIORITY);
                match doc {
                    Value::Object(map) => Value::Object(
                        map.iter()
                            .filter(|(k, _)| k.as_str() != ASSIGNMENTS && !subs.contains(&k.as_str()))
                            .filter(|(k, _)| Some(k.as_str()) != priority)
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<Map<String, Value>>(),
                    ),
                    other => other.clone(),
                }
            }
            Concern::SubResource(name) => doc.get(name).cloned().unwrap_or(Value::Null),
            Concern::Assignments => doc.get(ASSIGNMENTS).cloned().unwrap_or(Value::Null),
            Concern::Priority => doc.get(enrollment::PRIORITY).cloned().unwrap_or(Value::Null),
        }
    }

    /// The concerns a step writes.
    pub fn step_concerns(&self, step: &PlanStep) -> Vec<Concern> {
        match step.kind {
            StepKind::Create | StepKind::Verify => self.concerns(),
            StepKind::Update | StepKind::Replace => {
                let mut c = vec![Concern::Properties];
                c.extend(
                    self.item_type
                        .sub_resources
                        .iter()
                        .filter(|s| sub_resource_write(self.item_type, s.name) == SubResourceWrite::InBody)
                        .filter(|s| self.desired.get(s.name).is_some())
                        .map(|s| Concern::SubResource(s.name.to_string())),
                );
                c
            }
            StepKind::SyncSubResource => step.sub_resource.iter().map(|s| Concern::SubResource(s.clone())).collect(),
            StepKind::Assign => vec![Concern::Assignments],
            StepKind::SetPriority => vec![Concern::Priority],
        }
    }

    /// The concerns the create body writes (what an object found by identity must already match).
    pub fn create_concerns(&self) -> Vec<Concern> {
        self.concerns()
            .into_iter()
            .filter(|c| match c {
                Concern::Properties => true,
                Concern::SubResource(name) => sub_resource_write(self.item_type, name).in_create_body(),
                Concern::Assignments | Concern::Priority => false,
            })
            .collect()
    }

    fn differs(&self, concern: &Concern) -> bool {
        let current = self.expected.as_ref().map(|e| self.concern_of(e, concern));
        current.as_ref() != Some(&self.concern_of(&self.desired, concern))
    }
}

impl fmt::Debug for PlanItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanItem")
            .field("key", &self.key)
            .field("action", &self.action)
            .field("target_id", &self.target_id)
            .finish_non_exhaustive()
    }
}

/// The ordered steps of one approved preview, with what each needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionPlan {
    digest: String,
    steps: Vec<PlanStep>,
    items: BTreeMap<String, PlanItem>,
    settled: Vec<(String, ItemOutcome)>,
    order: Vec<String>,
    maps: TargetMaps,
}

impl ExecutionPlan {
    /// Builds the plan of the preview `report` over `scope`. The same inputs give the same plan, so
    /// a restarted controller rebuilds it from the stored report and a re-resolved source.
    pub fn build(scope: &ResolvedScope, report: &PreviewReport) -> Result<ExecutionPlan, PlanError> {
        let blockers = report.blockers();
        if blockers > 0 {
            return Err(PlanError::Blocked(blockers));
        }
        if report.source_digest != scope.source_digest {
            return Err(PlanError::ReportMismatch(format!(
                "the report is for backup {}, the source is {}",
                report.source_digest, scope.source_digest
            )));
        }
        let scope_keys: Vec<String> = scope.items.iter().map(|i| i.key()).collect();
        let report_keys: Vec<&String> = report.items.iter().map(|i| &i.key).collect();
        if report_keys != scope_keys.iter().collect::<Vec<_>>() {
            return Err(PlanError::ReportMismatch("the items in scope differ from the report's".into()));
        }

        let mut items = BTreeMap::new();
        let mut settled = Vec::new();
        let mut steps: Vec<(Stage, i64, usize, PlanStep)> = Vec::new();
        for (position, (scoped, preview)) in scope.items.iter().zip(&report.items).enumerate() {
            let writable = scoped.item_type.filter(|t| t.restorable());
            let (t, true) = (writable, preview.action.writes()) else {
                let outcome = match preview.action {
                    PlannedAction::Unchanged => ItemOutcome::Unchanged,
                    _ => ItemOutcome::Skipped,
                };
                settled.push((preview.key.clone(), outcome));
                continue;
            };
            let Some(t) = t else {
                return Err(PlanError::ReportMismatch(format!("{} is not a restorable type", preview.key)));
            };
            if preview.action == PlannedAction::Update && preview.target_id.is_none() {
                return Err(PlanError::ReportMismatch(format!("{} is an update without a target", preview.key)));
            }
            let item = PlanItem {
                key: preview.key.clone(),
                label: scoped.label(),
                item_type: t,
                action: preview.action,
                target_id: preview.target_id.clone(),
                desired: preview.desired.clone(),
                expected: preview.current.clone(),
                references: preview.references.clone(),
                backup: crate::engine::conditional_access::written_item(
                    scope,
                    &scoped.item,
                    preview.action == PlannedAction::Create,
                )
                .unwrap_or_else(|| scoped.item.clone()),
                with_assignments: scope.with_assignments() && t.assignable,
            };
            let write_stage = if t.class == TypeClass::Foundation { Stage::Foundations } else { Stage::Policies };
            for step in item_steps(&item, write_stage) {
                // setPriority steps: the descending pass, then the ascending one (then restore order).
                let planned = item.planned_priority().unwrap_or(0);
                let rank = match (step.kind, step.sub_resource.as_deref()) {
                    (StepKind::SetPriority, Some(pass)) if pass == enrollment_priority::PASSES[0] => -planned,
                    (StepKind::SetPriority, _) => planned,
                    _ => 0,
                };
                steps.push((step.stage, rank, position, step));
            }
            items.insert(item.key.clone(), item);
        }
        steps.sort_by_key(|(stage, rank, position, _)| (*stage, *rank, *position));
        let mut maps = report.mappings.clone();
        maps.sort();
        Ok(ExecutionPlan {
            digest: report.digest(),
            steps: steps.into_iter().map(|(_, _, _, s)| s).collect(),
            items,
            settled,
            order: scope_keys,
            maps,
        })
    }

    /// The preview digest the plan executes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Every step, in execution order.
    pub fn steps(&self) -> &[PlanStep] {
        &self.steps
    }

    /// The writing item with this key.
    pub fn item(&self, key: &str) -> Option<&PlanItem> {
        self.items.get(key)
    }

    /// Items decided without a step (unchanged, skipped, preview-only), with their outcome.
    pub fn settled(&self) -> &[(String, ItemOutcome)] {
        &self.settled
    }

    /// Every item key in scope, in restore order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// The target's referenceable objects at the preview.
    pub fn maps(&self) -> &TargetMaps {
        &self.maps
    }

    /// How many steps each writing item has.
    pub fn steps_per_item(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for step in &self.steps {
            *counts.entry(step.item.as_str()).or_default() += 1;
        }
        counts
    }
}

fn step(item: &PlanItem, kind: StepKind, sub: Option<&str>, stage: Stage) -> PlanStep {
    let id = match sub {
        Some(sub) => format!("{}:{sub}:{}", kind.as_str(), item.key),
        None => format!("{}:{}", kind.as_str(), item.key),
    };
    PlanStep { id, item: item.key.clone(), kind, sub_resource: sub.map(str::to_string), stage }
}

/// The steps of one item: its write(s) at `write_stage`, its assignments, its verification.
fn item_steps(item: &PlanItem, write_stage: Stage) -> Vec<PlanStep> {
    let t = item.item_type;
    let mut steps = Vec::new();
    let subs: Vec<(&str, SubResourceWrite)> = t
        .sub_resources
        .iter()
        .filter(|s| item.desired.get(s.name).is_some())
        .map(|s| (s.name, sub_resource_write(t, s.name)))
        .collect();
    let creating = item.action == PlannedAction::Create;
    if creating {
        steps.push(step(item, StepKind::Create, None, write_stage));
        for (name, write) in &subs {
            let has_entries = item.desired.get(*name).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
            if !write.in_create_body() && has_entries {
                steps.push(step(item, StepKind::SyncSubResource, Some(name), write_stage));
            }
        }
    } else {
        let in_body_changed = subs
            .iter()
            .filter(|(_, w)| *w == SubResourceWrite::InBody)
            .any(|(name, _)| item.differs(&Concern::SubResource(name.to_string())));
        let properties_changed = item.differs(&Concern::Properties);
        if updates_by_replace(t) && (properties_changed || in_body_changed) {
            steps.push(step(item, StepKind::Replace, None, write_stage));
        } else if properties_changed || in_body_changed {
            steps.push(step(item, StepKind::Update, None, write_stage));
        }
        for (name, write) in &subs {
            if *write != SubResourceWrite::InBody && item.differs(&Concern::SubResource(name.to_string())) {
                steps.push(step(item, StepKind::SyncSubResource, Some(name), write_stage));
            }
        }
    }
    if item.desired.get(ASSIGNMENTS).is_some() {
        let desired_any = item.desired.get(ASSIGNMENTS).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
        if (creating && desired_any) || (!creating && item.differs(&Concern::Assignments)) {
            steps.push(step(item, StepKind::Assign, None, Stage::Assignments));
        }
    }
    if item.has_priority() {
        // Every written configuration of an ordered list is placed, in two passes (a step writes
        // nothing when the configuration already has its planned priority, e.g. one Graph gave it).
        for pass in enrollment_priority::PASSES {
            steps.push(step(item, StepKind::SetPriority, Some(pass), Stage::Priorities));
        }
    }
    steps.push(step(item, StepKind::Verify, None, Stage::Verify));
    steps
}
