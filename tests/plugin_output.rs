//! What `kubectl restorerun` prints, checked against fixtures: `list`, `show`, `diff`, `results`
//! and `wait` in text and JSON, for a previewed run and an executed one, with a forged display name.
//! Regenerate the fixtures with `BLESS=1 cargo test --workspace --test plugin_output`.

use std::path::PathBuf;

use restore_core::api::{ItemOutcome, Phase, ScopeStatus};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::execute::{ProgressRecord, StepRecord, StepStatus};
use restore_core::engine::mapping::TargetMaps;
use restore_core::engine::preview::PreviewReport;
use restore_core::engine::snapshot::RequestStats;
use restore_operator::kube::RestoreRun;
use restore_operator::plugin::render;
use restore_operator::report_html::{PageInput, page};
use serde_json::{Value, json};

/// A display name that tries to move the cursor, recolour the line and forge a diff line.
const FORGED: &str = "Wi-Fi\u{1b}[2K\u{1b}[32m\r+ harmless\u{202e}";

fn now() -> jiff::Timestamp {
    "2026-03-02T10:30:00Z".parse().unwrap()
}

fn item(key: &str, kind: &str, name: &str, action: &str, current: Option<Value>, desired: Value) -> Value {
    let diff = restore_core::engine::diff::unified_diff(current.as_ref(), &desired);
    let changed = match &current {
        Some(c) => restore_core::engine::diff::changed_paths(c, &desired),
        None => Vec::new(),
    };
    let mut v = json!({"key": key, "itemType": kind, "displayName": name, "platform": "windows",
        "action": action, "desired": desired, "diff": diff, "changedFields": changed});
    if let Some(c) = current {
        v["current"] = c;
    }
    v
}

fn report() -> PreviewReport {
    let mut skipped = item(
        "deviceConfiguration/s1",
        "deviceConfiguration",
        "Kiosk lockdown",
        "skip",
        Some(json!({"displayName": "Kiosk lockdown", "mode": 1})),
        json!({"displayName": "Kiosk lockdown", "mode": 2}),
    );
    skipped["reason"] = json!("exists in the tenant and spec.existingObjects is skip");
    skipped["diff"] = json!("");
    let mut admx =
        item("groupPolicyConfiguration/g1", "groupPolicyConfiguration", "Edge ADMX", "previewOnly", None, json!({}));
    admx["reason"] = json!("Administrative Templates are preview-only in v1");
    admx["diff"] = json!("");
    let items = vec![
        item(
            "deviceConfiguration/c1",
            "deviceConfiguration",
            FORGED,
            "create",
            None,
            json!({"displayName": FORGED, "ssid": "corp"}),
        ),
        item(
            "deviceCompliancePolicy/u1",
            "deviceCompliancePolicy",
            "Windows baseline",
            "update",
            Some(json!({"displayName": "Windows baseline", "passwordMinimumLength": 8, "osMinimumVersion": "10.0"})),
            json!({"displayName": "Windows baseline", "passwordMinimumLength": 12, "osMinimumVersion": "10.0"}),
        ),
        item(
            "deviceConfiguration/n1",
            "deviceConfiguration",
            "Same A",
            "unchanged",
            Some(json!({"a": 1})),
            json!({"a": 1}),
        ),
        item(
            "deviceConfiguration/n2",
            "deviceConfiguration",
            "Same B",
            "unchanged",
            Some(json!({"b": 1})),
            json!({"b": 1}),
        ),
        skipped,
        admx,
    ];
    let scope = serde_json::to_value(ScopeStatus { total: 6, policies: 6, ..Default::default() }).unwrap();
    serde_json::from_value(json!({
        "format": 2, "tenantId": "11111111-2222-3333-4444-555555555555", "sourceDigest": "sha256:5ource",
        "crossTenant": false,
        "scope": {"status": scope, "foundations": "include", "assignments": "include",
                  "existingObjects": "skip", "items": []},
        "counts": {"create": 1, "update": 1, "unchanged": 2, "skip": 1, "previewOnly": 1},
        "findings": [{"code": "ProductionTarget", "severity": "warning",
                      "message": "the target is a production tenant", "hint": "approve only after a review by a second person"}],
        "items": items,
        "mappings": serde_json::to_value(TargetMaps::default()).unwrap(),
        "requests": serde_json::to_value(RequestStats::default()).unwrap()
    }))
    .expect("a report")
}

