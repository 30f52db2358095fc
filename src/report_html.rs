//! The preview (and, after execution, the results) as one self-contained HTML page: inline CSS and
//! script, no external asset, every value HTML-escaped. Used by `preview --output html` and the plugin.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use restore_core::api::{ItemOutcome, RestoreRunStatus, Severity};
use restore_core::engine::analysis::{ItemPreview, PlannedAction};
use restore_core::engine::preview::PreviewReport;
use similar::{DiffTag, TextDiff};

use crate::plugin::render::ItemRow;

/// What the page shows.
pub struct PageInput<'a> {
    /// The preview report (verified against the digest by the caller).
    pub report: &'a PreviewReport,
    /// The run's status, when the report comes from a cluster.
    pub status: Option<&'a RestoreRunStatus>,
    /// The RestoreRun's name (for the approval command).
    pub run_name: Option<&'a str>,
    /// Its namespace.
    pub namespace: Option<&'a str>,
    /// Per-item results, once the run executes.
    pub rows: Option<&'a [ItemRow]>,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn action_name(action: PlannedAction) -> &'static str {
    match action {
        PlannedAction::Create => "create",
        PlannedAction::Update => "update",
        PlannedAction::Unchanged => "unchanged",
        PlannedAction::Skip => "skip",
        PlannedAction::PreviewOnly => "preview-only",
    }
}

