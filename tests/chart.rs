//! The Helm chart lints clean, renders with default and all-on values through the real Helm
//! engine, its manifests validate for Kubernetes 1.32, and its admission-policy CEL parses.

use std::process::Command;

#[test]
fn chart_lints_renders_and_validates() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tools = Command::new("python3").args(["-c", "import helm_python, celpy, yaml"]).status();
    if !tools.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "helm-python-sdk / cel-python missing in CI: scripts/install-test-deps.sh installs them"
        );
        eprintln!("SKIPPED: helm-python-sdk or cel-python not installed (scripts/install-test-deps.sh)");
        return;
    }
    let out = Command::new("python3").arg(format!("{root}/scripts/check-chart.py")).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "chart check failed:\n{report}");
    assert!(report.contains("ValidatingAdmissionPolicy"), "{report}");
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
}
