//! Enrollment-configuration priorities: the order a restore gives each priority list of the target,
//! computed in the preview from the backup and the target's listing, and the model of `setPriority`.
//!
//! Per list (see [`enrollment::priority_list`]): the target's configurations that are not part of the
//! restore keep their relative order; the restored ones take their backup position (1-based,
//! clamped to the list's end), placed in ascending backup priority; the planned priority of each is
//! its position in that list. The built-in defaults (priority 0) are never in a list nor reordered.
//! The planned number is put into the item's desired and current documents, so the preview diff,
//! the changed fields and the digest show it, and the plan sends it as a `setPriority` step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::ExistingObjects;
use crate::catalog::ItemType;
use crate::engine::analysis::{ItemAnalysis, PlannedAction};
use crate::engine::diff::{changed_paths, unified_diff};
use crate::engine::enrollment::{self, PRIORITY};
use crate::engine::scope::ResolvedScope;

/// One configuration of the target's listing, as far as ordering goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedConfiguration {
    /// Its id in the target.
    pub id: String,
    /// The priority list it belongs to.
    pub list: String,
    /// Its priority (`None`: the listing did not say).
    pub priority: Option<i64>,
    /// One of the built-in defaults: never reordered.
    pub is_default: bool,
}

/// The ordering facts of the target's enrollment configurations listed by the snapshot.
pub fn listed(item_type: &ItemType, objects: &[Value]) -> Vec<ListedConfiguration> {
    objects
        .iter()
        .filter_map(|o| {
            Some(ListedConfiguration {
                id: o.get("id").and_then(Value::as_str)?.to_string(),
                list: enrollment::priority_list(item_type, o)?,
                priority: enrollment::priority(o),
                is_default: enrollment::is_default(item_type, o),
            })
        })
        .collect()
}

/// A restored configuration whose place differs from the backup's: its list in the target also
/// holds configurations the restore does not order, or its planned number differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorityAdjustment {
    /// The backup's priority.
    pub backup: i64,
    /// The priority the restore gives it in the target.
    pub planned: i64,
    /// How many configurations of the target's list the restore does not order (they keep their
    /// relative order and are renumbered around the restored ones).
    pub others: usize,
}

/// One restored configuration of a list.
struct Member {
    index: usize,
    backup: i64,
    key: String,
    target: Option<String>,
}

/// Whether the analysed item takes part in the ordering: a custom configuration the restore creates,
/// updates, or finds unchanged (existing objects only when they may be updated).
fn takes_part(item: &ItemAnalysis, existing: ExistingObjects) -> bool {
    let p = &item.preview;
    let ordered_action = match p.action {
        PlannedAction::Create => true,
        PlannedAction::Update | PlannedAction::Unchanged => existing == ExistingObjects::Update,
        _ => false,
    };
    ordered_action && !item.issues.default_enrollment && item.issues.unrestorable_secret.is_none()
}

/// Plans the priorities of the restored enrollment configurations in `items` (analysed from `scope`,
/// in the same order) against the target's `listed` configurations.
pub fn plan_priorities(
    items: &mut [ItemAnalysis],
    scope: &ResolvedScope,
    listed: &[ListedConfiguration],
    existing: ExistingObjects,
) {
    let mut lists: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for (index, (scoped, item)) in scope.items.iter().zip(items.iter_mut()).enumerate() {
        let Some(t) = scoped.item_type.filter(|t| enrollment::is_enrollment(t)) else {
            continue;
        };
        if !takes_part(item, existing) {
            continue;
        }
        let Some(list) = enrollment::priority_list(t, &scoped.item.resource) else {
            continue;
        };
        match enrollment::priority(&scoped.item.resource).filter(|p| *p > 0) {
            Some(backup) => lists.entry(list).or_default().push(Member {
                index,
                backup,
                key: item.preview.key.clone(),
                target: item.preview.target_id.clone(),
            }),
            None => item.issues.priority_not_in_backup = true,
        }
    }
    for (list, mut members) in lists {
        let ordered: BTreeSet<&str> = members.iter().filter_map(|m| m.target.as_deref()).collect();
        let mut others: Vec<&ListedConfiguration> =
            listed.iter().filter(|c| c.list == list && !c.is_default && !ordered.contains(c.id.as_str())).collect();
        others.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        members.sort_by(|a, b| (a.backup, &a.key).cmp(&(b.backup, &b.key)));
        let order = final_order(others.len(), members.iter().map(|m| m.backup));
        let current_of =
            |m: &Member| m.target.as_deref().and_then(|id| listed.iter().find(|c| c.id == id)).and_then(|c| c.priority);
        // A list with a new or moved configuration is reordered whole: every restored one is placed
        // again (two passes, see the plan), or a later move could shift one left out.
        let reordered = members.iter().zip(&order).any(|(m, planned)| current_of(m) != Some(*planned));
        for (member, planned) in members.iter().zip(order) {
            let item = &mut items[member.index];
            apply(item, planned, current_of(member));
            if reordered && item.preview.action == PlannedAction::Unchanged {
                item.preview.action = PlannedAction::Update;
                item.preview.reason = Some(format!(
                    "kept at priority {planned}: placed again while the other configurations of its list are reordered"
                ));
            }
            if planned != member.backup || !others.is_empty() {
                item.issues.priority_adjusted =
                    Some(PriorityAdjustment { backup: member.backup, planned, others: others.len() });
            }
        }
    }
}

