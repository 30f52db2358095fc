//! The resumable executor: runs an [`ExecutionPlan`] one step at a time, re-reading each object
//! before writing it (drift, rule 4), and records progress so a restarted run finishes exactly once (rule 5).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::api::{ItemOutcome, ItemResult, OutcomeCounts};
use crate::canonical::{canonical_json, digest_of};
use crate::engine::analysis::PlannedAction;
use crate::engine::assignment_writes::{AssignmentWrite, assignment_write, write_one_by_one};
use crate::engine::bounded;
use crate::engine::diff::changed_paths;
use crate::engine::identity::Identity;
use crate::engine::mapping::{IdNames, RefKind};
use crate::engine::normalize::{ASSIGNMENTS, normalize, project_onto, strip_server_managed};
use crate::engine::payload::{
    Resolver, SubResourceWrite, assign_body, create_body, sub_resource_values, sub_resource_write, update_body,
};
use crate::engine::plan::{Concern, ExecutionPlan, PlanItem, PlanStep, StepKind};
use crate::engine::snapshot::object_path;
use crate::tenant::{TenantError, TenantErrorKind, TenantPort};
use crate::wizard::ExecutionFacts;

/// Longest message kept in an item result.
const MAX_MESSAGE: usize = 1024;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    /// The write was sent and accepted.
    Written,
    /// The tenant already held the result (an earlier attempt wrote it): nothing was sent.
    AlreadyDone,
    /// The verifying re-read matched the backup.
    Verified,
    /// The object changed since the preview: not written.
    Drifted,
    /// Graph refused the write, or a dependency was missing.
    Failed,
    /// Not run: an earlier step of the item drifted or failed.
    NotRun,
}

/// One completed step in the progress record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The step id.
    pub step: String,
    /// The item key.
    pub item: String,
    /// How it ended.
    pub status: StepStatus,
    /// The target id of the object a create step made or found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_id: Option<String>,
    /// Why it drifted or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a run has done so far: persisted by the controller after every step, handed back to
/// [`Executor::new`] after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressRecord {
    /// The preview digest the run executes.
    pub preview_digest: String,
    /// Completed steps, in the order they completed.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
}

impl ProgressRecord {
    /// An empty record for the plan of `preview_digest`.
    pub fn new(preview_digest: impl Into<String>) -> ProgressRecord {
        ProgressRecord { preview_digest: preview_digest.into(), steps: Vec::new() }
    }

    /// The digest of the record's first `steps` steps (what status keeps to recognise a record
    /// this controller wrote).
    pub fn digest_of_first(&self, steps: usize) -> String {
        let prefix = ProgressRecord {
            preview_digest: self.preview_digest.clone(),
            steps: self.steps.iter().take(steps).cloned().collect(),
        };
        // Strings and enums only: serialization cannot fail; an empty digest matches nothing.
        digest_of(&prefix).unwrap_or_default()
    }

    /// The digest of the whole record.
    pub fn digest(&self) -> String {
        self.digest_of_first(self.steps.len())
    }

    /// The part of a stored record that status vouches for: its first `completed` steps when
    /// they have the `digest` status recorded for them. Steps after those (written just before
    /// a crash, before status caught up) are dropped and run again, which rule 5 makes safe.
    /// `None`: the record does not extend what this controller wrote.
    pub fn vouched_prefix(mut self, completed: usize, digest: Option<&str>) -> Option<ProgressRecord> {
        let vouched = match digest {
            Some(digest) => self.steps.len() >= completed && self.digest_of_first(completed) == digest,
            None => completed == 0,
        };
        vouched.then(|| {
            self.steps.truncate(completed);
            self
        })
    }
}

/// What one call of [`Executor::next_step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// The step.
    pub step: PlanStep,
    /// How it ended.
    pub status: StepStatus,
    /// Writes sent to the tenant.
    pub writes: u32,
    /// Why it drifted or failed.
    pub message: Option<String>,
    /// The item's outcome, when this step decided it.
    pub item_outcome: Option<ItemOutcome>,
}

