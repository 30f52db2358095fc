//! The Grafana dashboard (deploy/grafana/restore-operator.json) queries only series the binary
//! exports: every panel and variable query parses as PromQL, and every `restore_operator_*` name
//! in it is in the exposition.

use std::path::Path;

use restore_operator::controller::metrics::Metrics;
use serde_json::Value;

/// Every PromQL text of the dashboard: panel targets and templating queries.
fn queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            out.push(variable["query"].as_str().unwrap().to_string());
        }
    }
    out
}

fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("restore_operator_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn dashboard_queries_name_only_exported_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/restore-operator.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exported = Metrics::series_names(&Metrics::sample_exposition());
    let queries = queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut used = std::collections::BTreeSet::new();
    for query in &queries {
        // Grafana's label_values(selector, label) wraps a PromQL selector.
        let promql =
            query.strip_prefix("label_values(").map_or(query.as_str(), |rest| rest.rsplit_once(',').unwrap().0);
        if let Err(e) = promql_parser::parser::parse(promql) {
            panic!("`{promql}` is not valid PromQL: {e}");
        }
        let names = metric_names(query);
        assert!(!names.is_empty(), "a query without a restore-operator metric: {query}");
        for name in names {
            assert!(exported.contains(&name), "`{query}` uses {name}; the binary exports {exported:?}");
            used.insert(name);
        }
    }
    // Each family the binary exports is shown somewhere (a gauge, a counter's _total, a histogram).
    for family in [
        "restore_operator_restoreruns",
        "restore_operator_restoreruns_oldest_in_phase_seconds",
        "restore_operator_restoreruns_finished_total",
        "restore_operator_restorerun_duration_seconds_bucket",
        "restore_operator_phase_duration_seconds_bucket",
        "restore_operator_graph_requests_total",
        "restore_operator_graph_throttle_waits_total",
        "restore_operator_reconcile_errors_total",
    ] {
        assert!(used.contains(family), "the dashboard does not chart {family}");
    }
}

#[test]
fn dashboard_filters_runs_by_namespace_and_tenant() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/restore-operator.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let names: Vec<&str> =
        dashboard["templating"]["list"].as_array().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, ["datasource", "namespace", "tenant"]);
    let filtered = queries(&dashboard).iter().filter(|q| q.contains(r#"tenant=~"$tenant""#)).count();
    assert!(filtered >= 4, "run panels honour the tenant filter");
}
