//! What `kubectl restorerun` prints, as pure functions from a run, its verified report and its
//! verified progress record to text or JSON: every value from a backup or a tenant is escaped here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use restore_core::api::{ItemOutcome, Phase, RestoreRunStatus, Severity};
use restore_core::conditions::{find, types};
use restore_core::engine::analysis::{ItemPreview, PlannedAction};
use restore_core::engine::execute::{ProgressRecord, StepRecord, StepStatus};
use restore_core::engine::preview::PreviewReport;
use restore_core::terminal::escape;
use serde::Serialize;
use serde_json::{Value, json};

use crate::kube::RestoreRun;
use kube::ResourceExt;

/// ANSI colours of the diff (added after escaping, so no value can forge one).
const RED: &str = "\u{1b}[31m";
const GREEN: &str = "\u{1b}[32m";
const CYAN: &str = "\u{1b}[36m";
const BOLD: &str = "\u{1b}[1m";
const RESET: &str = "\u{1b}[0m";

/// Where an item stands after (or during) execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemRow {
    /// `type/source id`.
    pub key: String,
    /// Catalogue type.
    pub item_type: String,
    /// Display name.
    pub display_name: String,
    /// What the preview planned.
    pub planned: PlannedAction,
    /// The outcome; `None` while its steps are still to run.
    pub outcome: Option<ItemOutcome>,
    /// Why it was skipped, drifted or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Graph's request id of a refused write, when its error carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The Graph request id a step's message carries (`… (request-id ID)`).
pub fn request_id_of(message: &str) -> Option<String> {
    let (_, rest) = message.rsplit_once("(request-id ")?;
    let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    (!id.is_empty()).then_some(id)
}

/// The phase of a run (`Pending` before the first reconcile).
pub fn phase_of(status: &RestoreRunStatus) -> Phase {
    status.phase.unwrap_or(Phase::Pending)
}

/// `written/total` items of an execution, or `-` before one.
pub fn progress_of(status: &RestoreRunStatus) -> String {
    match &status.execution {
        Some(e) => e.progress.clone().unwrap_or_else(|| format!("{}/{}", e.counts.total(), e.total_steps)),
        None => "-".into(),
    }
}

/// Who approved the run (accepted), or who a pending confirmation names.
pub fn approver_of(run: &RestoreRun) -> Option<String> {
    let accepted = run.status.as_ref().and_then(|s| s.confirmation.as_ref()).map(|c| c.approved_by.clone());
    accepted.or_else(|| run.spec.confirmation.as_ref().map(|c| format!("{} (pending)", c.approved_by)))
}

