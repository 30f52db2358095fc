//! History retention (`--history-limit`): deletes RestoreRuns that finished longer ago than the
//! admin-set limit; their report ConfigMaps follow through owner-reference garbage collection.
//!
//! Only RestoreRuns are selected and deleted: audit records and any other object not owned by a
//! run are never touched. Runs that a GitOps tool manages are kept (deleting them would make
//! Flux or Argo CD create them again); remove them from Git instead.

use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PropagationPolicy};
use kube::{Client, ResourceExt};
use restore_core::api::Phase;
use restore_core::conditions::{find, parse_time, types};
use tokio_util::sync::CancellationToken;

use crate::kube::RestoreRun;

/// How often finished runs are looked for.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Labels and annotations that mark an object as applied by a GitOps tool.
const GITOPS_MARKERS: [&str; 4] = [
    "kustomize.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/name",
    "argocd.argoproj.io/instance",
    "argocd.argoproj.io/tracking-id",
];

/// A `--history-limit` value that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("--history-limit {0:?}: give a duration such as 720h, 30d or 90d12h (0s keeps runs forever)")]
pub struct HistoryLimitError(String);

/// Parses `30d`, `720h`, `1d12h`, `90m`, `3600s`; `0s` or `0` (zero) means "keep forever".
pub fn parse_history_limit(text: &str) -> Result<Duration, HistoryLimitError> {
    let invalid = || HistoryLimitError(text.to_string());
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let (mut total, mut number, mut units_seen) = (0u64, String::new(), String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        // Units in order, each once (d, h, m, s), each after a number.
        if number.is_empty() || units_seen.contains(c) || units_seen.chars().any(|u| "dhms".find(u) > "dhms".find(c)) {
            return Err(invalid());
        }
        let n: u64 = number.parse().map_err(|_| invalid())?;
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(invalid)?;
        units_seen.push(c);
        number.clear();
    }
    if !number.is_empty() || units_seen.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

/// When a run reached its terminal phase: `status.execution.finishedAt`, else the last
/// transition of its `Ready` condition. `None` for runs that are not finished.
pub fn finished_at(run: &RestoreRun) -> Option<Timestamp> {
    let status = run.status.as_ref()?;
    if !status.phase.is_some_and(Phase::is_terminal) {
        return None;
    }
    let from_execution = status.execution.as_ref().and_then(|e| e.finished_at.as_deref()).and_then(parse_time);
    from_execution.or_else(|| find(&status.conditions, types::READY).and_then(|c| parse_time(&c.last_transition_time)))
}

/// Whether a GitOps tool applied this run (it would re-create a deleted run).
pub fn managed_by_gitops(run: &RestoreRun) -> bool {
    GITOPS_MARKERS.iter().any(|key| run.labels().contains_key(*key) || run.annotations().contains_key(*key))
}

/// Whether `run` is due for deletion at `now` under `limit`.
pub fn expired(run: &RestoreRun, limit: Duration, now: Timestamp) -> bool {
    let Some(finished) = finished_at(run) else { return false };
    let Ok(age) = Duration::try_from(now.duration_since(finished)) else { return false };
    age >= limit && !managed_by_gitops(run)
}

/// Deletes every run of `runs` that is [`expired`]; returns `namespace/name` of each deleted run.
/// Report ConfigMaps are owned by their run and go with it (background propagation).
pub async fn sweep(runs: &Api<RestoreRun>, limit: Duration, now: Timestamp) -> Result<Vec<String>, kube::Error> {
    let mut deleted = Vec::new();
    let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() };
    for run in runs.list(&ListParams::default()).await? {
        if !expired(&run, limit, now) {
            continue;
        }
        let namespace = run.namespace().unwrap_or_default();
        let api: Api<RestoreRun> = Api::namespaced(runs.clone().into_client(), &namespace);
        match api.delete(&run.name_any(), &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e),
        }
        tracing::info!(run = %run.name_any(), namespace = %namespace, "deleted a finished RestoreRun past --history-limit");
        deleted.push(format!("{namespace}/{}", run.name_any()));
    }
    Ok(deleted)
}

/// Sweeps every [`SWEEP_INTERVAL`] until `stop` (the leader's controllers stopping).
pub async fn run_periodically(client: Client, namespace: Option<String>, limit: Duration, stop: CancellationToken) {
    let runs: Api<RestoreRun> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    loop {
        if let Err(e) = sweep(&runs, limit, Timestamp::now()).await {
            tracing::warn!(error = %e, "history retention sweep failed; retrying at the next interval");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_limits_parse_in_days_hours_minutes_seconds() {
        assert_eq!(parse_history_limit("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_history_limit("720h").unwrap(), Duration::from_secs(720 * 3_600));
        assert_eq!(parse_history_limit("1d12h30m").unwrap(), Duration::from_secs(86_400 + 12 * 3_600 + 1_800));
        assert_eq!(parse_history_limit("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_history_limit("0").unwrap(), Duration::ZERO);
        for bad in ["", "h", "30", "12h1d", "1h1h", "-1h", "3w", "99999999999999999999d"] {
            assert!(parse_history_limit(bad).is_err(), "{bad:?} accepted");
        }
    }
}
