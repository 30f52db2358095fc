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

/// A `graph-sim` process this test started, its printed URL and its stdout (kept open so its
/// prints never meet a closed pipe). Dropping it kills that one process.
struct Running {
    child: std::process::Child,
    url: String,
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Running {
    fn start(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Running {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut command = Command::new(BIN);
        command.args(["--listen", "127.0.0.1:0"]).args(args).stdout(Stdio::piped()).stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = stdout.next().unwrap().unwrap();
        let url = first.strip_prefix("graph-sim listening on ").unwrap().to_string();
        Running { child, url, _stdout: stdout }
    }

    /// A client-credentials token for `client_id` in `tenant` (the raw token response).
    async fn token(&self, tenant: &str, client_id: &str, secret: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "x/.default"),
        ];
        reqwest::Client::new()
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.url))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// GET `/beta/{path}` with a fresh token for `client_id`.
    async fn get(&self, tenant: &str, client_id: &str, secret: &str, path: &str) -> Value {
        let token: Value = self.token(tenant, client_id, secret).await.json().await.unwrap();
        let bearer = token["access_token"].as_str().unwrap();
        let response = reqwest::Client::new().get(format!("{}/beta/{path}", self.url)).bearer_auth(bearer).send().await;
        response.unwrap().json().await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

fn refs(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(std::ffi::OsString::as_os_str).collect()
}

#[tokio::test]
async fn a_simulator_started_from_flags_serves_what_it_prints() {
    let dump = tempfile::NamedTempFile::new().unwrap();
    let mut args = os(&["--tenant", "t1", "--client-id", "app", "--group", "Pilot", "--state-endpoint", "--dump"]);
    args.push(dump.path().into());
    let mut sim = Running::start(&refs(&args), &[("GRAPH_SIM_CLIENT_SECRET", "from-env")]);
    let groups = sim.get("t1", "app", "from-env", "groups").await;
    assert_eq!(groups["value"][0]["displayName"], "Pilot");
    let state: Value = reqwest::get(format!("{}/_sim/state", sim.url)).await.unwrap().json().await.unwrap();
    assert!(state["tenants"]["t1"]["collections"]["groups"].is_object());

    // SIGTERM (to this test's own child) writes the --dump file on the way out.
    let pid = sim.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(sim.child.wait().unwrap().success());
    let dumped: Value = serde_json::from_slice(&std::fs::read(dump.path()).unwrap()).unwrap();
    assert_eq!(dumped, state);
}

#[tokio::test]
async fn seed_loads_a_native_backup_keeping_its_ids() {
    use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
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
    let mut args = os(&["--tenant", "t1", "--client-id", "app", "--seed"]);
    args.push(dir.path().into());
    let sim = Running::start(&refs(&args), &[("GRAPH_SIM_CLIENT_SECRET", "from-env")]);
    let config = sim
        .get("t1", "app", "from-env", "deviceManagement/deviceConfigurations/cfg-from-backup?$expand=assignments")
        .await;
    assert_eq!(config["displayName"], "Seeded");
    assert_eq!(config["assignments"][0]["target"]["groupId"], "grp-7");
    assert_eq!(sim.get("t1", "app", "from-env", "groups/grp-7").await["displayName"], "Kiosks");
}

#[tokio::test]
async fn a_json_config_declares_tenants_apps_groups_and_scope_tags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    let body = serde_json::json!({"tenants": [
        {"id": "t-a", "apps": [{"clientId": "app-a", "secretEnv": "SIM_APP_A_SECRET"}], "groups": ["Pilot"], "scopeTags": ["Europe"]},
        {"id": "t-b", "apps": [{"clientId": "app-b", "secretEnv": "SIM_APP_A_SECRET"}]}
    ]});
    std::fs::write(&config, body.to_string()).unwrap();
    let mut args = os(&["--config"]);
    args.push(config.into());
    let sim = Running::start(&refs(&args), &[("SIM_APP_A_SECRET", "configured")]);
    let tags = sim.get("t-a", "app-a", "configured", "deviceManagement/roleScopeTags").await;
    let names: Vec<&str> =
        tags["value"].as_array().unwrap().iter().map(|t| t["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Default", "Europe"]);
    let wrong_tenant = sim.token("t-b", "app-a", "configured").await;
    assert_eq!(wrong_tenant.status().as_u16(), 400, "app-a is not registered in t-b");
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
