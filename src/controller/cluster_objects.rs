//! The backup sources' view of the cluster, through the Kubernetes API: ConfigMaps and the
//! artifacts of Flux sources (GitRepository, OCIRepository, Bucket).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use restore_backup::source::{ArtifactInfo, ClusterObjects, ConfigMapData, FluxLookup};
use restore_core::api::ArtifactKind;

/// Reads ConfigMaps and Flux sources with a kube client.
#[derive(Clone)]
pub struct KubeObjects {
    client: kube::Client,
}

impl KubeObjects {
    /// Wraps a client.
    pub fn new(client: kube::Client) -> Self {
        KubeObjects { client }
    }
}

/// The Flux API resource of a source kind.
fn flux_resource(kind: ArtifactKind) -> ApiResource {
    let (kind, plural, version) = match kind {
        ArtifactKind::GitRepository => ("GitRepository", "gitrepositories", "v1"),
        ArtifactKind::OciRepository => ("OCIRepository", "ocirepositories", "v1beta2"),
        ArtifactKind::Bucket => ("Bucket", "buckets", "v1"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("source.toolkit.fluxcd.io", version, kind), plural)
}

/// The artifact in a Flux source's status, or why there is none.
pub fn flux_lookup(object: &serde_json::Value) -> FluxLookup {
    let artifact = &object["status"]["artifact"];
    match (artifact["url"].as_str(), artifact["digest"].as_str()) {
        (Some(url), Some(digest)) => FluxLookup::Artifact(ArtifactInfo {
            url: url.to_string(),
            digest: digest.to_string(),
            revision: artifact["revision"].as_str().map(str::to_string),
        }),
        _ => {
            let ready = object["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .and_then(|c| c["message"].as_str())
                .unwrap_or("no artifact in status yet");
            FluxLookup::NoArtifact { message: ready.to_string() }
        }
    }
}

impl ClusterObjects for KubeObjects {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let cm = api.get_opt(name).await.map_err(|e| format!("reading ConfigMap {namespace}/{name}: {e}"))?;
        Ok(cm.map(|cm| ConfigMapData {
            data: cm.data.unwrap_or_default(),
            binary_data: cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
        }))
    }

    async fn flux_artifact(&self, kind: ArtifactKind, namespace: &str, name: &str) -> Result<FluxLookup, String> {
        let resource = flux_resource(kind);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &resource);
        match api.get_opt(name).await {
            Ok(None) => Ok(FluxLookup::NotFound),
            Ok(Some(object)) => Ok(flux_lookup(&serde_json::to_value(object).map_err(|e| e.to_string())?)),
            // The Flux CRDs are not installed: the same as a missing object for the user.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(FluxLookup::NotFound),
            Err(e) => Err(format!("reading {} {namespace}/{name}: {e}", resource.kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_artifact_is_read_from_status() {
        let obj = json!({"status": {"artifact": {"url": "http://source-controller/a.tar.gz", "digest": "sha256:ab", "revision": "main@sha1:1"}}});
        assert_eq!(
            flux_lookup(&obj),
            FluxLookup::Artifact(ArtifactInfo {
                url: "http://source-controller/a.tar.gz".into(),
                digest: "sha256:ab".into(),
                revision: Some("main@sha1:1".into())
            })
        );
    }

    #[test]
    fn a_source_without_artifact_says_why() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "message": "authentication required"}]}});
        assert_eq!(flux_lookup(&obj), FluxLookup::NoArtifact { message: "authentication required".into() });
    }
}
