//! Conditional Access policies: restored only when a run opts in, created report-only unless the run
//! asks otherwise, groups / users / named locations of their conditions mapped by name, and the rule
//! that blocks a restore changing the state of a policy that governs the restore's own sign-in.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::api::ConditionalAccessState;
use crate::backup::BackupItem;
use crate::engine::mapping::{RefKind, Rewrite, collect_item_refs, collect_refs};
use crate::engine::scope::ResolvedScope;
use crate::engine::snapshot::{TenantSnapshot, group_by_id_path, group_by_name_path};
use crate::tenant::{TenantError, TenantPort};

/// The catalogue type of Conditional Access policies.
pub const CONDITIONAL_ACCESS: &str = "conditionalAccessPolicy";
/// Types a run restores only when `spec.scope.optIn.types` names them: `mode: all` never includes them.
pub const OPT_IN_TYPES: &[&str] = &[CONDITIONAL_ACCESS];
/// The report-only state (`conditionalAccessPolicyState` in the published model).
pub const REPORT_ONLY: &str = "enabledForReportingButNotEnforced";
/// The collection of named locations the conditions reference.
pub const NAMED_LOCATIONS: &str = "identity/conditionalAccess/namedLocations";

/// Values of the user lists that are not object ids.
const USER_KEYWORDS: &[&str] = &["All", "None", "GuestsOrExternalUsers"];
/// Values of the location lists that are not object ids (the zero GUID, the MFA trusted IPs, is
/// not a reference either).
const LOCATION_KEYWORDS: &[&str] = &["All", "AllTrusted"];

/// Whether a run restores items of `type_name` only when it opts in.
pub fn requires_opt_in(type_name: &str) -> bool {
    OPT_IN_TYPES.contains(&type_name)
}

/// The item as the restore writes it, when the run's state option changes it: with `reportOnly`
/// (the default) a created policy is report-only (a disabled one stays disabled) and an update
/// leaves the tenant's state as it is (the state is not written). `None`: written as backed up.
pub fn written_item(scope: &ResolvedScope, item: &BackupItem, creating: bool) -> Option<BackupItem> {
    if item.item_type != CONDITIONAL_ACCESS || scope.conditional_access_state == ConditionalAccessState::FromBackup {
        return None;
    }
    let mut item = item.clone();
    let resource = item.resource.as_object_mut()?;
    if !creating {
        resource.remove("state");
    } else if resource.get("state").and_then(Value::as_str) != Some("disabled") {
        resource.insert("state".into(), Value::String(REPORT_ONLY.into()));
    }
    Some(item)
}

/// Visits the references of a Conditional Access policy's conditions: groups and users
/// (`conditions.users`) and named locations (`conditions.locations`); keywords (`All`, …) and role
/// template ids (the same in every tenant) are not references.
pub(crate) fn rewrite_condition_refs(doc: &mut Value, f: &mut impl FnMut(RefKind, &str) -> Rewrite) {
    let Some(conditions) = doc.get_mut("conditions").filter(|c| c.is_object()) else { return };
    if let Some(users) = conditions.get_mut("users") {
        for key in ["includeGroups", "excludeGroups"] {
            rewrite_ids(users, key, RefKind::Group, &[], f);
        }
        for key in ["includeUsers", "excludeUsers"] {
            rewrite_ids(users, key, RefKind::User, USER_KEYWORDS, f);
        }
    }
    if let Some(locations) = conditions.get_mut("locations") {
        for key in ["includeLocations", "excludeLocations"] {
            rewrite_ids(locations, key, RefKind::NamedLocation, LOCATION_KEYWORDS, f);
        }
    }
}

/// Rewrites the ids of one list; an id that maps to nothing keeps its place (the preview reports
/// it as a blocker: a condition is never dropped).
fn rewrite_ids(
    obj: &mut Value,
    key: &str,
    kind: RefKind,
    keywords: &[&str],
    f: &mut impl FnMut(RefKind, &str) -> Rewrite,
) {
    let Some(Value::Array(ids)) = obj.get_mut(key) else { return };
    for slot in ids {
        let Some(id) = slot.as_str().filter(|s| is_condition_reference(s, keywords)) else { continue };
        if let Rewrite::Replace(new) = f(kind, id) {
            *slot = Value::String(new);
        }
    }
}

fn is_condition_reference(id: &str, keywords: &[&str]) -> bool {
    !id.is_empty() && id != crate::engine::mapping::ZERO_GUID && !keywords.contains(&id)
}

