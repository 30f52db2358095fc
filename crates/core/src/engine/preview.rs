//! The preview: a serializable report of everything the wizard shows before approval, and its
//! deterministic digest (DESIGN §2 rule 2) — the value a human copies into the confirmation.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::{ActionCounts, ChecksStatus, ExistingObjects, IncludeOrSkip, ScopeStatus, Severity};
use crate::canonical::canonical_digest_of;
use crate::engine::analysis::{ItemPreview, PlannedAction};
use crate::engine::checks::{Finding, checks_status};
use crate::engine::diff::same_text;
use crate::engine::mapping::TargetMaps;
use crate::engine::snapshot::RequestStats;
use crate::wizard::PreviewFacts;

/// Version of the report layout and of the digest's input (2: the digest covers the whole report).
pub const REPORT_FORMAT: u32 = 2;

/// The resolved scope as the report records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSummary {
    /// Counts by type and platform.
    pub status: ScopeStatus,
    /// Whether foundations are restored.
    pub foundations: IncludeOrSkip,
    /// Whether assignments are restored.
    pub assignments: IncludeOrSkip,
    /// What happens to objects that exist.
    pub existing_objects: ExistingObjects,
    /// The keys of the items in scope, in restore order.
    pub items: Vec<String>,
}

/// Everything the preview shows. Holds no timestamp and no secret; the Kubernetes adapter stores it
/// (gzip, chunked) in a ConfigMap, the CLI prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewReport {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// The target tenant id.
    pub tenant_id: String,
    /// Digest of the backup.
    pub source_digest: String,
    /// The tenant the backup was captured from, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_tenant_id: Option<String>,
    /// Whether the restore crosses tenants (objects are matched by name).
    pub cross_tenant: bool,
    /// The resolved scope.
    pub scope: ScopeSummary,
    /// Planned actions.
    pub counts: ActionCounts,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// Every item in scope, in restore order.
    pub items: Vec<ItemPreview>,
    /// The target's referenceable objects the mapping used.
    pub mappings: TargetMaps,
    /// Requests the snapshot made (not part of the digest).
    pub requests: RequestStats,
}

impl PreviewReport {
    /// The preview digest (`sha256:…`) over every field of the report but the request counters:
    /// the tenant, the backup, the scope, each item's action, names, states, references, changed
    /// fields and diff, the findings and the mappings. Everything an approver is shown is covered,
    /// so a report edited after the preview no longer matches the digest in status. The same
    /// inputs give the same digest on any machine (canonical JSON, no timestamps).
    pub fn digest(&self) -> String {
        // Were serialization to fail, the empty digest matches no confirmation.
        canonical_digest_of(self, &["requests"]).unwrap_or_default()
    }

    /// Makes each item's `current` the same allocation as its `desired` where the two are written
    /// as the same text, as the analysis leaves them (a report read back holds them apart).
    pub fn share_states_written_alike(&mut self) {
        for item in &mut self.items {
            if let Some(current) = item.current.as_mut().filter(|c| same_text(c, &item.desired)) {
                *current = Arc::clone(&item.desired);
            }
        }
    }

    /// Blocker findings.
    pub fn blockers(&self) -> u32 {
        u32::try_from(self.findings.iter().filter(|f| f.severity == Severity::Blocker).count()).unwrap_or(u32::MAX)
    }

    /// `status.checks` for these findings.
    pub fn checks_status(&self) -> ChecksStatus {
        checks_status(&self.findings)
    }

    /// The wizard's preview fact (the adapter fills in the report's ConfigMap name).
    pub fn facts(&self) -> PreviewFacts {
        PreviewFacts {
            digest: self.digest(),
            counts: self.counts.clone(),
            report: None,
            checks: Some(self.checks_status()),
        }
    }

    /// The report as pretty JSON.
    pub fn to_json_pretty(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// A human summary: counts, findings, and each item that changes with its changed fields.
    pub fn summary_text(&self) -> String {
        let mut out = String::new();
        let c = &self.counts;
        let _ = writeln!(
            out,
            "Preview {} for tenant {}{}",
            self.digest(),
            self.tenant_id,
            if self.cross_tenant { " (cross-tenant restore)" } else { "" }
        );
        let _ = writeln!(
            out,
            "{} item(s) in scope: {} to create, {} to update, {} unchanged, {} skipped, {} preview-only",
            self.scope.status.total, c.create, c.update, c.unchanged, c.skip, c.preview_only
        );
        let status = self.checks_status();
        let _ = writeln!(
            out,
            "Checks: {} blocker(s), {} warning(s), {} info",
            status.blockers, status.warnings, status.infos
        );
        for f in &self.findings {
            let item = f.item.as_deref().map(|i| format!(" [{i}]")).unwrap_or_default();
            let _ = writeln!(out, "  {:?} {}{item}: {} {}", f.severity, f.code.as_str(), f.message, f.hint);
        }
        for item in self.items.iter().filter(|i| i.action != PlannedAction::Unchanged) {
            let action = serde_json::to_value(item.action).ok().and_then(|v| v.as_str().map(str::to_string));
            let _ = write!(out, "  {:<11} {}/{}", action.unwrap_or_default(), item.item_type, item.display_name);
            if !item.changed_fields.is_empty() {
                let _ = write!(out, " — {}", item.changed_fields.join(", "));
            }
            if let Some(reason) = &item.reason {
                let _ = write!(out, " ({reason})");
            }
            out.push('\n');
        }
        out
    }
}
