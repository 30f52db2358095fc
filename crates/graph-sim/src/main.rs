//! The `graph-sim` binary: runs the Microsoft Graph simulator for Intune with tenants, apps,
//! seed data, throttling and faults from flags or a JSON config, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use graph_sim::{AppCredential, FaultConfig, FederatedCredential, SimConfig, Simulator, Storm, ThrottleConfig};
use serde::Deserialize;

/// A stateful Microsoft Graph (/beta) simulator for Intune, for tests and demos of restore-operator.
///
/// It serves an Entra ID v2.0 token endpoint at {url}/{tenant}/oauth2/v2.0/token and the Graph API
/// at {url}/beta: the Intune collections restore-operator knows, /groups, and $batch. Point an
/// IntuneTenant's spec.graph.endpoint and spec.graph.authority at the printed URL. It keeps state
/// in memory only; use --dump to keep it.
#[derive(Debug, Parser)]
#[command(name = "graph-sim", version)]
struct Cli {
    /// Address to listen on. Keep it on loopback unless a container network needs otherwise.
    #[arg(long, env = "GRAPH_SIM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// JSON config with tenants, apps and groups:
    /// {"tenants":[{"id":"T","apps":[{"clientId":"C","secretEnv":"VAR"|"certificateFile":"cert.pem"|"federated":{"issuer":"..","subject":"..","signingCertificateFile":".."}}],"groups":["Name"],"scopeTags":["Name"]}]}
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// A tenant id to create (repeatable). Apps and groups given by flags are added to each.
    #[arg(long = "tenant", value_name = "ID")]
    tenants: Vec<String>,

    /// Client id of an app registered in every --tenant.
    #[arg(long, value_name = "ID", requires = "tenants")]
    client_id: Option<String>,

    /// Client secret of --client-id. Prefer the environment variable to the flag.
    #[arg(long, env = "GRAPH_SIM_CLIENT_SECRET", hide_env_values = true, requires = "client_id")]
    client_secret: Option<String>,

    /// PEM certificate of --client-id: client assertions signed by its key are accepted.
    #[arg(long, value_name = "FILE", requires = "client_id")]
    client_certificate: Option<PathBuf>,

    /// An Entra group to create in every --tenant (repeatable).
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,

    /// A native backup (folder with manifest.json, or its .tar.gz) to seed into --seed-tenant,
    /// keeping the backup's ids and creating the groups and foundations its items reference.
    #[arg(long = "seed", value_name = "PATH")]
    seed_dir: Option<PathBuf>,

    /// Tenant to seed (default: the first tenant).
    #[arg(long, value_name = "ID", requires = "seed_dir")]
    seed_tenant: Option<String>,

    /// Writes allowed per window, per app per tenant (Intune: 100).
    #[arg(long, default_value_t = 100)]
    throttle_writes: u32,

    /// Length of the throttling window in seconds (Intune: 20).
    #[arg(long, default_value_t = 20.0)]
    throttle_window_secs: f64,

    /// Disable write throttling.
    #[arg(long, conflicts_with_all = ["throttle_writes", "throttle_window_secs"])]
    no_throttle: bool,

    /// Collection page size when a client sends no $top.
    #[arg(long, default_value_t = 100)]
    page_size: usize,

    /// Page size of Settings Catalog settings (Graph: 25).
    #[arg(long, default_value_t = 25)]
    settings_page_size: usize,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime_secs: u64,

    /// Seed for object ids (deterministic GUIDs); random when unset.
    #[arg(long, value_name = "N")]
    id_seed: Option<u64>,

    /// A fixed RFC 3339 time for every server timestamp (deterministic dumps).
    #[arg(long, value_name = "TIME")]
    frozen_time: Option<String>,

    /// Seed of the fault generator: the same seed and request order give the same faults.
    #[arg(long, default_value_t = 0)]
    seed_rng: u64,

    /// Added latency per API request in milliseconds: N or MIN-MAX (uniform).
    #[arg(long, value_name = "MS[-MS]")]
    latency_ms: Option<String>,

    /// Share (0..1) of API requests answered 503 before they are handled.
    #[arg(long, default_value_t = 0.0)]
    rate_503: f64,

