//! The Argo CD health check (examples/argocd/health.lua), tested the way Argo CD tests its own
//! `resource_customizations`: every case of examples/argocd/health_test.yaml feeds a fixture from
//! examples/argocd/testdata/ (status objects the operator wrote) to the script as `obj` and compares
//! the returned `hs.status` and `hs.message`.
//!
//! It runs under Debian's `lua5.1` (Argo CD's gopher-lua implements Lua 5.1), in an environment with
//! only what Argo CD opens for health scripts (base functions, string, table, math): no io, os or
//! require. That test is `#[ignore]`d (a plain `cargo test` reports it as ignored); scripts/test
//! installs `lua5.1` (scripts/install-lua) and runs it with `--include-ignored`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/argocd"))
}

#[derive(Deserialize)]
struct Suite {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    health_status: Expected,
    input_path: String,
}

#[derive(Deserialize)]
struct Expected {
    status: String,
    #[serde(default)]
    message: String,
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            // Every other byte (control characters, UTF-8 continuation bytes) as a decimal escape.
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A JSON value as a Lua 5.1 table constructor, as gopher-lua's JSON conversion sees it
/// (null is nil, arrays are 1-based sequences).
fn lua_value(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(a) => format!(
            "{{{}}}",
            a.iter().map(lua_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua() -> &'static str {
    let ok = Command::new("lua5.1")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "lua5.1 is missing: scripts/install-lua installs it (apt-get install lua5.1)"
    );
    "lua5.1"
}

/// Runs health.lua on `obj` the way Argo CD does; returns (status, message).
fn run(lua: &str, script: &Path, obj: &Value) -> (String, String) {
    let chunk = format!(
        r#"
local env = {{
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  string = string, table = table, math = math,
}}
env.obj = {obj}
local f = assert(loadfile({path}))
setfenv(f, env)
local hs = f()
assert(type(hs) == "table", "the script must return a table")
io.write(tostring(hs.status), "\n", tostring(hs.message or ""))
"#,
        obj = lua_value(obj),
        path = lua_string(script.to_str().unwrap()),
    );
    let mut child = Command::new(lua)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua5.1 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(chunk.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "lua5.1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
#[ignore = "needs lua5.1 (scripts/install-lua); scripts/test runs it with --include-ignored"]
fn health_test_yaml_passes_under_lua_5_1() {
    let lua = lua();
    let script = dir().join("health.lua");
    let suite: Suite =
        serde_norway::from_str(&std::fs::read_to_string(dir().join("health_test.yaml")).unwrap())
            .unwrap();
    assert!(suite.tests.len() >= 10, "at least 10 fixtures");
    let mut failures = Vec::new();
    for case in &suite.tests {
        let obj = load_yaml(&dir().join(&case.input_path));
        assert_eq!(obj["kind"], "DealPayment", "{}", case.input_path);
        let (status, message) = run(lua, &script, &obj);
        if status != case.health_status.status || message != case.health_status.message {
            failures.push(format!(
                "{}: got {status} {message:?}, want {} {:?}",
                case.input_path, case.health_status.status, case.health_status.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_health_status_and_fixture_is_covered() {
    let suite: Suite =
        serde_norway::from_str(&std::fs::read_to_string(dir().join("health_test.yaml")).unwrap())
            .unwrap();
    for want in ["Healthy", "Progressing", "Degraded", "Suspended"] {
        assert!(
            suite.tests.iter().any(|c| c.health_status.status == want),
            "no case expects {want}"
        );
    }
    // Every fixture in testdata/ is used.
    for entry in std::fs::read_dir(dir().join("testdata")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".yaml") {
            continue;
        }
        let path = format!("testdata/{name}");
        assert!(
            suite.tests.iter().any(|c| c.input_path == path),
            "{path} is in no case"
        );
    }
}

#[test]
fn argocd_cm_snippet_carries_the_script_verbatim() {
    let cm = load_yaml(&dir().join("argocd-cm.yaml"));
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let key = "resource.customizations.health.billing.dealpay.dev_DealPayment";
    let embedded = cm["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("argocd-cm lacks data.{key}"));
    let script = std::fs::read_to_string(dir().join("health.lua")).unwrap();
    assert_eq!(
        embedded, script,
        "argocd-cm.yaml must embed health.lua verbatim"
    );
}

#[test]
fn lua_literals_escape_what_they_must() {
    assert_eq!(lua_string("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    assert_eq!(lua_string("余"), "\"\\228\\189\\153\"");
    let v = serde_json::json!({"a": [1, "x"], "n": null});
    assert_eq!(lua_value(&v), r#"{["a"] = {1, "x"}}"#);
}
