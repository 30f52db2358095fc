//! Hostile backups and sources cost one load, never the process: one test per finding of issue 11
//! that lives in the backup adapter, with memory measured by a counting allocator in this binary.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

use restore_backup::fetch::{FetchPolicy, Fetcher, Schemes};
use restore_backup::source::{ArtifactInfo, ConfigMapData, FluxLookup, load_local, resolve};
use restore_backup::{BackupError, Limits, Loaded, native};
use restore_core::api::{ArtifactKind, ArtifactRef, BackupFormat, ConfigMapSourceRef, SourceSpec};
use restore_core::canonical::sha256_digest;
use support::{FakeCluster, HANG, REDIRECT, serve_files};

/// Counts live heap bytes, remembers the peak, and refuses to go past [`HARD_CAP`]: a test whose
/// check was removed aborts instead of taking the machine's memory.
struct CountingAllocator;

const HARD_CAP: usize = 1 << 30;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if now > HARD_CAP {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(now, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same layout as asked of us.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Tests measure one at a time.
static MEASURING: Mutex<()> = Mutex::const_new(());

/// What a piece of work cost: peak heap above the live bytes at its start, and bytes allocated.
#[derive(Debug)]
struct Cost {
    peak_bytes: usize,
    allocated_bytes: u64,
    #[expect(dead_code, reason = "printed with the figures, never asserted on")]
    elapsed: Duration,
}

async fn measured<T>(work: impl std::future::Future<Output = T>) -> (T, Cost) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let allocated = ALLOCATED.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    let out = work.await;
    let cost = Cost {
        peak_bytes: PEAK.load(Ordering::Relaxed).saturating_sub(base),
        allocated_bytes: ALLOCATED.load(Ordering::Relaxed) - allocated,
        elapsed: started.elapsed(),
    };
    (out, cost)
}

const MIB: usize = 1024 * 1024;

fn tar_gz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = files.iter().map(|(p, b)| (p.to_string(), b.clone())).collect();
    native::tar_gz_of(&files).unwrap()
}

/// Loads `archive` as a RestoreRun would: a ConfigMap's binaryData, through `resolve`.
async fn load_archive(archive: Vec<u8>, format: BackupFormat, fetcher: &Fetcher) -> Result<Loaded, BackupError> {
    let mut cluster = FakeCluster::default();
    let data = ConfigMapData { binary_data: BTreeMap::from([("b.tar.gz".into(), archive)]), ..Default::default() };
    cluster.config_maps.insert(("ns".into(), "backup".into()), data);
    let spec = SourceSpec {
        config_map_ref: Some(ConfigMapSourceRef { name: "backup".into(), key: Some("b.tar.gz".into()) }),
        format,
        ..SourceSpec::default()
    };
    resolve(&spec, "ns", &cluster, fetcher).await
}

fn fetcher() -> Fetcher {
    Fetcher::with_extra_roots(None, Limits::default()).unwrap()
}

/// `n` pseudo-random decimal numbers: JSON that does not compress away.
fn numbers(n: usize) -> String {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x % 10_000_000).to_string());
    }
    out.join(",")
}

fn alias_bomb(n: usize) -> Vec<u8> {
    let values = vec!["1"; n].join(",");
    let aliases = vec!["*a"; n].join(",");
    format!("displayName: bomb\na: &a [{values}]\nb: [{aliases}]\n").into_bytes()
}

#[tokio::test]
async fn finding_1_yaml_alias_bomb_is_refused_within_bounded_memory() {
    let _one = MEASURING.lock().await;
    // One anchor of N values and N aliases to it: N² values once expanded (4·10⁸ here).
    let archive = tar_gz(&[("Filters/bomb.yaml", alias_bomb(20_000))]);
    assert!(archive.len() < 4096, "the hostile archive is tiny: {} bytes", archive.len());
    let fetcher = fetcher();
    let (result, cost) = measured(load_archive(archive, BackupFormat::IntuneCd, &fetcher)).await;
    let err = result.unwrap_err();
    assert_eq!(err.class(), "TooManyValues", "{err}");
    assert!(err.to_string().contains("Filters/bomb.yaml"), "{err}");
    eprintln!("finding 1, value alias bomb: {cost:?}");
    assert!(cost.peak_bytes < 64 * MIB, "peak {} bytes", cost.peak_bytes);

    // The same with one long string and many aliases to it: few values, huge strings.
    let long = "y".repeat(64 * 1024);
    let aliases = vec!["*s"; 4000].join(",");
    let strings = format!("displayName: bomb\ns: &s \"{long}\"\nb: [{aliases}]\n").into_bytes();
    let (result, cost) =
        measured(load_archive(tar_gz(&[("Filters/strings.yaml", strings)]), BackupFormat::IntuneCd, &fetcher)).await;
    let err = result.unwrap_err();
    assert_eq!(err.class(), "StringExpansion", "{err}");
    eprintln!("finding 1, string alias bomb: {cost:?}");
    assert!(cost.peak_bytes < 64 * MIB, "peak {} bytes", cost.peak_bytes);
}

