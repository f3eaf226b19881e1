//! The layers of docs/architecture.md, checked from the tree: which crate may depend on which, and no
//! circle between the modules of any crate. A new `use` that closes a circle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `[dependencies]` keys of a Cargo.toml (dev-dependencies do not ship, so they are free).
fn dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut deps = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['=', '.', ' ']).next().unwrap();
            deps.insert(key.to_string());
        }
    }
    deps
}

fn crate_deps(name: &str) -> BTreeSet<String> {
    dependencies(&Path::new(ROOT).join("crates").join(name).join("Cargo.toml"))
}

#[test]
fn each_layer_depends_only_on_the_layers_below_it() {
    let io = [
        "tokio",
        "reqwest",
        "kube",
        "hyper",
        "axum",
        "kube-lease-manager",
    ];
    let api = crate_deps("dealpay-api");
    let wire = crate_deps("tencent-billing");
    let engine = crate_deps("dealpay-engine");
    let sandbox = crate_deps("dealpay-sandbox");
    let operator = dependencies(&Path::new(ROOT).join("Cargo.toml"));

    // The CRD knows nothing of the wire, the engine, or a Kubernetes client (kube only for the derive).
    for dep in [
        "tencent-billing",
        "dealpay-engine",
        "dealpay-sandbox",
        "tokio",
        "reqwest",
    ] {
        assert!(!api.contains(dep), "dealpay-api depends on {dep}");
    }
    // The wire knows nothing of Kubernetes or of the payment's status.
    for dep in ["dealpay-api", "dealpay-engine", "kube", "k8s-openapi"] {
        assert!(!wire.contains(dep), "tencent-billing depends on {dep}");
    }
    // The engine decides; it does no IO of its own.
    for dep in io.iter().chain(&["dealpay-sandbox"]) {
        assert!(!engine.contains(*dep), "dealpay-engine depends on {dep}");
    }
    assert!(engine.contains("dealpay-api") && engine.contains("tencent-billing"));
    // The simulator speaks the wire only, so it cannot borrow the operator's decisions.
    for dep in ["dealpay-api", "dealpay-engine", "kube", "k8s-openapi"] {
        assert!(!sandbox.contains(dep), "dealpay-sandbox depends on {dep}");
    }
    assert!(operator.contains("dealpay-engine"));
    let root = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    assert!(
        root.contains("dealpay-sandbox = { workspace = true, optional = true }"),
        "the production binary must be able to leave the simulator out"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module of a file under `src` (`controller/pipeline/tests.rs` is `controller`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .trim_end_matches(".rs");
    (!matches!(first, "lib" | "main" | "mod")).then(|| first.to_string())
}

/// Edges between the top-level modules of a crate, from `crate::m` and, in top-level files,
/// `super::m` paths. Test modules are left out: a test may reach anywhere.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let path_re = regex::Regex::new(r"\b(crate|super)::(\w+)").unwrap();
    let braces_re = regex::Regex::new(r"\b(crate|super)::\{([^}]*)\}").unwrap();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(src, file) else {
            continue;
        };
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let top_level = file.parent() == Some(src);
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut targets = Vec::new();
        for c in path_re.captures_iter(code) {
            if &c[1] == "crate" || top_level {
                targets.push(c[2].to_string());
            }
        }
        for c in braces_re.captures_iter(code) {
            if &c[1] == "crate" || top_level {
                targets.extend(
                    c[2].split(',')
                        .map(|s| s.trim().split("::").next().unwrap().to_string()),
                );
            }
        }
        for to in targets {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// A circle in the graph, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_a_circle_between_its_modules() {
    let mut srcs = vec![PathBuf::from(ROOT).join("src")];
    for name in [
        "dealpay-api",
        "tencent-billing",
        "dealpay-engine",
        "dealpay-sandbox",
    ] {
        srcs.push(Path::new(ROOT).join("crates").join(name).join("src"));
    }
    for src in srcs {
        let graph = module_graph(&src);
        assert!(
            !graph.is_empty(),
            "{}: no module edges found",
            src.display()
        );
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{}: modules import in a circle: {}",
                src.display(),
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}
