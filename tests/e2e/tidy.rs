//! Invariants of the code base itself, checked like tests (rust-analyzer's "tidy").

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("readable source dir")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

const CRATES: [&str; 5] = ["wire", "store", "relay", "peer", "tests"];

#[test]
fn every_rust_file_starts_with_a_module_doc_and_has_no_dbg() {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in CRATES {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        assert!(
            text.starts_with("//!"),
            "{} must start with a `//!` doc saying what it is for",
            file.display()
        );
        assert!(
            !text.contains(concat!("dbg", "!(")),
            "{} contains dbg!",
            file.display()
        );
    }
}

fn dependencies(krate: &str) -> String {
    let manifest = std::fs::read_to_string(workspace_root().join(krate).join("Cargo.toml"))
        .expect("readable manifest");
    // Only the [dependencies] section: dev-dependencies may differ.
    manifest
        .split("\n[")
        .find(|section| section.starts_with("dependencies]"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn crate_dependencies_point_the_way_design_md_says() {
    let wire = dependencies("wire");
    for io in ["tokio", "quinn", "redb", "uchat-"] {
        assert!(
            !wire.contains(io),
            "wire must stay pure, but depends on {io}"
        );
    }
    let store = dependencies("store");
    for dep in ["tokio", "quinn", "uchat-relay", "uchat-peer"] {
        assert!(!store.contains(dep), "store must not depend on {dep}");
    }
    let relay = dependencies("relay");
    for dep in ["uchat-peer", "vodozemac", "aes", "cbc"] {
        assert!(
            !relay.contains(dep),
            "the relay must not link the end-to-end layer ({dep})"
        );
    }
    assert!(
        !dependencies("peer").contains("uchat-relay"),
        "peer must not depend on relay"
    );
}
