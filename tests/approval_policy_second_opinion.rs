//! The chart's approval policy, decided twice on the same admission requests: by the emulator
//! (kube-cel + the cel crate) and by cel-python (`scripts/vap-second-opinion.py`, written apart
//! from the emulator). Every user × request × policy variant must get the same answer.

mod approval_support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use approval_support::*;
use kube_emulator::api::{Subresource, WriteParams};
use kube_emulator::auth::UserInfo;
use kube_emulator::rbac::Attributes;
use kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{Value, json};

const RUNS: [&str; 4] = ["requested-by-alice", "legacy", "from-git", "confirmed"];
const PEOPLE: [&Who; 6] = [&ALICE, &BOB, &MALLORY, &DAVE, &FLUX_APPLIER, &ARGO_ACTION];

fn run(name: &str, requested_by: Option<&str>) -> Value {
    let mut run = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": name, "namespace": RUNS_NAMESPACE},
        "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "backup"}}, "dryRun": true}});
    if let Some(user) = requested_by {
        run["metadata"]["annotations"] = json!({REQUESTED_BY: user});
    }
    run
}

fn confirmation(approved_by: &str) -> Value {
    json!({"reviewedImpact": true, "tenant": "Contoso", "previewDigest": "sha256:00", "approvedBy": approved_by})
}

/// An emulator with the CRDs, the runs that already exist, then the chart's policy and RBAC.
async fn emulator(four_eyes: bool) -> EmulatorHandle {
    let mut config = EmulatorConfig::default();
    config.initial_namespaces.push(RUNS_NAMESPACE.into());
    let emu = Emulator::start(config).await.expect("the emulator starts");
    emu.load_crds_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).expect("the CRDs load");
    let mut confirmed = run("confirmed", Some(ALICE.user));
    confirmed["spec"]["confirmation"] = confirmation(BOB.user);
    for object in
        [run("requested-by-alice", Some(ALICE.user)), run("legacy", None), run("from-git", Some(FLUX)), confirmed]
    {
        emu.create(object).expect("the existing runs are created before the policy");
    }
    emu.apply_yaml(&rendered_chart(four_eyes)).expect("the chart's policy and roles install");
    emu.apply_yaml(&namespace_bindings()).expect("the bindings install");
    emu.enforce_rbac(true);
    emu
}

struct Scenario {
    id: String,
    who: &'static Who,
    name: String,
    object: Value,
    old: Option<Value>,
}

fn other_than(who: &Who) -> &'static str {
    if who.user == BOB.user { ALICE.user } else { BOB.user }
}

fn scenarios(emu: &EmulatorHandle) -> Vec<Scenario> {
    let mut all = Vec::new();
    for who in PEOPLE {
        let me = who.user;
        let mut confirmed = run("new-confirmed", Some(me));
        confirmed["spec"]["confirmation"] = confirmation(me);
        let mut confirmed_by_other = run("new-confirmed-other", Some(me));
        confirmed_by_other["spec"]["confirmation"] = confirmation(other_than(who));
        let creates = [
            ("create-annotated-self", run("new-self", Some(me))),
            ("create-annotated-other", run("new-other", Some(other_than(who)))),
            ("create-unannotated", run("new-none", None)),
            ("create-confirmed-self", confirmed),
            ("create-confirmed-other", confirmed_by_other),
        ];
        for (case, object) in creates {
            let name = object["metadata"]["name"].as_str().unwrap().to_string();
            all.push(Scenario { id: format!("{case} by {me}"), who, name, object, old: None });
        }
        for name in RUNS {
            let old = emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some(RUNS_NAMESPACE), name).unwrap();
            let changed = |change: &dyn Fn(&mut Value)| {
                let mut object = old.clone();
                change(&mut object);
                object
            };
            let updates = [
                (
                    "approve-self",
                    changed(&|o| {
                        o["spec"]["dryRun"] = json!(false);
                        o["spec"]["confirmation"] = confirmation(me);
                    }),
                ),
                ("approve-other", changed(&|o| o["spec"]["confirmation"] = confirmation(other_than(who)))),
                ("annotate-self", changed(&|o| o["metadata"]["annotations"] = json!({REQUESTED_BY: me}))),
                (
                    "drop-annotations",
                    changed(&|o| {
                        o["metadata"].as_object_mut().unwrap().remove("annotations");
                    }),
                ),
                ("label-only", changed(&|o| o["metadata"]["labels"] = json!({"team": "a"}))),
            ];
            for (case, object) in updates {
                all.push(Scenario {
                    id: format!("{case} of {name} by {me}"),
                    who,
                    name: name.to_string(),
                    object,
                    old: Some(old.clone()),
                });
            }
        }
    }
    all
}

