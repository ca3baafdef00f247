//! The layering docs/ARCHITECTURE.md draws, checked against the manifests:
//! every crate is in its table with exactly the workspace crates its
//! Cargo.toml depends on, the training side reaches no model runtime (ONNX
//! Runtime comes only through visage-infer), and the crate graph has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `[dependencies]` section of a manifest: dependency names (no dev- or build-dependencies).
fn dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut names = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default().trim();
            names.insert(name.to_string());
        }
    }
    names
}

/// The workspace's member folders: every crate under crates/, and python/
/// (the Python package, crate visage-python).
fn member_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("crates")).unwrap().map(|entry| entry.unwrap().path()).collect();
    dirs.push(repo().join("python"));
    dirs.retain(|dir| dir.join("Cargo.toml").is_file());
    dirs
}

/// The `name` of a manifest's `[package]` section.
fn package_name(manifest: &Path) -> String {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[package]";
        } else if let Some(value) = line.strip_prefix("name").map(str::trim).and_then(|rest| rest.strip_prefix('=')).filter(|_| inside) {
            return value.trim().trim_matches('"').to_string();
        }
    }
    panic!("{}: no [package] name", manifest.display())
}

/// Crate name → (its manifest, its workspace dependencies), from every member's Cargo.toml.
fn workspace_manifests() -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
    let mut graph = BTreeMap::new();
    for dir in member_dirs() {
        let manifest = dir.join("Cargo.toml");
        let name = package_name(&manifest);
        let deps = dependencies(&manifest).into_iter().filter(|d| d.starts_with("visage-")).collect();
        assert!(graph.insert(name.clone(), (manifest, deps)).is_none(), "two members are called {name}");
    }
    graph
}

/// Crate name → its workspace dependencies.
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    workspace_manifests().into_iter().map(|(name, (_, deps))| (name, deps)).collect()
}

/// The crate table of docs/ARCHITECTURE.md: crate → the `visage-*` names in its "depends on" column.
fn documented_graph() -> BTreeMap<String, BTreeSet<String>> {
    let path = repo().join("docs/ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut graph = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `visage-")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | crate | job | depends on (workspace) | holds |
        assert!(cells.len() >= 5, "{}: a crate row needs four columns: {line}", path.display());
        let name = cells[1].trim_matches('`').to_string();
        let deps = cells[3].split(['`', ',', ' ']).filter(|w| w.starts_with("visage-")).map(str::to_string).collect();
        assert!(graph.insert(name.clone(), deps).is_none(), "{name} has two rows in {}", path.display());
    }
    graph
}

/// `layer N  visage-a  visage-b …` lines of docs/ARCHITECTURE.md: crate → layer.
fn documented_layers() -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("layer ")) {
        let mut words = line.split_whitespace().skip(1);
        let layer: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("not a layer line: {line}"));
        for name in words.take_while(|w| w.starts_with("visage-")) {
            assert!(layers.insert(name.to_string(), layer).is_none(), "{name} is on two layers");
        }
    }
    layers
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, target: &str) -> bool {
    let mut stack = vec![from.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = stack.pop() {
        for dep in graph.get(&name).into_iter().flatten() {
            if dep == target {
                return true;
            }
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    false
}

#[test]
fn the_architecture_table_matches_the_manifests() {
    let actual = workspace_graph();
    let documented = documented_graph();
    assert!(actual.len() >= 16, "found only {} workspace members", actual.len());
    assert!(actual.contains_key("visage-python"), "python/ (visage-python) is not found as a member");
    for (name, deps) in &actual {
        let Some(listed) = documented.get(name) else { panic!("docs/ARCHITECTURE.md has no row for {name}") };
        assert_eq!(listed, deps, "docs/ARCHITECTURE.md lists other workspace dependencies for {name} than its Cargo.toml");
    }
    for name in documented.keys() {
        assert!(actual.contains_key(name), "docs/ARCHITECTURE.md lists {name}, which is not a workspace member (crates/*, python/)");
    }
}

#[test]
fn every_crate_depends_only_on_lower_layers() {
    let graph = workspace_graph();
    let layers = documented_layers();
    for (name, deps) in &graph {
        let Some(&layer) = layers.get(name) else { panic!("docs/ARCHITECTURE.md puts {name} on no layer") };
        for dep in deps {
            let below = layers.get(dep).unwrap_or_else(|| panic!("docs/ARCHITECTURE.md puts {dep} on no layer"));
            assert!(*below < layer, "{name} (layer {layer}) depends on {dep} (layer {below}): dependencies must point down");
        }
    }
}

#[test]
fn the_training_side_links_no_model_runtime_and_nothing_is_circular() {
    let graph = workspace_graph();
    let training_side = [
        "visage-image",
        "visage-pickle",
        "visage-backend",
        "visage-heads",
        "visage-data",
        "visage-nn",
        "visage-eval",
        "visage-train",
        "visage-synth",
    ];
    for name in training_side {
        assert!(graph.contains_key(name), "{name} is missing");
        assert!(!reaches(&graph, name, "visage-infer"), "{name} depends on visage-infer (and so on ONNX Runtime)");
    }
    for (name, (manifest, _)) in workspace_manifests() {
        let name = name.as_str();
        let direct = dependencies(&manifest);
        if name != "visage-infer" {
            assert!(!direct.contains("ort"), "{name} depends on ort directly; ONNX Runtime belongs to visage-infer");
        }
        assert!(!reaches(&graph, name, name), "{name} depends on itself through other crates");
    }
    // The bottom crate depends on no other workspace crate.
    assert!(graph["visage-image"].is_empty(), "visage-image must stay at the bottom: {:?}", graph["visage-image"]);
}