fn run(phase: &str, report: &PreviewReport, extra: Value) -> RestoreRun {
    let mut status = json!({
        "phase": phase, "environment": "production",
        "tenant": {"id": report.tenant_id, "label": "Contoso Production"},
        "source": {"digest": report.source_digest, "itemCount": 6, "capturedAt": "2026-03-01T08:00:00Z"},
        "checks": {"blockers": 0, "warnings": 1, "infos": 0},
        "preview": {"digest": report.digest(), "generatedAt": "2026-03-02T10:00:00Z",
                    "expiresAt": "2026-03-02T11:00:00Z", "counts": report.counts, "changes": 2},
        "conditions": [{"type": "Ready", "status": "True", "reason": "PreviewReady", "message": "preview ready",
                        "lastTransitionTime": "2026-03-02T10:00:00Z"}]
    });
    if let (Some(target), Some(extra)) = (status.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": "restore-march", "namespace": "intune", "creationTimestamp": "2026-03-02T09:58:00Z"},
        "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "backup"}}, "dryRun": true,
                 "previewTTL": "1h"},
        "status": status
    }))
    .expect("a run")
}

fn executed(report: &PreviewReport) -> (RestoreRun, ProgressRecord) {
    let digest = report.digest();
    let step = |id: &str, item: &str, status: StepStatus, message: Option<&str>| StepRecord {
        step: format!("{id}:{item}"),
        item: item.into(),
        status,
        created_id: None,
        message: message.map(str::to_string),
    };
    let progress = ProgressRecord {
        preview_digest: digest.clone(),
        steps: vec![
            step("create", "deviceConfiguration/c1", StepStatus::Written, None),
            step(
                "update",
                "deviceCompliancePolicy/u1",
                StepStatus::Failed,
                Some("Graph refused the request (BadRequest): Invalid setting. (request-id 6f1c0d3e-0001)"),
            ),
            step("verify", "deviceConfiguration/c1", StepStatus::Verified, None),
        ],
    };
    let run = run(
        "PartiallySucceeded",
        report,
        json!({
            "confirmation": {"acceptedAt": "2026-03-02T10:10:00Z", "approvedBy": "bob@contoso.com", "digest": digest},
            "execution": {"startedAt": "2026-03-02T10:10:01Z", "finishedAt": "2026-03-02T10:10:09Z",
                          "completedSteps": 3, "totalSteps": 3, "progress": "2/2",
                          "counts": {"created": 1, "updated": 0, "unchanged": 2, "skipped": 2, "drifted": 0, "failed": 1}}
        }),
    );
    (run, progress)
}

/// Compares `actual` with the fixture `name` (or rewrites it under BLESS=1).
fn matches_fixture(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugin").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its fixture (BLESS=1 rewrites it after review)");
}

fn assert_no_control_characters(text: &str) {
    let bad: Vec<char> = text.chars().filter(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}').collect();
    assert!(bad.is_empty(), "control characters reached the terminal: {bad:?}\n{text}");
}

#[test]
fn show_puts_the_summary_first_then_items_by_action_with_unchanged_folded() {
    let report = report();
    let run = run("Previewed", &report, json!({}));
    let text = render::show_text(&run, Some(&report), None, false);
    assert_no_control_characters(&text);
    let summary_at = text.find("Tenant:").unwrap();
    let items_at = text.find("Create (1):").unwrap();
    assert!(summary_at < items_at, "{text}");
    assert!(text.contains("Unchanged: 2 item(s)") && !text.contains("Same A"), "{text}");
    assert!(text.contains("reason: exists in the tenant"), "skip reasons are shown:\n{text}");
    assert!(text.contains("fix: approve only after"), "findings carry their fix:\n{text}");
    assert!(text.contains("Wi-Fi^[[2K^[[32m\\r+ harmless\\u{202e}"), "the forged name is shown escaped:\n{text}");
    matches_fixture("show-previewed.txt", &text);
    let wide = render::show_text(&run, Some(&report), None, true);
    assert!(wide.contains("Same A") && wide.contains("Same B"), "-o wide lists unchanged items:\n{wide}");
}

#[test]
fn show_after_execution_lists_each_items_outcome_instead_of_the_plan() {
    let report = report();
    let (run, progress) = executed(&report);
    let rows = render::item_rows(&report, Some(&progress));
    let text = render::show_text(&run, Some(&report), Some(&rows), false);
    assert_no_control_characters(&text);
    assert!(text.contains("Failed (1):") && text.contains("request-id 6f1c0d3e-0001"), "{text}");
    assert!(text.contains("Created (1):") && !text.contains("Create (1):"), "{text}");
    assert!(text.contains("Approved:     by bob@contoso.com"), "{text}");
    matches_fixture("show-executed.txt", &text);
    let json = serde_json::to_string_pretty(&render::show_json(&run, Some(&report), Some(&rows))).unwrap();
    matches_fixture("show-executed.json", &(json + "\n"));
}

