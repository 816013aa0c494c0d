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

/// The peer holds no lock across a relay round trip, checked in two halves. Its async
/// code has no lock an `.await` could wait on (no tokio, futures or async-lock mutex,
/// read-write lock or semaphore): ordering is kept by single-owner tasks (the courier, the
/// connector) instead. And a `std` lock's guard is never held across an `.await`: the
/// peer crate denies clippy's `await_holding_lock`, which `scripts/test` runs with
/// `-D warnings`. Every round trip is an `.await`, so none can happen under a lock.
#[test]
fn the_peer_has_no_lock_an_await_can_hold() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("peer/src"), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for lock in ["futures::lock", "async_lock"] {
            assert!(!text.contains(lock), "{} uses {lock}", file.display());
        }
        // What follows `tokio::sync::`: a `{ … }` list, or one name.
        for (at, _) in text.match_indices("tokio::sync::") {
            let rest = &text[at + "tokio::sync::".len()..];
            let end = match rest.strip_prefix('{') {
                Some(list) => list.find('}').map_or(rest.len(), |i| i + 1),
                None => rest
                    .find(|c: char| !c.is_alphanumeric() && c != '_')
                    .unwrap_or(rest.len()),
            };
            let named = rest[..end]
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .find(|word| ["Mutex", "RwLock", "Semaphore"].contains(word));
            assert!(
                named.is_none(),
                "{} uses tokio's {named:?}: the peer keeps order with single-owner tasks, not \
                 async locks",
                file.display()
            );
        }
    }
    let lib = std::fs::read_to_string(root.join("peer/src/lib.rs")).expect("readable");
    assert!(
        lib.contains("#![deny(clippy::await_holding_lock)]"),
        "peer/src/lib.rs must deny clippy::await_holding_lock"
    );
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
