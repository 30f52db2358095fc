//! `kube-emulator`: runs the Kubernetes API emulator for humans and scripts, loads CRDs,
//! writes a kubeconfig for kubectl, and serves until interrupted.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kube_emulator::{Emulator, EmulatorConfig};

/// Serve a Kubernetes API emulator on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "kube-emulator", version)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Directory of CRD YAML files to register at start.
    #[arg(long)]
    crds: Option<PathBuf>,
    /// Where to write a kubeconfig pointing at the emulator.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Changes kept for watches and paged lists; older resourceVersions answer 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 10)]
    bookmark_seconds: u64,
    /// Enforce RBAC on requests (the admin, i.e. a request without impersonation, may do anything).
    #[arg(long)]
    rbac: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let config = EmulatorConfig {
        history_limit: args.history,
        bookmark_interval: Duration::from_secs(args.bookmark_seconds.max(1)),
        rbac: args.rbac,
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::start_on(&format!("127.0.0.1:{}", args.port), config).await {
        Ok(e) => e,
        Err(error) => {
            eprintln!("kube-emulator: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &args.crds
        && let Err(error) = emulator.load_crds_dir(dir)
    {
        eprintln!("kube-emulator: cannot load CRDs from {}: {error}", dir.display());
        return std::process::ExitCode::FAILURE;
    }
    if let Some(path) = &args.kubeconfig
        && let Err(error) = emulator.write_kubeconfig(path)
    {
        eprintln!("kube-emulator: {error}");
        return std::process::ExitCode::FAILURE;
    }
    println!("kube-emulator serving on {}", emulator.base_url());
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