#[tokio::test]
async fn finding_2_json_amplification_is_bounded_by_a_small_multiple_of_the_largest_item() {
    let _one = MEASURING.lock().await;
    // ~4 MiB of numbers: half a million values, refused while parsing.
    let fetcher = fetcher();
    let many = format!("{{\"displayName\": \"n\", \"data\": [{}]}}", numbers(500_000)).into_bytes();
    assert!(many.len() < 4 * MIB);
    let (result, cost) =
        measured(load_archive(tar_gz(&[("Filters/numbers.json", many)]), BackupFormat::IntuneCd, &fetcher)).await;
    let err = result.unwrap_err();
    assert_eq!(err.class(), "TooManyValues", "{err}");
    eprintln!("finding 2, refused item: {cost:?}");
    assert!(cost.peak_bytes < 48 * MIB, "peak {} bytes", cost.peak_bytes);

    // A large item within every limit loads, and costs a small multiple of its size.
    let rows: Vec<String> =
        numbers(60_000).split(',').map(|n| format!("{{\"k\": \"{n:0>40}\", \"n\": {n}}}")).collect();
    let item = format!("{{\"displayName\": \"big\", \"rows\": [{}]}}", rows.join(",")).into_bytes();
    let size = item.len();
    let archive = tar_gz(&[("Filters/big.json", item)]);
    let (result, cost) = measured(load_archive(archive, BackupFormat::IntuneCd, &fetcher)).await;
    let loaded = result.unwrap();
    assert_eq!(loaded.set.items.len(), 1);
    let ratio = cost.peak_bytes as f64 / size as f64;
    eprintln!("finding 2, accepted {size}-byte item: {cost:?}, peak/item = {ratio:.1}");
    assert!(cost.peak_bytes < 16 * size, "peak {} bytes for a {size}-byte item", cost.peak_bytes);
}

#[tokio::test]
async fn finding_3_deep_nesting_is_refused_before_the_parser_runs() {
    let _one = MEASURING.lock().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("Filters/flow.yaml", format!("displayName: d\nx: {}", "[".repeat(40_000)).into_bytes()),
        ("Filters/flow200k.yaml", "[".repeat(200_000).into_bytes()),
        ("Filters/block.yaml", format!("displayName: d\nx:\n  {}a", "- ".repeat(40_000)).into_bytes()),
        ("Filters/deep.json", format!("{{\"x\": {}{}}}", "[".repeat(40_000), "]".repeat(40_000)).into_bytes()),
    ];
    let fetcher = fetcher();
    for (path, bytes) in cases {
        let size = bytes.len();
        let archive = tar_gz(&[(path, bytes)]);
        let (result, cost) = measured(load_archive(archive, BackupFormat::IntuneCd, &fetcher)).await;
        let err = result.unwrap_err();
        assert_eq!(err.class(), "TooDeep", "{path}: {err}");
        eprintln!("finding 3, {path} ({size} bytes): {cost:?}");
        // The YAML parser would allocate an event per bracket (tens of bytes each): it never ran.
        assert!(cost.peak_bytes < 4 * MIB, "{path}: peak {} bytes", cost.peak_bytes);
        assert!(cost.allocated_bytes < 16 * size as u64 + 4 * MIB as u64, "{path}: {cost:?}");
    }
}

