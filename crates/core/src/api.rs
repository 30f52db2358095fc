//! The RestoreRun and IntuneTenant resource shapes (spec and status) as plain data.
//! Doc comments become the CRD field descriptions; schema bounds defend the controller.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// API group of every resource of this operator.
pub const GROUP: &str = "tenantatlas.io";
/// API version served and stored.
pub const VERSION: &str = "v1alpha1";

/// Longest accepted Kubernetes object name (DNS subdomain).
pub const MAX_NAME: u32 = 253;
/// Bound on free-text strings such as display names and messages.
pub const MAX_TEXT: u32 = 1024;
/// Bound on URLs.
pub const MAX_URL: u32 = 2048;
/// Bound on the number of selector entries in one scope list.
pub const MAX_SELECTOR_ENTRIES: u32 = 500;

// ---------------------------------------------------------------------------------------------
// RestoreRun spec
// ---------------------------------------------------------------------------------------------

/// A restore of Intune configuration from one backup into one tenant, walked as a wizard:
/// source → scope → safety checks → preview → confirm → execute. The controller runs every
/// step up to the preview by itself; it writes to the tenant only after `spec.confirmation`
/// names exactly what was previewed and `spec.dryRun` is `false`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRunSpec {
    /// The IntuneTenant (same namespace) to restore into. Immutable: create a new RestoreRun to
    /// target another tenant.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "tenantRef is immutable; create a new RestoreRun to target another tenant"}
    ]))]
    pub tenant_ref: TenantRef,

    /// Where the backup comes from. Set exactly one of `url` (with `sha256`), `configMapRef`
    /// or `artifactRef`.
    pub source: SourceSpec,

    /// Which items of the backup to restore. Defaults to everything.
    #[serde(default)]
    pub scope: ScopeSpec,

    /// What to do with an item that already exists in the tenant: `update` it to match the
    /// backup (default) or `skip` it.
    #[serde(default)]
    pub existing_objects: ExistingObjects,

    /// When true (the default) the run stops after the preview (phase `Previewed`). Set it to
    /// `false`, together with a matching `confirmation`, to let this same run execute. Not a plan
    /// input: changing it never redoes the preview.
    #[serde(default = "default_true")]
    pub dry_run: bool,

    /// How long a preview stays valid for approval, as a Go duration (`30m`, `1h`, `1h30m`).
    /// An expired preview is regenerated before it can be approved.
    #[serde(default = "default_preview_ttl", rename = "previewTTL")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "duration(self) >= duration('1m')", "message": "previewTTL must be at least 1m"}
    ]))]
    pub preview_ttl: String,

    /// The human approval. Not a plan input. Every field must match the current preview and
    /// tenant, or nothing is written. `kubectl restorerun approve` fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

fn default_true() -> bool {
    true
}

/// The default `previewTTL`.
pub const DEFAULT_PREVIEW_TTL: &str = "1h";

fn default_preview_ttl() -> String {
    DEFAULT_PREVIEW_TTL.to_string()
}

/// A reference to an IntuneTenant in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantRef {
    /// Name of the IntuneTenant.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Where the backup comes from: exactly one of `url`, `configMapRef`, `artifactRef`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["url", "sha256"]},
    {"required": ["configMapRef"]},
    {"required": ["artifactRef"]}
]))]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.sha256) || has(self.url)", "message": "sha256 goes with url"}
]))]
pub struct SourceSpec {
    /// HTTPS URL of a `.tar.gz` backup. Requires `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https://"))]
    pub url: Option<String>,

    /// Lower-case hex SHA-256 of the archive at `url` (64 characters). Checked before anything
    /// in the archive is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 64, max = 64), regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,

    /// A ConfigMap (same namespace) holding the backup: a `.tar.gz` under `binaryData`, or the
    /// item files of the native format under `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapSourceRef>,

    /// A Flux source (`GitRepository`, `OCIRepository` or `Bucket`) whose current artifact holds
    /// the backup. Its `status.artifact.url` is downloaded and `status.artifact.digest` verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_ref: Option<ArtifactRef>,