/// Why the executor stopped without completing a step. The step is not recorded: calling
/// [`Executor::next_step`] again retries it (it checks what an earlier attempt already wrote).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The tenant could not be reached, throttled us, or refused the credentials.
    #[error("restore step {step} interrupted: {source}")]
    Tenant {
        /// The step id.
        step: String,
        /// What the tenant answered.
        #[source]
        source: TenantError,
    },
    /// The progress record was made for another preview.
    #[error("the progress record belongs to preview {found}, not to the approved preview {expected}")]
    ForeignProgress {
        /// The plan's digest.
        expected: String,
        /// The record's digest.
        found: String,
    },
    /// The progress record names a step the plan does not have.
    #[error("the progress record names step {0}, which the plan does not have")]
    UnknownStep(String),
}

impl ExecError {
    /// Whether calling again later may succeed (tenant trouble); the others need a new run.
    pub fn is_transient(&self) -> bool {
        matches!(self, ExecError::Tenant { .. })
    }
}

/// How a step ended, before it becomes a record.
enum Ending {
    Written(Option<String>),
    AlreadyDone(Option<String>),
    Verified,
    Drifted(String),
    Failed(String),
}

#[derive(Clone, Debug, Default)]
struct ItemProgress {
    done: usize,
    stopped: Option<(ItemOutcome, String)>,
}

/// Runs a plan step by step. Never deletes; never writes a preview-only or skipped item.
pub struct Executor {
    plan: ExecutionPlan,
    progress: ProgressRecord,
    done: BTreeSet<String>,
    created: BTreeMap<String, String>,
    items: BTreeMap<String, ItemProgress>,
    steps_per_item: BTreeMap<String, usize>,
    names: IdNames,
    /// Steps before this index are all complete.
    cursor: usize,
}

impl Executor {
    /// An executor for `plan` resuming from `progress` (a new record for a fresh run).
    pub fn new(plan: ExecutionPlan, progress: ProgressRecord) -> Result<Executor, ExecError> {
        if progress.preview_digest != plan.digest() {
            return Err(ExecError::ForeignProgress {
                expected: plan.digest().to_string(),
                found: progress.preview_digest.clone(),
            });
        }
        let steps_per_item = plan.steps_per_item().into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        let names = plan.maps().id_names();
        let records = progress.steps.clone();
        let mut executor = Executor {
            plan,
            progress: ProgressRecord { preview_digest: progress.preview_digest, steps: Vec::new() },
            done: BTreeSet::new(),
            created: BTreeMap::new(),
            items: BTreeMap::new(),
            steps_per_item,
            names,
            cursor: 0,
        };
        for record in records {
            let known = executor.plan.steps().iter().any(|s| s.id == record.step && s.item == record.item);
            if !known || executor.done.contains(&record.step) {
                return Err(ExecError::UnknownStep(record.step));
            }
            executor.apply(record);
        }
        Ok(executor)
    }

    /// The progress so far: persist it after every step.
    pub fn progress(&self) -> &ProgressRecord {
        &self.progress
    }

    /// The plan being executed.
    pub fn plan(&self) -> &ExecutionPlan {
        &self.plan
    }

    /// Whether every step is complete.
    pub fn is_finished(&self) -> bool {
        self.progress.steps.len() == self.plan.steps().len()
    }

    fn apply(&mut self, record: StepRecord) {
        self.done.insert(record.step.clone());
        if let Some(id) = &record.created_id {
            self.created.insert(record.item.clone(), id.clone());
            if let Some(item) = self.plan.item(&record.item)
                && let Some(kind) = RefKind::of_foundation_type(item.item_type.name)
            {
                self.names.insert(kind, id, &item.backup.display_name);
            }
        }
        let progress = self.items.entry(record.item.clone()).or_default();
        progress.done += 1;
        if progress.stopped.is_none() {
            let message = record.message.clone().unwrap_or_default();
            match record.status {
                StepStatus::Drifted => progress.stopped = Some((ItemOutcome::Drifted, message)),
                StepStatus::Failed => progress.stopped = Some((ItemOutcome::Failed, message)),
                _ => {}
            }
        }
        self.progress.steps.push(record);
    }