#[tokio::test]
async fn finding_9_devices_and_fifos_are_refused_before_they_are_read() {
    let _one = MEASURING.lock().await;
    let limits = Limits::default();
    let (result, cost) =
        measured(async { load_local(std::path::Path::new("/dev/zero"), None, BackupFormat::Native, &limits) }).await;
    assert_eq!(result.unwrap_err().class(), "UnsupportedEntry");
    assert!(cost.peak_bytes < MIB, "peak {} bytes", cost.peak_bytes);

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("backup.tar.gz");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Opening a FIFO with no writer blocks: refusing it must not open it.
    let err = load_local(&fifo, None, BackupFormat::Native, &limits).unwrap_err();
    assert_eq!(err.class(), "UnsupportedEntry", "{err}");
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[tokio::test]
async fn finding_9_an_untrusted_certificate_is_a_permanent_error() {
    let server = serve_files(BTreeMap::from([("/b.tar.gz".to_string(), b"x".to_vec())]), true).await;
    let policy = FetchPolicy { allowed_cidrs: vec!["127.0.0.0/8".parse().unwrap()], ..FetchPolicy::default() };
    let fetcher = Fetcher::with_policy(None, Limits::default(), policy).unwrap();
    let err = fetcher.fetch(&server.url("/b.tar.gz"), &sha256_digest(b"x"), Schemes::HttpsOnly).await.unwrap_err();
    assert_eq!(err.class(), "UntrustedCertificate", "{err}");
    assert!(!err.is_transient(), "retrying an untrusted certificate never helps: {err}");
}

#[test]
fn finding_9_a_folder_named_with_two_dots_is_not_a_traversal() {
    let files = vec![("backups..old/manifest.json".to_string(), b"{}".to_vec())];
    let tree = restore_backup::FileTree::from_files(files, &Limits::default()).unwrap();
    assert!(tree.subtree(Some("backups..old")).is_ok());
    assert_eq!(restore_backup::tree::safe_relative_path("backups/../x").unwrap_err().class(), "PathTraversal");
}

#[tokio::test]
async fn finding_5_a_flux_source_in_another_namespace_is_refused_by_default() {
    let mut cluster = FakeCluster::default();
    let artifact = ArtifactInfo {
        url: "http://source-controller.flux-system.svc/gitrepository/other-team/scripts/1.tar.gz".into(),
        digest: sha256_digest(b"other team's scripts"),
        revision: None,
    };
    cluster
        .flux
        .insert(("GitRepository".into(), "other-team".into(), "scripts".into()), FluxLookup::Artifact(artifact));
    let spec = SourceSpec {
        artifact_ref: Some(ArtifactRef {
            kind: ArtifactKind::GitRepository,
            name: "scripts".into(),
            namespace: Some("other-team".into()),
        }),
        ..SourceSpec::default()
    };
    let fetcher = Fetcher::with_extra_roots(None, Limits::default()).unwrap();
    let err = resolve(&spec, "intune", &cluster, &fetcher).await.unwrap_err();
    assert_eq!(err.class(), "CrossNamespaceRefused", "{err}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("other-team/scripts"), "{err}");
    // Naming the run's own namespace explicitly is not a cross-namespace reference.
    let own = SourceSpec {
        artifact_ref: Some(ArtifactRef { namespace: Some("intune".into()), ..spec.artifact_ref.clone().unwrap() }),
        ..spec
    };
    assert_eq!(resolve(&own, "intune", &cluster, &fetcher).await.unwrap_err().class(), "FluxSourceNotFound");
}

fn loopback_only(extra: FetchPolicy) -> FetchPolicy {
    FetchPolicy { allowed_cidrs: vec!["127.0.0.1/32".parse().unwrap()], ..extra }
}

#[tokio::test]
async fn finding_6_redirects_to_plain_http_or_internal_addresses_are_refused_and_no_digest_leaks() {
    let internal = b"internal service answer".to_vec();
    let http = serve_files(BTreeMap::from([("/secret".to_string(), internal.clone())]), false).await;
    let files = BTreeMap::from([
        ("/to-http".to_string(), [REDIRECT, format!("http://127.0.0.1:{}/secret", http.port).as_bytes()].concat()),
        ("/to-metadata".to_string(), [REDIRECT, b"https://169.254.169.254/latest/meta-data/"].concat()),
        ("/to-loopback".to_string(), [REDIRECT, b"https://127.0.0.2:1/x"].concat()),
        ("/internal".to_string(), internal.clone()),
    ]);
    let server = serve_files(files, true).await;
    let ca = server.ca_pem.as_deref().map(str::as_bytes);
    let fetcher = Fetcher::with_policy(ca, Limits::default(), loopback_only(FetchPolicy::default())).unwrap();
    let expected = sha256_digest(b"what the author claims");
    for path in ["/to-http", "/to-metadata", "/to-loopback"] {
        let url = format!("https://127.0.0.1:{}{path}", server.port);
        let err = fetcher.fetch(&url, &expected, Schemes::HttpsOnly).await.unwrap_err();
        assert!(matches!(err.class(), "Download" | "UrlRefused"), "{path}: {err}");
        assert!(err.to_string().contains("redirect"), "{path}: {err}");
    }
    // Without an allowed CIDR, the loopback server itself is out of reach.
    let strict = Fetcher::with_extra_roots(ca, Limits::default()).unwrap();
    let url = format!("https://127.0.0.1:{}/internal", server.port);
    assert_eq!(strict.fetch(&url, &expected, Schemes::HttpsOnly).await.unwrap_err().class(), "UrlRefused");
    let by_name = strict.fetch(&server.url("/internal"), &expected, Schemes::HttpsOnly).await.unwrap_err();
    assert!(by_name.to_string().contains("non-public"), "{by_name}");
    // Content that fails its digest check never shows its own digest.
    let err = fetcher.fetch(&url, &expected, Schemes::HttpsOnly).await.unwrap_err();
    assert_eq!(err.class(), "DigestMismatch");
    let leaked = sha256_digest(&internal);
    assert!(!err.to_string().contains(leaked.trim_start_matches("sha256:")), "{err}");
}

#[tokio::test]
async fn finding_7_a_hanging_server_times_out_and_cannot_hold_every_slot() {
    let server = serve_files(BTreeMap::from([("/hang".to_string(), HANG.to_vec())]), true).await;
    let ca = server.ca_pem.as_deref().map(str::as_bytes);
    let url = server.url("/hang").replace("localhost", "127.0.0.1");
    let digest = sha256_digest(b"x");

    // A server that never answers ends in a (transient) timeout, not a stuck reconcile.
    let quick = loopback_only(FetchPolicy { first_byte_timeout: Duration::from_millis(300), ..FetchPolicy::default() });
    let fetcher = Fetcher::with_policy(ca, Limits::default(), quick).unwrap();
    let err = fetcher.fetch(&url, &digest, Schemes::HttpsOnly).await.unwrap_err();
    assert_eq!(err.class(), "Download", "{err}");
    assert!(err.to_string().contains("first-byte timeout"), "{err}");

    // One slot: while a run's download hangs, another run is told to come back, not queued.
    let one_slot = loopback_only(FetchPolicy { max_concurrent_downloads: 1, ..FetchPolicy::default() });
    let fetcher = Fetcher::with_policy(ca, Limits::default(), one_slot).unwrap();
    let hostile = fetcher.for_run("hostile-run-uid");
    let stuck = tokio::spawn({
        let (url, digest) = (url.clone(), digest.clone());
        async move { hostile.fetch(&url, &digest, Schemes::HttpsOnly).await }
    });
    while fetcher.downloads_in_progress() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = fetcher.for_run("other-run").fetch(&url, &digest, Schemes::HttpsOnly).await.unwrap_err();
    assert_eq!(busy.class(), "DownloadSlotsBusy", "{busy}");
    assert!(busy.is_transient(), "{busy}");

    // Deleting the run cancels its download; shutting down cancels everything.
    fetcher.cancel_run("hostile-run-uid");
    let err = stuck.await.unwrap().unwrap_err();
    assert_eq!(err.class(), "Cancelled", "{err}");
    fetcher.shutdown();
    let err = fetcher.for_run("late").fetch(&url, &digest, Schemes::HttpsOnly).await.unwrap_err();
    assert_eq!(err.class(), "Cancelled", "{err}");
}

#[test]
fn load_limits_defaults_are_the_documented_ones() {
    let limits = Limits::default();
    assert_eq!(limits.max_archive_bytes, 32 * MIB as u64);
    assert_eq!(limits.max_unpacked_bytes, 64 * MIB as u64);
    assert_eq!(limits.max_item_bytes, 4 * MIB as u64);
    assert_eq!(limits.max_files, 20_000);
    assert_eq!(limits.max_items, 10_000);
    assert_eq!(limits.max_depth, 64);
    assert_eq!(limits.max_values_per_file, 200_000);
    assert_eq!(limits.max_values_total, 1_000_000);
    assert_eq!(limits.load_timeout_seconds, 60);
    assert_eq!(limits.max_concurrent_loads, 2);
    assert_eq!(limits.max_decompression_ratio, 200);
}