    /// Folder of the backup inside the archive or artifact (relative, no `..`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = r"^[^/]"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!(self == '..' || self.startsWith('../') || self.endsWith('/..') || self.contains('/../'))", "message": "path must not contain '..'"}
    ]))]
    pub path: Option<String>,

    /// Layout of the backup: `native` (this operator's format, default) or `intunecd`.
    #[serde(default)]
    pub format: BackupFormat,
}

/// A ConfigMap holding a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapSourceRef {
    /// Name of the ConfigMap in the RestoreRun's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of a `.tar.gz` under `binaryData`. Without it the `data` keys are read as item files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub key: Option<String>,
}

/// A Flux source object whose artifact holds the backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRef {
    /// Kind of the Flux source.
    pub kind: ArtifactKind,
    /// Name of the Flux source.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Flux source; defaults to the RestoreRun's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// Kinds of Flux source that carry an artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ArtifactKind {
    /// `source.toolkit.fluxcd.io` GitRepository.
    GitRepository,
    /// `source.toolkit.fluxcd.io` OCIRepository.
    #[serde(rename = "OCIRepository")]
    OciRepository,
    /// `source.toolkit.fluxcd.io` Bucket.
    Bucket,
}

/// Layout of a backup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackupFormat {
    /// This operator's format (`manifest.json` plus one JSON file per item).
    #[default]
    Native,
    /// A backup as the IntuneCD tool writes it (JSON or YAML per item, by folder).
    #[serde(rename = "intunecd")]
    IntuneCd,
}

/// Which items of the backup to restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpec {
    /// `all` (default) restores every item except those in `exclude`; `selected` restores only
    /// the items matched by `include`, minus `exclude`.
    #[serde(default)]
    pub mode: ScopeMode,
    /// Items to restore when `mode: selected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<ScopeSelector>,
    /// Items never to restore (applies in both modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ScopeSelector>,
    /// Whether scope tags, assignment filters and notification templates are restored
    /// (`include`, default) or only mapped by name (`skip`).
    #[serde(default)]
    pub foundations: IncludeOrSkip,
    /// Whether assignments are restored (`include`, default) or left as they are (`skip`).
    #[serde(default)]
    pub assignments: IncludeOrSkip,
    /// Types restored only when the run names them here (Conditional Access policies,
    /// `conditionalAccessPolicy`): `mode: all` never includes them, nor does `include.types` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in: Option<OptInSpec>,
}

/// The opt-in types a run restores, and how Conditional Access policies are written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptInSpec {
    /// Opt-in types to restore: `conditionalAccessPolicy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(max = 128)))]
    pub types: Vec<String>,
    /// State of the Conditional Access policies the restore writes: `reportOnly` (default) creates
    /// them report-only (`enabledForReportingButNotEnforced`; a disabled one stays disabled) and
    /// never writes the state of an existing policy; `fromBackup` writes the backup's state.
    #[serde(default)]
    pub conditional_access_state: ConditionalAccessState,
}

/// How a restore writes the state of Conditional Access policies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConditionalAccessState {
    /// Created report-only; the state of existing policies is left as it is.
    #[default]
    ReportOnly,
    /// The backup's state, created or updated.
    FromBackup,
}

/// Scope mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScopeMode {
    /// Every item in the backup.
    #[default]
    All,
    /// Only the items matched by `include`.
    Selected,
}

/// Include or skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IncludeOrSkip {
    /// Restore them.
    #[default]
    Include,
    /// Leave them as they are in the tenant.
    Skip,
}

