//! Builds the REST component for wasm32-wasip2 exactly as `spin.toml`'s build
//! command does (into `target/wasm`, a target directory of its own, so it
//! never waits on the outer build's lock). This is what lets `cargo run
//! --release` alone bring up the whole backend on a fresh clone.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for input in [
        "components/rest/src",
        "components/rest/openapi.json",
        "components/rest/Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "Cargo.lock",
        "spin.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=CHATROOM_SKIP_COMPONENT_BUILD");
    if std::env::var_os("CHATROOM_SKIP_COMPONENT_BUILD").is_some() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "chatroom-rest",
            "--target",
            "wasm32-wasip2",
            "--release",
            "--target-dir",
            "target/wasm",
        ])
        // Flags meant for the native build must not reach the wasm one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("cargo runs");
    if !output.status.success() {
        panic!(
            "building the Spin component failed (is the wasm32-wasip2 target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
