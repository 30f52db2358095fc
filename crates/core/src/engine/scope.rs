//! Scope resolution (DESIGN §1 `scope`): which backup items a run restores — all or selected, include
//! and exclude by type, platform, id or display name (exact or `*`/`?` glob) — with counts for status.

use std::collections::BTreeSet;
use std::fmt;

use globset::{GlobBuilder, GlobMatcher};

use crate::api::{ConditionalAccessState, IncludeOrSkip, ScopeMode, ScopeSelector, ScopeSpec, ScopeStatus};
use crate::backup::{BackupItem, BackupSet};
use crate::catalog::{ITEM_TYPES, ItemType, TypeClass, item_type};
use crate::engine::mapping::IdNames;

/// Platforms a selector may name.
pub const PLATFORMS: &[&str] = &["windows", "macOS", "iOS", "android", "linux", "any"];

/// Why a scope cannot be resolved. Every variant is permanent: the spec must change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// An item pattern is not a valid glob.
    #[error("spec.scope: item pattern {pattern:?} is not a valid glob ({reason}); use * and ? as wildcards")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A type name neither in the catalogue nor in the backup.
    #[error("spec.scope: unknown type {name:?}; known types: {known}")]
    UnknownType {
        /// The name as written.
        name: String,
        /// The names accepted.
        known: String,
    },
    /// A platform name that is not known.
    #[error("spec.scope: unknown platform {name:?}; known platforms: {known}")]
    UnknownPlatform {
        /// The name as written.
        name: String,
        /// The names accepted.
        known: String,
    },
    /// `mode: selected` without any include entry.
    #[error("spec.scope.mode is selected but spec.scope.include selects nothing; add types, platforms or items")]
    SelectedWithoutInclude,
}

/// One item in scope.
#[derive(Clone, PartialEq)]
pub struct ScopedItem {
    /// The backup item (its payload may hold secrets: never logged, never in Debug output).
    pub item: BackupItem,
    /// Its catalogue type; `None` for a type this build does not know.
    pub item_type: Option<&'static ItemType>,
}

impl ScopedItem {
    /// `type/source id`.
    pub fn key(&self) -> String {
        self.item.key()
    }

    /// `type/display name`, for humans.
    pub fn label(&self) -> String {
        format!("{}/{}", self.item.item_type, self.item.display_name)
    }

    /// The type's class, when the type is known.
    pub fn class(&self) -> Option<TypeClass> {
        self.item_type.map(|t| t.class)
    }

    /// Whether the item is shown in the preview but never written.
    pub fn preview_only(&self) -> bool {
        self.class() == Some(TypeClass::PreviewOnly)
    }
}

impl fmt::Debug for ScopedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedItem").field("key", &self.key()).field("display_name", &self.item.display_name).finish()
    }
}

/// A resolved scope: the items to restore, in restore order, and what status shows of them.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedScope {
    /// Items in scope: foundations, then policies, then preview-only types, then unknown types;
    /// by display name and id within a type.
    pub items: Vec<ScopedItem>,
    /// Counts for `status.scope`.
    pub status: ScopeStatus,
    /// Whether foundations are restored or only mapped.
    pub foundations: IncludeOrSkip,
    /// Whether assignments are restored.
    pub assignments: IncludeOrSkip,
    /// The backup's digest.
    pub source_digest: String,
    /// The tenant the backup was captured from, when it records it.
    pub source_tenant: Option<String>,
    /// Names of the source tenant's referenced objects, from the whole backup.
    pub source_names: IdNames,
    /// Items of opt-in types (Conditional Access) the scope selected but the run did not opt in
    /// to, as `type/display name`: left out, each reported by a finding.
    pub not_opted_in: Vec<String>,
    /// How Conditional Access policies are written (`spec.scope.optIn.conditionalAccessState`).
    pub conditional_access_state: ConditionalAccessState,
}

impl ResolvedScope {
    /// Whether the backup was captured from `tenant_id` (unknown origin counts as another tenant).
    pub fn same_tenant(&self, tenant_id: &str) -> bool {
        self.source_tenant.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(tenant_id))
    }

    /// Whether assignments are part of the restore.
    pub fn with_assignments(&self) -> bool {
        self.assignments == IncludeOrSkip::Include
    }
}