/// Matches items by type, platform, or id / display name. An item matches when it matches any
/// entry of any list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSelector {
    /// Item types, e.g. `deviceConfiguration`, `compliancePolicy`, `settingsCatalogPolicy`,
    /// `powerShellScript`, `featureUpdateProfile`, `appProtectionPolicy`, `scopeTag`,
    /// `assignmentFilter`, `notificationTemplate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(max = 128)))]
    pub types: Vec<String>,
    /// Platforms, e.g. `windows`, `macOS`, `iOS`, `android`, `linux`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 64)))]
    pub platforms: Vec<String>,
    /// Item ids or display names; `*` and `?` glob patterns match display names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500), inner(length(max = 256)))]
    pub items: Vec<String>,
}

/// What to do with an item that already exists in the tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExistingObjects {
    /// Update the existing object to match the backup.
    #[default]
    Update,
    /// Leave the existing object as it is.
    Skip,
}

/// The human approval of one preview.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    /// Must be `true`: the approver has read the preview's impact.
    #[serde(default)]
    pub reviewed_impact: bool,
    /// Must equal the tenant's hard-confirm label (`IntuneTenant.spec.displayName`, shown in
    /// `status.tenant.label`).
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub tenant: String,
    /// Must equal `status.preview.digest` (`sha256:` followed by 64 hex characters).
    #[serde(default)]
    #[schemars(length(max = 71))]
    pub preview_digest: String,
    /// The approver's Kubernetes username. The chart's ValidatingAdmissionPolicy makes the API
    /// server reject a value other than the authenticated user's.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub approved_by: String,
}

// ---------------------------------------------------------------------------------------------
// RestoreRun status
// ---------------------------------------------------------------------------------------------

/// Observed state of a RestoreRun. The conditions are the contract; `phase` is for humans.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRunStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the wizard stands (informational; read the conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Step conditions (`SourceResolved`, `Scoped`, `ChecksPassed`, `PreviewReady`,
    /// `Confirmed`, `Executed`) and the kstatus conditions `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub conditions: Vec<Condition>,
    /// Digest of the plan inputs (tenantRef, source, scope, existingObjects, previewTTL) the
    /// recorded steps were computed from. A change resets every later step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 71))]
    pub plan_inputs: Option<String>,
    /// The tenant's environment, frozen at the first reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// The tenant id and hard-confirm label, frozen at the first reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantIdentity>,
    /// The resolved backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStatus>,
    /// The resolved scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeStatus>,
    /// The safety-check findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<ChecksStatus>,
    /// The preview to approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewStatus>,
    /// The accepted confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<ConfirmationStatus>,
    /// Execution progress and results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionStatus>,
    /// Steps that failed in a row for a reason that may pass; sets the retry backoff. Cleared by
    /// the next step that succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u32>,
    /// When the step that failed is tried again (RFC 3339); until then reconciles (a watch event,
    /// a restart) only wait. Cleared by the next step that succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub next_attempt_at: Option<String>,
}

/// Wizard phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Not yet looked at.
    Pending,
    /// Fetching and verifying the backup.
    ResolvingSource,
    /// Selecting the items to restore.
    Scoping,
    /// Running the safety checks.
    Checking,
    /// Comparing the backup with the tenant.
    Previewing,
    /// Dry-run finished: the preview is ready (side exit).
    Previewed,
    /// Checks found blockers; nothing will be written (side exit).
    Blocked,
    /// Waiting for `spec.confirmation` to match the preview.
    AwaitingConfirmation,
    /// Writing to the tenant.
    Executing,
    /// Every item restored (terminal).
    Succeeded,
    /// Some items restored, some failed or drifted (terminal).
    PartiallySucceeded,
    /// The run failed (terminal).
    Failed,
}

impl Phase {
    /// Terminal phases never change (DESIGN §2 rule 6).
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::PartiallySucceeded | Phase::Failed)
    }

    /// The phase name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::ResolvingSource => "ResolvingSource",
            Phase::Scoping => "Scoping",
            Phase::Checking => "Checking",
            Phase::Previewing => "Previewing",
            Phase::Previewed => "Previewed",
            Phase::Blocked => "Blocked",
            Phase::AwaitingConfirmation => "AwaitingConfirmation",
            Phase::Executing => "Executing",
            Phase::Succeeded => "Succeeded",
            Phase::PartiallySucceeded => "PartiallySucceeded",
            Phase::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tenant environments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Environment {
    /// Production: restores raise a warning finding.
    Production,
    /// Staging.
    Staging,
    /// Development.
    Development,
}