/// Why a policy governs the restore's own sign-in, if it does. The rule (docs/intune-types.md,
/// docs/safety.md): the restore signs in as an app (a service principal) on behalf of admins, so a
/// policy governs that sign-in when it applies to service principals
/// (`conditions.clientApplications.includeServicePrincipals` not empty: workload-identity policies,
/// `ServicePrincipalsInMyTenant` or listed ones), or when it applies to all users and all cloud
/// apps and grants access only through `block`, `mfa` or an authentication strength (the policy that
/// locks every admin out, the one who runs the restore included).
pub fn governs_own_sign_in(policy: &Value) -> Option<String> {
    let conditions = policy.get("conditions")?;
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    };
    let principals = list(conditions.pointer("/clientApplications/includeServicePrincipals"));
    if !principals.is_empty() {
        return Some(format!("it applies to service principals ({})", principals.join(", ")));
    }
    let all_users = list(conditions.pointer("/users/includeUsers")).iter().any(|u| u == "All");
    let all_apps = list(conditions.pointer("/applications/includeApplications")).iter().any(|a| a == "All");
    let grant = policy.get("grantControls");
    let controls = list(grant.and_then(|g| g.get("builtInControls")));
    let strength = grant.and_then(|g| g.get("authenticationStrength")).is_some_and(|s| !s.is_null());
    let gated = controls.iter().any(|c| c == "block" || c == "mfa") || strength;
    (all_users && all_apps && gated)
        .then(|| "it applies to all users and all cloud apps with block, MFA or an authentication strength".into())
}

/// The state a restore writes for a policy (`None`: the state is not written).
pub fn written_state(desired: &Value) -> Option<&str> {
    desired.get("state").and_then(Value::as_str)
}

/// Reads what mapping the scope's Conditional Access policies needs from the target: its named
/// locations, the groups and users the backup names, and the names of the groups and users the
/// matched live policies hold. Nothing is read when no policy is in scope.
pub async fn read_targets<T: TenantPort>(
    port: &T,
    scope: &ResolvedScope,
    snap: &mut TenantSnapshot,
) -> Result<(), TenantError> {
    let policies: Vec<_> = scope.items.iter().filter(|i| i.item.item_type == CONDITIONAL_ACCESS).collect();
    if policies.is_empty() {
        return Ok(());
    }
    for location in port.list(NAMED_LOCATIONS).await? {
        if let (Some(id), Some(name)) = (text(&location, "id"), text(&location, "displayName")) {
            snap.maps.add(RefKind::NamedLocation, &id, &name);
        }
    }
    let mut by_name: BTreeSet<(RefKind, String)> = BTreeSet::new();
    for scoped in &policies {
        for (kind, id) in collect_item_refs(&scoped.item, false) {
            if let (RefKind::Group | RefKind::User, Some(name)) = (kind, scope.source_names.name(kind, &id)) {
                by_name.insert((kind, name.to_string()));
            }
        }
    }
    let by_name: Vec<(RefKind, String)> = by_name.into_iter().collect();
    let paths: Vec<String> = by_name.iter().map(|(kind, name)| by_name_path(*kind, name)).collect();
    if !paths.is_empty() {
        let pages = port.get_many(&paths).await?;
        snap.stats.record_batch(paths.len());
        for ((kind, _), page) in by_name.iter().zip(pages) {
            let page = page?.unwrap_or(Value::Null);
            for found in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(id), Some(name)) = (text(found, "id"), text(found, "displayName")) {
                    snap.maps.add(*kind, &id, &name);
                }
            }
        }
    }
    let known = snap.maps.id_names();
    let unknown: Vec<(RefKind, String)> = policies
        .iter()
        .filter_map(|p| snap.live.get(&p.key()))
        .flat_map(collect_refs)
        .filter(|(kind, id)| matches!(kind, RefKind::Group | RefKind::User) && known.name(*kind, id).is_none())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unknown.is_empty() {
        let paths: Vec<String> = unknown.iter().map(|(kind, id)| by_id_path(*kind, id)).collect();
        let results = port.get_many(&paths).await?;
        snap.stats.record_batch(paths.len());
        for ((kind, id), result) in unknown.iter().zip(results) {
            if let Some(name) = result?.as_ref().and_then(|o| text(o, "displayName")) {
                snap.maps.add(*kind, id, &name);
            }
        }
    }
    Ok(())
}

fn by_name_path(kind: RefKind, name: &str) -> String {
    match kind {
        RefKind::User => group_by_name_path(name).replacen("groups?", "users?", 1),
        _ => group_by_name_path(name),
    }
}

fn by_id_path(kind: RefKind, id: &str) -> String {
    match kind {
        RefKind::User => group_by_id_path(id).replacen("groups/", "users/", 1),
        _ => group_by_id_path(id),
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_policy_governs_the_restores_sign_in_when_it_targets_service_principals_or_locks_everyone() {
        let workload = json!({"conditions": {"clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}}});
        assert!(governs_own_sign_in(&workload).is_some());
        let everyone_mfa = json!({"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}});
        assert!(governs_own_sign_in(&everyone_mfa).is_some());
        let pilot_mfa = json!({"conditions": {"users": {"includeGroups": ["g"]}, "applications": {"includeApplications": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}});
        assert!(governs_own_sign_in(&pilot_mfa).is_none());
        let everyone_terms = json!({"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]}});
        assert!(governs_own_sign_in(&everyone_terms).is_none());
    }

    #[test]
    fn condition_references_skip_keywords_and_role_ids() {
        let doc = json!({"conditions": {
            "users": {"includeUsers": ["All", "u1"], "excludeGroups": ["g1"], "includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted", "l1", "00000000-0000-0000-0000-000000000000"]}}});
        let refs = collect_refs(&doc);
        assert_eq!(
            refs,
            [
                (RefKind::Group, "g1".to_string()),
                (RefKind::NamedLocation, "l1".to_string()),
                (RefKind::User, "u1".to_string())
            ]
        );
    }
}
