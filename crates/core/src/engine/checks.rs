//! The safety checks: findings with a stable code, a severity, the item, a message and a hint, from
//! the analysed scope and the target; any blocker stops the run before a write (DESIGN §2 rules 1, 9).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{ChecksStatus, Environment, FindingSummary, MAX_STATUS_FINDINGS, Severity};
use crate::catalog::TypeClass;
use crate::engine::analysis::{ItemAnalysis, PlannedAction, count_actions};
use crate::engine::identity::Identity;
use crate::engine::mapping::{RefKind, RefTarget};
use crate::engine::scope::ResolvedScope;
use crate::engine::{EngineOptions, RestoreTarget, bounded};

/// Bound of `status.checks.findings[].message` (the CRD schema's).
const MAX_SUMMARY_MESSAGE: usize = 1024;

/// Stable finding codes. The names are part of the contract: reports and alerts key on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FindingCode {
    /// The backup comes from another tenant (or does not say which).
    CrossTenantRestore,
    /// More than one target object matches an item.
    AmbiguousMatch,
    /// An assignment's group does not exist in the target.
    MissingGroup,
    /// More than one target group has the name.
    AmbiguousGroup,
    /// A scope tag does not exist in the target and is not restored: the item is written without it.
    UnmappedScopeTag,
    /// More than one target scope tag has the name.
    AmbiguousScopeTag,
    /// An assignment filter does not exist in the target and is not restored.
    UnmappedFilter,
    /// More than one target filter has the name.
    AmbiguousFilter,
    /// A notification template does not exist in the target and is not restored.
    UnmappedNotificationTemplate,
    /// More than one target notification template has the name.
    AmbiguousNotificationTemplate,
    /// A type v1 shows in the preview but never writes.
    PreviewOnlyType,
    /// An encrypted value (OMA-URI or secret setting) cannot be written back.
    SecretNotRestorable,
    /// A type this build cannot restore.
    UnsupportedType,
    /// The backup holds the same item twice, or two items land on one target object.
    DuplicateInBackup,
    /// The item's platform disagrees with its payload or its target object.
    PlatformMismatch,
    /// The backup lacks a sub-resource the item cannot be restored without.
    IncompleteSnapshot,
    /// The backup did not capture the item's assignments: they are left as they are.
    AssignmentsNotCaptured,
    /// A built-in object is never written.
    BuiltInObject,
    /// The target tenant is a production tenant.
    ProductionTarget,
    /// More changes than the configured threshold.
    LargeChangeSet,
    /// Nothing is in scope.
    EmptyScope,
    /// An app protection policy's backup holds no targeted apps.
    AppProtectionWithoutApps,
    /// A Settings Catalog policy's `settingCount` differs from the settings the backup holds.
    SettingCountMismatch,
    /// A write-only secret (Wi-Fi pre-shared key, VPN shared secret) is not in the backup: the
    /// object is written without it and the admin must re-enter it.
    SecretMustBeReentered,
    /// A link to a certificate profile (trusted root, client identity) is not in the backup: the
    /// object is written without it.
    CertificateLinkNotRestored,
    /// An item of a restorable type whose `@odata.type` can only be previewed (a certificate-issuing
    /// profile, a profile Graph cannot write).
    PreviewOnlySubtype,
    /// Across tenants, an app configuration policy targets apps by id (`targetedMobileApps`), and
    /// app ids differ between tenants: it would configure the wrong app or none.
    AppReferenceNotMapped,
    /// The target object of a type whose assignments are written one at a time (Autopilot
    /// profiles) holds assignments the backup lacks: removing them would take a delete, so the
    /// item is not written.
    AssignmentNotRemovable,
    /// One of the tenant's built-in default enrollment configurations: updated in place, never
    /// created or deleted, its assignments never written.
    DefaultEnrollmentConfiguration,
    /// A restored custom enrollment configuration whose backup records no priority: Graph places
    /// it (after the others of its list), the restore does not order it.
    EnrollmentPriorityNotRestored,
    /// The restore changes a tenant-wide singleton (the device-management settings): every device
    /// and user of the tenant is affected, not only a policy's assignees.
    TenantWideSettingChange,
    /// The backup holds items of a type a run restores only when it opts in (Conditional Access),
    /// and this run did not: they are left out.
    OptInRequired,
    /// A named location a Conditional Access policy's conditions use does not exist in the target.
    UnmappedNamedLocation,
    /// More than one target named location has the name.
    AmbiguousNamedLocation,
    /// A user a Conditional Access policy's conditions name does not exist in the target.
    UnmappedUser,
    /// More than one target user has the name.
    AmbiguousUser,
    /// The restore would change the state of a Conditional Access policy that governs the
    /// restore's own sign-in (docs/safety.md): it could lock the restore, or every admin, out.
    ConditionalAccessGovernsOwnSignIn,
    /// Across tenants, a Conditional Access policy names service principals or terms of use by id,
    /// which differ between tenants and are not mapped.
    ConditionalAccessReferenceNotMapped,
    /// An intent the restore would create names a template the target tenant lacks or has
    /// deprecated: Graph cannot create it, and half an intent is never written.
    IntentTemplateUnavailable,
    /// The tenant's intent has settings the backup does not name: a restore leaves them as they
    /// are (`updateSettings` only sets values).
    IntentSettingNotInBackup,
    /// An Administrative Template sets an ADMX definition (or an option of one) the target tenant
    /// lacks or holds more than once (a custom ADMX not ingested there): it cannot be written whole.
    AdmxDefinitionNotMapped,
    /// The Apple enrollment-program token a profile lives under does not exist in the target (or
    /// the backup does not name it): the profile has nowhere to be written.
    EnrollmentTokenMissing,
    /// More than one target token carries the profile's token name.
    AmbiguousEnrollmentToken,
    /// The backup's profile was its token's default; a restore does not call `setDefaultProfile`.
    AppleDefaultProfileNotSet,
    /// A restored enrollment configuration gets another priority number than the backup's: its
    /// list in the target holds other configurations (or fewer), which keep their relative order.
    EnrollmentPriorityAdjusted,
}

