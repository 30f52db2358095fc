//! `restore-operator demo --keep`: after the demo, the simulated tenant keeps serving and its manifests
//! (IntuneTenant, Secret, backup ConfigMap and archive, RestoreRun) are written for the reader's own runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use graph_sim::SimHandle;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use restore_core::api::RestoreRunSpec;

use crate::cli::demo_backup::SimTenant;
use crate::kube::{IntuneTenant, RestoreRun};

/// Names of the objects the kept demo writes.
pub struct KeptNames<'a> {
    /// Namespace of every object.
    pub namespace: &'a str,
    /// The IntuneTenant.
    pub tenant: &'a str,
    /// The Secret holding the simulated app's client secret.
    pub secret: &'a str,
    /// The backup ConfigMap and its key.
    pub config_map: &'a str,
    /// The archive's key in the ConfigMap.
    pub config_map_key: &'a str,
    /// The RestoreRun.
    pub run: &'a str,
}

fn meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() }
}

fn yaml(value: &impl serde::Serialize) -> Result<String, std::io::Error> {
    serde_yaml::to_string(value).map_err(std::io::Error::other)
}

/// Writes the manifests into `dir` and returns the commands to try against the kept tenant.
pub fn write_manifests(
    dir: &Path,
    sim: &SimHandle,
    tenant: &SimTenant,
    names: &KeptNames<'_>,
    spec: &RestoreRunSpec,
    archive: &[u8],
) -> Result<String, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let mut intune_tenant = IntuneTenant::new(names.tenant, tenant.spec(sim, names.secret));
    intune_tenant.metadata.namespace = Some(names.namespace.into());
    let secret = Secret {
        metadata: meta(names.secret, names.namespace),
        string_data: Some(BTreeMap::from([("clientSecret".to_string(), tenant.secret.expose_secret().to_string())])),
        ..Default::default()
    };
    let mut secret_json = serde_json::to_value(&secret).map_err(std::io::Error::other)?;
    secret_json["apiVersion"] = "v1".into();
    secret_json["kind"] = "Secret".into();
    let tenant_yaml = format!("{}---\n{}", yaml(&intune_tenant)?, yaml(&secret_json)?);
    let config_map = ConfigMap {
        metadata: meta(names.config_map, names.namespace),
        binary_data: Some(BTreeMap::from([(names.config_map_key.to_string(), ByteString(archive.to_vec()))])),
        ..Default::default()
    };
    let mut cm_json = serde_json::to_value(&config_map).map_err(std::io::Error::other)?;
    cm_json["apiVersion"] = "v1".into();
    cm_json["kind"] = "ConfigMap".into();
    let mut run = RestoreRun::new(names.run, spec.clone());
    run.metadata.namespace = Some(names.namespace.into());

    let files: [(&str, String); 3] =
        [("tenant.yaml", tenant_yaml), ("backup-configmap.yaml", yaml(&cm_json)?), ("restorerun.yaml", yaml(&run)?)];
    for (name, text) in &files {
        write_private(&dir.join(name), text.as_bytes())?;
    }
    write_private(&dir.join("backup.tar.gz"), archive)?;
    Ok(commands(dir, sim, names))
}

/// Writes `bytes` readable by the owner only (the tenant file holds the simulated app's secret).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The exact commands to try: a local preview (text, HTML), then the operator and the plugin.
pub fn commands(dir: &Path, sim: &SimHandle, names: &KeptNames<'_>) -> String {
    let d = dir.display();
    let host =
        sim.base_url().trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/').to_string();
    let (ns, run) = (names.namespace, names.run);
    format!(
        "Try it (the simulated tenant serves until Ctrl-C):\n\
         \n  # A preview on this machine, no cluster (text, then a page to open in a browser):\n\
         \x20 restore-operator preview -f {d}/tenant.yaml -f {d}/restorerun.yaml -f {d}/backup-configmap.yaml\n\
         \x20 restore-operator preview -f {d}/tenant.yaml -f {d}/restorerun.yaml --backup {d}/backup.tar.gz -o html > {d}/preview.html\n\
         \n  # In a cluster (kind, minikube) with the CRDs, the operator running here so it reaches 127.0.0.1:\n\
         \x20 kubectl create namespace {ns}; restore-operator crd | kubectl apply -f -\n\
         \x20 kubectl apply -f {d}/tenant.yaml -f {d}/backup-configmap.yaml -f {d}/restorerun.yaml\n\
         \x20 restore-operator run --namespace {ns} --allowed-endpoint-host {host} --allow-insecure-graph-http &\n\
         \x20 kubectl get rr -n {ns} -w\n\
         \x20 kubectl restorerun show {run} -n {ns}\n\
         \x20 kubectl restorerun diff {run} -n {ns}\n\
         \x20 kubectl restorerun approve {run} -n {ns} --approved-by you@example.com\n\
         \x20 kubectl restorerun wait {run} -n {ns} --for Succeeded\n\
         \x20 kubectl restorerun results {run} -n {ns}\n"
    )
}

/// The default folder of the kept demo's files.
pub fn default_dir() -> PathBuf {
    PathBuf::from("restore-demo")
}
