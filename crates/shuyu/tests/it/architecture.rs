//! The boundary in the crate graph: what faces the outside cannot name the gate's minting, its
//! outputs or its checks, nor the vault that holds full data. A compile-fail doctest in the
//! gate guards the types; this guards who may depend on them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each workspace crate's name and its normal (not dev) dependencies on other shuyu crates.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g = BTreeMap::new();
    for dir in std::fs::read_dir(root().join("crates")).expect("crates") {
        let manifest = dir.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table = text.parse().expect("a manifest that parses");
        let name = doc["package"]["name"].as_str().expect("package name").to_string();
        let deps = doc
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| t.keys().filter(|k| k.starts_with("shuyu-")).cloned().collect())
            .unwrap_or_default();
        g.insert(name, deps);
    }
    g
}

fn reachable(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(c) = stack.pop() {
        for d in g.get(&c).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_server_depends_on_the_engine_and_never_on_the_gate_or_the_vault() {
    let g = graph();
    assert!(g.len() >= 15, "the workspace's crates: {:?}", g.keys());
    let server = g.get("shuyu-server").expect("shuyu-server");
    for forbidden in [
        "shuyu-gate",
        "shuyu-vault",
        "shuyu-import",
        "shuyu-keyring",
        "shuyu-mask",
    ] {
        assert!(
            !server.contains(forbidden),
            "shuyu-server depends on {forbidden} directly: it must reach full data only through the engine"
        );
    }
    // The engine is how it gets there (so the check above is about something real).
    assert!(reachable(&g, "shuyu-server").contains("shuyu-gate"));
    // Nothing below the engine depends on it or on the server.
    for (name, deps) in &g {
        if deps.contains("shuyu-engine") {
            assert!(
                ["shuyu-server", "shuyu"].contains(&name.as_str()),
                "{name} depends on the engine"
            );
        }
    }
}

#[test]
fn only_the_release_service_mints_and_the_engine_re_exports_display_types_only() {
    let mut files = Vec::new();
    sources(&root().join("crates"), &mut files);
    let mut minting = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(root())
            .unwrap_or(f)
            .to_string_lossy()
            .replace("/../..", "");
        if rel.contains("crates/gate/") || rel.contains("/tests/") || rel.contains("/benches/") {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("source");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let names_mint = code.match_indices("mint").any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = code[i + 4..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if names_mint && code.contains("shuyu_gate") {
            minting.push(rel);
        }
    }
    assert_eq!(
        minting,
        vec!["crates/engine/src/releases.rs".to_string()],
        "who names the gate's mint"
    );

    // What the engine passes on of the gate: display types, never an Output, a report's
    // constructor, an approval or the checks.
    let lib = std::fs::read_to_string(root().join("crates/engine/src/lib.rs")).expect("engine lib");
    let exported: Vec<&str> = lib.lines().filter(|l| l.contains("pub use shuyu_gate")).collect();
    assert!(!exported.is_empty(), "the engine's views of the gate");
    let views = lib
        .split("pub mod views")
        .nth(1)
        .expect("views")
        .split("\n}")
        .next()
        .expect("block");
    let names: BTreeSet<&str> = views
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for forbidden in [
        "mint", "Output", "Approval", "checks", "Report", "Finding", "Minted", "Released", "Context", "Rules",
    ] {
        assert!(
            !names.contains(forbidden),
            "the engine re-exports {forbidden} of the gate: {views}"
        );
    }
    assert!(names.contains("RedactedReport"), "the views block was found: {views}");
}