    /// The final outcome of a writing item, once decided.
    fn outcome_of(&self, item: &PlanItem) -> Option<(ItemOutcome, Option<String>)> {
        let progress = self.items.get(&item.key)?;
        if let Some((outcome, message)) = &progress.stopped {
            return Some((*outcome, Some(message.clone())));
        }
        let total = self.steps_per_item.get(&item.key).copied().unwrap_or(0);
        let finished = match item.action {
            PlannedAction::Create => ItemOutcome::Created,
            _ => ItemOutcome::Updated,
        };
        (progress.done == total).then_some((finished, None))
    }

    /// Runs the next step. `Ok(None)`: the plan is complete. Drift and refused writes are recorded as
    /// the item's outcome; tenant trouble returns an error and leaves the step to be retried.
    pub async fn next_step<T: TenantPort>(&mut self, port: &T) -> Result<Option<StepResult>, ExecError> {
        let steps = self.plan.steps();
        while self.cursor < steps.len() && self.done.contains(&steps[self.cursor].id) {
            self.cursor += 1;
        }
        let Some(step) = steps.get(self.cursor).cloned() else {
            return Ok(None);
        };
        let mut writes = 0;
        let stopped = self.items.get(&step.item).and_then(|p| p.stopped.clone());
        let done = match (self.plan.item(&step.item), stopped) {
            (None, _) => Ending::Failed("the plan has no such item".into()),
            (Some(_), Some((outcome, _))) => {
                let record = StepRecord {
                    step: step.id.clone(),
                    item: step.item.clone(),
                    status: StepStatus::NotRun,
                    created_id: None,
                    message: Some(format!("not run: the item {} earlier", outcome_word(outcome))),
                };
                return Ok(Some(self.finish(step, record, 0)));
            }
            (Some(item), None) => match self.run(port, &step, item, &mut writes).await {
                Ok(done) => done,
                Err(e) if is_item_level(&e) => Ending::Failed(format!("Graph refused the write: {}", e.message)),
                Err(source) => {
                    warn!(step = %step.id, error = %source, "restore step interrupted; it will be retried");
                    return Err(ExecError::Tenant { step: step.id.clone(), source });
                }
            },
        };
        let (status, created_id, message) = match done {
            Ending::Written(id) => (StepStatus::Written, id, None),
            Ending::AlreadyDone(id) => (StepStatus::AlreadyDone, id, None),
            Ending::Verified => (StepStatus::Verified, None, None),
            Ending::Drifted(m) => (StepStatus::Drifted, None, Some(bounded(m, MAX_MESSAGE))),
            Ending::Failed(m) => (StepStatus::Failed, None, Some(bounded(m, MAX_MESSAGE))),
        };
        let record = StepRecord { step: step.id.clone(), item: step.item.clone(), status, created_id, message };
        Ok(Some(self.finish(step, record, writes)))
    }

    fn finish(&mut self, step: PlanStep, record: StepRecord, writes: u32) -> StepResult {
        let (status, message) = (record.status, record.message.clone());
        info!(step = %step.id, status = ?status, writes, "restore step completed");
        self.apply(record);
        let item_outcome = self.plan.item(&step.item).and_then(|item| self.outcome_of(item)).map(|(o, _)| o);
        StepResult { step, status, writes, message, item_outcome }
    }

    /// Runs every remaining step.
    pub async fn run_to_end<T: TenantPort>(&mut self, port: &T) -> Result<ExecutionFacts, ExecError> {
        while self.next_step(port).await?.is_some() {}
        Ok(self.facts())
    }

    /// Every decided item outcome, in restore order.
    pub fn item_results(&self) -> Vec<ItemResult> {
        let settled: BTreeMap<&str, ItemOutcome> = self.plan.settled().iter().map(|(k, o)| (k.as_str(), *o)).collect();
        self.plan
            .order()
            .iter()
            .filter_map(|key| {
                let (outcome, message) = match settled.get(key.as_str()) {
                    Some(outcome) => (*outcome, None),
                    None => self.outcome_of(self.plan.item(key)?)?,
                };
                Some(ItemResult { item: key.clone(), outcome, message })
            })
            .collect()
    }

