//! The emulator as test code uses it: start a server on 127.0.0.1:0, get a kube client or a
//! kubeconfig for kubectl, register CRDs, seed and inspect objects, read request counters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::api::{ApiCore, EmulatorConfig, ListParams, Scope, Subresource, WriteParams};
use crate::error::{ApiError, EmulatorError};
use crate::http::{HttpState, router};
use crate::resource::{meta_str, split_api_version};

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Starts an emulator on `127.0.0.1:0` and serves until the handle is dropped or shut down.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        Self::start_on("127.0.0.1:0", config).await
    }

    /// Starts an emulator on a given address (the binary uses this for a fixed port).
    pub async fn start_on(address: &str, config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(EmulatorError::Bind)?;
        let local = listener.local_addr().map_err(EmulatorError::Bind)?;
        let core = Arc::new(ApiCore::new(config));
        let state = HttpState { core: core.clone(), address: local.to_string() };
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state);
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(%error, "kube-emulator server stopped with an error");
            }
        });
        let workdir = tempfile::tempdir().map_err(|e| EmulatorError::Io { path: "tempdir".into(), source: e })?;
        tracing::info!(address = %local, "kube-emulator listening");
        Ok(EmulatorHandle { core, base_url: format!("http://{local}"), stop: Some(stop), server, workdir })
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    core: Arc<ApiCore>,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    workdir: tempfile::TempDir,
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.abort();
    }
}