impl FindingCode {
    /// The code as written in status and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::CrossTenantRestore => "CrossTenantRestore",
            FindingCode::AmbiguousMatch => "AmbiguousMatch",
            FindingCode::MissingGroup => "MissingGroup",
            FindingCode::AmbiguousGroup => "AmbiguousGroup",
            FindingCode::UnmappedScopeTag => "UnmappedScopeTag",
            FindingCode::AmbiguousScopeTag => "AmbiguousScopeTag",
            FindingCode::UnmappedFilter => "UnmappedFilter",
            FindingCode::AmbiguousFilter => "AmbiguousFilter",
            FindingCode::UnmappedNotificationTemplate => "UnmappedNotificationTemplate",
            FindingCode::AmbiguousNotificationTemplate => "AmbiguousNotificationTemplate",
            FindingCode::PreviewOnlyType => "PreviewOnlyType",
            FindingCode::SecretNotRestorable => "SecretNotRestorable",
            FindingCode::UnsupportedType => "UnsupportedType",
            FindingCode::DuplicateInBackup => "DuplicateInBackup",
            FindingCode::PlatformMismatch => "PlatformMismatch",
            FindingCode::IncompleteSnapshot => "IncompleteSnapshot",
            FindingCode::AssignmentsNotCaptured => "AssignmentsNotCaptured",
            FindingCode::BuiltInObject => "BuiltInObject",
            FindingCode::ProductionTarget => "ProductionTarget",
            FindingCode::LargeChangeSet => "LargeChangeSet",
            FindingCode::EmptyScope => "EmptyScope",
            FindingCode::AppProtectionWithoutApps => "AppProtectionWithoutApps",
            FindingCode::SettingCountMismatch => "SettingCountMismatch",
            FindingCode::SecretMustBeReentered => "SecretMustBeReentered",
            FindingCode::CertificateLinkNotRestored => "CertificateLinkNotRestored",
            FindingCode::PreviewOnlySubtype => "PreviewOnlySubtype",
            FindingCode::AppReferenceNotMapped => "AppReferenceNotMapped",
            FindingCode::AssignmentNotRemovable => "AssignmentNotRemovable",
            FindingCode::DefaultEnrollmentConfiguration => "DefaultEnrollmentConfiguration",
            FindingCode::EnrollmentPriorityNotRestored => "EnrollmentPriorityNotRestored",
            FindingCode::TenantWideSettingChange => "TenantWideSettingChange",
            FindingCode::OptInRequired => "OptInRequired",
            FindingCode::UnmappedNamedLocation => "UnmappedNamedLocation",
            FindingCode::AmbiguousNamedLocation => "AmbiguousNamedLocation",
            FindingCode::UnmappedUser => "UnmappedUser",
            FindingCode::AmbiguousUser => "AmbiguousUser",
            FindingCode::ConditionalAccessGovernsOwnSignIn => "ConditionalAccessGovernsOwnSignIn",
            FindingCode::ConditionalAccessReferenceNotMapped => "ConditionalAccessReferenceNotMapped",
            FindingCode::IntentTemplateUnavailable => "IntentTemplateUnavailable",
            FindingCode::IntentSettingNotInBackup => "IntentSettingNotInBackup",
            FindingCode::AdmxDefinitionNotMapped => "AdmxDefinitionNotMapped",
            FindingCode::EnrollmentTokenMissing => "EnrollmentTokenMissing",
            FindingCode::AmbiguousEnrollmentToken => "AmbiguousEnrollmentToken",
            FindingCode::AppleDefaultProfileNotSet => "AppleDefaultProfileNotSet",
            FindingCode::EnrollmentPriorityAdjusted => "EnrollmentPriorityAdjusted",
        }
    }
}

