//! `restore-operator backup`: captures every supported Intune type of a tenant into the native
//! format (a folder or a `.tar.gz`), deterministically, with progress on stderr.

use std::path::PathBuf;

use restore_backup::capture::capture;
use restore_backup::native;
use restore_core::backup::BackupTenant;
use restore_graph::GraphClient;

use super::local_objects::LocalObjects;
use super::preview::credentials;

/// Options of `restore-operator backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The IntuneTenant manifest of the tenant to capture.
    #[arg(long)]
    pub tenant: PathBuf,
    /// More manifests, e.g. the Secret the tenant's auth references.
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Take the client secret from this environment variable instead of a Secret manifest.
    #[arg(long)]
    pub client_secret_env: Option<String>,
    /// Where to write: a folder, or a file ending in `.tar.gz`.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Capture time recorded in the manifest (RFC 3339). Default: SOURCE_DATE_EPOCH, else now.
    /// The same tenant state and time give a byte-identical backup.
    #[arg(long)]
    pub captured_at: Option<String>,
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupCommandError {
    /// The manifests could not be read.
    #[error("{0}")]
    Manifests(String),
    /// The tenant or its credentials are unusable.
    #[error("{0}")]
    Tenant(String),
    /// Reading the tenant failed.
    #[error("capture failed: {0}")]
    Capture(String),
    /// Writing the backup failed.
    #[error("writing {path}: {message}")]
    Write {
        /// The output path.
        path: String,
        /// Cause.
        message: String,
    },
}

fn capture_time(arg: Option<&str>) -> Result<jiff::Timestamp, BackupCommandError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| BackupCommandError::Manifests(format!("{what}: {e}"));
    if let Some(text) = arg {
        return text.parse().map_err(|e| bad("--captured-at must be RFC 3339", &e));
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs: i64 = epoch.trim().parse().map_err(|e| bad("SOURCE_DATE_EPOCH", &e))?;
        return jiff::Timestamp::from_second(secs).map_err(|e| bad("SOURCE_DATE_EPOCH", &e));
    }
    Ok(jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or_else(|_| jiff::Timestamp::now()))
}

/// Captures the tenant and writes the backup; returns a one-line summary.
pub async fn run(args: BackupArgs) -> Result<String, BackupCommandError> {
    let mut objects = LocalObjects::new();
    for file in std::iter::once(&args.tenant).chain(&args.files) {
        objects.load_file(file).map_err(|e| BackupCommandError::Manifests(e.to_string()))?;
    }
    let tenant = match objects.tenants() {
        [tenant] => tenant.clone(),
        [] => return Err(BackupCommandError::Manifests(format!("{} holds no IntuneTenant", args.tenant.display()))),
        _ => return Err(BackupCommandError::Manifests("give exactly one IntuneTenant".into())),
    };
    let namespace = tenant.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let credentials = credentials(&tenant.spec, &namespace, &objects, args.client_secret_env.as_deref())
        .map_err(|e| BackupCommandError::Tenant(e.to_string()))?;
    let client = GraphClient::new(&tenant.spec, credentials, super::preview::cli_graph_options())
        .map_err(|e| BackupCommandError::Tenant(e.to_string()))?;
    let captured_at = capture_time(args.captured_at.as_deref())?;
    let info = BackupTenant { id: tenant.spec.tenant_id.clone(), label: tenant.spec.display_name.clone() };
    let set = capture(&client, info, captured_at, |event| eprintln!("{event}"))
        .await
        .map_err(|e| BackupCommandError::Capture(e.to_string()))?;
    let write_error = |e: restore_backup::BackupError| BackupCommandError::Write {
        path: args.output.display().to_string(),
        message: e.to_string(),
    };
    let manifest = native::write_path(&set, &args.output).map_err(write_error)?;
    let summary = format!(
        "captured {} item(s) of tenant {} into {}",
        manifest.items.len(),
        tenant.spec.tenant_id,
        args.output.display()
    );
    let hashed = archive_sha256(&args.output).map_err(|e| BackupCommandError::Write {
        path: args.output.display().to_string(),
        message: format!("hashing the archive: {e}"),
    })?;
    match hashed {
        Some(hex) => {
            // stdout carries only the line to paste under spec.source (next to its url).
            println!("sha256: {hex}");
            Ok(format!("{summary}; its SHA-256 (printed on stdout) goes into spec.source.sha256"))
        }
        None => Ok(format!(
            "{summary}; a folder has no archive digest: use it as a configMapRef source, or write NAME.tar.gz \
             to get the SHA-256 for spec.source.sha256"
        )),
    }
}

/// The SHA-256 (lower-case hex, as `spec.source.sha256` takes it) of the archive at `path`, or
/// `None` when the backup was written as a folder. It is the digest of the file's bytes — what
/// the operator checks after downloading `spec.source.url` — not the backup's content digest.
pub fn archive_sha256(path: &std::path::Path) -> std::io::Result<Option<String>> {
    if path.is_dir() {
        return Ok(None);
    }
    let digest = restore_core::canonical::sha256_digest(&std::fs::read(path)?);
    Ok(Some(digest.trim_start_matches("sha256:").to_string()))
}