#[test]
fn results_give_every_items_outcome_and_error() {
    let report = report();
    let (_, progress) = executed(&report);
    let rows = render::item_rows(&report, Some(&progress));
    let outcome = |key: &str| rows.iter().find(|r| r.key == key).map(|r| (r.outcome, r.message.clone())).unwrap();
    assert_eq!(outcome("deviceConfiguration/c1"), (Some(ItemOutcome::Created), None));
    assert_eq!(
        outcome("deviceCompliancePolicy/u1"),
        (
            Some(ItemOutcome::Failed),
            Some("Graph refused the request (BadRequest): Invalid setting. (request-id 6f1c0d3e-0001)".into())
        )
    );
    let failed = rows.iter().find(|r| r.outcome == Some(ItemOutcome::Failed)).unwrap();
    assert_eq!(failed.request_id.as_deref(), Some("6f1c0d3e-0001"), "results carry Graph's request id");
    assert_eq!(outcome("deviceConfiguration/n1").0, Some(ItemOutcome::Unchanged));
    assert_eq!(outcome("deviceConfiguration/s1").0, Some(ItemOutcome::Skipped));
    // Written but not re-read yet: pending, not counted as done.
    let partial = ProgressRecord { steps: progress.steps[..1].to_vec(), ..progress.clone() };
    let rows_partial = render::item_rows(&report, Some(&partial));
    assert_eq!(rows_partial[0].outcome, None);
    let text = render::results_text(&rows, true);
    assert_no_control_characters(&text);
    matches_fixture("results.txt", &text);
    matches_fixture("results.json", &(serde_json::to_string_pretty(&rows).unwrap() + "\n"));
}

#[test]
fn diff_is_a_unified_diff_per_changing_item_coloured_only_when_asked() {
    let report = report();
    let plain = render::diff_text(&report, false);
    assert!(!plain.contains('\u{1b}'), "{plain}");
    assert!(plain.contains("-  \"passwordMinimumLength\": 8\n+  \"passwordMinimumLength\": 12\n"), "{plain}");
    assert!(!plain.contains("Kiosk lockdown"), "a skipped item has no diff:\n{plain}");
    assert_no_control_characters(&plain);
    matches_fixture("diff.txt", &plain);
    let coloured = render::diff_text(&report, true);
    assert!(coloured.contains("\u{1b}[32m+  \"passwordMinimumLength\": 12\u{1b}[0m"), "{coloured:?}");
    // The colour codes are the plugin's own: the forged name's escape sequence stays escaped.
    assert!(coloured.contains("Wi-Fi^[[2K^[[32m"), "{coloured:?}");
    let json = serde_json::to_string_pretty(&render::diff_json(&report)).unwrap();
    matches_fixture("diff.json", &(json + "\n"));
}

#[test]
fn list_shows_phase_progress_and_approver_per_run() {
    let report = report();
    let previewed = run("Previewed", &report, json!({}));
    let (done, _) = executed(&report);
    let mut done = done;
    done.metadata.name = Some("restore-february".into());
    let runs = vec![done, previewed];
    let text = render::list_text(&runs, true, false, now());
    matches_fixture("list.txt", &text);
    assert!(text.lines().next().unwrap().starts_with("NAMESPACE   NAME"), "{text}");
    let json = serde_json::to_string_pretty(&render::list_json(&runs)).unwrap();
    matches_fixture("list.json", &(json + "\n"));
    assert_eq!(render::list_text(&[], false, false, now()), "No RestoreRuns found.\n");
}

#[test]
fn approve_refuses_at_once_with_the_reason() {
    let report = report();
    let status = |phase: &str, extra: Value| run(phase, &report, extra).status.unwrap();
    assert_eq!(render::approval_refusal(&status("Previewed", json!({})), now()), None);
    let blocked = render::approval_refusal(
        &status("Blocked", json!({"checks": {"blockers": 2, "warnings": 0, "infos": 0}})),
        now(),
    );
    assert_eq!(blocked.as_deref(), Some("the run is Blocked by 2 blocker finding(s); fix them (see `show`) first"));
    let later: jiff::Timestamp = "2026-03-02T11:00:00Z".parse().unwrap();
    let expired = render::approval_refusal(&status("Previewed", json!({})), later).unwrap();
    assert!(expired.starts_with("the preview expired at 2026-03-02T11:00:00Z"), "{expired}");
    let pending = render::approval_refusal(&status("Checking", json!({})), now()).unwrap();
    assert!(pending.contains("Checking"), "{pending}");
}

