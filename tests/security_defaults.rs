//! The admin settings of docs/security.md: the chart's `security` values and memory limit are the
//! binary's own defaults, and those defaults are the strict ones.

use clap::Parser;
use restore_backup::fetch::FetchPolicy;
use restore_operator::cli::{Cli, Command};

fn chart_values() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/restore-operator/values.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_chart_security_values_are_the_binary_defaults() {
    let Command::Run(args) = Cli::parse_from(["restore-operator", "run"]).command else { unreachable!() };
    let values = chart_values();
    let security = &values["security"];
    // The binary's defaults are the strict ones.
    assert_eq!(args.sources.fetch_policy(), FetchPolicy::default());
    assert!(args.allowed_endpoint_hosts.is_empty());
    assert_eq!(args.federated_token_dir, std::path::PathBuf::from(restore_graph::DEFAULT_FEDERATED_TOKEN_DIR));
    // The chart passes the same.
    assert_eq!(security["allowedEndpointHosts"].as_sequence().map(Vec::len), Some(0));
    assert_eq!(security["allowedSourceCIDRs"].as_sequence().map(Vec::len), Some(0));
    assert_eq!(security["allowCrossNamespaceRefs"].as_bool(), Some(false));
    assert_eq!(security["federatedTokenDir"].as_str(), Some(restore_graph::DEFAULT_FEDERATED_TOKEN_DIR));
    assert_eq!(security["maxConcurrentDownloads"].as_u64(), Some(args.sources.max_concurrent_downloads as u64));
    assert_eq!(security["downloadTimeoutSeconds"].as_u64(), Some(args.sources.download_timeout_seconds));
    assert!(!args.secrets.secret_script_bodies && args.secrets.secret_fields.is_empty());
    assert_eq!(security["secretScriptBodies"].as_bool(), Some(false));
    assert_eq!(security["secretFields"].as_sequence().map(Vec::len), Some(0));
    assert_eq!(args.secrets.marks().unwrap(), restore_core::secrets::SecretMarks::default());
    // Fewer download slots than reconcile slots: hanging servers cannot take them all.
    assert!(args.sources.max_concurrent_downloads < usize::from(args.concurrency));
}

#[test]
fn the_chart_memory_limit_covers_two_loads_at_their_limits() {
    let limits = restore_backup::Limits::default();
    let per_load = limits.max_unpacked_bytes + limits.max_values_total * 150;
    let needed = 64 * 1024 * 1024 + limits.max_concurrent_loads as u64 * per_load;
    let memory = chart_values()["resources"]["limits"]["memory"].as_str().unwrap().to_string();
    let bytes: u64 = match memory.strip_suffix("Gi") {
        Some(n) => n.parse::<u64>().unwrap() << 30,
        None => memory.strip_suffix("Mi").unwrap().parse::<u64>().unwrap() << 20,
    };
    assert!(bytes >= needed, "chart memory limit {memory} is below the {needed} bytes two loads may take");
}

#[test]
fn finding_9_a_source_path_named_with_two_dots_is_not_a_traversal() {
    let spec = |path: &str| {
        let mut spec: restore_core::api::RestoreRunSpec = serde_json::from_value(serde_json::json!({
            "tenantRef": {"name": "t"}, "source": {"configMapRef": {"name": "b"}, "path": path}
        }))
        .unwrap();
        spec.source.path = Some(path.to_string());
        spec
    };
    assert!(restore_core::wizard::validate_spec(&spec("backups..old/prod")).is_ok());
    for escaping in ["../x", "a/../b", "a/..", ".."] {
        assert!(restore_core::wizard::validate_spec(&spec(escaping)).is_err(), "{escaping}");
    }
    // The CRD's CEL rule refuses `..` components only, not names holding two dots.
    let crd =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/restoreruns.tenantatlas.io.yaml")).unwrap();
    assert!(!crd.contains("!self.contains(''..'')"), "the CRD still refuses every '..'");
    assert!(crd.contains("self.contains(''/../'')"), "the CRD refuses '..' components");
}
