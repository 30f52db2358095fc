//! The Flux `healthCheckExprs` of deploy/flux/kustomization.yaml, evaluated by cel-python on
//! RestoreRun and IntuneTenant statuses built from the operator's own status types and condition
//! helpers: exactly one of inProgress / failed / current holds where the state is decided.

use std::io::Write;
use std::process::{Command, Stdio};

use restore_core::api::{IntuneTenantStatus, Phase, RestoreRunStatus};
use restore_core::conditions::{Condition, reasons, set_condition, types};
use serde_json::{Value, json};

fn cel_available() -> bool {
    if Command::new("python3").args(["-c", "import celpy, yaml"]).status().is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "cel-python missing in CI: scripts/install-test-deps.sh");
    eprintln!("SKIPPED: cel-python not installed (scripts/install-test-deps.sh)");
    false
}

/// [inProgress, failed, current] for each (kind, object).
fn evaluate(objects: &[(&str, Value)]) -> Vec<[bool; 3]> {
    let input: Vec<Value> = objects.iter().map(|(kind, object)| json!({"kind": kind, "object": object})).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/eval-flux-health.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(serde_json::to_vec(&input).unwrap().as_slice()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    results.iter().map(|r| [r["inProgress"] == true, r["failed"] == true, r["current"] == true]).collect()
}

fn conditions(list: Vec<Condition>) -> Vec<Condition> {
    let mut out = Vec::new();
    for c in list {
        set_condition(&mut out, c, 3, jiff::Timestamp::UNIX_EPOCH);
    }
    out
}

fn run(generation: i64, phase: Phase, list: Vec<Condition>) -> Value {
    let status = RestoreRunStatus {
        observed_generation: Some(3),
        phase: Some(phase),
        conditions: conditions(list),
        ..Default::default()
    };
    json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
           "metadata": {"name": "r", "namespace": "n", "generation": generation},
           "spec": {"tenantRef": {"name": "t"}}, "status": status})
}

fn tenant(generation: i64, list: Vec<Condition>) -> Value {
    let status = IntuneTenantStatus { observed_generation: Some(3), conditions: conditions(list), last_checked: None };
    json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "IntuneTenant",
           "metadata": {"name": "t", "namespace": "n", "generation": generation}, "status": status})
}

const IN_PROGRESS: [bool; 3] = [true, false, false];
const FAILED: [bool; 3] = [false, true, false];
const CURRENT: [bool; 3] = [false, false, true];

#[test]
fn restorerun_health_follows_kstatus_and_waits_for_humans_without_failing() {
    if !cel_available() {
        return;
    }
    let working = |reason: &str| {
        vec![Condition::no(types::READY, reason, "working"), Condition::yes(types::RECONCILING, reason, "working")]
    };
    let stalled = |reason: &str| {
        vec![Condition::no(types::READY, reason, "final"), Condition::yes(types::STALLED, reason, "final")]
    };
    let cases = [
        ("fresh run, nothing observed", json!({"metadata": {"generation": 1}, "status": {}}), IN_PROGRESS),
        ("previewing", run(3, Phase::Previewing, working(reasons::IN_PROGRESS)), IN_PROGRESS),
        (
            "spec edited, not yet observed",
            run(4, Phase::Previewed, vec![Condition::yes(types::READY, reasons::PREVIEW_READY, "ok")]),
            IN_PROGRESS,
        ),
        (
            "dry-run previewed",
            run(3, Phase::Previewed, vec![Condition::yes(types::READY, reasons::PREVIEW_READY, "ok")]),
            CURRENT,
        ),
        (
            "awaiting approval",
            run(
                3,
                Phase::AwaitingConfirmation,
                vec![Condition::no(types::READY, reasons::AWAITING_CONFIRMATION, "approve")],
            ),
            CURRENT,
        ),
        (
            "approval with a wrong digest",
            run(3, Phase::AwaitingConfirmation, vec![Condition::no(types::READY, reasons::DIGEST_MISMATCH, "fix it")]),
            CURRENT,
        ),
        ("executing", run(3, Phase::Executing, working(reasons::EXECUTING)), IN_PROGRESS),
        ("blocked by findings", run(3, Phase::Blocked, stalled(reasons::BLOCKERS_FOUND)), FAILED),
        ("failed", run(3, Phase::Failed, stalled(reasons::FAILED)), FAILED),
        ("partially succeeded", run(3, Phase::PartiallySucceeded, stalled(reasons::PARTIALLY_SUCCEEDED)), FAILED),
        (
            "succeeded",
            run(3, Phase::Succeeded, vec![Condition::yes(types::READY, reasons::SUCCEEDED, "done")]),
            CURRENT,
        ),
    ];
    let objects: Vec<(&str, Value)> = cases.iter().map(|(_, o, _)| ("RestoreRun", o.clone())).collect();
    for ((name, _, expected), got) in cases.iter().zip(evaluate(&objects)) {
        assert_eq!(&got, expected, "{name}: [inProgress, failed, current]");
    }
}

#[test]
fn intunetenant_ready_false_is_not_healthy() {
    if !cel_available() {
        return;
    }
    let cases = [
        ("not checked yet", json!({"metadata": {"generation": 1}, "status": {}}), IN_PROGRESS),
        ("verified", tenant(3, vec![Condition::yes(types::READY, reasons::CREDENTIALS_VERIFIED, "ok")]), CURRENT),
        (
            "verified, spec since edited",
            tenant(4, vec![Condition::yes(types::READY, reasons::CREDENTIALS_VERIFIED, "ok")]),
            IN_PROGRESS,
        ),
        (
            "authentication failed",
            tenant(
                3,
                vec![
                    Condition::no(types::READY, reasons::AUTHENTICATION_FAILED, "bad secret"),
                    Condition::yes(types::STALLED, reasons::AUTHENTICATION_FAILED, "bad secret"),
                ],
            ),
            FAILED,
        ),
        (
            "secret missing",
            tenant(
                3,
                vec![
                    Condition::no(types::READY, reasons::SECRET_NOT_FOUND, "no secret"),
                    Condition::yes(types::STALLED, reasons::SECRET_NOT_FOUND, "no secret"),
                ],
            ),
            FAILED,
        ),
        (
            "graph unreachable, retrying",
            tenant(3, vec![Condition::no(types::READY, reasons::GRAPH_UNAVAILABLE, "503")]),
            IN_PROGRESS,
        ),
    ];
    let objects: Vec<(&str, Value)> = cases.iter().map(|(_, o, _)| ("IntuneTenant", o.clone())).collect();
    for ((name, _, expected), got) in cases.iter().zip(evaluate(&objects)) {
        assert_eq!(&got, expected, "{name}: [inProgress, failed, current]");
    }
}
