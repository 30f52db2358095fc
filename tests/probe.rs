//! `restore-operator probe`: read-only against graph-sim, a transcript without tenant data, and
//! every shared transcript (tests/probe-transcripts/, taken on real tenants or on graph-sim)
//! replayed against graph-sim with no difference in behaviour.
//! Regenerate graph-sim's own transcript with `BLESS_PROBE=1 cargo test --test probe`.

mod sim_support;

use std::path::{Path, PathBuf};

use restore_operator::cli::probe::{Transcript, probe};
use restore_operator::kube::IntuneTenant;
use sim_support::*;

fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe-transcripts")
}

#[tokio::test]
async fn every_shared_transcript_replays_against_graph_sim_without_difference() {
    let (_sim, _tenant, client, _backup) = backed_up(9).await;
    let here = probe(&client, "graph-sim").await.unwrap();
    let own = transcripts_dir().join("graph-sim.json");
    if std::env::var("BLESS_PROBE").as_deref() == Ok("1") {
        std::fs::write(&own, serde_json::to_string_pretty(&here).unwrap() + "\n").unwrap();
    }
    let mut replayed = 0;
    for entry in std::fs::read_dir(transcripts_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let shared: Transcript = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut differences = shared.differences(&here);
        differences.extend(here.differences(&shared).into_iter().map(|d| format!("(graph-sim side) {d}")));
        assert_eq!(differences, Vec::<String>::new(), "{} differs from graph-sim", path.display());
        replayed += 1;
    }
    assert!(replayed >= 1, "graph-sim's own transcript is checked in");
}

#[tokio::test]
async fn the_probe_command_is_read_only_and_its_transcript_holds_no_tenant_data() {
    let (sim, tenant, _client, _backup) = backed_up(9).await;
    let dir = tempfile::tempdir().unwrap();
    let mut object = IntuneTenant::new("contoso", tenant.spec(&sim, "graph-app"));
    object.metadata.namespace = Some(NAMESPACE.into());
    let manifest = dir.path().join("tenant.yaml");
    std::fs::write(&manifest, serde_yaml::to_string(&object).unwrap()).unwrap();
    let output_path = dir.path().join("transcript.json");
    sim.clear_request_log();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_restore-operator"))
        .arg("probe")
        .arg("--tenant")
        .arg(&manifest)
        .arg("--client-secret-env")
        .arg("PROBE_SECRET")
        .arg("-o")
        .arg(&output_path)
        .env("PROBE_SECRET", tenant.secret.expose_secret())
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let log = sim.request_log();
    let api: Vec<_> = log.iter().filter(|r| !r.path.ends_with("oauth2/v2.0/token")).collect();
    assert!(!api.is_empty());
    for request in &api {
        let read = request.method == "GET" || (request.method == "POST" && request.path == "$batch");
        assert!(read, "{} {} is not a read", request.method, request.path);
    }
    assert_eq!(sim.applied_write_count(), 0, "nothing was written");

    let text = std::fs::read_to_string(&output_path).unwrap();
    let transcript: Transcript = serde_json::from_str(&text).unwrap();
    assert_eq!(transcript.target, "graph-sim");
    for secret_or_name in
        [tenant.tenant_id.as_str(), tenant.client_id.as_str(), tenant.secret.expose_secret(), "Win10 custom"]
    {
        assert!(!text.contains(secret_or_name), "the transcript holds {secret_or_name:?}");
    }
}
