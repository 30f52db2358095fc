//! End-to-end support: the Kubernetes API emulator with the operator's CRDs, the real
//! `restore-operator run` binary as child processes, and the real `kubectl` against them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_sim::SimHandle;
use kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use super::{NAMESPACE, TenantSetup, assert_no_secret, start_simulator};

/// Whether kubectl can run here. Missing kubectl skips a test with a printed reason, except
/// under `CI=true`, where it fails the test.
pub fn kubectl_available(test: &str) -> bool {
    let found =
        std::process::Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: kubectl is required under CI=true but was not found on PATH"
    );
    eprintln!("SKIPPED {test}: kubectl is not installed (install kubectl 1.32 to run the end-to-end tests)");
    false
}

/// A finished command as (success, stdout, stderr).
pub fn outcome(out: &std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An emulated cluster with the CRDs installed and the test namespace, and a Graph simulator.
pub struct Cluster {
    pub emulator: EmulatorHandle,
    pub sim: SimHandle,
    pub kubeconfig: PathBuf,
    workdir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the emulator (CRDs from `crds/`) and the simulator.
    pub async fn start(setup: &TenantSetup) -> Cluster {
        let mut config = EmulatorConfig::default();
        config.initial_namespaces.push(NAMESPACE.to_string());
        let emulator = Emulator::start(config).await.expect("the emulator starts");
        emulator.load_crds_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).expect("the CRDs load");
        let kubeconfig = emulator.kubeconfig_path().expect("kubeconfig is written");
        let sim = start_simulator(setup).await;
        Cluster { emulator, sim, kubeconfig, workdir: tempfile::tempdir().expect("tempdir") }
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub async fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.emulator.cache_dir())
            .args(["--namespace", NAMESPACE])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("kubectl runs");
        outcome(&out)
    }

    /// Runs kubectl and requires success; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.kubectl(args).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    /// `kubectl apply -f` of these objects (written to a YAML file first, as a person would).
    pub async fn apply(&self, name: &str, objects: &[Value]) {
        let path = self.workdir.path().join(format!("{name}.yaml"));
        let yaml: Vec<String> =
            objects.iter().map(|o| serde_yaml::to_string(o).expect("objects render as YAML")).collect();
        std::fs::write(&path, yaml.join("---\n")).expect("manifest is written");
        self.kubectl_ok(&["apply", "-f", &path.to_string_lossy()]).await;
    }

    /// `kubectl wait` for a RestoreRun's JSONPath to hold a value.
    pub async fn wait_for(&self, run: &str, jsonpath: &str, value: &str, timeout: Duration) {
        let condition = format!("--for=jsonpath={{{jsonpath}}}={value}");
        let timeout = format!("--timeout={}s", timeout.as_secs());
        let (ok, stdout, stderr) = self.kubectl(&["wait", &format!("restorerun/{run}"), &condition, &timeout]).await;
        if !ok {
            let yaml = self.kubectl(&["get", "restorerun", run, "-o", "yaml"]).await.1;
            panic!("waiting for {run} {jsonpath}={value} failed: {stdout}{stderr}\nthe run:\n{yaml}");
        }
    }

    /// A field of a RestoreRun, by JSONPath.
    pub async fn get(&self, run: &str, jsonpath: &str) -> String {
        self.kubectl_ok(&["get", "restorerun", run, "-o", &format!("jsonpath={{{jsonpath}}}")]).await
    }

    /// A RestoreRun's condition of this type: (status, reason, message).
    pub async fn condition(&self, run: &str, type_: &str) -> (String, String, String) {
        let json: Value =
            serde_json::from_str(&self.kubectl_ok(&["get", "restorerun", run, "-o", "json"]).await).expect("JSON");
        let conditions = json["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let c = conditions.iter().find(|c| c["type"] == type_).unwrap_or_else(|| panic!("no {type_} on {run}: {json}"));
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        (text("status"), text("reason"), text("message"))
    }

    /// `kubectl patch --type merge`.
    pub async fn patch(&self, run: &str, patch: &Value) {
        self.kubectl_ok(&["patch", "restorerun", run, "--type", "merge", "-p", &patch.to_string()]).await;
    }

    /// The Events of the namespace as JSON (core/v1 view, what `kubectl get events` shows).
    pub async fn events(&self) -> Vec<Value> {
        let json: Value = serde_json::from_str(&self.kubectl_ok(&["get", "events", "-o", "json"]).await).expect("JSON");
        json["items"].as_array().cloned().unwrap_or_default()
    }

    /// Starts `kubectl get restorerun NAME --watch -o json` and waits for its first object.
    pub async fn watch(&self, run: &str) -> Watch {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.emulator.cache_dir())
            .args(["--namespace", NAMESPACE, "get", "restorerun", run, "--watch", "-o", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl starts");
        let lines = collect_lines(child.stdout.take().expect("stdout is piped"));
        let watch = Watch { child, lines };
        super::eventually(Duration::from_secs(20), Duration::from_millis(20), "the watch's first object", || {
            let seen = !watch.objects().is_empty();
            async move { seen.then_some(()) }
        })
        .await;
        watch
    }

    /// Approves a run's current preview with `kubectl patch`, as the README shows.
    pub async fn approve(&self, run: &str) {
        let digest = self.get(run, ".status.preview.digest").await;
        self.patch(run, &super::approval_patch(super::TENANT_LABEL, &digest)).await;
    }

    /// Waits until the operator has sent `count` writes to the tenant.
    pub async fn wait_for_writes(&self, count: usize) {
        super::eventually(Duration::from_secs(90), Duration::from_millis(5), &format!("{count} writes"), || {
            let done = super::operator_writes(&self.sim).len() >= count;
            async move { done.then_some(()) }
        })
        .await;
    }

    /// Creates (POSTs to a collection, not `/assign`) the operator sent.
    pub fn creates(&self) -> usize {
        super::operator_writes(&self.sim).iter().filter(|w| w.method == "POST" && !w.path.ends_with("/assign")).count()
    }

    /// Rewrites the JSON document a run's record ConfigMap holds (gzip in `binaryData`), under the
    /// operator's own field manager — the strongest forgery a namespace user can make.
    pub async fn forge_record(&self, config_map: &str, edit: impl FnOnce(&mut Value)) {
        use base64::Engine;
        use std::io::Write;
        let engine = base64::engine::general_purpose::STANDARD;
        let cm: Value = serde_json::from_str(&self.kubectl_ok(&["get", "configmap", config_map, "-o", "json"]).await)
            .expect("JSON");
        let stored = engine.decode(cm["binaryData"]["content.json.gz"].as_str().expect("a record")).expect("base64");
        let mut document: Value = serde_json::from_str(&super::gunzip(&stored)).expect("a JSON record");
        edit(&mut document);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(document.to_string().as_bytes()).expect("gzip");
        let forged = engine.encode(encoder.finish().expect("gzip"));
        let patch = serde_json::json!({"binaryData": {"content.json.gz": forged}}).to_string();
        let args = ["patch", "configmap", config_map, "--type", "merge", "--field-manager", "restore-operator", "-p"];
        let mut args: Vec<&str> = args.to_vec();
        args.push(&patch);
        self.kubectl_ok(&args).await;
    }

    /// Starts `restore-operator run` against this cluster.
    pub async fn operator(&self, identity: &str, lease_seconds: u64) -> Operator {
        Operator::start(&self.kubeconfig, identity, lease_seconds, &[]).await
    }

    /// Starts `restore-operator run` with these extra arguments (a shard's selector and Lease).
    pub async fn operator_with(&self, identity: &str, lease_seconds: u64, extra: &[&str]) -> Operator {
        Operator::start(&self.kubeconfig, identity, lease_seconds, extra).await
    }
}

/// A running `kubectl get --watch -o json`: every version of the object it printed.
pub struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

/// Collects the lines a child process prints, as they come.
fn collect_lines(output: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(output).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Watch {
    /// The objects printed so far, oldest first.
    pub fn objects(&self) -> Vec<Value> {
        let text = self.lines.lock().unwrap().join("\n");
        serde_json::Deserializer::from_str(&text).into_iter::<Value>().map_while(Result::ok).collect()
    }

    /// Stops kubectl and returns every object it printed.
    pub async fn stop(mut self) -> Vec<Value> {
        // Let the last events arrive first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = self.child.kill().await;
        self.objects()
    }
}

/// A running `restore-operator run` child process and its log lines.
pub struct Operator {
    child: Child,
    pub identity: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Operator {
    async fn start(kubeconfig: &Path, identity: &str, lease_seconds: u64, extra: &[&str]) -> Operator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_restore-operator"))
            .args(["--log-format", "json", "run", "--namespace", NAMESPACE, "--listen", "127.0.0.1:0"])
            .args(["--lease-namespace", NAMESPACE, "--identity", identity])
            .args(["--lease-seconds", &lease_seconds.to_string()])
            // graph-sim listens on loopback: the admin's allowlist names it explicitly.
            .args(["--allowed-endpoint-host", "127.0.0.1"])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", identity)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the operator binary starts");
        let logs = collect_lines(child.stderr.take().expect("stderr is piped"));
        Operator { child, identity: identity.to_string(), logs }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Log lines whose message contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs().iter().any(|l| l.contains(text))
    }

    /// Waits until a log line contains `text`.
    pub async fn wait_logged(&self, text: &str, timeout: Duration) {
        super::eventually(timeout, Duration::from_millis(50), &format!("{} to log {text:?}", self.identity), || {
            let found = self.logged(text);
            async move { found.then_some(()) }
        })
        .await;
    }

    /// The address of `/metrics`, `/healthz`, `/readyz`, from the start-up log.
    pub async fn http_address(&self) -> String {
        super::eventually(Duration::from_secs(20), Duration::from_millis(50), "the listen address", || {
            let address = self.logs().iter().find_map(|l| {
                let json: Value = serde_json::from_str(l).ok()?;
                json["message"].as_str().filter(|m| m.contains("serving /metrics"))?;
                json["address"].as_str().map(str::to_string)
            });
            async move { address }
        })
        .await
    }

    /// GET of one of the operator's HTTP endpoints: (status, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let address = self.http_address().await;
        let response =
            reqwest::Client::new().get(format!("http://{address}{path}")).send().await.expect("the operator answers");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }

    /// SIGSTOP: the process freezes (its reconciles and its Lease renewal stall) until `resume`.
    pub async fn pause(&self) {
        self.signal("-STOP").await;
    }

    /// SIGCONT after `pause`.
    pub async fn resume(&self) {
        self.signal("-CONT").await;
    }

    async fn signal(&self, which: &str) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args([which, &pid.to_string()]).status().await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill_hard(&mut self) {
        self.child.kill().await.expect("the operator is killed");
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the operator stops after SIGTERM")
            .expect("exit status")
    }

    /// Asserts the operator's log holds no secret.
    pub fn assert_logs_hold_no_secret(&self) {
        let logs = self.logs().join("\n");
        assert!(!logs.is_empty(), "the operator logged something");
        assert_no_secret(&format!("the logs of {}", self.identity), &logs);
    }
}
