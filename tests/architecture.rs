//! The folder layout is the architecture: the domain core (`crates/core`) holds no Kubernetes
//! and no HTTP types, and the process links exactly one rustls crypto provider.

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 7] = ["kube", "k8s_openapi", "k8s-openapi", "reqwest", "http", "hyper", "axum"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn mentions_crate(line: &str, krate: &str) -> bool {
    let line = line.trim_start();
    let krate = krate.replace('-', "_");
    let uses = |prefix: &str| {
        line.strip_prefix(prefix).is_some_and(|rest| {
            rest.starts_with(&format!("{krate}::"))
                || rest.starts_with(&format!("{krate};"))
                || rest.starts_with(&format!("{krate} "))
        })
    };
    uses("use ")
        || uses("pub use ")
        || uses("extern crate ")
        || uses("use ::")
        || line.contains(&format!(" {krate}::"))
        || line.contains(&format!("({krate}::"))
}

#[test]
fn the_domain_core_imports_no_kube_or_http_crate() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core");
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        if core.join(dir).is_dir() {
            rust_files(&core.join(dir), &mut files);
        }
    }
    assert!(!files.is_empty());
    let mut offenders = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for krate in FORBIDDEN {
                if mentions_crate(line, krate) {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "the core must not import kube/HTTP crates:\n{}", offenders.join("\n"));
}

#[test]
fn the_domain_core_depends_on_no_kube_or_http_crate() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/Cargo.toml")).unwrap();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line.contains("dependencies");
            continue;
        }
        if in_deps {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            assert!(!FORBIDDEN.contains(&name), "crates/core/Cargo.toml depends on {name}");
        }
    }
}

#[test]
fn the_checker_catches_an_import() {
    assert!(mentions_crate("use kube::Api;", "kube"));
    assert!(mentions_crate("    use reqwest::Client;", "reqwest"));
    assert!(mentions_crate("let c = http::Request::new(());", "http"));
    assert!(!mentions_crate("// the http adapter", "http"));
    assert!(!mentions_crate("use crate::kubernetes_words;", "kube"));
}

/// The operator binary links ring only (test-only crates such as kube-fake-client may differ).
#[test]
fn one_rustls_crypto_provider_is_linked() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "restore-operator", "-e", "normal", "--prefix", "none", "-f", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(tree.lines().any(|l| l.starts_with("ring ")), "ring is not linked");
    let other: Vec<_> = tree.lines().filter(|l| l.starts_with("aws-lc")).collect();
    assert!(other.is_empty(), "the operator links a second crypto provider: {other:?}");
}