/// One compiled selector.
struct Selector {
    types: BTreeSet<String>,
    platforms: BTreeSet<String>,
    exact: BTreeSet<String>,
    exact_names: BTreeSet<String>,
    globs: Vec<GlobMatcher>,
}

impl Selector {
    fn compile(selector: &ScopeSelector, backup: &BackupSet) -> Result<Selector, ScopeError> {
        let mut types = BTreeSet::new();
        for name in &selector.types {
            if item_type(name).is_none() && !backup.items.iter().any(|i| &i.item_type == name) {
                let known = ITEM_TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ");
                return Err(ScopeError::UnknownType { name: name.clone(), known });
            }
            types.insert(name.clone());
        }
        let mut platforms = BTreeSet::new();
        for name in &selector.platforms {
            let Some(known) = PLATFORMS.iter().find(|p| p.eq_ignore_ascii_case(name)) else {
                return Err(ScopeError::UnknownPlatform { name: name.clone(), known: PLATFORMS.join(", ") });
            };
            platforms.insert(known.to_ascii_lowercase());
        }
        let mut exact = BTreeSet::new();
        let mut exact_names = BTreeSet::new();
        let mut globs = Vec::new();
        for entry in &selector.items {
            if entry.contains(['*', '?']) {
                let glob = GlobBuilder::new(entry)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| ScopeError::InvalidPattern { pattern: entry.clone(), reason: e.kind().to_string() })?;
                globs.push(glob.compile_matcher());
            } else {
                exact.insert(entry.clone());
                exact_names.insert(entry.to_lowercase());
            }
        }
        Ok(Selector { types, platforms, exact, exact_names, globs })
    }

    fn is_empty(&self) -> bool {
        self.types.is_empty() && self.platforms.is_empty() && self.exact.is_empty() && self.globs.is_empty()
    }

    /// An item matches when it matches any entry of any list.
    fn matches(&self, item: &BackupItem) -> bool {
        self.types.contains(&item.item_type)
            || self.platforms.contains(&item.platform.to_ascii_lowercase())
            || self.exact.contains(&item.id)
            || self.exact_names.contains(&item.display_name.to_lowercase())
            || self.globs.iter().any(|g| g.is_match(&item.display_name))
    }
}

/// Restore order of an item: its type's catalogue order (unknown types last), then name and id.
fn order_key(item: &ScopedItem) -> (u16, String, String, String) {
    let rank = item.item_type.map_or(u16::MAX, |t| u16::from(t.order));
    (rank, item.item.item_type.clone(), item.item.display_name.clone(), item.item.id.clone())
}

/// Resolves `spec` over `backup`. Errors are permanent (the spec is wrong).
pub fn resolve_scope(spec: &ScopeSpec, backup: &BackupSet) -> Result<ResolvedScope, ScopeError> {
    let choice = choose(spec, backup)?;
    let names = IdNames::from_backup(&backup.items);
    let items = backup.items.iter().zip(&choice.picked).filter(|(_, picked)| **picked).map(|(item, _)| item.clone());
    Ok(resolved(spec, backup, names, items.collect(), choice.not_opted_in))
}

/// [`resolve_scope`] that moves the backup's items into the scope instead of copying them (a run
/// holds its backup and its scope at once: one copy of each item, not two). On success
/// `backup.items` is left empty (its digest and origin stay); on an error nothing has moved.
pub fn resolve_scope_taking(spec: &ScopeSpec, backup: &mut BackupSet) -> Result<ResolvedScope, ScopeError> {
    let choice = choose(spec, backup)?;
    let names = IdNames::from_backup(&backup.items);
    let all = std::mem::take(&mut backup.items);
    let items = all.into_iter().zip(choice.picked).filter(|(_, picked)| *picked).map(|(item, _)| item);
    Ok(resolved(spec, backup, names, items.collect(), choice.not_opted_in))
}

/// Which of the backup's items a scope takes.
struct Choice {
    /// One flag per backup item, in the backup's order.
    picked: Vec<bool>,
    /// Items of opt-in types left out, as `type/display name`.
    not_opted_in: Vec<String>,
}