/// One finding of the safety checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code.
    pub code: FindingCode,
    /// Severity: any blocker stops the run.
    pub severity: Severity,
    /// The item, as `type/display name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The item's key, `type/source id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl Finding {
    /// The summary kept in `status.checks.findings` (message and hint, bounded).
    pub fn summary(&self) -> FindingSummary {
        let message = bounded(format!("{} {}", self.message, self.hint), MAX_SUMMARY_MESSAGE);
        FindingSummary {
            code: self.code.as_str().to_string(),
            severity: self.severity,
            item: self.item.clone(),
            message,
        }
    }
}

/// Counts and the first findings, most severe first, for `status.checks`.
pub fn checks_status(findings: &[Finding]) -> ChecksStatus {
    let count = |s: Severity| u32::try_from(findings.iter().filter(|f| f.severity == s).count()).unwrap_or(u32::MAX);
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| f.severity);
    ChecksStatus {
        checked_at: None,
        blockers: count(Severity::Blocker),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        findings: sorted.into_iter().take(MAX_STATUS_FINDINGS).map(Finding::summary).collect(),
    }
}

struct Collector {
    findings: Vec<Finding>,
}

impl Collector {
    fn add(&mut self, code: FindingCode, severity: Severity, item: Option<&ItemAnalysis>, message: String, hint: &str) {
        self.findings.push(Finding {
            code,
            severity,
            item: item.map(|i| i.label.clone()),
            item_key: item.map(|i| i.preview.key.clone()),
            message,
            hint: hint.to_string(),
        });
    }
}

/// Runs every check. Findings come out most severe first, in item order within a severity.
pub fn run_checks(
    scope: &ResolvedScope,
    items: &[ItemAnalysis],
    target: &RestoreTarget,
    options: &EngineOptions,
) -> Vec<Finding> {
    let mut c = Collector { findings: Vec::new() };
    let same_tenant = scope.same_tenant(&target.tenant_id);
    if !same_tenant {
        let from = scope.source_tenant.as_deref().unwrap_or("an unrecorded tenant");
        c.add(
            FindingCode::CrossTenantRestore,
            Severity::Info,
            None,
            format!("the backup comes from {from}; it is restored into tenant {}.", target.tenant_id),
            "Objects, groups, scope tags and filters are matched by name; check the mappings in the preview.",
        );
    }
    if target.environment == Environment::Production {
        c.add(
            FindingCode::ProductionTarget,
            Severity::Warning,
            None,
            format!("tenant {} is a production tenant.", target.tenant_id),
            "Review every change in the preview before approving.",
        );
    }
    if items.is_empty() {
        c.add(
            FindingCode::EmptyScope,
            Severity::Warning,
            None,
            "no backup item is in scope; nothing would be restored.".into(),
            "Check spec.scope against the backup's types, platforms and names.",
        );
    }
    let counts = count_actions(items.iter().map(|i| &i.preview));
    if counts.changes() > options.large_change_threshold {
        c.add(
            FindingCode::LargeChangeSet,
            Severity::Warning,
            None,
            format!(
                "{} objects would change ({} created, {} updated), more than the threshold of {}.",
                counts.changes(),
                counts.create,
                counts.update,
                options.large_change_threshold
            ),
            "Narrow spec.scope, or review the preview report in full before approving.",
        );
    }
    duplicates(&mut c, items, same_tenant, scope);
    for (item, scoped) in items.iter().zip(&scope.items) {
        item_checks(&mut c, item);
        if !same_tenant {
            app_reference_check(&mut c, item, &scoped.item.resource);
        }
        tenant_wide_check(&mut c, item, scoped.item_type);
        conditional_access_checks(&mut c, item, &scoped.item.resource, same_tenant);
    }
    for label in &scope.not_opted_in {
        c.add(
            FindingCode::OptInRequired,
            Severity::Info,
            None,
            format!("{label} is in the backup but Conditional Access is restored only when the run opts in; it is left out."),
            "Add conditionalAccessPolicy to spec.scope.optIn.types to restore it (created report-only unless spec.scope.optIn.conditionalAccessState is fromBackup).",
        );
    }
    c.findings.sort_by_key(|f| f.severity);
    c.findings
}