    /// The wizard's execution fact: progress, counts, and the drifted and failed items.
    pub fn facts(&self) -> ExecutionFacts {
        let results = self.item_results();
        let mut counts = OutcomeCounts::default();
        results.iter().for_each(|r| counts.record(r.outcome));
        let mut problems: Vec<ItemResult> =
            results.into_iter().filter(|r| matches!(r.outcome, ItemOutcome::Failed | ItemOutcome::Drifted)).collect();
        problems.sort_by_key(|r| r.outcome != ItemOutcome::Failed);
        ExecutionFacts {
            completed_steps: u32::try_from(self.progress.steps.len()).unwrap_or(u32::MAX),
            total_steps: u32::try_from(self.plan.steps().len()).unwrap_or(u32::MAX),
            counts,
            results: problems,
            finished: self.is_finished(),
            progress_digest: self.progress.digest(),
        }
    }

    /// Whether this run has already had a `setPriority` accepted in the priority list of `item`: the
    /// other configurations of that list may have been renumbered by it. (A step found already done
    /// sent nothing. A write whose answer was lost before a restart is not known here: a number it
    /// shifted reads as drift — the safe side.)
    fn reordered_by_this_run(&self, item: &PlanItem) -> bool {
        let list = crate::engine::enrollment::priority_list(item.item_type, &item.backup.resource);
        list.is_some()
            && self.progress.steps.iter().any(|r| {
                r.status == StepStatus::Written
                    && r.step.starts_with(StepKind::SetPriority.as_str())
                    && self.plan.item(&r.item).is_some_and(|other| {
                        crate::engine::enrollment::priority_list(other.item_type, &other.backup.resource) == list
                    })
            })
    }

    fn resolver<'a>(&'a self, item: &'a PlanItem) -> Resolver<'a> {
        Resolver { references: &item.references, created: &self.created }
    }

    /// Reads the live object whole: the raw object and its normalized form limited to the desired keys.
    async fn read_live<T: TenantPort>(
        &self,
        port: &T,
        item: &PlanItem,
        id: &str,
    ) -> Result<Option<(Value, Value)>, TenantError> {
        let path = crate::engine::apple_enrollment::object_path_of(
            item.item_type,
            &item.references,
            id,
            item.with_assignments,
        )
        .unwrap_or_else(|| object_path(item.item_type, id, item.with_assignments));
        let raw = port.get(&path).await?;
        Ok(raw.map(|raw| {
            let mut normalized = project_onto(&normalize(Some(item.item_type), &raw, &self.names), &item.desired);
            crate::engine::intents::project_settings(item.item_type, &mut normalized, &item.desired);
            (raw, normalized)
        }))
    }

    async fn run<T: TenantPort>(
        &self,
        port: &T,
        step: &PlanStep,
        item: &PlanItem,
        writes: &mut u32,
    ) -> Result<Ending, TenantError> {
        match step.kind {
            StepKind::Create => self.create(port, item, writes).await,
            StepKind::Verify => self.verify(port, item).await,
            StepKind::Update | StepKind::Replace | StepKind::SyncSubResource | StepKind::Assign => {
                self.write_existing(port, step, item, writes).await
            }
            StepKind::SetPriority => self.write_existing(port, step, item, writes).await,
        }
    }

