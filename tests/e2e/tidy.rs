//! Invariants of the code base itself, checked like tests (rust-analyzer's "tidy").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Every crate's source, the fuzz targets' too.
const CRATES: [&str; 10] = [
    "wire", "db", "store", "crypto", "relay", "peer", "gui", "netsim", "tests", "fuzz",
];

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

/// Every package `package` links in a normal build (its whole dependency tree, build and
/// dev dependencies left out), by name, without itself: what `cargo tree -e normal` lists.
fn linked(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--locked", "--offline", "--charset", "ascii"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(names.contains(package), "cargo tree did not list {package}");
    names.into_iter().filter(|name| name != package).collect()
}

/// Fails naming the packages of `forbidden` that `package` links, and why that is wrong.
fn assert_links_none(package: &str, forbidden: &[&str], why: &str) {
    let linked = linked(package);
    let found: Vec<&str> = forbidden
        .iter()
        .copied()
        .filter(|name| {
            linked.contains(*name)
                || (name.ends_with('-') && linked.iter().any(|l| l.starts_with(*name)))
        })
        .collect();
    assert!(found.is_empty(), "{package} links {found:?}: {why}");
}

#[test]
fn crate_dependencies_point_the_way_design_md_says() {
    assert_links_none(
        "uchat-wire",
        &["tokio", "quinn", "redb", "uchat-"],
        "the protocol stays pure",
    );
    assert_links_none(
        "uchat-db",
        &["tokio", "quinn", "uchat-"],
        "the redb plumbing serves both stores and knows neither",
    );
    assert_links_none(
        "uchat-store",
        &["tokio", "quinn", "uchat-relay", "uchat-peer"],
        "the store does no I/O beyond its database and serves both sides",
    );
    assert_links_none(
        "uchat-relay",
        &[
            "uchat-peer",
            "uchat-crypto",
            "vodozemac",
            "aes",
            "cbc",
            "x25519-dalek",
            "hkdf",
            "ctr",
            "hmac",
        ],
        "the relay must not link the end-to-end layer",
    );
    assert_links_none(
        "uchat-crypto",
        &[
            "tokio",
            "quinn",
            "redb",
            "uchat-store",
            "uchat-relay",
            "uchat-peer",
        ],
        "the end-to-end cryptography is pure: no network, no disk",
    );
    assert_links_none(
        "uchat-peer",
        &["uchat-relay", "uchat-store"],
        "a peer talks to a relay, never runs one, and keeps its own local store",
    );
    assert_links_none(
        "uchat-netsim",
        &["uchat-"],
        "the network simulator stands alone, so it can test anything",
    );
    assert_links_none(
        "uchat-gui",
        &["uchat-relay", "uchat-store"],
        "the app is a peer, and sees history through the peer's types only",
    );
}
