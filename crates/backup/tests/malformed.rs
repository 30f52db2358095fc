//! The corpus of malformed backups under `tests/malformed/`: each case is a real file (or folder)
//! in git, regenerated from this file, and loading it fails with exactly the error class listed.
//!
//! Regenerate after changing a case: `RESTORE_BACKUP_WRITE_CORPUS=1 cargo test -p restore-backup --test malformed`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;

use flate2::Compression;
use flate2::write::GzEncoder;
use restore_backup::source::load_local;
use restore_backup::{BackupError, FindingCode, Limits, Loaded};
use restore_core::api::BackupFormat;
use restore_core::canonical::sha256_digest;
use serde_json::{Value, json};

/// One malformed backup.
struct Case {
    name: &'static str,
    content: Content,
    format: BackupFormat,
    limits: Limits,
    /// The error class, or `finding:<Code>` for a load that succeeds with that finding.
    expected: &'static str,
}

enum Content {
    /// A `.tar.gz` file: `tests/malformed/<name>.tar.gz`.
    Archive(Vec<u8>),
    /// A folder: `tests/malformed/<name>/…`.
    Folder(Vec<(String, Vec<u8>)>),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

fn case(name: &'static str, content: Content, expected: &'static str) -> Case {
    Case { name, content, format: BackupFormat::Native, limits: Limits::default(), expected }
}

/// A valid backup of two items (a scope tag and a filter), as files.
fn good_files() -> Vec<(String, Vec<u8>)> {
    restore_backup::fuzzing::seed_files()
}

fn manifest_of(files: &[(String, Vec<u8>)]) -> Value {
    let bytes = &files.iter().find(|(p, _)| p == "manifest.json").unwrap().1;
    serde_json::from_slice(bytes).unwrap()
}

/// The good files with the manifest replaced by `edit(manifest)`.
fn with_manifest(edit: impl FnOnce(&mut Value)) -> Vec<(String, Vec<u8>)> {
    let mut files = good_files();
    let mut manifest = manifest_of(&files);
    edit(&mut manifest);
    set_file(&mut files, "manifest.json", serde_json::to_vec_pretty(&manifest).unwrap());
    files
}

/// The good files with the first item file replaced by `bytes`, its manifest digest updated so
/// that only the content is at fault.
fn with_item_bytes(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let mut files = good_files();
    let path = manifest_of(&files)["items"][0]["path"].as_str().unwrap().to_string();
    let digest = sha256_digest(&bytes);
    set_file(&mut files, &path, bytes);
    let mut manifest = manifest_of(&files);
    manifest["items"][0]["sha256"] = json!(digest);
    set_file(&mut files, "manifest.json", serde_json::to_vec_pretty(&manifest).unwrap());
    files
}

fn set_file(files: &mut [(String, Vec<u8>)], path: &str, bytes: Vec<u8>) {
    files.iter_mut().find(|(p, _)| p == path).unwrap().1 = bytes;
}

/// A raw tar entry: the name is written byte for byte, so hostile names get through.
struct Raw<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    link: &'a [u8],
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw { name: name.as_bytes(), kind: tar::EntryType::Regular, link: b"", data }
}

fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..entry.name.len()].copy_from_slice(entry.name);
        header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link);
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip without compression (stored blocks), whose bytes do not depend on the compressor.
fn gzip_stored(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::none());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).ok()?;
    Some(out)
}

fn files_tar_gz(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<Raw<'_>> = files.iter().map(|(p, b)| file(p, b)).collect();
    gzip(&raw_tar(&entries))
}