    /// Rule 5: a create first looks for the object by identity; one it finds is adopted only when it
    /// is exactly what this run would have created (an earlier attempt's), otherwise it is drift.
    async fn create<T: TenantPort>(&self, port: &T, item: &PlanItem, writes: &mut u32) -> Result<Ending, TenantError> {
        let t = item.item_type;
        let Some(collection) = crate::engine::apple_enrollment::item_collection(t, &item.references) else {
            return Ok(Ending::Failed("the collection the object lives under is not mapped in the target".into()));
        };
        let identity = Identity::of_item(t, &item.backup);
        let found: Vec<String> = port
            .list(&identity.query_in(t, &collection))
            .await?
            .iter()
            .filter(|c| Identity::of(t, c, "") == identity)
            .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        match found.as_slice() {
            [] => {
                let body = match create_body(t, &item.backup, &self.resolver(item)) {
                    Ok(body) => body,
                    Err(why) => return Ok(Ending::Failed(why)),
                };
                // An intent is created by its template's `createInstance`: sent as a create, never
                // resent when its outcome is unknown (the step is retried and looks it up first).
                let path = crate::engine::intents::create_instance_path(t, &item.backup.resource);
                let created = port.create(path.as_deref().unwrap_or(&collection), &body).await?;
                *writes += 1;
                Ok(match created.get("id").and_then(Value::as_str) {
                    Some(id) => Ending::Written(Some(id.to_string())),
                    None => Ending::Failed("Graph created the object but returned no id".into()),
                })
            }
            [id] => {
                let Some((_, live)) = self.read_live(port, item, id).await? else {
                    return Ok(Ending::Drifted(format!(
                        "an object called {:?} came and went during the restore",
                        identity.name
                    )));
                };
                Ok(if adoptable(item, &live) {
                    Ending::AlreadyDone(Some(id.clone()))
                } else {
                    Ending::Drifted(format!(
                        "an object called {:?} was created in the tenant after the preview; it is left as it is",
                        identity.name
                    ))
                })
            }
            many => Ok(Ending::Drifted(format!(
                "{} objects called {:?} now exist in the tenant; none is written",
                many.len(),
                identity.name
            ))),
        }
    }

    fn target_of(&self, item: &PlanItem) -> Option<String> {
        match item.action {
            PlannedAction::Create => self.created.get(&item.key).cloned(),
            _ => item.target_id.clone(),
        }
    }

    /// Rule 10: an id this run recorded for a created object is written to only when the object
    /// there is this item's (same identity); otherwise the record is not to be trusted.
    fn foreign_created_object(&self, item: &PlanItem, raw: &Value) -> Option<Ending> {
        if item.action != PlannedAction::Create {
            return None;
        }
        let t = item.item_type;
        let (expected, found) = (Identity::of_item(t, &item.backup), Identity::of(t, raw, ""));
        (expected != found).then(|| {
            Ending::Failed(format!(
                "the object recorded as created for this item is {:?}, not {:?}; it is not written",
                found.name, expected.name
            ))
        })
    }

