//! Figures for the backup adapter: writing and reading a large native backup (folder and
//! `.tar.gz`), loading it through the fuzz entry point, and how fast a decompression bomb is refused.
//! Run with `cargo bench -p restore-backup --bench backup_io`; it prints, it asserts nothing about time.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use restore_backup::{FileTree, Limits, native};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use serde_json::json;

const ITEMS: usize = 2_000;

fn large_set() -> BackupSet {
    let items = (0..ITEMS)
        .map(|i| {
            let settings = (0..20)
                .map(|s| {
                    json!({"id": s.to_string(), "settingInstance": {"settingDefinitionId": format!("def_{s}"),
                    "choiceSettingValue": {"value": format!("def_{s}_{}", i % 3), "children": []}}})
                })
                .collect();
            BackupItem {
                item_type: "settingsCatalogPolicy".into(),
                id: format!("{i:08x}-0000-4000-8000-000000000000"),
                display_name: format!("Policy {i}"),
                platform: "windows".into(),
                resource: json!({"name": format!("Policy {i}"), "platforms": "windows10", "technologies": "mdm",
                    "roleScopeTagIds": ["0"], "description": "x".repeat(200)}),
                assignments: Some(vec![json!({"id": format!("a{i}"), "target": {"groupId": "g1"}})]),
                sub_resources: BTreeMap::from([("settings".to_string(), settings)]),
                references: References {
                    groups: vec![NamedRef { id: "g1".into(), display_name: "All staff".into() }],
                    ..References::default()
                },
            }
        })
        .collect();
    BackupSet {
        tenant: Some(BackupTenant { id: "tid".into(), label: "Bench".into() }),
        captured_at: Some("2025-01-01T00:00:00Z".into()),
        digest: String::new(),
        items,
    }
}

/// Runs `f` `runs` times and returns the median duration.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn report(what: &str, elapsed: Duration, bytes: usize) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<44} {:>9.1} ms  {:>8.0} items/s  {:>7.1} MiB/s",
        secs * 1000.0,
        ITEMS as f64 / secs,
        bytes as f64 / (1024.0 * 1024.0) / secs
    );
}

fn main() {
    let set = large_set();
    let limits = Limits::default();
    let rendered = native::render(&set).expect("render");
    let unpacked: usize = rendered.files.iter().map(|(_, b)| b.len()).sum();
    let archive = native::to_tar_gz(&set).expect("archive");
    println!("backup of {ITEMS} Settings Catalog items: {unpacked} bytes unpacked, {} bytes as .tar.gz", archive.len());

    report("render (sorted JSON + digests)", median(5, || native::render(&set).expect("render")), unpacked);
    report("write .tar.gz in memory", median(5, || native::to_tar_gz(&set).expect("archive")), unpacked);
    report(
        "read .tar.gz (unpack, verify, parse)",
        median(5, || native::read_tar_gz(&archive, None, &limits).expect("read")),
        unpacked,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("backup");
    native::write_dir(&set, &folder).expect("write dir");
    report(
        "read folder (walk, verify, parse)",
        median(5, || native::read_dir(&folder, &limits).expect("read")),
        unpacked,
    );

    // A decompression bomb: 512 MiB of zeros in one archive, refused by the ratio limit.
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros.json").expect("path");
    header.set_size(512 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    let raw = header.as_bytes().to_vec();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&raw).expect("gzip");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        encoder.write_all(&zeros).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    let start = Instant::now();
    let refused = FileTree::from_tar_gz(&bomb, "bomb", &Limits { max_item_bytes: 1 << 30, ..limits.clone() });
    println!(
        "decompression bomb ({} bytes → 512 MiB) refused as {} in {:.1} ms",
        bomb.len(),
        refused.err().map_or("nothing (!)", |e| e.class()),
        start.elapsed().as_secs_f64() * 1000.0
    );
}