/// Checks `spec` and picks the backup's items it selects.
fn choose(spec: &ScopeSpec, backup: &BackupSet) -> Result<Choice, ScopeError> {
    let include = spec.include.as_ref().map(|s| Selector::compile(s, backup)).transpose()?;
    let exclude = spec.exclude.as_ref().map(|s| Selector::compile(s, backup)).transpose()?;
    if spec.mode == ScopeMode::Selected && include.as_ref().is_none_or(Selector::is_empty) {
        return Err(ScopeError::SelectedWithoutInclude);
    }
    let opted_in: BTreeSet<&str> = spec.opt_in.iter().flat_map(|o| o.types.iter()).map(String::as_str).collect();
    if let Some(name) = opted_in.iter().find(|t| !crate::engine::conditional_access::requires_opt_in(t)) {
        let known = crate::engine::conditional_access::OPT_IN_TYPES.join(", ");
        return Err(ScopeError::UnknownType { name: format!("{name} (in optIn.types)"), known });
    }
    let mut not_opted_in = Vec::new();
    let picked = backup
        .items
        .iter()
        .map(|item| {
            let selected = match spec.mode {
                ScopeMode::All => true,
                ScopeMode::Selected => include.as_ref().is_some_and(|s| s.matches(item)),
            };
            if !selected || exclude.as_ref().is_some_and(|s| s.matches(item)) {
                return false;
            }
            if crate::engine::conditional_access::requires_opt_in(&item.item_type)
                && !opted_in.contains(item.item_type.as_str())
            {
                not_opted_in.push(format!("{}/{}", item.item_type, item.display_name));
                return false;
            }
            let foundation = item_type(&item.item_type).is_some_and(|t| t.class == TypeClass::Foundation);
            spec.foundations == IncludeOrSkip::Include || !foundation
        })
        .collect();
    Ok(Choice { picked, not_opted_in })
}