fn outcome_name(outcome: Option<ItemOutcome>) -> &'static str {
    match outcome {
        Some(ItemOutcome::Created) => "created",
        Some(ItemOutcome::Updated) => "updated",
        Some(ItemOutcome::Unchanged) => "unchanged",
        Some(ItemOutcome::Skipped) => "skipped",
        Some(ItemOutcome::Drifted) => "drifted",
        Some(ItemOutcome::Failed) => "failed",
        None => "pending",
    }
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;color:#1b1f24;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25em .6em;border-bottom:1px solid #eaeef2;vertical-align:top}
.summary td:first-child{font-weight:600;width:12em}.digest{font-family:monospace;word-break:break-all}
.sev{font-weight:700;padding:0 .4em;border-radius:3px}.sev-blocker{background:#ffebe9;color:#a40e26}
.sev-warning{background:#fff8c5;color:#7d4e00}.sev-info{background:#ddf4ff;color:#0550ae}
.items{table-layout:fixed}.items td:first-child{width:40%}.items td:nth-child(2){width:10%}
.act{font-weight:600}.act-create{color:#1a7f37}.act-update{color:#9a6700}.act-skip,.act-preview-only,.act-unchanged{color:#57606a}
.out-failed,.out-drifted{color:#a40e26;font-weight:700}.out-created,.out-updated{color:#1a7f37;font-weight:700}
.filters{background:#f6f8fa;padding:.6em;border-radius:6px;margin:.8em 0}.filters label{margin-right:1em}
.sbs{width:100%;font-family:monospace;font-size:12px;table-layout:fixed}.sbs td{white-space:pre-wrap;border:none;padding:0 .4em;width:50%}
.sbs th{background:#f6f8fa}.del{background:#ffebe9}.ins{background:#dafbe1}.changed{background:#fff8c5;font-family:monospace}
details summary{cursor:pointer}.howto pre{background:#f6f8fa;padding:.6em;border-radius:6px;overflow-x:auto}
"#;

const SCRIPT: &str = r#"
function applyFilters(){
  var shown={};document.querySelectorAll('input[data-filter]').forEach(function(b){shown[b.value]=b.checked;});
  var type=document.getElementById('type-filter').value;var text=document.getElementById('text-filter').value.toLowerCase();
  document.querySelectorAll('tr.item').forEach(function(r){
    var ok=shown[r.dataset.action]&&(!type||r.dataset.type===type)&&(!text||r.dataset.name.toLowerCase().indexOf(text)>=0);
    r.style.display=ok?'':'none';var d=document.getElementById('diff-'+r.dataset.index);if(d){d.style.display=ok?'':'none';}
  });
  document.querySelectorAll('section.type').forEach(function(s){
    var any=false;s.querySelectorAll('tr.item').forEach(function(r){if(r.style.display!=='none'){any=true;}});
    s.style.display=any?'':'none';
  });
}
document.querySelectorAll('input[data-filter],#type-filter,#text-filter').forEach(function(e){e.addEventListener('input',applyFilters);});
applyFilters();
"#;

/// The whole page.
pub fn page(input: &PageInput<'_>) -> String {
    let report = input.report;
    let digest = report.digest();
    let mut out = String::new();
    let title = match input.run_name {
        Some(name) => format!("RestoreRun {} — restore preview", escape_html(name)),
        None => "Restore preview".to_string(),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'; img-src data:\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    summary(&mut out, input, &digest);
    findings(&mut out, report);
    if let Some(rows) = input.rows {
        results(&mut out, rows);
    }
    items(&mut out, report);
    how_to_approve(&mut out, input, &digest);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

fn summary(out: &mut String, input: &PageInput<'_>, digest: &str) {
    let report = input.report;
    let c = &report.counts;
    out.push_str("<h2>Summary</h2><table class=\"summary\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<tr><td>{k}</td><td>{v}</td></tr>");
    };
    if let Some(status) = input.status {
        if let Some(phase) = status.phase {
            row("Phase", escape_html(phase.as_str()));
        }
        if let Some(t) = &status.tenant {
            let env = status.environment.map_or("?", |e| e.as_str());
            row("Tenant", format!("{} ({}), {env}", escape_html(&t.label), escape_html(&t.id)));
        }
    } else {
        row("Tenant", escape_html(&report.tenant_id));
    }
    let cross = if report.cross_tenant { " — cross-tenant restore (objects matched by name)" } else { "" };
    row("Source", format!("<span class=\"digest\">{}</span>{cross}", escape_html(&report.source_digest)));
    row(
        "Plan",
        format!(
            "{} item(s): <span class=\"act act-create\">{} create</span>, <span class=\"act act-update\">{} update</span>, \
             {} unchanged, {} skip, {} preview-only",
            report.items.len(),
            c.create,
            c.update,
            c.unchanged,
            c.skip,
            c.preview_only
        ),
    );
    let checks = report.checks_status();
    row("Checks", format!("{} blocker(s), {} warning(s), {} info", checks.blockers, checks.warnings, checks.infos));
    row("Preview digest", format!("<span class=\"digest\" id=\"digest\">{}</span>", escape_html(digest)));
    if let Some(e) = input.status.and_then(|s| s.execution.as_ref()) {
        let k = &e.counts;
        row(
            "Execution",
            format!(
                "{}/{} steps; {} created, {} updated, {} unchanged, {} skipped, {} drifted, {} failed",
                e.completed_steps, e.total_steps, k.created, k.updated, k.unchanged, k.skipped, k.drifted, k.failed
            ),
        );
    }
    out.push_str("</table>\n");
}

fn findings(out: &mut String, report: &PreviewReport) {
    out.push_str("<h2>Findings</h2>\n");
    if report.findings.is_empty() {
        out.push_str("<p>No findings.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"findings\"><tr><th>Severity</th><th>Code</th><th>Item</th><th>What</th><th>Fix</th></tr>\n",
    );
    for f in &report.findings {
        let (class, word) = match f.severity {
            Severity::Blocker => ("blocker", "Blocker"),
            Severity::Warning => ("warning", "Warning"),
            Severity::Info => ("info", "Info"),
        };
        let _ = writeln!(
            out,
            "<tr><td><span class=\"sev sev-{class}\">{word}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(f.code.as_str()),
            escape_html(f.item.as_deref().unwrap_or("")),
            escape_html(&f.message),
            escape_html(&f.hint)
        );
    }
    out.push_str("</table>\n");
}

fn results(out: &mut String, rows: &[ItemRow]) {
    out.push_str(
        "<h2>Results</h2><table class=\"results\"><tr><th>Item</th><th>Type</th><th>Outcome</th><th>Detail</th></tr>\n",
    );
    for row in rows {
        let outcome = outcome_name(row.outcome);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"out-{outcome}\">{outcome}</td><td>{}</td></tr>",
            escape_html(&row.display_name),
            escape_html(&row.item_type),
            escape_html(row.message.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
}

fn items(out: &mut String, report: &PreviewReport) {
    out.push_str("<h2>Items</h2>\n<div class=\"filters\">");
    for action in crate::plugin::render::ACTION_ORDER {
        let name = action_name(action);
        let count = report.items.iter().filter(|i| i.action == action).count();
        let checked = if action == PlannedAction::Unchanged { "" } else { " checked" };
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" data-filter value=\"{name}\"{checked}> {name} ({count})</label>"
        );
    }
    let mut by_type: BTreeMap<&str, Vec<(usize, &ItemPreview)>> = BTreeMap::new();
    for (index, item) in report.items.iter().enumerate() {
        by_type.entry(item.item_type.as_str()).or_default().push((index, item));
    }
    out.push_str("<select id=\"type-filter\"><option value=\"\">all types</option>");
    for t in by_type.keys() {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", escape_html(t));
    }
    out.push_str("</select> <input id=\"text-filter\" type=\"search\" placeholder=\"filter by name\"></div>\n");
    for (item_type, list) in &by_type {
        let _ = writeln!(out, "<section class=\"type\"><h3>{}</h3><table class=\"items\">", escape_html(item_type));
        for (index, item) in list {
            item_row(out, *index, item);
        }
        out.push_str("</table></section>\n");
    }
}

fn item_row(out: &mut String, index: usize, item: &ItemPreview) {
    let action = action_name(item.action);
    let detail = match (&item.reason, item.changed_fields.is_empty()) {
        (Some(reason), _) => format!("reason: {}", escape_html(reason)),
        (None, false) => {
            let fields: Vec<String> = item
                .changed_fields
                .iter()
                .map(|f| format!("<span class=\"changed\">{}</span>", escape_html(f)))
                .collect();
            format!("changes {}", fields.join(", "))
        }
        (None, true) => String::new(),
    };
    let _ = writeln!(
        out,
        "<tr class=\"item\" data-index=\"{index}\" data-action=\"{action}\" data-type=\"{}\" data-name=\"{}\">\
         <td>{}</td><td class=\"act act-{action}\">{action}</td><td>{detail}</td></tr>",
        escape_html(&item.item_type),
        escape_html(&item.display_name),
        escape_html(&item.display_name),
    );
    if item.action.writes() {
        // Updates open: what changes in an existing object is what a reviewer must read.
        let open = if item.action == PlannedAction::Update { " open" } else { "" };
        let _ = writeln!(
            out,
            "<tr id=\"diff-{index}\"><td colspan=\"3\"><details{open}><summary>side-by-side diff</summary>{}</details></td></tr>",
            side_by_side(item)
        );
    }
}

/// Two columns, tenant (left) and backup (right), with removed and added lines highlighted.
fn side_by_side(item: &ItemPreview) -> String {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let old = item.current.as_deref().map(pretty).unwrap_or_default();
    let new = pretty(&item.desired);
    let diff = TextDiff::from_lines(&old, &new);
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out = String::from("<table class=\"sbs\"><tr><th>tenant now</th><th>backup (after restore)</th></tr>");
    let cell = |lines: &[&str], i: Option<usize>, class: &str| match i.and_then(|i| lines.get(i)) {
        Some(line) => format!("<td class=\"{class}\">{}</td>", escape_html(line)),
        None => "<td></td>".to_string(),
    };
    for op in diff.ops() {
        let (tag, left, right) = op.as_tag_tuple();
        let class = match tag {
            DiffTag::Equal => "",
            _ => "chg",
        };
        let rows = left.len().max(right.len());
        for k in 0..rows {
            let l = (k < left.len()).then(|| left.start + k);
            let r = (k < right.len()).then(|| right.start + k);
            let (lc, rc) = if class.is_empty() { ("", "") } else { ("del", "ins") };
            let _ = write!(out, "<tr>{}{}</tr>", cell(&old_lines, l, lc), cell(&new_lines, r, rc));
        }
    }
    out.push_str("</table>");
    out
}

fn how_to_approve(out: &mut String, input: &PageInput<'_>, digest: &str) {
    out.push_str("<h2>How to approve</h2><div class=\"howto\">\n");
    let blockers = input.report.blockers();
    if blockers > 0 {
        let _ = writeln!(out, "<p>This preview has {blockers} blocker(s): fix them first; it cannot be approved.</p>");
    }
    let name = input.run_name.unwrap_or("NAME");
    let ns = input.namespace.unwrap_or("NAMESPACE");
    let _ = writeln!(
        out,
        "<p>Approve exactly this preview (digest <span class=\"digest\">{d}</span>) by typing the tenant's label:</p>\
         <pre>kubectl restorerun approve {n} -n {s}</pre><p>or set the confirmation yourself:</p>\
         <pre>spec:\n  dryRun: false\n  confirmation:\n    reviewedImpact: true\n    tenant: &lt;the tenant's label&gt;\n    \
         previewDigest: {d}\n    approvedBy: &lt;your username&gt;</pre></div>",
        d = escape_html(digest),
        n = escape_html(name),
        s = escape_html(ns)
    );
}