impl Environment {
    /// The name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Staging => "staging",
            Environment::Development => "development",
        }
    }
}

/// The tenant a run targets, frozen at the first reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantIdentity {
    /// Microsoft Entra tenant id.
    #[schemars(length(max = 64))]
    pub id: String,
    /// Hard-confirm label (the IntuneTenant's `displayName`).
    #[schemars(length(max = 256))]
    pub label: String,
}

/// The resolved backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// `sha256:` digest of the backup content.
    #[schemars(length(max = 71))]
    pub digest: String,
    /// When the backup was captured (RFC 3339, from its manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub captured_at: Option<String>,
    /// Tenant id the backup was captured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub tenant_id: Option<String>,
    /// Number of items in the backup.
    pub item_count: u32,
}

/// The resolved scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeStatus {
    /// Items in scope, by type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub by_type: BTreeMap<String, u32>,
    /// Items in scope, by platform.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub by_platform: BTreeMap<String, u32>,
    /// Foundations in scope (scope tags, filters, notification templates).
    pub foundations: u32,
    /// Policies in scope.
    pub policies: u32,
    /// Items shown in the preview but never written (types not restorable in v1).
    pub preview_only: u32,
    /// All items in scope.
    pub total: u32,
}

/// Severity of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Stops the run: nothing is written.
    Blocker,
    /// Worth reading before approving.
    Warning,
    /// For information.
    Info,
}

/// One finding as shown in status (the full list is in the report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingSummary {
    /// Stable finding code, e.g. `MissingGroup`.
    #[schemars(length(max = 64))]
    pub code: String,
    /// Severity.
    pub severity: Severity,
    /// The item concerned (type/display name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub item: Option<String>,
    /// What is wrong and what to do.
    #[schemars(length(max = 1024))]
    pub message: String,
}

/// Findings of the safety checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChecksStatus {
    /// When the checks last ran (RFC 3339); a blocked run is re-checked periodically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub checked_at: Option<String>,
    /// Blocker findings: any blocker stops the run.
    pub blockers: u32,
    /// Warning findings.
    pub warnings: u32,
    /// Informational findings.
    pub infos: u32,
    /// The first findings, most severe first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub findings: Vec<FindingSummary>,
}

/// Counts of planned actions in a preview.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionCounts {
    /// Objects to create.
    pub create: u32,
    /// Objects to update.
    pub update: u32,
    /// Objects already as in the backup.
    pub unchanged: u32,
    /// Objects skipped (existingObjects: skip, out of scope).
    pub skip: u32,
    /// Objects shown but not restorable in v1.
    pub preview_only: u32,
}

impl ActionCounts {
    /// Items that would change the tenant.
    pub fn changes(&self) -> u32 {
        self.create + self.update
    }
}

/// The preview to approve.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewStatus {
    /// Deterministic digest of the plan (`sha256:…`): copy it to
    /// `spec.confirmation.previewDigest` to approve.
    #[schemars(length(max = 71))]
    pub digest: String,
    /// When the preview was made (RFC 3339).
    #[schemars(length(max = 64))]
    pub generated_at: String,
    /// When the preview stops being approvable (RFC 3339).
    #[schemars(length(max = 64))]
    pub expires_at: String,
    /// Planned actions.
    pub counts: ActionCounts,
    /// Items that would change the tenant (create + update), for the `Changes` column.
    pub changes: u32,
    /// Name of the ConfigMap holding the full report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub report: Option<String>,
}