fn duplicates(c: &mut Collector, items: &[ItemAnalysis], same_tenant: bool, scope: &ResolvedScope) {
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    let identities: Vec<Option<(&str, Identity)>> =
        scope.items.iter().map(|s| s.item_type.map(|t| (t.name, Identity::of_item(t, &s.item)))).collect();
    let mut by_identity: BTreeMap<&(&str, Identity), usize> = BTreeMap::new();
    let mut by_target: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (item, identity) in items.iter().zip(&identities) {
        *by_key.entry(&item.preview.key).or_default() += 1;
        if let Some(identity) = identity {
            *by_identity.entry(identity).or_default() += 1;
        }
        if let (Some(target), true) = (&item.preview.target_id, item.preview.action.writes()) {
            *by_target.entry((&item.preview.item_type, target)).or_default() += 1;
        }
    }
    for ((item, scoped), identity) in items.iter().zip(&scope.items).zip(&identities) {
        if by_key[item.preview.key.as_str()] > 1 {
            c.add(
                FindingCode::DuplicateInBackup,
                Severity::Blocker,
                Some(item),
                format!("the backup holds {} more than once.", item.preview.key),
                "Fix the backup: each item id may appear once.",
            );
            continue;
        }
        if let (Some(t), Some(identity)) = (scoped.item_type, identity)
            && by_identity[identity] > 1
        {
            let (severity, hint) = if same_tenant {
                (Severity::Warning, "They are matched by id in this tenant; rename one to tell them apart.")
            } else {
                (
                    Severity::Blocker,
                    "Across tenants items are matched by name: rename one, or exclude one from spec.scope.",
                )
            };
            c.add(
                FindingCode::DuplicateInBackup,
                severity,
                Some(item),
                format!("another {} in the backup has the same name.", t.title),
                hint,
            );
        }
        if let (Some(target), true) = (&item.preview.target_id, item.preview.action.writes())
            && by_target[&(item.preview.item_type.as_str(), target.as_str())] > 1
        {
            c.add(
                FindingCode::DuplicateInBackup,
                Severity::Blocker,
                Some(item),
                format!("another backup item would write the same target object {target}."),
                "Exclude one of them from spec.scope.",
            );
        }
    }
}