    /// Rule 4: re-read, compare with the preview, write only what is still as previewed.
    async fn write_existing<T: TenantPort>(
        &self,
        port: &T,
        step: &PlanStep,
        item: &PlanItem,
        writes: &mut u32,
    ) -> Result<Ending, TenantError> {
        let t = item.item_type;
        let Some(id) = self.target_of(item) else {
            return Ok(Ending::Failed("the object to write is unknown (its create did not complete)".into()));
        };
        let Some((raw, live)) = self.read_live(port, item, &id).await? else {
            return Ok(Ending::Drifted(
                "the object was deleted from the tenant since the preview; not re-created".into(),
            ));
        };
        if let Some(refused) = self.foreign_created_object(item, &raw) {
            return Ok(refused);
        }
        let own = item.step_concerns(step);
        let desired_of = |c: &Concern| item.concern_of(&item.desired, c);
        let live_of = |c: &Concern| item.concern_of(&live, c);
        if own.iter().all(|c| live_of(c) == desired_of(c)) {
            return Ok(Ending::AlreadyDone(None));
        }
        if item.action == PlannedAction::Create {
            // What this run created has nothing but its create body; anything else there was
            // written by someone else after the create.
            // (Graph numbers a new configuration itself: its priority is no one else's write.)
            let changed: Vec<String> = own
                .iter()
                .filter(|c| **c != Concern::Priority && !is_empty_concern(&live_of(c)))
                .flat_map(|c| concern_paths(c, &Value::Null, &live_of(c)))
                .collect();
            if !changed.is_empty() {
                return Ok(Ending::Drifted(format!(
                    "changed in the tenant after this run created it ({}); not written",
                    changed.join(", ")
                )));
            }
        }
        if let Some(expected) = &item.expected {
            let first = !self.items.contains_key(&item.key);
            let checked = if first { item.concerns() } else { own.clone() };
            let mut paths = Vec::new();
            for c in &checked {
                if *c == Concern::Priority && self.reordered_by_this_run(item) {
                    // This run's own setPriority calls renumber the list; a number alone changing
                    // is not drift of the configuration.
                    continue;
                }
                let (exp, now) = (item.concern_of(expected, c), live_of(c));
                if now != exp && now != desired_of(c) {
                    paths.extend(concern_paths(c, &exp, &now));
                }
            }
            if !paths.is_empty() {
                return Ok(Ending::Drifted(format!(
                    "changed in the tenant since the preview ({}); not written — preview again to include the change",
                    paths.join(", ")
                )));
            }
        }
        let resolver = self.resolver(item);
        let path = match crate::engine::apple_enrollment::item_collection(t, &item.references) {
            Some(collection) if crate::engine::apple_enrollment::is_parent_scoped(t) => format!("{collection}/{id}"),
            _ => crate::engine::singleton::write_path(t, &id),
        };
        let body = match step.kind {
            StepKind::Update | StepKind::Replace => update_body(t, &item.backup, &resolver),
            StepKind::Assign => assign_body(t, &item.backup, &resolver),
            StepKind::SetPriority => match item.planned_priority() {
                Some(n) => Ok(serde_json::json!({ crate::engine::enrollment::PRIORITY: n })),
                None => Err("no planned priority".to_string()),
            },
            _ => Ok(Value::Null),
        };
        let body = match body {
            Ok(body) => body,
            Err(why) => return Ok(Ending::Failed(why)),
        };
        match step.kind {
            StepKind::Update => port.update(&path, &body).await?,
            StepKind::Replace => port.replace(&path, &body).await?,
            StepKind::Assign if assignment_write(t) == AssignmentWrite::OneByOne => {
                let live_list = raw.get(ASSIGNMENTS).and_then(Value::as_array).cloned().unwrap_or_default();
                let desired = body.get(t.assign_body_key).and_then(Value::as_array).cloned().unwrap_or_default();
                write_one_by_one(port, &format!("{path}/{ASSIGNMENTS}"), &live_list, desired, writes).await?;
                return Ok(Ending::Written(None));
            }
            StepKind::Assign => {
                port.action(&format!("{path}/assign"), &body).await?;
            }
            // The same priority sent again changes nothing: a resend after a lost answer is safe.
            StepKind::SetPriority => {
                port.action(&format!("{path}/setPriority"), &body).await?;
            }
            _ => {
                let Some(sub) = step.sub_resource.as_deref() else {
                    return Ok(Ending::Failed("a sub-resource step without a sub-resource".into()));
                };
                let values = match sub_resource_values(&item.backup, sub, &resolver) {
                    Ok(values) => values,
                    Err(why) => return Ok(Ending::Failed(why)),
                };
                match sub_resource_write(t, sub) {
                    SubResourceWrite::Action { action, body_key }
                    | SubResourceWrite::InCreateThenAction { action, body_key } => {
                        let body = Value::Object(Map::from_iter([(body_key.to_string(), Value::Array(values))]));
                        port.action(&format!("{path}/{action}"), &body).await?;
                    }
                    SubResourceWrite::InCreateThenChangedByKey { action, body_key, key } => {
                        let live_entries = raw.get(sub).and_then(Value::as_array).cloned().unwrap_or_default();
                        let changed = crate::engine::intents::changed_by_key(key, &live_entries, values);
                        let body = Value::Object(Map::from_iter([(body_key.to_string(), Value::Array(changed))]));
                        port.action(&format!("{path}/{action}"), &body).await?;
                    }
                    SubResourceWrite::UpsertByKey { key } => {
                        let live_entries = raw.get(sub).and_then(Value::as_array).cloned().unwrap_or_default();
                        return upsert(port, &format!("{path}/{sub}"), key, &live_entries, values, writes).await;
                    }
                    SubResourceWrite::InBody => {
                        return Ok(Ending::Failed(format!("{sub} is written with the object, not on its own")));
                    }
                    SubResourceWrite::DiffAction { action } => {
                        let known = &self.plan.maps().admx_definitions;
                        match crate::engine::admx::update_definition_values_body(&item.backup, &raw, known) {
                            // Its `added` entries must not be sent twice: an unknown outcome fails the
                            // attempt, and the next one diffs against the object read again.
                            Ok(Some(body)) => port.action_once(&format!("{path}/{action}"), &body).await.map(|_| ())?,
                            Ok(None) => return Ok(Ending::AlreadyDone(None)),
                            Err(why) => return Ok(Ending::Failed(why)),
                        }
                    }
                }
            }
        }
        *writes += 1;
        Ok(Ending::Written(None))
    }