/// The confirmation accepted for execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmationStatus {
    /// When the confirmation was accepted (RFC 3339).
    #[schemars(length(max = 64))]
    pub accepted_at: String,
    /// Who approved.
    #[schemars(length(max = 256))]
    pub approved_by: String,
    /// The preview digest approved.
    #[schemars(length(max = 71))]
    pub digest: String,
    /// The plan inputs as they were approved: execution and every resume use these, never a
    /// later spec (DESIGN §2 rule 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ApprovedPlan>,
}

/// The plan inputs frozen at approval: the source as resolved and verified, the scope and what
/// to do with existing objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedPlan {
    /// `spec.source` at approval.
    pub source: SourceSpec,
    /// Digest of the backup the preview was made from; the source must still give it.
    #[schemars(length(max = 71))]
    pub source_digest: String,
    /// `spec.scope` at approval.
    pub scope: ScopeSpec,
    /// `spec.existingObjects` at approval.
    pub existing_objects: ExistingObjects,
}

/// Outcome of one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ItemOutcome {
    /// Created in the tenant.
    Created,
    /// Updated in the tenant.
    Updated,
    /// Already as in the backup.
    Unchanged,
    /// Not written by choice (existingObjects: skip, preview-only).
    Skipped,
    /// Not written: the live object changed since the preview.
    Drifted,
    /// The write failed.
    Failed,
}

/// Execution counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeCounts {
    /// Items created.
    pub created: u32,
    /// Items updated.
    pub updated: u32,
    /// Items already right.
    pub unchanged: u32,
    /// Items skipped.
    pub skipped: u32,
    /// Items not written because they drifted after the preview.
    pub drifted: u32,
    /// Items whose write failed.
    pub failed: u32,
}

impl OutcomeCounts {
    /// Adds one outcome.
    pub fn record(&mut self, outcome: ItemOutcome) {
        match outcome {
            ItemOutcome::Created => self.created += 1,
            ItemOutcome::Updated => self.updated += 1,
            ItemOutcome::Unchanged => self.unchanged += 1,
            ItemOutcome::Skipped => self.skipped += 1,
            ItemOutcome::Drifted => self.drifted += 1,
            ItemOutcome::Failed => self.failed += 1,
        }
    }

    /// Items processed.
    pub fn total(&self) -> u32 {
        self.created + self.updated + self.unchanged + self.skipped + self.drifted + self.failed
    }

    /// Items that did not end as planned.
    pub fn problems(&self) -> u32 {
        self.drifted + self.failed
    }
}

/// Result of one item (status keeps a bounded list; the report has all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    /// Item key (type/source id).
    #[schemars(length(max = 512))]
    pub item: String,
    /// Outcome.
    pub outcome: ItemOutcome,
    /// Details, for failures and drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
}

/// Execution progress and results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatus {
    /// When execution started (RFC 3339).
    #[schemars(length(max = 64))]
    pub started_at: String,
    /// When execution finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub finished_at: Option<String>,
    /// Steps of the execution plan completed so far (the resume point).
    pub completed_steps: u32,
    /// Steps in the execution plan.
    pub total_steps: u32,
    /// Items written so far over the items the plan writes (`3/10`), for the `Progress` column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub progress: Option<String>,
    /// Items by outcome.
    pub counts: OutcomeCounts,
    /// Results of items that failed or drifted (first ones; the report has all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub results: Vec<ItemResult>,
    /// Digest of the progress record after `completedSteps` steps: a record in the cluster that
    /// does not extend this one was not written by this controller and is never executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 71))]
    pub progress_digest: Option<String>,
}

/// Items kept in `status.execution.results`.
pub const MAX_STATUS_RESULTS: usize = 50;
/// Findings kept in `status.checks.findings`.
pub const MAX_STATUS_FINDINGS: usize = 20;

// ---------------------------------------------------------------------------------------------
// IntuneTenant
// ---------------------------------------------------------------------------------------------