    /// Share (0..1) of applied writes answered 504 (the write happened; the answer says it timed out).
    #[arg(long, default_value_t = 0.0)]
    rate_504: f64,

    /// Share (0..1) of API requests answered 429 before they are handled.
    #[arg(long, default_value_t = 0.0)]
    rate_429: f64,

    /// Share (0..1) of API requests whose connection is dropped before they are handled.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,

    /// Share (0..1) of applied writes whose connection is dropped before the answer.
    #[arg(long, default_value_t = 0.0)]
    drop_after_write_rate: f64,

    /// Retry-After (seconds) sent with injected 429 and 503 answers; none when unset.
    #[arg(long, value_name = "SECS")]
    fault_retry_after: Option<u64>,

    /// Start with a storm: the first --storm-requests API calls fail with this status (429, 503, 504).
    #[arg(long, value_name = "STATUS", requires = "storm_requests")]
    storm_status: Option<u16>,

    /// Length of the storm in requests.
    #[arg(long, value_name = "N", requires = "storm_status")]
    storm_requests: Option<u32>,

    /// Retry-After (seconds) sent during the storm; none when unset.
    #[arg(long, value_name = "SECS", requires = "storm_status")]
    storm_retry_after: Option<u64>,

    /// Write the state of every tenant as JSON to this file on shutdown (Ctrl-C or SIGTERM).
    #[arg(long, value_name = "PATH")]
    dump: Option<PathBuf>,

