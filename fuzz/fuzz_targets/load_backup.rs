//! cargo-fuzz target over archive, tar, manifest and ConfigMap-data parsing: any input must load
//! as a backup or fail with a typed error, never panic, hang or exhaust memory (`restore_backup::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = restore_backup::fuzzing::load_untrusted(data);
});