fn admin_params() -> WriteParams {
    WriteParams {
        field_manager: Some("kube-emulator".into()),
        default_manager: "kube-emulator".into(),
        ..Default::default()
    }
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The API core (for in-process access without HTTP).
    pub fn core(&self) -> &Arc<ApiCore> {
        &self.core
    }

    /// A kube client pointed at the emulator, default namespace `default`.
    /// Installs rustls' ring provider first (kube's TLS stack needs one even for plain HTTP).
    pub fn client(&self) -> Result<kube::Client, EmulatorError> {
        // An already installed provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = self.base_url.parse().map_err(|e| EmulatorError::Client(format!("{e}")))?;
        let config = kube::Config::new(url);
        kube::Client::try_from(config).map_err(|e| EmulatorError::Client(e.to_string()))
    }

    /// The kubeconfig text for kubectl.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-emulator\n  cluster:\n    server: {}\n\
             contexts:\n- name: kube-emulator\n  context:\n    cluster: kube-emulator\n    user: kube-emulator\n    namespace: default\n\
             current-context: kube-emulator\nusers:\n- name: kube-emulator\n  user: {{}}\n",
            self.base_url
        )
    }

    /// A kubeconfig (in the handle's directory) that acts as `username` through impersonation
    /// (`as:` in the user entry); `kubectl auth whoami` answers that name.
    pub fn kubeconfig_for_user(&self, username: &str) -> Result<PathBuf, EmulatorError> {
        let path = self.workdir.path().join(format!("kubeconfig-{}", username.replace(['/', ':', '@'], "_")));
        let quoted = serde_json::to_string(username).map_err(|e| EmulatorError::Parse(e.to_string()))?;
        let text = self.kubeconfig().replace("  user: {}\n", &format!("  user:\n    as: {quoted}\n"));
        std::fs::write(&path, text).map_err(|source| EmulatorError::Io { path: path.display().to_string(), source })?;
        Ok(path)
    }

    /// A kubeconfig that acts as `username` in `groups` through impersonation (`as:` and
    /// `as-groups:`), as `kubectl --as USER --as-group GROUP` would.
    pub fn kubeconfig_for(&self, username: &str, groups: &[&str]) -> Result<PathBuf, EmulatorError> {
        let path = self.workdir.path().join(format!(
            "kubeconfig-{}-{}",
            username.replace(['/', ':', '@'], "_"),
            groups.join("+").replace(['/', ':', '@'], "_")
        ));
        let quoted = serde_json::to_string(username).map_err(|e| EmulatorError::Parse(e.to_string()))?;
        let groups = serde_json::to_string(groups).map_err(|e| EmulatorError::Parse(e.to_string()))?;
        let text =
            self.kubeconfig().replace("  user: {}\n", &format!("  user:\n    as: {quoted}\n    as-groups: {groups}\n"));
        std::fs::write(&path, text).map_err(|source| EmulatorError::Io { path: path.display().to_string(), source })?;
        Ok(path)
    }

    /// Turns RBAC enforcement of HTTP requests on or off (set-up first as the admin, then on).
    pub fn enforce_rbac(&self, enforced: bool) {
        self.core.set_rbac_enforced(enforced);
    }

    /// Writes the kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), EmulatorError> {
        std::fs::write(path, self.kubeconfig())
            .map_err(|source| EmulatorError::Io { path: path.display().to_string(), source })
    }

    /// A kubeconfig file in the handle's private directory (written on first call).
    pub fn kubeconfig_path(&self) -> Result<PathBuf, EmulatorError> {
        let path = self.workdir.path().join("kubeconfig");
        if !path.exists() {
            self.write_kubeconfig(&path)?;
        }
        Ok(path)
    }

    /// A private directory for kubectl's discovery cache (`--cache-dir`).
    pub fn cache_dir(&self) -> PathBuf {
        self.workdir.path().join("kube-cache")
    }

    /// Creates or replaces every object of a (multi-document) YAML text; CRDs become served at once.
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<Value>, EmulatorError> {
        let mut applied = Vec::new();
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let value: Value =
                serde::Deserialize::deserialize(document).map_err(|e| EmulatorError::Parse(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            applied.push(self.create_or_replace(value)?);
        }
        Ok(applied)
    }

    /// Registers the CRDs of a YAML text.
    pub fn register_crd_yaml(&self, yaml: &str) -> Result<Vec<Value>, EmulatorError> {
        self.apply_yaml(yaml)
    }

    /// Registers every `*.yaml` / `*.yml` file of a directory (sorted by name).
    pub fn load_crds_dir(&self, dir: &Path) -> Result<Vec<Value>, EmulatorError> {
        let io = |source| EmulatorError::Io { path: dir.display().to_string(), source };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut all = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|source| EmulatorError::Io { path: file.display().to_string(), source })?;
            all.extend(self.apply_yaml(&text)?);
        }
        Ok(all)
    }

    fn scope_for(&self, object: &Value) -> Result<Scope, EmulatorError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let resource = self.core.registry().find_kind(api_version, kind).ok_or_else(|| {
            EmulatorError::Api(ApiError::bad_request(format!("no resource is registered for {api_version} {kind}")))
        })?;
        let namespace = resource.namespaced.then(|| meta_str(object, "namespace").unwrap_or("default").to_string());
        Ok(Scope { resource, namespace })
    }

    /// Creates an object through the same admission path as the HTTP API.
    pub fn create(&self, object: Value) -> Result<Value, EmulatorError> {
        let scope = self.scope_for(&object)?;
        Ok(self.core.create(&scope, object, &admin_params())?.object)
    }

    /// Creates an object, or replaces it (spec and status) if it exists.
    pub fn create_or_replace(&self, mut object: Value) -> Result<Value, EmulatorError> {
        let scope = self.scope_for(&object)?;
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        match self.core.get(&scope, &name) {
            Ok(existing) => {
                object["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"].clone();
                let status = object.get("status").cloned();
                let mut written = self.core.update(&scope, &name, object, Subresource::Main, &admin_params())?.object;
                if let Some(status) = status.filter(|_| scope.resource.status_subresource) {
                    written["status"] = status;
                    written = self.core.update(&scope, &name, written, Subresource::Status, &admin_params())?.object;
                }
                Ok(written)
            }
            Err(e) if e.code == 404 => self.create(object),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one object by `apiVersion`, kind, namespace and name.
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let probe =
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"namespace": namespace.unwrap_or("default")}});
        let scope = self.scope_for(&probe).ok()?;
        self.core.get(&scope, name).ok()
    }

    /// Lists objects of a kind (all namespaces when `namespace` is `None`).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(resource) = self.core.registry().find_kind(api_version, kind) else { return Vec::new() };
        let scope = Scope { namespace: namespace.filter(|_| resource.namespaced).map(String::from), resource };
        self.core
            .list(&scope, &ListParams::default())
            .ok()
            .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// Whether a group/version/plural is served (e.g. after registering a CRD).
    pub fn serves(&self, api_version: &str, plural: &str) -> bool {
        let (group, version) = split_api_version(api_version);
        self.core.registry().find(group, version, plural).is_some()
    }

    /// Request counters, keyed by `verb plural` (e.g. `watch restoreruns`).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.core.stats()
    }

    /// The latest resourceVersion.
    pub fn current_resource_version(&self) -> u64 {
        self.core.state().current_rv()
    }
}