    /// Serve the same dump live at GET /_sim/state.
    #[arg(long)]
    state_endpoint: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    tenants: Vec<TenantConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantConfig {
    id: String,
    #[serde(default)]
    apps: Vec<AppConfig>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    scope_tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppConfig {
    client_id: String,
    secret_env: Option<String>,
    certificate_file: Option<PathBuf>,
    federated: Option<FederatedConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FederatedConfig {
    issuer: String,
    subject: String,
    signing_certificate_file: PathBuf,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "graph_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(error) = run(Cli::parse()).await {
        eprintln!("graph-sim: {error}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    if !cli.listen.ip().is_loopback() {
        tracing::warn!(listen = %cli.listen, "listening beyond loopback: anyone who can reach it can use the simulator");
    }
    let config = SimConfig {
        listen: cli.listen,
        throttle: (!cli.no_throttle).then(|| ThrottleConfig {
            writes: cli.throttle_writes,
            window: Duration::from_secs_f64(cli.throttle_window_secs.max(0.001)),
        }),
        page_size: cli.page_size,
        settings_page_size: cli.settings_page_size,
        token_lifetime: Duration::from_secs(cli.token_lifetime_secs),
        id_seed: cli.id_seed,
        frozen_time: cli.frozen_time.clone(),
        faults: fault_config(&cli)?,
        state_endpoint: cli.state_endpoint,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await?;
    let mut tenant_ids: Vec<String> = Vec::new();
    if let Some(path) = &cli.config {
        let file: ConfigFile =
            serde_json::from_slice(&std::fs::read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        for tenant in file.tenants {
            sim.add_tenant(&tenant.id);
            for app in tenant.apps {
                for credential in app_credentials(&app)? {
                    sim.register_app(&tenant.id, &app.client_id, credential)?;
                }
            }
            for group in &tenant.groups {
                sim.add_group(&tenant.id, group)?;
            }
            for tag in &tenant.scope_tags {
                sim.add_scope_tag(&tenant.id, tag)?;
            }
            tenant_ids.push(tenant.id);
        }
    }
    for tenant in &cli.tenants {
        sim.add_tenant(tenant);
        if let Some(client_id) = &cli.client_id {
            if let Some(secret) = &cli.client_secret {
                sim.register_app(tenant, client_id, AppCredential::Secret(secret.clone()))?;
            }
            if let Some(path) = &cli.client_certificate {
                sim.register_app(tenant, client_id, AppCredential::Certificate(std::fs::read_to_string(path)?))?;
            }
        }
        for group in &cli.groups {
            sim.add_group(tenant, group)?;
        }
        tenant_ids.push(tenant.clone());
    }
    if tenant_ids.is_empty() {
        return Err("no tenant: pass --tenant ID (with --client-id and a credential) or --config FILE".into());
    }
    if let Some(dir) = &cli.seed_dir {
        let tenant = cli.seed_tenant.clone().unwrap_or_else(|| tenant_ids[0].clone());
        let loaded = restore_backup::native::read_path(dir, &restore_backup::Limits::default())?;
        for finding in &loaded.findings {
            tracing::warn!(item = %finding.item, "seed backup: {}", finding.message);
        }
        let summary = sim.seed(&tenant, &loaded.set)?;
        tracing::info!(tenant, items = summary.items, groups = summary.groups, "seeded from {}", dir.display());
    }
    let shutdown = ShutdownSignal::install()?;
    let mut banner = format!("graph-sim listening on {}\n", sim.base_url());
    banner += &format!("  graph endpoint: {}  (API at {}/beta)\n", sim.base_url(), sim.base_url());
    banner += &format!("  authority:      {}\n", sim.authority_url());
    for tenant in &tenant_ids {
        banner += &format!("  tenant {tenant}: token endpoint {}/{tenant}/oauth2/v2.0/token\n", sim.authority_url());
    }
    {
        use std::io::Write;
        // A closed stdout (the reader went away) must not stop the simulator.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    shutdown.wait().await;
    if let Some(path) = &cli.dump {
        std::fs::write(path, serde_json::to_vec_pretty(&sim.dump_all())?)?;
        eprintln!("graph-sim: state written to {}", path.display());
    }
    Ok(())
}

fn app_credentials(app: &AppConfig) -> Result<Vec<AppCredential>, BoxError> {
    let mut credentials = Vec::new();
    if let Some(var) = &app.secret_env {
        let secret =
            std::env::var(var).map_err(|_| format!("app {}: environment variable {var} is not set", app.client_id))?;
        credentials.push(AppCredential::Secret(secret));
    }
    if let Some(path) = &app.certificate_file {
        credentials.push(AppCredential::Certificate(std::fs::read_to_string(path)?));
    }
    if let Some(fed) = &app.federated {
        credentials.push(AppCredential::Federated(FederatedCredential {
            issuer: fed.issuer.clone(),
            subject: fed.subject.clone(),
            signing_certificate_pem: std::fs::read_to_string(&fed.signing_certificate_file)?,
        }));
    }
    if credentials.is_empty() {
        return Err(format!("app {}: give secretEnv, certificateFile or federated", app.client_id).into());
    }
    Ok(credentials)
}

fn fault_config(cli: &Cli) -> Result<FaultConfig, BoxError> {
    let rates = [cli.rate_503, cli.rate_504, cli.rate_429, cli.drop_rate, cli.drop_after_write_rate];
    if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
        return Err("fault rates must be between 0 and 1".into());
    }
    let (latency_min_ms, latency_max_ms) = match &cli.latency_ms {
        None => (0, 0),
        Some(text) => {
            let (low, high) = text.split_once('-').unwrap_or((text, text));
            let parse =
                |s: &str| s.trim().parse::<u64>().map_err(|_| format!("--latency-ms {text:?}: write N or MIN-MAX"));
            (parse(low)?, parse(high)?)
        }
    };
    Ok(FaultConfig {
        seed: cli.seed_rng,
        latency_min_ms,
        latency_max_ms,
        rate_503: cli.rate_503,
        rate_504: cli.rate_504,
        rate_429: cli.rate_429,
        retry_after_secs: cli.fault_retry_after,
        drop_rate: cli.drop_rate,
        drop_after_write_rate: cli.drop_after_write_rate,
        storm: match (cli.storm_status, cli.storm_requests) {
            (Some(status), Some(requests)) => Some(Storm { status, requests, retry_after_secs: cli.storm_retry_after }),
            _ => None,
        },
    })
}

/// Ctrl-C or SIGTERM, registered before the banner so an early signal still dumps state.
struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> Result<Self, BoxError> {
        Ok(ShutdownSignal {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let mut term = self.term;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
