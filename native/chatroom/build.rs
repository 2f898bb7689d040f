//! Builds the REST component for wasm32-wasip2 by running `spin.toml`'s own
//! build command (`component.rest.build.command`, which builds into
//! `target/wasm`, a target directory of its own, so it never waits on the
//! outer build's lock). This is what lets `cargo run --release` alone bring
//! up the whole backend on a fresh clone, and what builds the component the
//! tests run (they depend on this crate).

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
    let words = spin_build_command(&root.join("spin.toml"));
    let Some((program, args)) = words.split_first() else {
        panic!("spin.toml's component.rest.build.command is empty");
    };
    // The cargo running this build, not whichever is first on PATH.
    let program = match program.as_str() {
        "cargo" => std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        other => other.to_owned(),
    };
    ensure_wasm_target();
    let output = Command::new(&program)
        .current_dir(&root)
        .args(args)
        // Flags meant for the native build must not reach the wasm one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    if !output.status.success() {
        panic!(
            "building the Spin component failed (is the wasm32-wasip2 target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `component.rest.build.command` of the manifest, split into words (it is
/// a plain command line with no quoting, as Spin runs it through a shell).
fn spin_build_command(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", manifest.display()));
    doc.get("component")
        .and_then(|c| c.get("rest"))
        .and_then(|c| c.get("build"))
        .and_then(|b| b.get("command"))
        .and_then(|c| c.as_str())
        .unwrap_or_else(|| panic!("{} has no component.rest.build.command", manifest.display()))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
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