fn item_checks(c: &mut Collector, item: &ItemAnalysis) {
    let p = &item.preview;
    let issues = &item.issues;
    if let Some(why) = &issues.unsupported {
        c.add(
            FindingCode::UnsupportedType,
            Severity::Warning,
            Some(item),
            format!("{why}; the item is not restored."),
            "Exclude it from spec.scope, or restore it by hand.",
        );
        return;
    }
    if p.class == Some(TypeClass::PreviewOnly) {
        c.add(
            FindingCode::PreviewOnlyType,
            Severity::Info,
            Some(item),
            "this type is shown in the preview but not restored in v1.".into(),
            "Restore it by hand if the preview shows changes.",
        );
    }
    if let Some(why) = &issues.preview_only_subtype {
        c.add(
            FindingCode::PreviewOnlySubtype,
            Severity::Warning,
            Some(item),
            format!("{why}; the item is shown in the preview but not restored."),
            "Recreate it by hand in the target tenant (with its certificate authority or imported PFX certificates).",
        );
    }
    if p.action.writes() && !issues.secrets_to_reenter.is_empty() {
        c.add(
            FindingCode::SecretMustBeReentered,
            Severity::Warning,
            Some(item),
            format!(
                "Graph never returns {} in clear, so the backup holds no value; the object is written without it.",
                issues.secrets_to_reenter.join(", ")
            ),
            "Re-enter it in the Intune admin center after the restore, or devices will fail to connect.",
        );
    }
    if p.action.writes() && !issues.certificate_links.is_empty() {
        c.add(
            FindingCode::CertificateLinkNotRestored,
            Severity::Warning,
            Some(item),
            format!(
                "the backup does not carry this profile's certificate links ({}); the object is written without them.",
                issues.certificate_links.join(", ")
            ),
            "Link the trusted root / client certificate profiles again in the Intune admin center after the restore.",
        );
    }
    if issues.built_in {
        c.add(
            FindingCode::BuiltInObject,
            Severity::Info,
            Some(item),
            "built-in objects exist in every tenant and are never written.".into(),
            "Nothing to do.",
        );
    }
    if !issues.missing_required.is_empty() {
        c.add(
            FindingCode::IncompleteSnapshot,
            Severity::Blocker,
            Some(item),
            format!(
                "the backup lacks {} for this item; restoring it would lose them.",
                issues.missing_required.join(", ")
            ),
            "Take a new backup that captures them, or exclude the item from spec.scope.",
        );
    }
    if let Some((declared, present)) = issues.setting_count_mismatch {
        c.add(
            FindingCode::SettingCountMismatch,
            Severity::Blocker,
            Some(item),
            format!(
                "the backup records settingCount {declared} but holds {present} settings; an update replaces the whole policy and would delete the missing ones."
            ),
            "Take a new backup that reads every page of settings, or exclude the item from spec.scope.",
        );
    }
    if issues.apps_not_captured && p.action.writes() {
        c.add(
            FindingCode::AppProtectionWithoutApps,
            Severity::Warning,
            Some(item),
            "the backup holds no targeted apps for this app protection policy; it would protect no app.".into(),
            "Take a backup that captures the policy's apps (IntuneCD's format does not), or add them by hand after the restore.",
        );
    }
    if issues.assignments_not_captured && p.class == Some(TypeClass::Policy) {
        c.add(
            FindingCode::AssignmentsNotCaptured,
            Severity::Warning,
            Some(item),
            "the backup did not capture this item's assignments; they are left as they are.".into(),
            "Take a backup with assignments, or set spec.scope.assignments: skip to silence this.",
        );
    }
    if let Some(path) = &issues.unrestorable_secret {
        c.add(
            FindingCode::SecretNotRestorable,
            Severity::Warning,
            Some(item),
            format!(
                "the item holds an encrypted value at {path} that Graph never returns in clear; it is not written."
            ),
            "Re-enter the secret by hand in the target tenant, or exclude the item.",
        );
    }
    if let Some(derived) = &issues.recorded_platform_mismatch {
        c.add(
            FindingCode::PlatformMismatch,
            Severity::Warning,
            Some(item),
            format!("the backup records platform {} but the payload is for {derived}.", p.platform),
            "Check the backup; scope selection by platform uses the recorded one.",
        );
    }
    if let Some(live) = &issues.target_platform_mismatch {
        c.add(
            FindingCode::PlatformMismatch,
            Severity::Warning,
            Some(item),
            format!("the matching target object is for {live}, the backup item is not."),
            "Check that the right object is matched before approving.",
        );
    }
    enrollment_checks(c, item);
    intent_template_check(c, item);
    apple_default_check(c, item);
    if !issues.assignments_not_removable.is_empty() {
        c.add(
            FindingCode::AssignmentNotRemovable,
            Severity::Warning,
            Some(item),
            format!(
                "the tenant's object is also assigned to {}, which the backup is not; Graph removes an assignment of this type only by a delete, which a restore never sends, so the item is not written.",
                issues.assignments_not_removable.join(", ")
            ),
            "Remove those assignments in the Intune admin center and preview again, or set spec.scope.assignments: skip.",
        );
    }
    if p.matches.len() > 1 {
        c.add(
            FindingCode::AmbiguousMatch,
            Severity::Blocker,
            Some(item),
            format!("{} objects in the tenant match this item by name ({}).", p.matches.len(), p.matches.join(", ")),
            "Rename or remove the duplicates in the tenant, or exclude the item from spec.scope.",
        );
    }
    if p.action.writes() {
        reference_checks(c, item);
    }
    if p.action.writes() {
        for problem in &issues.admx_unmapped {
            c.add(
                FindingCode::AdmxDefinitionNotMapped,
                Severity::Blocker,
                Some(item),
                format!("the configuration sets an ADMX {problem}; it cannot be written whole."),
                "Ingest the same ADMX files in the target tenant (Intune admin center, Import ADMX) and preview again, or exclude the item from spec.scope.",
            );
        }
    }
}

