//! The `graph-sim` binary: `--help` documents every option, and a simulator started from flags
//! serves tokens and the API on the address it prints.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_graph-sim");

#[test]
fn help_documents_every_option() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let options = [
        "--listen",
        "--config",
        "--tenant",
        "--client-id",
        "--client-secret",
        "--client-certificate",
        "--group",
        "--seed",
        "--seed-tenant",
        "--throttle-writes",
        "--throttle-window-secs",
        "--no-throttle",
        "--page-size",
        "--settings-page-size",
        "--token-lifetime-secs",
        "--id-seed",
        "--frozen-time",
        "--seed-rng",
        "--latency-ms",
        "--rate-503",
        "--rate-504",
        "--rate-429",
        "--drop-rate",
        "--drop-after-write-rate",
        "--fault-retry-after",
        "--storm-status",
        "--storm-requests",
        "--storm-retry-after",
        "--dump",
        "--state-endpoint",
    ];
    for option in options {
        let line = help.lines().find(|l| {
            l.trim_start().starts_with(option)
                || l.contains(&format!(" {option} "))
                || l.contains(&format!(" {option}="))
                || l.contains(&format!(", {option}"))
        });
        assert!(line.is_some(), "{option} is not in --help:\n{help}");
    }
    assert!(help.contains("/beta"), "the help says what it serves");
}

/// Kills the child process it holds when dropped (only the one this test started).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_simulator_started_from_flags_serves_what_it_prints() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dump = tempfile::NamedTempFile::new().unwrap();
    let mut child = Child(
        Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--tenant",
                "t1",
                "--client-id",
                "app",
                "--group",
                "Pilot",
                "--state-endpoint",
            ])
            .arg("--dump")
            .arg(dump.path())
            .env("GRAPH_SIM_CLIENT_SECRET", "from-env")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    let url = first.strip_prefix("graph-sim listening on ").unwrap().to_string();
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "app"),
        ("client_secret", "from-env"),
        ("scope", "x/.default"),
    ];
    let token: Value =
        http.post(format!("{url}/t1/oauth2/v2.0/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let groups: Value = http
        .get(format!("{url}/beta/groups"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(groups["value"][0]["displayName"], "Pilot");
    let state: Value = http.get(format!("{url}/_sim/state")).send().await.unwrap().json().await.unwrap();
    assert!(state["tenants"]["t1"]["collections"]["groups"].is_object());

    // SIGTERM (to this test's own child) writes the --dump file on the way out.
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.0.wait().unwrap().success());
    let dumped: Value = serde_json::from_slice(&std::fs::read(dump.path()).unwrap()).unwrap();
    assert_eq!(dumped, state);
    drop(stdout);
}

#[tokio::test]
async fn seed_loads_a_native_backup_keeping_its_ids() {
    use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let item = BackupItem {
        item_type: "deviceConfiguration".into(),
        id: "cfg-from-backup".into(),
        display_name: "Seeded".into(),
        platform: "windows".into(),
        resource: serde_json::json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "id": "cfg-from-backup", "displayName": "Seeded", "omaSettings": []}),
        assignments: Some(vec![
            serde_json::json!({"id": "a1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "grp-7"}}),
        ]),
        sub_resources: Default::default(),
        references: References {
            groups: vec![NamedRef { id: "grp-7".into(), display_name: "Kiosks".into() }],
            ..References::default()
        },
    };
    let set = BackupSet {
        tenant: Some(BackupTenant { id: "t1".into(), label: "Contoso".into() }),
        captured_at: Some("2025-01-01T00:00:00Z".into()),
        digest: String::new(),
        items: vec![item],
    };
    let dir = tempfile::tempdir().unwrap();
    restore_backup::native::write_dir(&set, dir.path()).unwrap();
    let mut child = Child(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--tenant", "t1", "--client-id", "app", "--seed"])
            .arg(dir.path())
            .env("GRAPH_SIM_CLIENT_SECRET", "from-env")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    let url = first.strip_prefix("graph-sim listening on ").unwrap().to_string();
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "app"),
        ("client_secret", "from-env"),
        ("scope", "x/.default"),
    ];
    let token: Value =
        http.post(format!("{url}/t1/oauth2/v2.0/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let bearer = token["access_token"].as_str().unwrap();
    let get = |path: String| http.get(format!("{url}/beta/{path}")).bearer_auth(bearer).send();
    let config: Value = get("deviceManagement/deviceConfigurations/cfg-from-backup?$expand=assignments".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["displayName"], "Seeded");
    assert_eq!(config["assignments"][0]["target"]["groupId"], "grp-7");
    let group: Value = get("groups/grp-7".into()).await.unwrap().json().await.unwrap();
    assert_eq!(group["displayName"], "Kiosks");
    drop(stdout);
}

#[tokio::test]
async fn a_json_config_declares_tenants_apps_groups_and_scope_tags() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    let body = serde_json::json!({"tenants": [
        {"id": "t-a", "apps": [{"clientId": "app-a", "secretEnv": "SIM_APP_A_SECRET"}], "groups": ["Pilot"], "scopeTags": ["Europe"]},
        {"id": "t-b", "apps": [{"clientId": "app-b", "secretEnv": "SIM_APP_A_SECRET"}]}
    ]});
    std::fs::write(&config, body.to_string()).unwrap();
    let mut child = Child(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("SIM_APP_A_SECRET", "configured")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let url = stdout.next().unwrap().unwrap().strip_prefix("graph-sim listening on ").unwrap().to_string();
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-a"),
        ("client_secret", "configured"),
        ("scope", "x/.default"),
    ];
    let token: Value =
        http.post(format!("{url}/t-a/oauth2/v2.0/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let tags: Value = http
        .get(format!("{url}/beta/deviceManagement/roleScopeTags"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        tags["value"].as_array().unwrap().iter().map(|t| t["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Default", "Europe"]);
    let wrong_tenant = http.post(format!("{url}/t-b/oauth2/v2.0/token")).form(&form).send().await.unwrap();
    assert_eq!(wrong_tenant.status().as_u16(), 400, "app-a is not registered in t-b");
    drop(stdout);
}

#[test]
fn a_config_naming_an_unset_secret_variable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    std::fs::write(&config, r#"{"tenants":[{"id":"t","apps":[{"clientId":"a","secretEnv":"SIM_UNSET_VARIABLE_X"}]}]}"#)
        .unwrap();
    let output = Command::new(BIN).args(["--listen", "127.0.0.1:0", "--config"]).arg(&config).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SIM_UNSET_VARIABLE_X is not set"));
}