/// The connection to one Microsoft Intune tenant, set up once by a platform admin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntuneTenantSpec {
    /// Microsoft Entra tenant id (GUID) or primary domain.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9.-]+$"))]
    pub tenant_id: String,
    /// The hard-confirm label: an approver must type exactly this into
    /// `RestoreRun.spec.confirmation.tenant`.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    /// `production`, `staging` or `development`. Frozen into each RestoreRun at its first
    /// reconcile; a run whose tenant changed environment since then will not execute.
    pub environment: Environment,
    /// Microsoft Graph and login endpoints (defaults: the public cloud).
    #[serde(default)]
    pub graph: GraphEndpoints,
    /// The app registration used to call Graph.
    pub auth: TenantAuth,
    /// Write pacing, below Intune's documented limit (default 100 writes per 20 s).
    #[serde(default)]
    pub write_budget: WriteBudget,
}

/// Public-cloud Graph endpoint.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
/// Public-cloud login authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Graph and login endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphEndpoints {
    /// Graph base URL, without `/beta` (national clouds, or the local simulator).
    #[serde(default = "default_graph_endpoint")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://"))]
    pub endpoint: String,
    /// Login authority base URL (national clouds, or the local simulator).
    #[serde(default = "default_authority")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://"))]
    pub authority: String,
}

impl Default for GraphEndpoints {
    fn default() -> Self {
        GraphEndpoints { endpoint: default_graph_endpoint(), authority: default_authority() }
    }
}

fn default_graph_endpoint() -> String {
    DEFAULT_GRAPH_ENDPOINT.to_string()
}

fn default_authority() -> String {
    DEFAULT_AUTHORITY.to_string()
}

/// App registration credentials: `clientId` and exactly one of `clientSecretRef`,
/// `certificateRef`, `workloadIdentity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["clientSecretRef"]},
    {"required": ["certificateRef"]},
    {"required": ["workloadIdentity"]}
]))]
pub struct TenantAuth {
    /// Application (client) id of the app registration.
    #[schemars(length(min = 1, max = 64))]
    pub client_id: String,
    /// A Secret key holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,
    /// A Secret holding a PEM private key and certificate; the operator signs a
    /// client-assertion JWT with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_ref: Option<CertificateRef>,
    /// Federated credentials: the projected service-account token that Azure Workload Identity
    /// injects is used as the client assertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentity>,
}

/// A key of a Secret in the IntuneTenant's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_secret_key() -> String {
    "clientSecret".to_string()
}

/// A Secret holding a certificate and its private key (PEM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRef {
    /// Secret name (a `kubernetes.io/tls` Secret works as is).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the PEM certificate.
    #[serde(default = "default_cert_key")]
    #[schemars(length(min = 1, max = 253))]
    pub certificate_key: String,
    /// Key of the PEM private key.
    #[serde(default = "default_private_key_key")]
    #[schemars(length(min = 1, max = 253))]
    pub private_key_key: String,
}

fn default_cert_key() -> String {
    "tls.crt".to_string()
}

fn default_private_key_key() -> String {
    "tls.key".to_string()
}

/// Workload identity federation settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentity {
    /// Path of the projected token file in the operator pod (read at every token acquisition,
    /// since the kubelet rotates it).
    #[serde(default = "default_federated_token_file")]
    #[schemars(length(min = 1, max = 1024))]
    pub token_file: String,
}

/// Where Azure Workload Identity mounts the projected token.
pub const DEFAULT_FEDERATED_TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

fn default_federated_token_file() -> String {
    DEFAULT_FEDERATED_TOKEN_FILE.to_string()
}

/// Write pacing for one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteBudget {
    /// Writes allowed per window.
    #[serde(default = "default_budget_writes")]
    #[schemars(range(min = 1, max = 10000))]
    pub writes: u32,
    /// Window length in seconds.
    #[serde(default = "default_budget_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub per_seconds: u32,
}

impl Default for WriteBudget {
    fn default() -> Self {
        WriteBudget { writes: default_budget_writes(), per_seconds: default_budget_seconds() }
    }
}