/// The enrollment configuration findings: a built-in default, a priority left different.
fn enrollment_checks(c: &mut Collector, item: &ItemAnalysis) {
    let (p, issues) = (&item.preview, &item.issues);
    if issues.default_enrollment {
        let message = if p.action == PlannedAction::Skip && p.current.is_none() {
            "this is a built-in default enrollment configuration and the target tenant has no matching default; defaults are never created."
        } else {
            "this is a built-in default enrollment configuration: it is updated in place (never created or deleted) and its assignments (all users, all devices) are never written."
        };
        c.add(
            FindingCode::DefaultEnrollmentConfiguration,
            Severity::Info,
            Some(item),
            message.into(),
            "Nothing to do.",
        );
    }
    if p.action.writes() && issues.priority_not_in_backup {
        c.add(
            FindingCode::EnrollmentPriorityNotRestored,
            Severity::Warning,
            Some(item),
            "the backup records no priority for this configuration; the restore does not order it (Graph places a new one after the others of its list).".into(),
            "Set its place in the list in the Intune admin center after the restore, if it matters.",
        );
    }
    if let (true, Some(adjusted)) = (p.action.writes(), issues.priority_adjusted) {
        // Which configuration applies to a user in several assigned groups depends on the order
        // among configurations the backup does not know: a warning to review. Without them the
        // order is the backup's and only the number differs (the list is shorter than the
        // backup's): information.
        let (severity, why) = if adjusted.others > 0 {
            (
                Severity::Warning,
                format!(
                    "the target's list also holds {} configuration(s) this restore does not order; they keep their relative order, renumbered around the restored ones",
                    adjusted.others
                ),
            )
        } else {
            (Severity::Info, "the list holds fewer configurations than the backup's; the backup's order is kept".into())
        };
        c.add(
            FindingCode::EnrollmentPriorityAdjusted,
            severity,
            Some(item),
            format!("the backup has priority {}; the restore sets {} ({why}).", adjusted.backup, adjusted.planned),
            "Review the order of this configuration type in the Intune admin center; the preview's diff shows the planned priority.",
        );
    }
}

/// An intent is created from its template: one the target lacks or has deprecated is a blocker.
fn intent_template_check(c: &mut Collector, item: &ItemAnalysis) {
    if let (PlannedAction::Create, Some(why)) = (item.preview.action, &item.issues.intent_template) {
        c.add(
            FindingCode::IntentTemplateUnavailable,
            Severity::Blocker,
            Some(item),
            format!("{why}: the intent cannot be created."),
            "Create the intent from the template's current version in the Intune admin center, or exclude it from spec.scope.",
        );
    }
    let left = &item.issues.intent_settings_left;
    if !left.is_empty() && item.preview.action != PlannedAction::PreviewOnly {
        c.add(
            FindingCode::IntentSettingNotInBackup,
            Severity::Warning,
            Some(item),
            format!(
                "the tenant's intent also sets {}, which the backup does not; a restore sets the backup's settings and leaves these as they are.",
                left.join(", ")
            ),
            "Change or reset those settings in the Intune admin center if the backup's state is wanted.",
        );
    }
}

