//! `restore-operator preview` as users run it: the real binary, manifests on disk, a tenant served by the
//! in-process Graph simulator — its output, its exit codes, its digest (the controller's for the same
//! inputs), every source kind (ConfigMap, HTTPS url, local folder or archive), and no secret in sight.

mod sim_support;

use std::path::PathBuf;
use std::process::Output;

use graph_sim::SimHandle;
use restore_backup::native;
use restore_backup::source::{ClusterObjects, ConfigMapData, FluxLookup, config_map_data};
use restore_core::api::{
    ArtifactKind, ArtifactRef, ConfigMapSourceRef, Phase, RestoreRunSpec, RestoreRunStatus, SourceSpec,
};
use restore_core::backup::BackupSet;
use restore_core::canonical::sha256_digest;
use restore_core::engine::RestoreTarget;
use restore_core::wizard::{Fact, TenantObservation, TenantView, WizardInput, advance, plan_inputs_digest};
use restore_operator::cli::demo_backup::{GROUP_ALL, GROUP_FINANCE, PortalAdmin, SimTenant};
use restore_operator::kube::{IntuneTenant, RestoreRun};
use restore_operator::runner::{SourceContext, StepRunner};
use serde_json::{Value, json};
use sim_support::*;

const SECRET_NAME: &str = "graph-app";

/// A seeded tenant, its backup, and a folder of manifests for it.
struct Setup {
    sim: SimHandle,
    tenant: SimTenant,
    backup: BackupSet,
    dir: tempfile::TempDir,
}

impl Setup {
    /// The sample tenant, backed up, then drifted by one edit.
    async fn new() -> Setup {
        let (sim, mut tenant, _, backup) = backed_up(9).await;
        tenant.label = "Contoso Production".into();
        let admin = PortalAdmin::sign_in(&sim, &tenant).await.unwrap();
        let custom = item(&backup, "deviceConfiguration", "Win10 custom 00");
        let path = format!("{}/{}", col("deviceConfiguration"), custom.id);
        admin.call("PATCH", &path, Some(&json!({"description": "local"}))).await.unwrap();
        Setup { sim, tenant, backup, dir: tempfile::tempdir().unwrap() }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The IntuneTenant manifest of `tenant`, and (unless `with_secret` is false) its Secret.
    fn tenant_file(&self, tenant: &SimTenant, with_secret: bool) -> PathBuf {
        let mut object = IntuneTenant::new("contoso-production", tenant.spec(&self.sim, SECRET_NAME));
        object.metadata.namespace = Some(NAMESPACE.into());
        let mut text = serde_yaml::to_string(&object).unwrap();
        if with_secret {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {SECRET_NAME}, namespace: {NAMESPACE}}}\n\
                 stringData:\n  clientSecret: {}\n",
                tenant.secret.expose_secret()
            ));
        }
        self.write(&format!("tenant-{}.yaml", tenant.tenant_id), &text)
    }

    /// A RestoreRun manifest with `source`.
    fn run_file(&self, name: &str, source: SourceSpec) -> PathBuf {
        let mut spec = dry_run_spec();
        spec.tenant_ref.name = "contoso-production".into();
        spec.source = source;
        let mut run = RestoreRun::new(name, spec);
        run.metadata.namespace = Some(NAMESPACE.into());
        self.write(&format!("{name}.yaml"), &serde_yaml::to_string(&run).unwrap())
    }

    /// The backup as a ConfigMap manifest (item files under `data`).
    fn config_map_file(&self) -> PathBuf {
        let data = config_map_data(&self.backup).unwrap();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": BACKUP_CONFIG_MAP, "namespace": NAMESPACE}, "data": data});
        self.write("backup-configmap.yaml", &serde_yaml::to_string(&cm).unwrap())
    }
}

fn config_map_source() -> SourceSpec {
    SourceSpec {
        config_map_ref: Some(ConfigMapSourceRef { name: BACKUP_CONFIG_MAP.into(), key: None }),
        ..SourceSpec::default()
    }
}