fn default_budget_writes() -> u32 {
    100
}

fn default_budget_seconds() -> u32 {
    20
}

/// Observed state of an IntuneTenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntuneTenantStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (a token was obtained and a read succeeded), plus `Reconciling` / `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// When credentials were last checked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub last_checked: Option<String>,
}

/// Shortens `text` to at most `max` characters (the CRD counts characters), marking the cut.
pub fn clamp_text(text: &mut String, max: usize) {
    if text.chars().count() > max {
        let keep: String = text.chars().take(max.saturating_sub(1)).collect();
        *text = keep + "…";
    }
}

fn clamp_opt(text: &mut Option<String>, max: usize) {
    if let Some(t) = text {
        clamp_text(t, max);
    }
}

fn clamp_map(map: &mut BTreeMap<String, u32>, max_entries: usize, max_key: usize) {
    if map.len() > max_entries || map.keys().any(|k| k.chars().count() > max_key) {
        let entries: Vec<(String, u32)> = std::mem::take(map).into_iter().collect();
        for (mut key, value) in entries.into_iter().take(max_entries) {
            clamp_text(&mut key, max_key);
            *map.entry(key).or_insert(0) += value;
        }
    }
}

impl RestoreRunStatus {
    /// Clamps every string and list to the bounds the CRD schema declares, so the API server
    /// never refuses a status write because an item name or message from a backup is too long.
    pub fn clamp_to_schema(&mut self) {
        self.conditions.truncate(16);
        for c in &mut self.conditions {
            clamp_text(&mut c.type_, 64);
            clamp_text(&mut c.reason, 64);
            clamp_text(&mut c.message, 2048);
            clamp_text(&mut c.last_transition_time, 64);
        }
        clamp_opt(&mut self.plan_inputs, 71);
        if let Some(t) = &mut self.tenant {
            clamp_text(&mut t.id, 64);
            clamp_text(&mut t.label, 256);
        }
        if let Some(s) = &mut self.source {
            clamp_text(&mut s.digest, 71);
            clamp_opt(&mut s.captured_at, 64);
            clamp_opt(&mut s.tenant_id, 64);
        }
        if let Some(s) = &mut self.scope {
            clamp_map(&mut s.by_type, 64, 128);
            clamp_map(&mut s.by_platform, 32, 128);
        }
        if let Some(c) = &mut self.checks {
            clamp_opt(&mut c.checked_at, 64);
            c.findings.truncate(MAX_STATUS_FINDINGS);
            for f in &mut c.findings {
                clamp_text(&mut f.code, 64);
                clamp_opt(&mut f.item, 512);
                clamp_text(&mut f.message, 1024);
            }
        }
        if let Some(p) = &mut self.preview {
            clamp_text(&mut p.digest, 71);
            clamp_text(&mut p.generated_at, 64);
            clamp_text(&mut p.expires_at, 64);
            clamp_opt(&mut p.report, 253);
        }
        if let Some(c) = &mut self.confirmation {
            clamp_text(&mut c.accepted_at, 64);
            clamp_text(&mut c.approved_by, 256);
            clamp_text(&mut c.digest, 71);
        }
        if let Some(e) = &mut self.execution {
            clamp_text(&mut e.started_at, 64);
            clamp_opt(&mut e.finished_at, 64);
            e.results.truncate(MAX_STATUS_RESULTS);
            for r in &mut e.results {
                clamp_text(&mut r.item, 512);
                clamp_opt(&mut r.message, 1024);
            }
        }
    }
}

impl IntuneTenantStatus {
    /// Clamps condition texts to the CRD's bounds (Graph error messages can be long).
    pub fn clamp_to_schema(&mut self) {
        self.conditions.truncate(8);
        for c in &mut self.conditions {
            clamp_text(&mut c.type_, 64);
            clamp_text(&mut c.reason, 64);
            clamp_text(&mut c.message, 2048);
        }
        clamp_opt(&mut self.last_checked, 64);
    }
}