/// The backup's Apple enrollment profile was its token's default: a restore never writes
/// `isDefault` and does not call `setDefaultProfile`, so the admin sets it.
fn apple_default_check(c: &mut Collector, item: &ItemAnalysis) {
    if item.issues.apple_default_not_set && item.preview.action.writes() {
        c.add(
            FindingCode::AppleDefaultProfileNotSet,
            Severity::Warning,
            Some(item),
            "the backup's profile was its token's default profile; a restore writes the profile but not which profile is the default (setDefaultProfile).".to_string(),
            "Set it as the default profile of its token in the Intune admin center after the restore, if wanted.",
        );
    }
}

/// Mobile app ids are tenant-specific and the backup does not name the apps: across tenants an
/// app configuration policy that targets apps is a blocker, never written with foreign ids.
fn app_reference_check(c: &mut Collector, item: &ItemAnalysis, resource: &serde_json::Value) {
    for key in APP_REFERENCES {
        let apps = resource.get(*key).and_then(serde_json::Value::as_array).map_or(0, Vec::len);
        if apps > 0 && item.preview.action.writes() {
            c.add(
                FindingCode::AppReferenceNotMapped,
                Severity::Blocker,
                Some(item),
                format!("the policy targets {apps} app(s) ({key}); app ids differ between tenants and this build does not look apps up."),
                "Exclude it from spec.scope and recreate it in the target tenant for the target's apps.",
            );
        }
    }
}

/// Properties that name mobile apps by tenant-specific id: app configuration policies'
/// `targetedMobileApps`, the enrollment status page's `selectedMobileAppIds`, and the names
/// IntuneCD 2.6.0 writes in their place for the status page (`selectedMobileAppNames`).
const APP_REFERENCES: &[&str] = &["targetedMobileApps", "selectedMobileAppIds", "selectedMobileAppNames"];

/// A write to a tenant-wide singleton is a warning naming what changes: it applies to the whole
/// tenant (update only: a singleton is never created or deleted).
fn tenant_wide_check(c: &mut Collector, item: &ItemAnalysis, item_type: Option<&crate::catalog::ItemType>) {
    if item_type.and_then(crate::engine::singleton::singleton).is_none() || !item.preview.action.writes() {
        return;
    }
    let changed = if item.preview.changed_fields.is_empty() {
        String::new()
    } else {
        format!(" ({})", item.preview.changed_fields.join(", "))
    };
    c.add(
        FindingCode::TenantWideSettingChange,
        Severity::Warning,
        Some(item),
        format!("the restore changes the tenant-wide {}{changed}; it applies to every device and user of the tenant.", item.preview.display_name),
        "Review the change in the preview; exclude the type from spec.scope to leave the tenant's settings as they are.",
    );
}

/// Conditional Access: a blocker when the restore would change the state of a policy that governs
/// its own sign-in (the rule in [`crate::engine::conditional_access::governs_own_sign_in`]), and
/// across tenants when service principals or terms of use are named by id.
fn conditional_access_checks(c: &mut Collector, item: &ItemAnalysis, resource: &serde_json::Value, same_tenant: bool) {
    use crate::engine::conditional_access::{CONDITIONAL_ACCESS, governs_own_sign_in, written_state};
    if item.preview.item_type != CONDITIONAL_ACCESS || !item.preview.action.writes() {
        return;
    }
    let written = written_state(&item.preview.desired);
    let live = item.preview.current.as_ref().and_then(|c| written_state(c));
    let changes_state = match (item.preview.action, written) {
        (_, None) => false,
        (crate::engine::analysis::PlannedAction::Create, Some(state)) => state == "enabled",
        (_, Some(state)) => live != Some(state),
    };
    if changes_state && let Some(why) = governs_own_sign_in(&item.preview.desired) {
        c.add(
            FindingCode::ConditionalAccessGovernsOwnSignIn,
            Severity::Blocker,
            Some(item),
            format!(
                "the restore would set the policy's state to {} ({} now) and {why}: it governs the restore's own sign-in.",
                written.unwrap_or("?"),
                live.unwrap_or("absent")
            ),
            "Change the state by hand after checking the exclusions (break-glass accounts), or set spec.scope.optIn.conditionalAccessState: reportOnly.",
        );
    }
    if same_tenant {
        return;
    }
    let ids = |pointer: &str| -> Vec<String> {
        resource
            .pointer(pointer)
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .filter(|id| *id != "ServicePrincipalsInMyTenant")
            .map(str::to_string)
            .collect()
    };
    let foreign: Vec<String> = [
        "/conditions/clientApplications/includeServicePrincipals",
        "/conditions/clientApplications/excludeServicePrincipals",
        "/grantControls/termsOfUse",
    ]
    .into_iter()
    .flat_map(ids)
    .collect();
    if !foreign.is_empty() {
        c.add(
            FindingCode::ConditionalAccessReferenceNotMapped,
            Severity::Blocker,
            Some(item),
            format!(
                "the policy names service principals or terms of use by id ({}); ids differ between tenants.",
                foreign.join(", ")
            ),
            "Exclude the policy from spec.scope and recreate it in the target tenant.",
        );
    }
}