/// The planned priorities of restored configurations with backup priorities `backups` (ascending)
/// in a list that also holds `others` configurations: each is inserted at its backup position,
/// clamped to the list's end, in ascending order.
pub fn final_order(others: usize, backups: impl IntoIterator<Item = i64>) -> Vec<i64> {
    // `None`: another configuration; `Some(i)`: the i-th restored one.
    let mut list: Vec<Option<usize>> = vec![None; others];
    let mut count = 0;
    for (i, backup) in backups.into_iter().enumerate() {
        let at = usize::try_from(backup.saturating_sub(1)).unwrap_or(0).min(list.len());
        list.insert(at, Some(i));
        count += 1;
    }
    let mut planned = vec![0; count];
    for (position, entry) in list.iter().enumerate() {
        if let Some(i) = entry {
            planned[*i] = i64::try_from(position + 1).unwrap_or(i64::MAX);
        }
    }
    planned
}

/// The passes of `setPriority` steps over a reordered list: every restored configuration is moved to
/// its planned priority in descending, then in ascending planned priority. Under the model of
/// [`move_to`] one pass does not always reach the planned order (an item still to be moved can sit
/// in front and shift the ones placed when it moves); the two passes do (checked on random lists:
/// `two_passes_reach_the_planned_order`).
pub const PASSES: [&str; 2] = ["descending", "ascending"];

/// Puts the planned priority into the item's desired document, the target's into its current one,
/// and updates the action, the changed fields and the diff when the priority alone differs.
fn apply(item: &mut ItemAnalysis, planned: i64, current: Option<i64>) {
    let p = &mut item.preview;
    if let Value::Object(desired) = Arc::make_mut(&mut p.desired) {
        desired.insert(PRIORITY.into(), json!(planned));
    }
    if let Some(Value::Object(now)) = p.current.as_mut().map(Arc::make_mut) {
        match current {
            Some(n) => now.insert(PRIORITY.into(), json!(n)),
            None => now.remove(PRIORITY),
        };
    }
    if p.action == PlannedAction::Unchanged && p.current.as_deref() != Some(&*p.desired) {
        p.action = PlannedAction::Update;
    }
    if p.action != PlannedAction::Unchanged {
        p.changed_fields = p.current.as_deref().map(|c| changed_paths(c, &p.desired)).unwrap_or_default();
        p.diff = unified_diff(p.current.as_deref(), &p.desired);
    }
}