/// The scope of the items picked, in restore order, with its counts.
fn resolved(
    spec: &ScopeSpec,
    backup: &BackupSet,
    source_names: IdNames,
    picked: Vec<BackupItem>,
    not_opted_in: Vec<String>,
) -> ResolvedScope {
    let mut items: Vec<ScopedItem> =
        picked.into_iter().map(|item| ScopedItem { item_type: item_type(&item.item_type), item }).collect();
    items.sort_by_cached_key(order_key);

    let mut status = ScopeStatus::default();
    for scoped in &items {
        *status.by_type.entry(scoped.item.item_type.clone()).or_default() += 1;
        *status.by_platform.entry(scoped.item.platform.clone()).or_default() += 1;
        match scoped.class() {
            Some(TypeClass::Foundation) => status.foundations += 1,
            Some(TypeClass::Policy) => status.policies += 1,
            Some(TypeClass::PreviewOnly) => status.preview_only += 1,
            None => {}
        }
        status.total += 1;
    }
    ResolvedScope {
        items,
        status,
        foundations: spec.foundations,
        assignments: spec.assignments,
        source_digest: backup.digest.clone(),
        source_tenant: backup.tenant.as_ref().map(|t| t.id.clone()),
        source_names,
        not_opted_in,
        conditional_access_state: spec.opt_in.as_ref().map(|o| o.conditional_access_state).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(t: &str, id: &str, name: &str, platform: &str) -> BackupItem {
        BackupItem {
            item_type: t.into(),
            id: id.into(),
            display_name: name.into(),
            platform: platform.into(),
            resource: json!({"displayName": name}),
            assignments: None,
            sub_resources: Default::default(),
            references: Default::default(),
        }
    }

    fn backup() -> BackupSet {
        BackupSet {
            tenant: None,
            captured_at: None,
            digest: "sha256:00".into(),
            items: vec![
                item("deviceConfiguration", "d1", "Win - Baseline", "windows"),
                item("deviceConfiguration", "d2", "iOS - Wifi", "iOS"),
                item("compliancePolicy", "c1", "Win - Compliance", "windows"),
                item("scopeTag", "7", "Paris", "any"),
                item("administrativeTemplate", "a1", "Edge", "windows"),
                item("mysteryType", "m1", "Odd", "any"),
            ],
        }
    }

    fn keys(scope: &ResolvedScope) -> Vec<String> {
        scope.items.iter().map(ScopedItem::key).collect()
    }

    #[test]
    fn mode_all_takes_everything_in_restore_order_and_counts_it() {
        let scope = resolve_scope(&ScopeSpec::default(), &backup()).unwrap();
        assert_eq!(
            keys(&scope),
            [
                "scopeTag/7",
                "deviceConfiguration/d1",
                "deviceConfiguration/d2",
                "compliancePolicy/c1",
                "administrativeTemplate/a1",
                "mysteryType/m1"
            ]
        );
        assert_eq!(scope.status.total, 6);
        assert_eq!((scope.status.foundations, scope.status.policies, scope.status.preview_only), (1, 4, 0));
        assert_eq!(scope.status.by_platform["windows"], 3);
        assert_eq!(scope.status.by_type["deviceConfiguration"], 2);
    }

    #[test]
    fn selected_mode_matches_any_entry_and_exclude_wins() {
        let spec = ScopeSpec {
            mode: ScopeMode::Selected,
            include: Some(ScopeSelector { items: vec!["win - *".into(), "d2".into()], ..Default::default() }),
            exclude: Some(ScopeSelector { types: vec!["compliancePolicy".into()], ..Default::default() }),
            ..Default::default()
        };
        let scope = resolve_scope(&spec, &backup()).unwrap();
        assert_eq!(keys(&scope), ["deviceConfiguration/d1", "deviceConfiguration/d2"]);
    }

    #[test]
    fn exact_display_names_and_platforms_select_too() {
        let spec = ScopeSpec {
            mode: ScopeMode::Selected,
            include: Some(ScopeSelector {
                items: vec!["Edge".into()],
                platforms: vec!["IOS".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let scope = resolve_scope(&spec, &backup()).unwrap();
        assert_eq!(keys(&scope), ["deviceConfiguration/d2", "administrativeTemplate/a1"]);
    }

    #[test]
    fn skipped_foundations_leave_the_scope() {
        let spec = ScopeSpec { foundations: IncludeOrSkip::Skip, ..Default::default() };
        let scope = resolve_scope(&spec, &backup()).unwrap();
        assert!(!keys(&scope).contains(&"scopeTag/7".to_string()));
        assert_eq!(scope.status.foundations, 0);
        assert_eq!(scope.source_names.name(crate::engine::mapping::RefKind::ScopeTag, "7"), Some("Paris"));
    }

    #[test]
    fn bad_selectors_are_permanent_errors() {
        let with =
            |sel: ScopeSelector| ScopeSpec { mode: ScopeMode::Selected, include: Some(sel), ..Default::default() };
        let err = resolve_scope(&with(ScopeSelector { items: vec!["Win[*".into()], ..Default::default() }), &backup());
        assert!(matches!(err, Err(ScopeError::InvalidPattern { .. })), "{err:?}");
        let err = resolve_scope(&with(ScopeSelector { types: vec!["nope".into()], ..Default::default() }), &backup());
        assert!(matches!(err, Err(ScopeError::UnknownType { .. })));
        let err =
            resolve_scope(&with(ScopeSelector { platforms: vec!["beos".into()], ..Default::default() }), &backup());
        assert!(matches!(err, Err(ScopeError::UnknownPlatform { .. })));
        let err = resolve_scope(&with(ScopeSelector::default()), &backup());
        assert_eq!(err, Err(ScopeError::SelectedWithoutInclude));
    }

    #[test]
    fn a_scope_taking_the_backups_items_is_the_scope_resolved_from_a_copy() {
        let selected = ScopeSpec {
            mode: ScopeMode::Selected,
            include: Some(ScopeSelector { items: vec!["win - *".into(), "Paris".into()], ..Default::default() }),
            exclude: Some(ScopeSelector { types: vec!["compliancePolicy".into()], ..Default::default() }),
            foundations: IncludeOrSkip::Skip,
            ..Default::default()
        };
        for spec in [ScopeSpec::default(), selected] {
            let mut taken = backup();
            let scope = resolve_scope_taking(&spec, &mut taken).unwrap();
            assert_eq!(scope, resolve_scope(&spec, &backup()).unwrap());
            assert!(taken.items.is_empty(), "the items moved into the scope");
            assert_eq!(taken.digest, backup().digest);
        }
    }

    #[test]
    fn a_scope_error_takes_nothing_from_the_backup() {
        let spec = ScopeSpec { mode: ScopeMode::Selected, ..Default::default() };
        let mut kept = backup();
        assert_eq!(resolve_scope_taking(&spec, &mut kept), Err(ScopeError::SelectedWithoutInclude));
        assert_eq!(kept.items, backup().items);
    }
}
