//! `restore-operator demo` as a newcomer runs it: no set-up, the wizard end to end against the
//! in-process simulator in seconds, each phase printed in order, exit 0 only when the tenant is restored.

use std::process::Command;

fn demo(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_restore-operator")).arg("demo").args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Asserts that `needles` appear in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match haystack[at..].find(needle) {
            Some(found) => at += found + needle.len(),
            None => panic!("{needle:?} missing or out of order in:\n{haystack}"),
        }
    }
}

#[test]
fn the_demo_walks_backup_drift_preview_approval_execution_and_recheck_and_exits_0() {
    let (code, stdout, stderr) = demo(&[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_in_order(
        &stdout,
        &[
            "1. Simulated tenant \"Contoso (simulated)\"",
            "2. Backup taken through Microsoft Graph: 35 items",
            "3. The tenant drifts",
            "edit      deviceConfiguration/Win10 custom 00",
            "delete    compliancePolicy/Win10 compliance 02",
            "add       deviceConfiguration/Added after the backup",
            "reassign  powerShellScript/Set wallpaper 04",
            "4. Preview",
            "ResolvingSource",
            "Scoping",
            "Checking",
            "Previewing",
            "Previewed",
            "1 to create, 2 to update",
            "-  \"description\": \"changed by hand\",",
            "5. Approve: spec.dryRun: false",
            "AwaitingConfirmation",
            "Executing",
            "create                 compliancePolicy/Win10 compliance 02 written",
            "Succeeded             restore finished: 1 created, 2 updated",
            "6. Preview again",
            "0 to create, 0 to update",
            "7. Verified: the tenant equals the backup for all 33 restorable items",
        ],
    );
    let digest = stdout.lines().find_map(|l| l.trim().strip_prefix("Preview sha256:")).unwrap();
    let digest = format!("sha256:{}", digest.split(' ').next().unwrap());
    assert!(stdout.contains(&format!("previewDigest: {digest}")), "the approval uses the printed digest");
}

#[test]
fn a_larger_sample_restores_too_and_a_too_small_one_is_refused() {
    let (code, stdout, stderr) = demo(&["--policies", "27"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("2. Backup taken through Microsoft Graph: 53 items"), "{stdout}");
    assert!(stdout.contains("for all 51 restorable items"), "{stdout}");

    let (code, _, stderr) = demo(&["--policies", "3"]);
    assert_eq!(code, Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("--policies"), "{stderr}");
}
