//! The RestoreRun and IntuneTenant Kubernetes resources: the core's spec/status data wrapped
//! as kube `Resource`s, and their CustomResourceDefinitions generated from the same types.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::crd::v1::CustomResourceExt;
use kube::core::dynamic::ApiResource;
use kube::core::object::{HasSpec, HasStatus};
use restore_core::api::{GROUP, IntuneTenantSpec, IntuneTenantStatus, RestoreRunSpec, RestoreRunStatus, VERSION};
use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

/// Static facts of one custom resource kind.
struct KindInfo {
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    crd_name: &'static str,
}

const RESTORE_RUN: KindInfo = KindInfo {
    kind: "RestoreRun",
    plural: "restoreruns",
    singular: "restorerun",
    short_names: &["rr"],
    crd_name: "restoreruns.tenantatlas.io",
};

const INTUNE_TENANT: KindInfo = KindInfo {
    kind: "IntuneTenant",
    plural: "intunetenants",
    singular: "intunetenant",
    short_names: &["itn"],
    crd_name: "intunetenants.tenantatlas.io",
};

/// Declares a namespaced custom resource around a core spec/status pair.
macro_rules! custom_resource {
    ($(#[$doc:meta])* $name:ident, $spec:ty, $status:ty, $info:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        pub struct $name {
            /// Standard object metadata.
            pub metadata: ObjectMeta,
            /// Desired state.
            pub spec: $spec,
            /// Observed state, written by the controller through the status subresource.
            #[serde(default)]
            pub status: Option<$status>,
        }

        impl $name {
            /// A new object with the given name and spec.
            pub fn new(name: &str, spec: $spec) -> Self {
                $name {
                    metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
                    spec,
                    status: None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let fields = if self.status.is_some() { 5 } else { 4 };
                let mut s = serializer.serialize_struct(stringify!($name), fields)?;
                s.serialize_field("apiVersion", &format!("{GROUP}/{VERSION}"))?;
                s.serialize_field("kind", $info.kind)?;
                s.serialize_field("metadata", &self.metadata)?;
                s.serialize_field("spec", &self.spec)?;
                if let Some(status) = &self.status {
                    s.serialize_field("status", status)?;
                }
                s.end()
            }
        }

        impl Resource for $name {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $info.kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                GROUP.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $info.plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl HasSpec for $name {
            type Spec = $spec;
            fn spec(&self) -> &$spec {
                &self.spec
            }
            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }

        impl HasStatus for $name {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut Option<$status> {
                &mut self.status
            }
        }
    };
}

custom_resource!(
    /// A restore of Intune configuration from a backup into one tenant (`kubectl get rr`).
    RestoreRun,
    RestoreRunSpec,
    RestoreRunStatus,
    RESTORE_RUN
);

custom_resource!(
    /// The connection to one Intune tenant.
    IntuneTenant,
    IntuneTenantSpec,
    IntuneTenantStatus,
    INTUNE_TENANT
);

/// A RestoreRun restores Intune configuration from one backup into one tenant, step by step:
/// source → scope → safety checks → preview → confirm → execute.
#[derive(JsonSchema)]
#[schemars(title = "RestoreRun")]
#[allow(dead_code)]
struct RestoreRunSchema {
    /// A restore of Intune configuration from one backup into one tenant, walked as a wizard:
    /// source → scope → safety checks → preview → confirm → execute. The controller runs every
    /// step up to the preview by itself; it writes to the tenant only after `spec.confirmation`
    /// names exactly what was previewed and `spec.dryRun` is `false`.
    spec: RestoreRunSpec,
    /// Observed state of a RestoreRun. The conditions are the contract; `phase` is for humans.
    status: Option<RestoreRunStatus>,
}

/// An IntuneTenant is the connection to one Microsoft Intune tenant: its id, hard-confirm label,
/// environment, Graph endpoints and app-registration credentials.
#[derive(JsonSchema)]
#[schemars(title = "IntuneTenant")]
#[allow(dead_code)]
struct IntuneTenantSchema {
    /// The connection to one Microsoft Intune tenant, set up once by a platform admin.
    spec: IntuneTenantSpec,
    /// Observed state of an IntuneTenant.
    status: Option<IntuneTenantStatus>,
}

/// A structural OpenAPI v3 schema for `T`, generated the way kube-derive does.
fn structural_schema<T: JsonSchema>() -> JSONSchemaProps {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    // The schema types are plain data; a failure here is a programming error caught by tests.
    serde_json::to_value(schema).and_then(serde_json::from_value).expect("schemars output is a valid JSONSchemaProps") // start-up
}

fn column(name: &str, type_: &str, json_path: &str, description: &str) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.into(),
        type_: type_.into(),
        json_path: json_path.into(),
        description: Some(description.into()),
        ..Default::default()
    }
}

