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
    ensure_wasm_target();
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

/// rustup installs `rust-toolchain.toml`'s targets with the toolchain, but
/// not when the toolchain was already there (or auto-install is off): add
/// the wasm target if this toolchain lacks it. A failure here is reported by
/// the build that follows.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let installed =
        sysroot.is_some_and(|root| Path::new(&root).join("lib/rustlib/wasm32-wasip2").is_dir());
    if !installed {
        let _ = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
    }
}
