//! cargo-fuzz target over IntuneCD object files (YAML and JSON, budgeted parsing and field
//! mapping): any input must load or fail with a typed error, never panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = restore_backup::fuzzing::load_untrusted_intunecd(data);
});