/// `setPriority` as the simulator and the plan model it (the admin center's drag and drop: the
/// configuration moves to position `priority` of its list and the others shift so the list stays
/// 1..n; an assumption, Graph does not document it): the ids of `list` (in priority order) after
/// moving `id` to `priority`.
pub fn move_to(list: &[String], id: &str, priority: i64) -> Vec<String> {
    let mut moved: Vec<String> = list.iter().filter(|c| c.as_str() != id).cloned().collect();
    let at = usize::try_from(priority.saturating_sub(1)).unwrap_or(0).min(moved.len());
    moved.insert(at, id.to_string());
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_configurations_take_their_backup_positions_among_the_others() {
        assert_eq!(final_order(0, [1, 2, 3]), [1, 2, 3]);
        assert_eq!(final_order(2, [1, 3]), [1, 3], "others [X, Y] become [A, X, B, Y]");
        assert_eq!(final_order(0, [5]), [1], "clamped to the end of the list");
        assert_eq!(final_order(1, [2, 9]), [2, 3]);
    }

    /// The plan's two passes over every restored configuration reach the planned order from any
    /// starting order (a deterministic pseudo-random sweep of lists of up to 6 others and 7 restored).
    #[test]
    fn two_passes_reach_the_planned_order() {
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            usize::try_from(seed >> 33).unwrap() % bound
        };
        for _ in 0..3000 {
            let (others, restored) = (next(7), 1 + next(7));
            let mut current: Vec<String> =
                (0..others).map(|i| format!("o{i}")).chain((0..restored).map(|i| format!("r{i}"))).collect();
            for i in (1..current.len()).rev() {
                current.swap(i, next(i + 1));
            }
            let mut backups: Vec<i64> = (1..=i64::try_from(others + restored + 2).unwrap()).collect();
            for i in (1..backups.len()).rev() {
                backups.swap(i, next(i + 1));
            }
            let mut by_backup: Vec<(i64, String)> = (0..restored).map(|i| (backups[i], format!("r{i}"))).collect();
            by_backup.sort();
            let planned = final_order(others, by_backup.iter().map(|(b, _)| *b));
            let mut wanted: Vec<(i64, String)> =
                by_backup.iter().zip(&planned).map(|((_, id), p)| (*p, id.clone())).collect();
            let mut list = current.clone();
            for pass in PASSES {
                wanted.sort_by_key(|(p, _)| if pass == "descending" { -p } else { *p });
                for (p, id) in &wanted {
                    list = move_to(&list, id, *p);
                }
            }
            for (p, id) in &wanted {
                let at = list.iter().position(|c| c == id).unwrap();
                assert_eq!(i64::try_from(at + 1).unwrap(), *p, "from {current:?} to {wanted:?}: {list:?}");
            }
            let kept: Vec<&String> = list.iter().filter(|c| c.starts_with('o')).collect();
            let before: Vec<&String> = current.iter().filter(|c| c.starts_with('o')).collect();
            assert_eq!(kept, before, "the others keep their relative order");
        }
    }

    #[test]
    fn a_move_shifts_the_others_so_the_list_stays_one_to_n() {
        let list: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(move_to(&list, "c", 1), ["c", "a", "b"]);
        assert_eq!(move_to(&list, "a", 3), ["b", "c", "a"]);
        assert_eq!(move_to(&list, "b", 2), ["a", "b", "c"], "the same position again changes nothing");
    }

    /// An unchanged item whose current state is its desired state's allocation, as the analysis
    /// leaves it.
    fn shared_unchanged_item() -> ItemAnalysis {
        let desired = Arc::new(json!({"displayName": "A", "priority": 1}));
        ItemAnalysis {
            preview: crate::engine::analysis::ItemPreview {
                key: "deviceEnrollmentConfiguration/a".into(),
                item_type: "deviceEnrollmentConfiguration".into(),
                display_name: "A".into(),
                platform: "windows".into(),
                class: None,
                action: PlannedAction::Unchanged,
                reason: None,
                target_id: Some("t".into()),
                matches: Vec::new(),
                changed_fields: Vec::new(),
                current: Some(Arc::clone(&desired)),
                desired,
                references: Vec::new(),
                diff: String::new(),
            },
            issues: Default::default(),
            label: "deviceEnrollmentConfiguration/A".into(),
        }
    }

    #[test]
    fn a_priority_alone_that_differs_makes_an_unchanged_item_an_update_with_its_changed_field_and_diff() {
        let mut moved = shared_unchanged_item();
        apply(&mut moved, 2, Some(3));
        let p = &moved.preview;
        assert_eq!(p.action, PlannedAction::Update);
        assert_eq!(
            (p.desired[PRIORITY].as_i64(), p.current.as_ref().map(|c| c[PRIORITY].clone())),
            (Some(2), Some(json!(3)))
        );
        assert_eq!(p.changed_fields, [PRIORITY]);
        assert!(p.diff.contains("\"priority\": 3") && p.diff.contains("\"priority\": 2"), "{}", p.diff);

        let mut kept = shared_unchanged_item();
        apply(&mut kept, 2, Some(2));
        let p = &kept.preview;
        assert_eq!(p.action, PlannedAction::Unchanged);
        assert!(p.changed_fields.is_empty() && p.diff.is_empty(), "{p:?}");
        assert_eq!(p.current.as_deref(), Some(&*p.desired));
    }
}