fn crd(
    info: &KindInfo,
    schema: JSONSchemaProps,
    columns: Vec<CustomResourceColumnDefinition>,
) -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta { name: Some(info.crd_name.into()), ..Default::default() },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: info.kind.into(),
                plural: info.plural.into(),
                singular: Some(info.singular.into()),
                short_names: Some(info.short_names.iter().map(|s| s.to_string()).collect()),
                categories: Some(vec!["tenantatlas".into()]),
                ..Default::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    scale: None,
                }),
                additional_printer_columns: Some(columns),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    }
}

impl CustomResourceExt for RestoreRun {
    fn crd() -> CustomResourceDefinition {
        let columns = vec![
            column("Phase", "string", ".status.phase", "Wizard phase"),
            column("Tenant", "string", ".spec.tenantRef.name", "IntuneTenant restored into"),
            column("Env", "string", ".status.environment", "Tenant environment, frozen at the first reconcile"),
            column("Items", "integer", ".status.scope.total", "Items in scope"),
            column("Changes", "integer", ".status.preview.changes", "Items the preview would create or update"),
            column("Blockers", "integer", ".status.checks.blockers", "Blocker findings"),
            column("Progress", "string", ".status.execution.progress", "Items written / items the plan writes"),
            column("DryRun", "boolean", ".spec.dryRun", "Stops after the preview when true"),
            column("Age", "date", ".metadata.creationTimestamp", "Age"),
        ];
        crd(&RESTORE_RUN, structural_schema::<RestoreRunSchema>(), columns)
    }
    fn crd_name() -> &'static str {
        RESTORE_RUN.crd_name
    }
    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        RESTORE_RUN.short_names
    }
}

impl CustomResourceExt for IntuneTenant {
    fn crd() -> CustomResourceDefinition {
        let columns = vec![
            column("TenantID", "string", ".spec.tenantId", "Microsoft Entra tenant id"),
            column("Label", "string", ".spec.displayName", "Hard-confirm label"),
            column("Env", "string", ".spec.environment", "Environment"),
            column("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status", "Credentials verified"),
            column("Age", "date", ".metadata.creationTimestamp", "Age"),
        ];
        crd(&INTUNE_TENANT, structural_schema::<IntuneTenantSchema>(), columns)
    }
    fn crd_name() -> &'static str {
        INTUNE_TENANT.crd_name
    }
    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        INTUNE_TENANT.short_names
    }
}

/// Both CRDs as one multi-document YAML stream (what `restore-operator crd` prints and `crds/` holds).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for (i, crd) in [RestoreRun::crd(), IntuneTenant::crd()].iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(crd)?);
    }
    Ok(out)
}

/// Each CRD's YAML with the file name it has under `crds/`.
pub fn crd_files() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    Ok(vec![
        ("crds/restoreruns.tenantatlas.io.yaml", serde_yaml::to_string(&RestoreRun::crd())?),
        ("crds/intunetenants.tenantatlas.io.yaml", serde_yaml::to_string(&IntuneTenant::crd())?),
    ])
}