fn reference_checks(c: &mut Collector, item: &ItemAnalysis) {
    for r in &item.preview.references {
        let name = r.name.clone().unwrap_or_else(|| format!("with source id {} (name not in the backup)", r.source_id));
        let (code, severity, message, hint) = match (&r.target, r.kind) {
            (RefTarget::Existing { .. } | RefTarget::Created { .. }, _) => continue,
            (RefTarget::Missing, RefKind::Group) => (
                FindingCode::MissingGroup,
                Severity::Blocker,
                format!("group {name} does not exist in the target tenant."),
                "Create the group (same display name) in the target tenant, or set spec.scope.assignments: skip.",
            ),
            (RefTarget::Missing, RefKind::ScopeTag) => (
                FindingCode::UnmappedScopeTag,
                Severity::Warning,
                format!("scope tag {name} does not exist in the target tenant; the item is written without it."),
                "Include scope tags in the restore (spec.scope.foundations: include) or create the tag first.",
            ),
            (RefTarget::Missing, RefKind::Filter) => (
                FindingCode::UnmappedFilter,
                Severity::Blocker,
                format!(
                    "assignment filter {name} does not exist in the target; without it the assignment would widen."
                ),
                "Include the filter in the restore (spec.scope.foundations: include) or create it first.",
            ),
            (RefTarget::Missing, RefKind::NotificationTemplate) => (
                FindingCode::UnmappedNotificationTemplate,
                Severity::Blocker,
                format!("notification template {name} does not exist in the target tenant."),
                "Include notification templates in the restore (spec.scope.foundations: include) or create it first.",
            ),
            (RefTarget::Missing, RefKind::NamedLocation) => (
                FindingCode::UnmappedNamedLocation,
                Severity::Blocker,
                format!("named location {name} does not exist in the target tenant; the condition cannot be kept."),
                "Create the named location (same display name) in the target tenant first.",
            ),
            (RefTarget::Missing, RefKind::User) => (
                FindingCode::UnmappedUser,
                Severity::Blocker,
                format!("user {name} does not exist in the target tenant; the condition cannot be kept."),
                "Create the user (same display name) in the target tenant, or exclude the policy from spec.scope.",
            ),
            (RefTarget::Missing, RefKind::EnrollmentToken) => (
                FindingCode::EnrollmentTokenMissing,
                Severity::Blocker,
                crate::engine::apple_enrollment::token_missing_message(r),
                "Upload the enrollment program token from Apple Business Manager to the target tenant under the same name, or exclude the profile from spec.scope.",
            ),
            (RefTarget::Ambiguous { ids }, kind) => (
                match kind {
                    RefKind::Group => FindingCode::AmbiguousGroup,
                    RefKind::ScopeTag => FindingCode::AmbiguousScopeTag,
                    RefKind::Filter => FindingCode::AmbiguousFilter,
                    RefKind::NotificationTemplate => FindingCode::AmbiguousNotificationTemplate,
                    RefKind::NamedLocation => FindingCode::AmbiguousNamedLocation,
                    RefKind::User => FindingCode::AmbiguousUser,
                    RefKind::EnrollmentToken => FindingCode::AmbiguousEnrollmentToken,
                },
                Severity::Blocker,
                format!("{} target objects are called {} {name} ({}).", ids.len(), r.kind.title(), ids.join(", ")),
                "Rename the duplicates in the target tenant so the name is unique.",
            ),
        };
        c.add(code, severity, Some(item), message, hint);
    }
}

/// Whether any finding blocks the run.
pub fn has_blockers(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Blocker)
}