fn user_of(who: &Who) -> UserInfo {
    let groups: Vec<String> = who.groups.iter().map(|g| g.to_string()).collect();
    UserInfo::impersonated(who.user, &groups)
}

/// The emulator's decision: `Ok(())` or the denial message.
fn emulator_decision(emu: &EmulatorHandle, scenario: &Scenario) -> Result<(), String> {
    let core = emu.core();
    let scope = core.scope("tenantatlas.io", "v1alpha1", "restoreruns", Some(RUNS_NAMESPACE)).unwrap();
    let params = WriteParams {
        dry_run: true,
        user: Some(user_of(scenario.who)),
        default_manager: "second-opinion".into(),
        ..WriteParams::default()
    };
    let result = match &scenario.old {
        None => core.create(&scope, scenario.object.clone(), &params),
        Some(_) => core.update(&scope, &scenario.name, scenario.object.clone(), Subresource::Main, &params),
    };
    result.map(|_| ()).map_err(|e| e.message)
}

fn python_input(emu: &EmulatorHandle, policy: &Value, scenarios: &[Scenario]) -> Value {
    let items: Vec<Value> = scenarios
        .iter()
        .map(|s| {
            let user = user_of(s.who);
            let may_approve = emu
                .core()
                .authorize(
                    &user,
                    &Attributes::resource("approve", "tenantatlas.io", "restoreruns", RUNS_NAMESPACE, &s.name),
                )
                .allowed;
            let key = format!("approve tenantatlas.io/restoreruns {RUNS_NAMESPACE}/{}", s.name);
            json!({
                "id": s.id,
                "object": s.object,
                "oldObject": s.old.clone().unwrap_or(Value::Null),
                "request": {
                    "operation": if s.old.is_some() { "UPDATE" } else { "CREATE" },
                    "userInfo": user.to_json(),
                    "resource": {"group": "tenantatlas.io", "version": "v1alpha1", "resource": "restoreruns"},
                    "subResource": "", "name": s.name, "namespace": RUNS_NAMESPACE,
                },
                "authorizer": {key: may_approve},
            })
        })
        .collect();
    json!({"policy": policy, "scenarios": items})
}

fn python_decisions(input: &Value) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/vap-second-opinion.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cel-python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON decisions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_and_cel_python_decide_every_approval_request_alike() {
    if !python_modules_available(
        "the_emulator_and_cel_python_decide_every_approval_request_alike",
        "celpy, helm_python",
    ) {
        return;
    }
    let (mut compared, mut denied) = (0, 0);
    for four_eyes in [false, true] {
        let emu = emulator(four_eyes).await;
        let policy = emu
            .get(
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicy",
                None,
                "restore-operator-approval.tenantatlas.io",
            )
            .expect("the policy is installed");
        let scenarios = scenarios(&emu);
        let python = python_decisions(&python_input(&emu, &policy, &scenarios));
        assert_eq!(python.len(), scenarios.len());
        for (scenario, second) in scenarios.iter().zip(&python) {
            let ours = emulator_decision(&emu, scenario);
            let context = format!("four-eyes {four_eyes}, {}: emulator {ours:?}, cel-python {second}", scenario.id);
            assert_eq!(ours.is_ok(), second["allowed"].as_bool().unwrap(), "{context}");
            if let (Err(message), Some(expected)) = (&ours, second["message"].as_str()) {
                assert!(message.ends_with(&format!("denied request: {expected}")), "{context}");
            }
            assert!(second["error"].is_null(), "no evaluation error is expected: {context}");
            compared += 1;
            denied += usize::from(ours.is_err());
        }
    }
    println!("{compared} admission requests decided alike by the emulator and cel-python ({denied} denied)");
    assert!(denied > 0 && denied < compared, "the suite exercises both answers");
}
