//! The patched dependencies in vendor/ are the ones Cargo builds.
//!
//! A copy under `[patch.crates-io]` stops being used, with only a warning,
//! once a dependency bump asks for a version the copy is not; the
//! sidecar would then build against the published crate and quietly lose
//! what the patch bought (for engineioxide, about 7 KiB per idle
//! connection: see vendor/README.md). This reads Cargo.lock, which records
//! a path dependency without a `source`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{path:?} is not TOML: {e}"))
}

/// The `[[package]]` entries of Cargo.lock named `name`.
fn locked(name: &str) -> Vec<toml::Table> {
    let lock = read_toml(&root().join("Cargo.lock"));
    let packages = lock["package"]
        .as_array()
        .expect("Cargo.lock lists packages");
    packages
        .iter()
        .filter_map(|p| p.as_table())
        .filter(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
        .cloned()
        .collect()
}

#[test]
fn the_vendored_engineioxide_is_the_one_built() {
    let copy = read_toml(&root().join("vendor/engineioxide/Cargo.toml"));
    let copy_version = copy["package"]["version"].as_str().expect("a version");
    let entries = locked("engineioxide");
    assert_eq!(
        entries.len(),
        1,
        "one engineioxide in Cargo.lock, got {entries:?}"
    );
    let entry = &entries[0];
    assert!(
        !entry.contains_key("source"),
        "Cargo.lock takes engineioxide from {:?}, not vendor/engineioxide: \
         re-apply vendor/engineioxide.patch to the version socketioxide now asks for",
        entry["source"]
    );
    assert_eq!(entry["version"].as_str(), Some(copy_version));
}