#[test]
fn wait_draws_a_bar_on_a_terminal_and_plain_lines_otherwise() {
    let report = report();
    let (run, _) = executed(&report);
    let mut status = run.status.unwrap();
    status.phase = Some(Phase::Executing);
    if let Some(e) = status.execution.as_mut() {
        e.completed_steps = 1;
        e.progress = Some("1/2".into());
    }
    let bar = render::wait_line(&status, true);
    assert!(bar.starts_with("Executing") && bar.contains("[##########....................] 1/3 steps"), "{bar}");
    let plain = render::wait_line(&status, false);
    assert!(plain.starts_with("Executing: 1/2 items written") && !plain.contains('['), "{plain}");
    assert_eq!(render::bar(0, 0, 4), "[....]");
    assert_eq!(render::bar(5, 4, 4), "[####]");
}

#[test]
fn the_fixture_report_plans_what_the_report_says() {
    let report = report();
    let actions: Vec<PlannedAction> = report.items.iter().map(|i| i.action).collect();
    assert_eq!(actions.iter().filter(|a| a.writes()).count(), 2);
}

// ---------------------------------------------------------------------------------------------
// The HTML report (`show -o html`, `preview -o html`)
// ---------------------------------------------------------------------------------------------

/// A display name that tries to inject markup and script into the page.
const MARKUP: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

fn html_page(executed_run: bool) -> String {
    let mut report = report();
    report.items[1].display_name = MARKUP.into();
    let (run, progress) =
        if executed_run { executed(&report) } else { (run("Previewed", &report, json!({})), ProgressRecord::new("")) };
    let rows = executed_run.then(|| render::item_rows(&report, Some(&progress)));
    page(&PageInput {
        report: &report,
        status: run.status.as_ref(),
        run_name: Some("restore-march"),
        namespace: Some("intune"),
        rows: rows.as_deref(),
    })
}

#[test]
fn the_html_page_is_self_contained_and_a_forged_name_cannot_inject_markup() {
    let page = html_page(false);
    for external in ["http://", "https://", "<link", " src=\"", "@import", "url("] {
        assert!(!page.contains(external), "the page refers to an outside asset ({external})");
    }
    assert!(!page.contains("<img") && !page.contains("<script>alert"), "markup from a name reached the page");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(!page.contains('\u{1b}'), "no terminal escape sequence either");
    for section in ["Summary", "Findings", "Items", "How to approve"] {
        assert!(page.contains(&format!("<h2>{section}</h2>")), "no {section} section");
    }
    assert!(
        page.contains("sev-warning") && page.contains("approve only after a review"),
        "findings with severity and fix"
    );
    assert!(page.contains("<span class=\"digest\" id=\"digest\">sha256:"), "the digest is shown");
    assert!(page.contains("<span class=\"changed\">passwordMinimumLength</span>"), "changed fields are highlighted");
    assert!(!page.contains("<h2>Results</h2>"), "no results before execution");
    assert!(html_page(true).contains("<h2>Results</h2>"), "results after execution");
}

/// Debian's Chromium, when installed (scripts/install-test-deps.sh installs it; CI must have it).
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| PathBuf::from(dir).join(name)).find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(std::env::var("CI").is_err(), "chromium is missing under CI: run scripts/install-test-deps.sh");
        println!("skipped: chromium is not installed (scripts/install-test-deps.sh installs it)");
    }
    found
}

fn headless(browser: &PathBuf, args: &[&str], page: &std::path::Path) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

#[test]
fn the_html_page_renders_in_headless_chromium_with_working_filters() {
    let Some(browser) = chromium() else { return };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, executed_run) in [("preview", false), ("executed", true)] {
        let file = dir.join(format!("{name}.html"));
        std::fs::write(&file, html_page(executed_run)).unwrap();
        let dom = headless(&browser, &["--dump-dom", "--virtual-time-budget=2000"], &file);
        let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
        assert!(dom.contains("Windows baseline") || dom.contains("&lt;img src=x"), "the page rendered: {dom}");
        assert!(dom.contains("How to approve") && dom.contains("kubectl restorerun approve restore-march -n intune"));
        assert!(!dom.contains("<img") && !dom.contains("<script>alert"), "the forged name stayed text");
        // The filters' script ran: unchanged items start hidden, the rest shown.
        let hidden = dom.matches("data-action=\"unchanged\"").count();
        assert_eq!(hidden, 2, "{dom}");
        assert_eq!(dom.matches("style=\"display: none;\"").count(), hidden, "only unchanged rows are hidden:\n{dom}");
        assert_eq!(dom.contains("<h2>Results</h2>"), executed_run);
        let shot = dir.join(format!("{name}.png"));
        let out = headless(&browser, &[&format!("--screenshot={}", shot.display()), "--window-size=1280,1400"], &file);
        let png = std::fs::read(&shot)
            .unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", shot.display());
        println!("screenshot: {} ({} bytes)", shot.display(), png.len());
    }
}