    async fn verify<T: TenantPort>(&self, port: &T, item: &PlanItem) -> Result<Ending, TenantError> {
        let Some(id) = self.target_of(item) else {
            return Ok(Ending::Failed("nothing to verify: the object was not created".into()));
        };
        let Some((_, live)) = self.read_live(port, item, &id).await? else {
            return Ok(Ending::Failed("the object was not found when verifying".into()));
        };
        if live == *item.desired {
            return Ok(Ending::Verified);
        }
        let mut paths = changed_paths(&live, &item.desired);
        paths.truncate(10);
        Ok(Ending::Failed(format!(
            "the verifying re-read differs from the backup ({}); the object changed during the restore or Graph \
             ignored part of the write",
            paths.join(", ")
        )))
    }
}

/// Rule 7 of creates: an object found by identity is adopted only when it is what this run would
/// have made — every create concern as desired, and every later concern either still empty (this
/// run's create, interrupted before the rest) or already as desired.
fn adoptable(item: &PlanItem, live: &Value) -> bool {
    let create = item.create_concerns();
    // The priority of a new configuration is Graph's (the next in its list), set by a later step.
    item.concerns().iter().filter(|c| **c != Concern::Priority).all(|c| {
        let (now, wanted) = (item.concern_of(live, c), item.concern_of(&item.desired, c));
        now == wanted || (!create.contains(c) && is_empty_concern(&now))
    })
}

/// Whether a concern holds nothing (absent, null, or an empty list or object).
fn is_empty_concern(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Creates or updates each entry of a sub-collection matched by `key`; never deletes one.
async fn upsert<T: TenantPort>(
    port: &T,
    collection: &str,
    key: &str,
    live: &[Value],
    desired: Vec<Value>,
    writes: &mut u32,
) -> Result<Ending, TenantError> {
    for entry in desired {
        let wanted = entry.get(key);
        match live.iter().find(|l| l.get(key) == wanted) {
            Some(existing) => {
                let mut current = existing.clone();
                strip_server_managed(&mut current);
                if canonical_json(&current) == canonical_json(&entry) {
                    continue;
                }
                let Some(id) = existing.get("id").and_then(Value::as_str) else {
                    return Ok(Ending::Failed(format!("an entry of {collection} has no id")));
                };
                port.update(&format!("{collection}/{id}"), &entry).await?;
            }
            None => {
                port.create(collection, &entry).await?;
            }
        }
        *writes += 1;
    }
    Ok(Ending::Written(None))
}

/// The changed paths of one concern, prefixed with the concern's name.
fn concern_paths(concern: &Concern, expected: &Value, now: &Value) -> Vec<String> {
    let prefix = match concern {
        Concern::Properties => "",
        Concern::SubResource(name) => name.as_str(),
        Concern::Assignments => "assignments",
        Concern::Priority => "priority",
    };
    changed_paths(expected, now)
        .into_iter()
        .map(|p| match (prefix, p.as_str()) {
            ("", _) => p,
            (prefix, "(root)") => prefix.to_string(),
            (prefix, _) if p.starts_with('[') => format!("{prefix}{p}"),
            (prefix, _) => format!("{prefix}.{p}"),
        })
        .collect()
}

/// Errors that concern the item (it is recorded as failed) rather than the run.
fn is_item_level(error: &TenantError) -> bool {
    matches!(error.kind, TenantErrorKind::NotFound | TenantErrorKind::Conflict | TenantErrorKind::Validation { .. })
}

fn outcome_word(outcome: ItemOutcome) -> &'static str {
    match outcome {
        ItemOutcome::Drifted => "drifted",
        _ => "failed",
    }
}
