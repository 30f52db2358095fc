//! Runs Argo CD's Lua scripts (deploy/argocd) in a real Lua 5.4 interpreter on JSON objects, as Argo
//! CD hands them over; shared by the RestoreRun and IntuneTenant script tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Whether lua5.4 can run here; missing, a test skips with a printed reason, except under `CI=true`.
pub fn lua_available() -> bool {
    if Command::new("lua5.4").arg("-v").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "lua5.4 is missing in CI: scripts/install-test-deps.sh installs it"
    );
    eprintln!("SKIPPED: lua5.4 not installed (apt-get install lua5.4)");
    false
}

/// A JSON value as a Lua table literal (as Argo CD hands objects to its scripts).
pub fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            format!("{{{}}}", map.iter().map(|(k, v)| format!("[{k:?}] = {}", lua(v))).collect::<Vec<_>>().join(", "))
        }
    }
}

/// A script under deploy/argocd.
pub fn script(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd").join(rel)).unwrap()
}

/// Runs `body` (an Argo CD script) with `obj` bound, then `epilogue` on its result `r`.
pub fn run_lua(body: &str, obj: &Value, epilogue: &str) -> Result<String, String> {
    let program = format!("obj = {}\nlocal r = (function()\n{body}\nend)()\n{epilogue}\n", lua(obj));
    let out = Command::new("lua5.4").arg("-e").arg(program).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}