/// Runs the binary (the simulator keeps serving while it runs).
async fn preview(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_restore-operator"));
    command.arg("preview").env("RUST_LOG", "info").env_remove("RESTORE_OPERATOR_LOG_FORMAT");
    for arg in args {
        command.arg(arg);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_secret(output: &Output, tenant: &SimTenant) {
    for stream in [&output.stdout, &output.stderr] {
        assert!(!text(stream).contains(tenant.secret.expose_secret()), "the client secret was printed");
    }
}

#[tokio::test]
async fn preview_prints_each_phase_the_changes_the_digest_and_how_to_approve() {
    let s = Setup::new().await;
    let (run, cm, tenant) =
        (s.run_file("restore", config_map_source()), s.config_map_file(), s.tenant_file(&s.tenant, true));
    let output = preview(&[&"-f", &run, &"-f", &cm, &"--tenant", &tenant, &"--diff"], &[]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", text(&output.stderr));

    let mut at = 0;
    for phase in ["ResolvingSource", "Scoping", "Checking", "Previewing", "Previewed"] {
        let found =
            stdout[at..].find(phase).unwrap_or_else(|| panic!("phase {phase} missing or out of order:\n{stdout}"));
        at += found;
    }
    assert!(stdout.contains("RestoreRun intune/restore → IntuneTenant contoso-production \"Contoso Production\""));
    assert!(stdout.contains("0 to create, 1 to update"), "{stdout}");
    assert!(stdout.contains("update      deviceConfiguration/Win10 custom 00 — description"), "{stdout}");
    assert!(stdout.contains("-  \"description\": \"local\",\n+  \"description\": \"OMA settings\","), "{stdout}");
    assert!(stdout.contains("Checks: 0 blocker(s)"), "{stdout}");
    let digest = stdout.lines().find_map(|l| l.strip_prefix("Digest  ")).unwrap().split(' ').next().unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    assert!(stdout.contains(&format!(
        "kubectl patch restorerun restore -n intune --type merge -p '{{\"spec\":{{\"dryRun\":false,\"confirmation\":\
         {{\"reviewedImpact\":true,\"tenant\":\"Contoso Production\",\"previewDigest\":\"{digest}\""
    )), "{stdout}");
    assert_no_secret(&output, &s.tenant);
}

/// A cluster holding one ConfigMap: what the controller's adapter would read.
struct OneConfigMap(ConfigMapData);

impl ClusterObjects for OneConfigMap {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, String> {
        Ok((namespace == NAMESPACE && name == BACKUP_CONFIG_MAP).then(|| self.0.clone()))
    }

    async fn flux_artifact(&self, _: ArtifactKind, _: &str, _: &str) -> Result<FluxLookup, String> {
        Ok(FluxLookup::NotFound)
    }
}

/// The digest the controller would put in status: `advance` and `StepRunner`, step by step.
async fn controller_digest(s: &Setup, spec: &RestoreRunSpec) -> String {
    let client = s.tenant.client(&s.sim).unwrap();
    let cluster = OneConfigMap(ConfigMapData { data: config_map_data(&s.backup).unwrap(), ..Default::default() });
    let fetcher = fetcher();
    let source = SourceContext { namespace: NAMESPACE, cluster: &cluster, fetcher: &fetcher };
    let target = RestoreTarget { tenant_id: s.tenant.tenant_id.clone(), environment: s.tenant.environment };
    let tenant = TenantObservation::Present(TenantView {
        id: s.tenant.tenant_id.clone(),
        label: s.tenant.label.clone(),
        environment: s.tenant.environment,
        ready: true,
        not_ready_message: None,
    });
    let mut runner = StepRunner::new();
    let mut status = RestoreRunStatus::default();
    let mut fact: Option<Fact> = None;
    loop {
        let decision = advance(WizardInput {
            awaited_appeared: false,
            run_name: "restore",
            spec,
            generation: 1,
            status: &status,
            tenant: &tenant,
            fact: fact.take(),
            now: jiff::Timestamp::now(),
        });
        status = decision.status;
        let Some(step) = decision.step else { break };
        let done = runner.run_step(step, spec, &source, &client, &target).await;
        fact = Some(Fact { plan: plan_inputs_digest(spec), outcome: done.outcome });
    }
    assert_eq!(status.phase, Some(Phase::Previewed));
    status.preview.unwrap().digest
}

#[tokio::test]
async fn json_output_holds_the_report_and_the_digest_the_controller_computes_for_the_same_inputs() {
    let s = Setup::new().await;
    let (run, cm, tenant) =
        (s.run_file("restore", config_map_source()), s.config_map_file(), s.tenant_file(&s.tenant, false));
    let env = [("CONTOSO_SECRET", s.tenant.secret.expose_secret())];
    let args: [&dyn AsRef<std::ffi::OsStr>; 9] =
        [&"-f", &run, &"-f", &cm, &"--tenant", &tenant, &"--client-secret-env", &"CONTOSO_SECRET", &"-ojson"];
    let output = preview(&args, &env).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let document: Value = serde_json::from_slice(&output.stdout).expect("stdout holds only JSON");
    assert!(text(&output.stderr).contains("Previewed"), "phase lines go to stderr");
    assert_eq!((document["phase"].as_str(), document["approvable"].as_bool()), (Some("Previewed"), Some(true)));
    let digest = document["digest"].as_str().unwrap();
    assert_eq!(document["status"]["preview"]["digest"], digest);
    assert_eq!(document["report"]["counts"]["update"], 1);
    assert_eq!(document["report"]["items"].as_array().unwrap().len(), s.backup.items.len());
    let report: restore_core::engine::preview::PreviewReport =
        serde_json::from_value(document["report"].clone()).unwrap();
    assert_eq!(report.digest(), digest, "the report hashes to the printed digest");

    let mut spec = dry_run_spec();
    spec.tenant_ref.name = "contoso-production".into();
    spec.source = config_map_source();
    assert_eq!(controller_digest(&s, &spec).await, digest);
    assert_no_secret(&output, &s.tenant);
}

#[tokio::test]
async fn html_output_is_one_self_contained_page_with_the_digest_the_json_output_prints() {
    let s = Setup::new().await;
    let (run, cm, tenant) =
        (s.run_file("restore", config_map_source()), s.config_map_file(), s.tenant_file(&s.tenant, false));
    let env = [("CONTOSO_SECRET", s.tenant.secret.expose_secret())];
    let args = |format: &'static &'static str| -> [&dyn AsRef<std::ffi::OsStr>; 10] {
        [&"-f", &run, &"-f", &cm, &"--tenant", &tenant, &"--client-secret-env", &"CONTOSO_SECRET", &"-o", format]
    };
    let html = preview(&args(&"html"), &env).await;
    assert_eq!(html.status.code(), Some(0), "{}", text(&html.stderr));
    let page = text(&html.stdout);
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"), "stdout holds only the page");
    assert!(text(&html.stderr).contains("Previewed"), "phase lines go to stderr");
    let digest = printed_digest(&preview(&args(&"json"), &env).await);
    assert!(page.contains(&format!("id=\"digest\">{digest}</span>")), "the page shows the digest {digest}");
    assert!(!page.contains("https://") && !page.contains("http://"), "no outside asset");
    assert_no_secret(&html, &s.tenant);
}

fn printed_digest(output: &Output) -> String {
    let document: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}\n{}", text(&output.stdout), text(&output.stderr)));
    document["digest"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_https_url_a_flux_artifact_a_configmap_and_a_local_folder_or_archive_preview_to_the_same_digest() {
    let s = Setup::new().await;
    let tenant = s.tenant_file(&s.tenant, true);
    let archive = native::to_tar_gz(&s.backup).unwrap();
    let sha = sha256_digest(&archive)["sha256:".len()..].to_string();
    let (url, ca) = serve_over_https("/contoso/backup.tar.gz", archive.clone()).await;
    let ca_file = s.write("ca.pem", &ca);
    let url_run = s.run_file(
        "from-url",
        SourceSpec { url: Some(url.clone()), sha256: Some(sha.clone()), ..SourceSpec::default() },
    );
    // The test server listens on loopback, which only an allowed CIDR lets a download reach.
    let loopback: [&dyn AsRef<std::ffi::OsStr>; 2] = [&"--allow-source-cidr", &"127.0.0.0/8"];
    let by_url = preview(
        &[&"-f", &url_run, &"-f", &tenant, &"--extra-ca-file", &ca_file, &"-o", &"json", loopback[0], loopback[1]],
        &[],
    )
    .await;
    let digest = printed_digest(&by_url);

    let flux = s.write(
        "flux.yaml",
        &format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: intune-backups, namespace: flux-system}}\n\
             status:\n  artifact: {{url: \"{url}\", digest: \"sha256:{sha}\", revision: \"main@sha1:0a1b\"}}\n"
        ),
    );
    let flux_source = SourceSpec {
        artifact_ref: Some(ArtifactRef {
            kind: ArtifactKind::GitRepository,
            name: "intune-backups".into(),
            namespace: Some("flux-system".into()),
        }),
        ..SourceSpec::default()
    };
    let flux_run = s.run_file("from-flux", flux_source);
    // The GitRepository lives in flux-system, the run elsewhere: allowed explicitly.
    let flux_args: [&dyn AsRef<std::ffi::OsStr>; 12] = [
        &"-f",
        &flux_run,
        &"-f",
        &flux,
        &"-f",
        &tenant,
        &"--extra-ca-file",
        &ca_file,
        &"-ojson",
        loopback[0],
        loopback[1],
        &"--allow-cross-namespace-refs",
    ];
    assert_eq!(printed_digest(&preview(&flux_args, &[]).await), digest);

    let cm_run = s.run_file("from-configmap", config_map_source());
    let cm = s.config_map_file();
    assert_eq!(
        printed_digest(&preview(&[&"-f", &cm_run, &"-f", &cm, &"-f", &tenant, &"-o", &"json"], &[]).await),
        digest
    );

    let folder = s.dir.path().join("backup-folder");
    native::write_dir(&s.backup, &folder).unwrap();
    let archive_file = s.dir.path().join("backup.tar.gz");
    std::fs::write(&archive_file, &archive).unwrap();
    for local in [&folder, &archive_file] {
        let output = preview(&[&"-f", &url_run, &"-f", &tenant, &"--backup", local, &"-o", &"json"], &[]).await;
        assert_eq!(printed_digest(&output), digest, "--backup {}", local.display());
    }

    // A digest that does not match the archive: the run fails for good, exit 1.
    let mismatch = s.run_file(
        "wrong-digest",
        SourceSpec { url: Some(url.clone()), sha256: Some("0".repeat(64)), ..SourceSpec::default() },
    );
    let refused =
        preview(&[&"-f", &mismatch, &"-f", &tenant, &"--extra-ca-file", &ca_file, loopback[0], loopback[1]], &[]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains(&format!("sha256:{}", "0".repeat(64))), "{}", text(&refused.stderr));

    // Without the CA the download is refused: an error, exit 1.
    let untrusted = preview(&[&"-f", &url_run, &"-f", &tenant, loopback[0], loopback[1]], &[]).await;
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(text(&untrusted.stderr).contains("error: preview:"), "{}", text(&untrusted.stderr));
}

#[tokio::test]
async fn blockers_exit_2_and_errors_exit_1_and_the_secret_is_never_printed() {
    let s = Setup::new().await;
    // Another tenant lacking the "Pilot" group: the backup's assignments cannot be mapped.
    let other = SimTenant::create(&s.sim, "fabrikam", "Fabrikam", restore_core::api::Environment::Staging).unwrap();
    for group in [GROUP_ALL, GROUP_FINANCE] {
        s.sim.add_group("fabrikam", group).unwrap();
    }
    let (run, cm) = (s.run_file("restore", config_map_source()), s.config_map_file());
    let blocked = preview(&[&"-f", &run, &"-f", &cm, &"--tenant", &s.tenant_file(&other, true)], &[]).await;
    let stdout = text(&blocked.stdout);
    assert_eq!(blocked.status.code(), Some(2), "{stdout}\n{}", text(&blocked.stderr));
    assert!(stdout.contains("Blocked") && stdout.contains("MissingGroup") && stdout.contains("Pilot"), "{stdout}");
    assert!(!stdout.contains("kubectl patch"), "a blocked preview offers no approval");
    assert_no_secret(&blocked, &other);

    // A wrong secret: Entra refuses it; the message names the tenant, not the secret.
    let mut wrong = s.tenant.clone();
    wrong.secret = restore_graph::SecretString::new("wrong-secret-value-123");
    let refused = preview(&[&"-f", &run, &"-f", &cm, &"--tenant", &s.tenant_file(&wrong, true)], &[]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("tenant contoso"), "{}", text(&refused.stderr));
    assert_no_secret(&refused, &wrong);

    // The tenant's Secret not given.
    let no_secret = preview(&[&"-f", &run, &"-f", &cm, &"--tenant", &s.tenant_file(&s.tenant, false)], &[]).await;
    assert_eq!(no_secret.status.code(), Some(1));
    assert!(text(&no_secret.stderr).contains("the Secret intune/graph-app is not in the manifests given"));

    // An invalid spec (a malformed sha256): the run fails for good, exit 1.
    let bad_url = s.run_file(
        "bad-digest",
        SourceSpec {
            url: Some("https://127.0.0.1:9/none.tar.gz".into()),
            sha256: Some("0".repeat(63)),
            ..SourceSpec::default()
        },
    );
    let invalid = preview(&[&"-f", &bad_url, &"--tenant", &s.tenant_file(&s.tenant, true)], &[]).await;
    assert_eq!(invalid.status.code(), Some(1));
    assert!(text(&invalid.stderr).contains("sha256"), "{}", text(&invalid.stderr));
}

#[tokio::test]
async fn finding_8_escape_sequences_from_the_backup_never_reach_the_terminal() {
    let mut s = Setup::new().await;
    // A name that, printed raw, rewinds the line and paints a harmless-looking "unchanged".
    let forged = "Set wallpaper\r\u{1b}[2K\u{1b}[32munchanged\u{1b}[0m";
    let item = s
        .backup
        .items
        .iter_mut()
        .find(|i| i.item_type == "deviceConfiguration" && i.display_name != "Win10 custom 00")
        .expect("a second device configuration");
    item.display_name = forged.to_string();
    item.resource["displayName"] = json!(forged);
    let (run, cm, tenant) =
        (s.run_file("restore", config_map_source()), s.config_map_file(), s.tenant_file(&s.tenant, true));
    let output = preview(&[&"-f", &run, &"-f", &cm, &"--tenant", &tenant, &"--diff"], &[]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for (stream, shown) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!shown.contains('\u{1b}') && !shown.contains('\r'), "{stream} carries a raw control character");
    }
    assert!(stdout.contains("Set wallpaper\\r^[[2K^[[32munchanged^[[0m"), "the name is shown, escaped:\n{stdout}");
}