/// A "billion laughs" document: nine levels of aliases, each nine times the one before.
fn yaml_bomb() -> Vec<u8> {
    let mut doc = String::from("a0: &a0 [\"lol\"]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 9].join(", ");
        doc.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    doc.push_str("displayName: *a9\n");
    doc.into_bytes()
}

/// Bytes that do not compress (a fixed linear congruential sequence).
fn incompressible(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

/// The corpus, written to disk first when `RESTORE_BACKUP_WRITE_CORPUS` is set (once per run).
fn cases() -> Vec<Case> {
    static WRITE: Once = Once::new();
    let cases = generate_cases();
    if std::env::var_os("RESTORE_BACKUP_WRITE_CORPUS").is_some() {
        WRITE.call_once(|| {
            fs::create_dir_all(corpus_dir()).unwrap();
            cases.iter().for_each(write_case);
        });
    }
    cases
}

fn generate_cases() -> Vec<Case> {
    use Content::{Archive, Folder};
    let entries: Vec<(String, Vec<u8>)> = good_files();
    let good = gzip_stored(&raw_tar(&entries.iter().map(|(p, b)| file(p, b)).collect::<Vec<_>>()));
    let zeros = vec![0u8; 4 << 20];
    let mut cases = vec![
        case("not-gzip", Archive(b"this is a plain text file, not a backup\n".to_vec()), "NotGzip"),
        case("truncated-archive", Archive(good[..good.len() / 2].to_vec()), "TruncatedArchive"),
        case("corrupt-gzip", Archive([&good[..10], &[0xff; 64][..]].concat()), "CorruptArchive"),
        case("absolute-path", Archive(gzip(&raw_tar(&[file("/etc/cron.d/evil", b"x")]))), "AbsolutePath"),
        case("dotdot-path", Archive(gzip(&raw_tar(&[file("../../escape.json", b"{}")]))), "PathTraversal"),
        case("nested-dotdot-path", Archive(gzip(&raw_tar(&[file("items/../../x.json", b"{}")]))), "PathTraversal"),
        case("windows-drive-path", Archive(gzip(&raw_tar(&[file("C:/Windows/evil.json", b"{}")]))), "AbsolutePath"),
        case(
            "symlink",
            Archive(gzip(&raw_tar(&[Raw {
                name: b"manifest.json",
                kind: tar::EntryType::Symlink,
                link: b"/etc/passwd",
                data: b"",
            }]))),
            "Symlink",
        ),
        case(
            "hard-link",
            Archive(gzip(&raw_tar(&[
                file("a.json", b"{}"),
                Raw { name: b"manifest.json", kind: tar::EntryType::Link, link: b"/etc/shadow", data: b"" },
            ]))),
            "HardLink",
        ),
        case(
            "device-entry",
            Archive(gzip(&raw_tar(&[Raw { name: b"dev", kind: tar::EntryType::Char, link: b"", data: b"" }]))),
            "UnsupportedEntry",
        ),
        case(
            "duplicate-entry",
            Archive(gzip(&raw_tar(&[file("manifest.json", b"{}"), file("manifest.json", b"{}")]))),
            "DuplicatePath",
        ),
        case(
            "non-utf8-path",
            Archive(gzip(&raw_tar(&[Raw {
                name: b"items/\xff\xfe.json",
                kind: tar::EntryType::Regular,
                link: b"",
                data: b"{}",
            }]))),
            "InvalidPath",
        ),
        case(
            "decompression-bomb",
            Archive(gzip(&raw_tar(&[
                file("zeros-1.json", &zeros),
                file("zeros-2.json", &zeros),
                file("zeros-3.json", &zeros),
                file("zeros-4.json", &zeros),
            ]))),
            "DecompressionRatio",
        ),
        case("missing-manifest", Archive(gzip(&raw_tar(&[file("items/x.json", b"{}")]))), "MissingManifest"),
        case(
            "manifest-invalid-json",
            Folder(vec![("manifest.json".into(), b"{\"formatVersion\": 1,, }".to_vec())]),
            "InvalidJson",
        ),
        case(
            "manifest-truncated-json",
            Folder(vec![("manifest.json".into(), b"{\"formatVersion\": 1, \"items\": [".to_vec())]),
            "TruncatedJson",
        ),
        case("manifest-items-not-a-list", Folder(with_manifest(|m| m["items"] = json!("all"))), "InvalidManifest"),
        case(
            "manifest-future-version",
            Folder(with_manifest(|m| m["formatVersion"] = json!(99))),
            "UnsupportedFormatVersion",
        ),
        case(
            "manifest-bad-capture-time",
            Folder(with_manifest(|m| m["capturedAt"] = json!("yesterday"))),
            "InvalidManifest",
        ),
        case(
            "manifest-malformed-sha256",
            Folder(with_manifest(|m| m["items"][0]["sha256"] = json!("md5:abc"))),
            "InvalidManifest",
        ),
        case(
            "manifest-absolute-item-path",
            Folder(with_manifest(|m| m["items"][0]["path"] = json!("/etc/passwd"))),
            "AbsolutePath",
        ),
        case(
            "manifest-dotdot-item-path",
            Folder(with_manifest(|m| m["items"][0]["path"] = json!("items/../../../etc/passwd"))),
            "PathTraversal",
        ),
        case(
            "missing-item-file",
            Folder(with_manifest(|m| m["items"][0]["path"] = json!("items/scopeTag/404.json"))),
            "MissingItemFile",
        ),
        case(
            "digest-mismatch",
            Folder(with_manifest(|m| m["items"][0]["sha256"] = json!(sha256_digest(b"something else")))),
            "DigestMismatch",
        ),
        case(
            "duplicate-item",
            Folder(with_manifest(|m| {
                let first = m["items"][0].clone();
                m["items"].as_array_mut().unwrap().push(first);
            })),
            "DuplicateItem",
        ),
        case(
            "item-invalid-json",
            Folder(with_item_bytes(b"{\"type\": \"assignmentFilter\" \"id\": 1}".to_vec())),
            "InvalidJson",
        ),
        case(
            "item-truncated-json",
            Folder(with_item_bytes(b"{\"type\": \"assignmentFilter\", \"resource\": {".to_vec())),
            "TruncatedJson",
        ),
        case(
            "item-without-resource",
            Folder(with_item_bytes(
                serde_json::to_vec(
                    &json!({"type": "assignmentFilter", "id": "f1", "displayName": "Corp", "platform": "any"}),
                )
                .unwrap(),
            )),
            "InvalidItem",
        ),
        case(
            "item-resource-not-an-object",
            Folder(with_item_bytes(
                serde_json::to_vec(&json!({"type": "assignmentFilter", "id": "f1", "displayName": "Corp",
                    "platform": "any", "resource": [1, 2]}))
                .unwrap(),
            )),
            "InvalidItem",
        ),
        case(
            "item-id-differs-from-manifest",
            Folder(with_item_bytes(
                serde_json::to_vec(&json!({"type": "assignmentFilter", "id": "other", "displayName": "Corp",
                    "platform": "any", "resource": {}}))
                .unwrap(),
            )),
            "ManifestMismatch",
        ),
        case(
            "file-also-a-folder",
            Archive(gzip(&raw_tar(&[file("items", b"x"), file("items/a.json", b"{}")]))),
            "DuplicatePath",
        ),
        case(
            "unknown-type",
            Folder(with_manifest(|m| m["items"][0]["type"] = json!("quantumPolicy"))),
            "finding:UnknownType",
        ),
        Case {
            limits: Limits { max_files: 2, ..Limits::default() },
            ..case("too-many-files", Archive(files_tar_gz(&good_files())), "TooManyFiles")
        },
        Case {
            limits: Limits { max_item_bytes: 1024, ..Limits::default() },
            ..case(
                "file-too-large",
                Archive(gzip(&raw_tar(&[file("big.json", &incompressible(4096, 7))]))),
                "FileTooLarge",
            )
        },
        Case {
            limits: Limits { max_unpacked_bytes: 4096, max_item_bytes: 4096, ..Limits::default() },
            ..case(
                "unpacked-too-large",
                Archive(gzip(&raw_tar(&[
                    file("a.json", &incompressible(3000, 1)),
                    file("b.json", &incompressible(3000, 2)),
                ]))),
                "UnpackedTooLarge",
            )
        },
        Case {
            limits: Limits { max_archive_bytes: 256, ..Limits::default() },
            ..case("archive-too-large", Archive(files_tar_gz(&good_files())), "ArchiveTooLarge")
        },
        Case {
            format: BackupFormat::IntuneCd,
            ..case(
                "intunecd-invalid-yaml",
                Folder(vec![("Filters/f.yaml".into(), b"displayName: [unclosed\n".to_vec())]),
                "InvalidYaml",
            )
        },
        case(
            "manifest-nested-too-deep",
            Folder(vec![("manifest.json".into(), format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes())]),
            "TooDeep",
        ),
        Case {
            format: BackupFormat::IntuneCd,
            ..case("intunecd-yaml-alias-bomb", Folder(vec![("Filters/lol.yaml".into(), yaml_bomb())]), "InvalidYaml")
        },
        Case {
            format: BackupFormat::IntuneCd,
            ..case(
                "intunecd-not-an-object",
                Folder(vec![("Scope Tags/t.json".into(), b"[\"Default\"]".to_vec())]),
                "InvalidItem",
            )
        },
        Case {
            format: BackupFormat::IntuneCd,
            ..case(
                "intunecd-duplicate-id",
                Folder(vec![
                    ("Filters/a__f1.json".into(), b"{\"displayName\": \"A\"}".to_vec()),
                    ("Filters/b__f1.json".into(), b"{\"displayName\": \"B\"}".to_vec()),
                ]),
                "DuplicateItem",
            )
        },
    ];
    cases.sort_by_key(|c| c.name);
    cases
}

fn case_path(case: &Case) -> PathBuf {
    match case.content {
        Content::Archive(_) => corpus_dir().join(format!("{}.tar.gz", case.name)),
        Content::Folder(_) => corpus_dir().join(case.name),
    }
}

fn write_case(case: &Case) {
    let path = case_path(case);
    match &case.content {
        Content::Archive(bytes) => fs::write(&path, bytes).unwrap(),
        Content::Folder(files) => {
            let _ = fs::remove_dir_all(&path);
            for (rel, bytes) in files {
                let target = path.join(rel);
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::write(target, bytes).unwrap();
            }
        }
    }
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn on_disk_matches(case: &Case) -> bool {
    let path = case_path(case);
    match &case.content {
        // Another deflate implementation may compress differently: equal content is current too.
        Content::Archive(bytes) => {
            fs::read(&path).is_ok_and(|b| &b == bytes || gunzip(&b).is_some_and(|t| Some(t) == gunzip(bytes)))
        }
        Content::Folder(files) => {
            let mut expected = files.clone();
            expected.sort();
            path.is_dir() && files_under(&path) == expected
        }
    }
}

fn outcome(result: Result<Loaded, BackupError>) -> String {
    match result {
        Ok(loaded) => match loaded.findings.first() {
            Some(finding) => format!("finding:{}", finding.code.as_str()),
            None => "loaded cleanly".to_string(),
        },
        Err(err) => err.class().to_string(),
    }
}

#[test]
fn the_corpus_on_disk_is_what_this_file_generates() {
    let cases = cases();
    let stale: Vec<&str> = cases.iter().filter(|c| !on_disk_matches(c)).map(|c| c.name).collect();
    assert!(
        stale.is_empty(),
        "corpus cases out of date: {stale:?}; run RESTORE_BACKUP_WRITE_CORPUS=1 cargo test -p restore-backup --test malformed"
    );
    let mut expected_names: Vec<String> =
        cases.iter().map(|c| case_path(c).file_name().unwrap().to_string_lossy().into_owned()).collect();
    expected_names.sort();
    let mut present: Vec<String> =
        fs::read_dir(corpus_dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    present.sort();
    assert_eq!(present, expected_names, "the corpus folder holds exactly the generated cases");
}

#[test]
fn the_corpus_has_at_least_25_cases() {
    assert!(cases().len() >= 25, "{}", cases().len());
}

#[test]
fn every_malformed_backup_fails_with_exactly_its_error_class() {
    let mut wrong = Vec::new();
    for case in cases() {
        let got = outcome(load_local(&case_path(&case), None, case.format, &case.limits));
        if got != case.expected {
            wrong.push(format!("{}: expected {}, got {}", case.name, case.expected, got));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn errors_name_the_file_or_item_at_fault() {
    let cases = cases();
    let message_of = |name: &str| {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        load_local(&case_path(case), None, case.format, &case.limits).unwrap_err().to_string()
    };
    assert!(message_of("digest-mismatch").contains("assignmentFilter/f1"));
    assert!(message_of("dotdot-path").contains("../../escape.json"));
    assert!(message_of("item-truncated-json").contains("items/assignmentFilter/f1.json"));
    assert!(message_of("intunecd-invalid-yaml").contains("Filters/f.yaml"));
    assert!(message_of("symlink").contains("manifest.json"));
}

#[test]
fn the_unknown_type_case_still_loads_the_known_item() {
    let case = cases().into_iter().find(|c| c.name == "unknown-type").unwrap();
    let loaded = load_local(&case_path(&case), None, case.format, &case.limits).unwrap();
    assert_eq!(loaded.set.items.len(), 1);
    assert_eq!(loaded.findings[0].code, FindingCode::UnknownType);
    assert_eq!(loaded.findings[0].item, "quantumPolicy/f1");
}