fn age(run: &RestoreRun, now: jiff::Timestamp) -> String {
    let Some(created) = run.metadata.creation_timestamp.as_ref() else { return "<unknown>".into() };
    let seconds = (now - created.0).total(jiff::Unit::Second).unwrap_or(0.0).max(0.0) as u64;
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Pads columns like kubectl's tables (3 spaces between columns).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|v| v.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(value);
            } else {
                let pad = widths[c] - value.chars().count();
                let _ = write!(line, "{value}{}   ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `kubectl restorerun list`: one line per run, like `kubectl get rr` plus progress and approver.
pub fn list_text(runs: &[RestoreRun], all_namespaces: bool, wide: bool, now: jiff::Timestamp) -> String {
    if runs.is_empty() {
        return "No RestoreRuns found.\n".into();
    }
    let mut header: Vec<String> = Vec::new();
    if all_namespaces {
        header.push("NAMESPACE".into());
    }
    header.extend(
        ["NAME", "PHASE", "TENANT", "ENV", "CHANGES", "BLOCKERS", "PROGRESS", "APPROVER", "AGE"].map(String::from),
    );
    if wide {
        header.extend(["DRY-RUN", "DIGEST"].map(String::from));
    }
    let mut rows = vec![header];
    for run in runs {
        let status = run.status.clone().unwrap_or_default();
        let mut row = Vec::new();
        if all_namespaces {
            row.push(escape(&run.namespace().unwrap_or_default()).into_owned());
        }
        row.push(escape(&run.name_any()).into_owned());
        row.push(phase_of(&status).as_str().to_string());
        row.push(escape(&run.spec.tenant_ref.name).into_owned());
        row.push(status.environment.map_or("-", |e| e.as_str()).to_string());
        row.push(status.preview.as_ref().map_or("-".into(), |p| p.changes.to_string()));
        row.push(status.checks.as_ref().map_or("-".into(), |c| c.blockers.to_string()));
        row.push(progress_of(&status));
        row.push(approver_of(run).map_or("-".into(), |a| escape(&a).into_owned()));
        row.push(age(run, now));
        if wide {
            row.push(run.spec.dry_run.to_string());
            row.push(status.preview.as_ref().map_or("-".into(), |p| escape(&p.digest).into_owned()));
        }
        rows.push(row);
    }
    table(&rows)
}

/// `kubectl restorerun list -o json|yaml`: a summary object per run.
pub fn list_json(runs: &[RestoreRun]) -> Value {
    let items: Vec<Value> = runs
        .iter()
        .map(|run| {
            let status = run.status.clone().unwrap_or_default();
            json!({
                "namespace": run.namespace(),
                "name": run.name_any(),
                "phase": phase_of(&status).as_str(),
                "tenant": run.spec.tenant_ref.name,
                "environment": status.environment.map(|e| e.as_str()),
                "changes": status.preview.as_ref().map(|p| p.changes),
                "blockers": status.checks.as_ref().map(|c| c.blockers),
                "progress": progress_of(&status),
                "approver": approver_of(run),
                "dryRun": run.spec.dry_run,
                "previewDigest": status.preview.as_ref().map(|p| p.digest.clone()),
            })
        })
        .collect();
    json!({"kind": "RestoreRunList", "items": items})
}

fn action_title(action: PlannedAction) -> &'static str {
    match action {
        PlannedAction::Create => "Create",
        PlannedAction::Update => "Update",
        PlannedAction::Unchanged => "Unchanged",
        PlannedAction::Skip => "Skip",
        PlannedAction::PreviewOnly => "Preview-only (shown, never written)",
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Blocker => "BLOCKER",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

/// What the reviewer should do next, from the phase and the `Ready` condition.
pub fn next_step(run: &RestoreRun) -> String {
    let status = run.status.clone().unwrap_or_default();
    let name = run.name_any();
    let ns = run.namespace().unwrap_or_default();
    match phase_of(&status) {
        Phase::Previewed | Phase::AwaitingConfirmation => format!(
            "review `kubectl restorerun diff {name} -n {ns}`, then approve with `kubectl restorerun approve {name} -n {ns}`"
        ),
        Phase::Blocked => "fix the blockers above (each says how); the run previews again when its spec changes".into(),
        Phase::Executing => format!("follow it with `kubectl restorerun wait {name} -n {ns} --for Succeeded`"),
        Phase::Succeeded | Phase::PartiallySucceeded | Phase::Failed => {
            format!("see every item's outcome with `kubectl restorerun results {name} -n {ns}`")
        }
        _ => find(&status.conditions, types::READY)
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "the operator is still working on it".into()),
    }
}

/// The summary every command starts with: tenant, environment, source, counts, findings with
/// their fixes, and what to do next.
pub fn summary_text(run: &RestoreRun, report: Option<&PreviewReport>) -> String {
    let status = run.status.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "RestoreRun {}/{}: {}",
        escape(&run.namespace().unwrap_or_default()),
        escape(&run.name_any()),
        phase_of(&status).as_str()
    );
    let env = status.environment.map_or("?", |e| e.as_str());
    match &status.tenant {
        Some(t) => {
            let _ = writeln!(out, "Tenant:       {} ({}), {env}", escape(&t.label), escape(&t.id));
        }
        None => {
            let _ = writeln!(out, "Tenant:       {} (not resolved yet)", escape(&run.spec.tenant_ref.name));
        }
    }
    if let Some(s) = &status.source {
        let captured = s.captured_at.as_deref().map(|c| format!(", captured {}", escape(c))).unwrap_or_default();
        let _ = writeln!(out, "Source:       {} items, {}{captured}", s.item_count, escape(&s.digest));
    }
    if let Some(p) = &status.preview {
        let c = &p.counts;
        let _ = writeln!(
            out,
            "Plan:         {} create, {} update, {} unchanged, {} skip, {} preview-only",
            c.create, c.update, c.unchanged, c.skip, c.preview_only
        );
        let _ = writeln!(out, "Preview:      {} (expires {})", escape(&p.digest), escape(&p.expires_at));
    }
    if let Some(c) = &status.confirmation {
        let _ = writeln!(
            out,
            "Approved:     by {} at {} for {}",
            escape(&c.approved_by),
            escape(&c.accepted_at),
            escape(&c.digest)
        );
    }
    if let Some(e) = &status.execution {
        let c = &e.counts;
        let _ = writeln!(
            out,
            "Execution:    {} items written ({}/{} steps); {} created, {} updated, {} unchanged, {} skipped, {} drifted, {} failed",
            progress_of(&status),
            e.completed_steps,
            e.total_steps,
            c.created,
            c.updated,
            c.unchanged,
            c.skipped,
            c.drifted,
            c.failed
        );
    }
    if let Some(c) = &status.checks {
        let _ = writeln!(out, "Checks:       {} blocker(s), {} warning(s), {} info", c.blockers, c.warnings, c.infos);
        match report {
            Some(report) => {
                for f in &report.findings {
                    let item = f.item.as_deref().map(|i| format!(" {}", escape(i))).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  {:<8} {}{item}: {}",
                        severity_word(f.severity),
                        f.code.as_str(),
                        escape(&f.message)
                    );
                    if !f.hint.is_empty() {
                        let _ = writeln!(out, "           fix: {}", escape(&f.hint));
                    }
                }
            }
            None => {
                for f in &c.findings {
                    let item = f.item.as_deref().map(|i| format!(" {}", escape(i))).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  {:<8} {}{item}: {}",
                        severity_word(f.severity),
                        escape(&f.code),
                        escape(&f.message)
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "Next:         {}", next_step(run));
    out
}

/// Rows `name  type  detail`, aligned, indented by two spaces.
fn indented_table(rows: Vec<Vec<String>>) -> String {
    table(&rows).lines().map(|l| format!("  {l}\n")).collect()
}

/// The order planned items are shown in, on the terminal and in the HTML report.
pub const ACTION_ORDER: [PlannedAction; 5] = [
    PlannedAction::Create,
    PlannedAction::Update,
    PlannedAction::Skip,
    PlannedAction::PreviewOnly,
    PlannedAction::Unchanged,
];

/// The planned items, grouped create / update / skip / preview-only; unchanged items are folded
/// into a count unless `all` is set.
pub fn plan_text(report: &PreviewReport, all: bool) -> String {
    let mut out = String::new();
    for action in ACTION_ORDER {
        let items: Vec<&ItemPreview> = report.items.iter().filter(|i| i.action == action).collect();
        if items.is_empty() {
            continue;
        }
        if action == PlannedAction::Unchanged && !all {
            let _ = writeln!(out, "\nUnchanged: {} item(s) already as in the backup (-o wide lists them)", items.len());
            continue;
        }
        let _ = writeln!(out, "\n{} ({}):", action_title(action), items.len());
        let mut rows = Vec::new();
        for item in items {
            let detail = match action {
                PlannedAction::Update if !item.changed_fields.is_empty() => {
                    Some(format!("changes {}", escape(&item.changed_fields.join(", "))))
                }
                PlannedAction::Skip | PlannedAction::PreviewOnly => {
                    item.reason.as_deref().map(|r| format!("reason: {}", escape(r)))
                }
                _ => None,
            };
            let name = escape(&item.display_name).into_owned();
            rows.push(vec![name, escape(&item.item_type).into_owned(), detail.unwrap_or_default()]);
        }
        out.push_str(&indented_table(rows));
    }
    out
}

/// Each item's outcome from the preview and the steps the progress record holds.
pub fn item_rows(report: &PreviewReport, progress: Option<&ProgressRecord>) -> Vec<ItemRow> {
    let mut steps: BTreeMap<&str, Vec<&StepRecord>> = BTreeMap::new();
    for step in progress.iter().flat_map(|p| &p.steps) {
        steps.entry(step.item.as_str()).or_default().push(step);
    }
    report
        .items
        .iter()
        .map(|item| {
            let (outcome, message) = match item.action {
                PlannedAction::Unchanged => (Some(ItemOutcome::Unchanged), None),
                PlannedAction::Skip | PlannedAction::PreviewOnly => (Some(ItemOutcome::Skipped), item.reason.clone()),
                PlannedAction::Create | PlannedAction::Update => {
                    written_outcome(item, steps.get(item.key.as_str()).map(Vec::as_slice).unwrap_or_default())
                }
            };
            ItemRow {
                key: item.key.clone(),
                item_type: item.item_type.clone(),
                display_name: item.display_name.clone(),
                planned: item.action,
                outcome,
                request_id: message.as_deref().and_then(request_id_of),
                message,
            }
        })
        .collect()
}

fn written_outcome(item: &ItemPreview, steps: &[&StepRecord]) -> (Option<ItemOutcome>, Option<String>) {
    let message = |status: StepStatus| steps.iter().find(|s| s.status == status).and_then(|s| s.message.clone());
    if steps.iter().any(|s| s.status == StepStatus::Failed) {
        return (Some(ItemOutcome::Failed), message(StepStatus::Failed));
    }
    if steps.iter().any(|s| s.status == StepStatus::Drifted) {
        return (Some(ItemOutcome::Drifted), message(StepStatus::Drifted));
    }
    let verified = steps.iter().any(|s| s.step.starts_with("verify") && s.status == StepStatus::Verified);
    match (verified, item.action) {
        (true, PlannedAction::Create) => (Some(ItemOutcome::Created), None),
        (true, _) => (Some(ItemOutcome::Updated), None),
        (false, _) if !steps.is_empty() => (None, Some("written; not verified yet".into())),
        (false, _) => (None, None),
    }
}

fn outcome_word(outcome: Option<ItemOutcome>) -> &'static str {
    match outcome {
        Some(ItemOutcome::Created) => "Created",
        Some(ItemOutcome::Updated) => "Updated",
        Some(ItemOutcome::Unchanged) => "Unchanged",
        Some(ItemOutcome::Skipped) => "Skipped",
        Some(ItemOutcome::Drifted) => "Drifted",
        Some(ItemOutcome::Failed) => "Failed",
        None => "Pending",
    }
}

/// Per-item results after (or during) execution; unchanged items folded unless `all`.
pub fn results_text(rows: &[ItemRow], all: bool) -> String {
    let mut out = String::new();
    let order = [
        Some(ItemOutcome::Failed),
        Some(ItemOutcome::Drifted),
        Some(ItemOutcome::Created),
        Some(ItemOutcome::Updated),
        None,
        Some(ItemOutcome::Skipped),
        Some(ItemOutcome::Unchanged),
    ];
    for outcome in order {
        let group: Vec<&ItemRow> = rows.iter().filter(|r| r.outcome == outcome).collect();
        if group.is_empty() {
            continue;
        }
        if outcome == Some(ItemOutcome::Unchanged) && !all {
            let _ = writeln!(out, "\nUnchanged: {} item(s) already as in the backup (-o wide lists them)", group.len());
            continue;
        }
        let _ = writeln!(out, "\n{} ({}):", outcome_word(outcome), group.len());
        let rows = group
            .iter()
            .map(|row| {
                let message = row.message.as_deref().map(|m| escape(m).into_owned()).unwrap_or_default();
                let request = row.request_id.as_deref().map(|id| format!("request-id {id}")).unwrap_or_default();
                vec![escape(&row.display_name).into_owned(), escape(&row.item_type).into_owned(), request, message]
            })
            .collect();
        out.push_str(&indented_table(rows));
    }
    out
}

/// `kubectl restorerun show`: the summary, then the plan (before execution) or the per-item
/// results (once execution started).
pub fn show_text(run: &RestoreRun, report: Option<&PreviewReport>, rows: Option<&[ItemRow]>, all: bool) -> String {
    let mut out = summary_text(run, report);
    match (rows, report) {
        (Some(rows), _) => out.push_str(&results_text(rows, all)),
        (None, Some(report)) => out.push_str(&plan_text(report, all)),
        (None, None) => {}
    }
    out
}

/// `kubectl restorerun show -o json|yaml`: status, the verified report and the item results.
pub fn show_json(run: &RestoreRun, report: Option<&PreviewReport>, rows: Option<&[ItemRow]>) -> Value {
    json!({
        "namespace": run.namespace(),
        "name": run.name_any(),
        "phase": phase_of(run.status.as_ref().unwrap_or(&RestoreRunStatus::default())).as_str(),
        "next": next_step(run),
        "status": run.status,
        "report": report,
        "results": rows,
    })
}

/// `kubectl restorerun diff`: a unified diff per changing item (tenant → backup), headed by the
/// item's type and display name; coloured when `colour`.
pub fn diff_text(report: &PreviewReport, colour: bool) -> String {
    let mut out = String::new();
    let changing = report.items.iter().filter(|i| i.action.writes() && !i.diff.is_empty());
    for item in changing {
        let title = format!(
            "{} {} {} ({})",
            action_title(item.action).to_lowercase(),
            escape(&item.item_type),
            escape(&item.display_name),
            escape(&item.key)
        );
        push_line(&mut out, &format!("# {title}"), colour.then_some(BOLD));
        for line in item.diff.lines() {
            let line = escape(line);
            let paint = match line.chars().next() {
                _ if line.starts_with("+++") || line.starts_with("---") => Some(BOLD),
                Some('+') => Some(GREEN),
                Some('-') => Some(RED),
                Some('@') => Some(CYAN),
                _ => None,
            };
            push_line(&mut out, &line, paint.filter(|_| colour));
        }
    }
    if out.is_empty() {
        out.push_str("No changes: every item in scope is already as in the backup, skipped or preview-only.\n");
    }
    out
}

fn push_line(out: &mut String, line: &str, paint: Option<&str>) {
    match paint {
        Some(code) => {
            let _ = writeln!(out, "{code}{line}{RESET}");
        }
        None => {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// `kubectl restorerun diff -o json`: per changing item, its identity and diff.
pub fn diff_json(report: &PreviewReport) -> Value {
    let items: Vec<Value> = report
        .items
        .iter()
        .filter(|i| i.action.writes())
        .map(|i| {
            json!({
                "key": i.key, "type": i.item_type, "displayName": i.display_name, "action": i.action,
                "changedFields": i.changed_fields, "diff": i.diff,
            })
        })
        .collect();
    json!({"digest": report.digest(), "items": items})
}

/// Why the run cannot be approved now (`None`: it can), said before anything is asked.
pub fn approval_refusal(status: &RestoreRunStatus, now: jiff::Timestamp) -> Option<String> {
    let phase = phase_of(status);
    if phase == Phase::Blocked {
        let blockers = status.checks.as_ref().map_or(0, |c| c.blockers);
        return Some(format!("the run is Blocked by {blockers} blocker finding(s); fix them (see `show`) first"));
    }
    if !matches!(phase, Phase::Previewed | Phase::AwaitingConfirmation) {
        return Some(format!("the run is {phase}; only a Previewed or AwaitingConfirmation run can be approved"));
    }
    let Some(preview) = &status.preview else { return Some("the run has not been previewed yet".into()) };
    if status.tenant.is_none() {
        return Some("the run's tenant is not resolved yet".into());
    }
    if status.checks.as_ref().is_some_and(|c| c.blockers > 0) {
        return Some("the run has blocker findings".into());
    }
    let expired = preview.expires_at.parse::<jiff::Timestamp>().map_or(true, |expires| now >= expires);
    if expired {
        return Some(format!(
            "the preview expired at {}; the operator previews again, then approve the new digest",
            escape(&preview.expires_at)
        ));
    }
    None
}

/// A progress bar `[#####.....]` of `width` cells.
pub fn bar(done: u32, total: u32, width: usize) -> String {
    let filled = if total == 0 { 0 } else { (done.min(total) as usize * width) / total as usize };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// One line of `wait`: the phase, progress and the `Ready` message.
pub fn wait_line(status: &RestoreRunStatus, terminal: bool) -> String {
    let phase = phase_of(status);
    let message = find(&status.conditions, types::READY).map(|c| escape(&c.message).into_owned()).unwrap_or_default();
    match (&status.execution, terminal) {
        (Some(e), true) => {
            let (done, total) = (e.completed_steps, e.total_steps);
            format!("{phase:<20} {} {done}/{total} steps  {}", bar(done, total, 30), progress_of(status))
        }
        (Some(_), false) => format!("{phase}: {} items written; {message}", progress_of(status)),
        (None, _) => format!("{phase}: {message}"),
    }
}
