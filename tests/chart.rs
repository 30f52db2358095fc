//! The Helm chart lints clean, renders with the default values and ci/full-values.yaml through
//! the real Helm engine, every manifest validates (kubernetes-validate --strict, 1.32), the
//! values schema refuses bad values, two releases share no cluster-wide name, an upgrade render
//! carries changed CRDs, and the alert rules query only metrics the binary exports.

use std::process::Command;

use restore_operator::controller::metrics::Metrics;

/// The check's report, run once for all tests of this file.
fn chart_report() -> Option<String> {
    static REPORT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    REPORT.get_or_init(run_chart_check).clone()
}

fn run_chart_check() -> Option<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let tools = Command::new("python3").args(["-c", "import helm_python, celpy, yaml"]).status();
    if !tools.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "helm-python-sdk / cel-python missing in CI: scripts/install-test-deps.sh installs them"
        );
        eprintln!("SKIPPED: helm-python-sdk or cel-python not installed (scripts/install-test-deps.sh)");
        return None;
    }
    let out = Command::new("python3").arg(format!("{root}/scripts/check-chart.py")).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "chart check failed:\n{report}");
    Some(report)
}

#[test]
fn chart_lints_renders_and_validates() {
    let Some(report) = chart_report() else { return };
    assert!(report.contains("ValidatingAdmissionPolicy"), "{report}");
    assert!(
        report.contains("full-values:") && report.contains("manifests valid (kubernetes-validate --strict"),
        "{report}"
    );
    // The Deployment's arguments are ones the binary accepts.
    let mut deployments = 0;
    for line in report.lines().filter_map(|l| l.strip_prefix("ARGS ")) {
        let (values, json) = line.split_once(": ").unwrap();
        let args: Vec<String> = serde_json::from_str(json).unwrap();
        let argv = std::iter::once("restore-operator".to_string()).chain(args);
        let parsed = <restore_operator::cli::Cli as clap::Parser>::try_parse_from(argv);
        assert!(parsed.is_ok(), "chart ({values}) passes arguments the binary refuses: {:?}", parsed.err());
        deployments += 1;
    }
    assert_eq!(deployments, 2, "one Deployment per value set: {report}");
    // Shards: every shard's Deployment passes arguments the binary accepts, a selector each.
    let mut shards = Vec::new();
    for json in report.lines().filter_map(|l| l.strip_prefix("SHARDARGS ")) {
        let args: Vec<String> = serde_json::from_str(json).unwrap();
        let argv = std::iter::once("restore-operator".to_string()).chain(args.clone());
        let parsed = <restore_operator::cli::Cli as clap::Parser>::try_parse_from(argv);
        assert!(parsed.is_ok(), "a shard's arguments are refused: {:?}", parsed.err());
        shards.extend(args.into_iter().filter(|a| a.starts_with("--watch-label-selector=")));
    }
    assert_eq!(
        shards,
        [
            "--watch-label-selector=!sharding.tenantatlas.io/key",
            "--watch-label-selector=sharding.tenantatlas.io/key in (shard1)",
            "--watch-label-selector=sharding.tenantatlas.io/key in (shard2)"
        ],
        "{report}"
    );
    assert!(report.contains("SHARDS two shards: 3 Deployments, 3 Leases, disjoint selectors"), "{report}");
    // Upgrades apply CRD changes; two releases coexist; serviceMonitor.enabled=false renders none.
    assert!(report.contains("UPGRADE the upgrade render applies a changed CRD"), "{report}");
    assert!(report.contains("none shared"), "{report}");
    assert!(report.contains("SERVICEMONITOR follows metrics.serviceMonitor.enabled"), "{report}");
    assert!(report.contains("SECRETS read only in secretNamespaces"), "{report}");
}

#[test]
fn values_schema_refuses_the_three_bad_values() {
    let Some(report) = chart_report() else { return };
    for refusal in [
        r#"SCHEMA refuses {"replicas": "two"} at /replicas"#,
        r#"SCHEMA refuses {"approval": {"fourEyes": "false"}} at /approval/fourEyes"#,
        r#"SCHEMA refuses {"metrics": {"serviceMonitor": false}} at /metrics/serviceMonitor"#,
    ] {
        assert!(report.contains(refusal), "missing `{refusal}`:\n{report}");
    }
}

/// Every alert parses as PromQL and queries only series the binary exports.
#[test]
fn prometheus_rules_query_exported_metrics() {
    let Some(report) = chart_report() else { return };
    let exported = Metrics::series_names(&Metrics::sample_exposition());
    let exprs: Vec<&str> = report.lines().filter_map(|l| l.strip_prefix("EXPR ")).collect();
    assert!(exprs.len() >= 5, "the full values render the PrometheusRule: {report}");
    for expr in exprs {
        if let Err(e) = promql_parser::parser::parse(expr) {
            panic!("alert `{expr}` is not valid PromQL: {e}");
        }
        for name in metric_names(expr) {
            assert!(exported.contains(&name), "alert `{expr}` queries {name}, which the binary does not export");
        }
    }
}

/// The `restore_operator_*` identifiers of a PromQL expression.
pub fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("restore_operator_"))
        .map(str::to_string)
        .collect()
}
