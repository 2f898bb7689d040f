//! Builds the Spin components for wasm32-wasip2 by running each of
//! `spin.toml`'s own build commands (`component.<name>.build.command`: the
//! REST API and the chat page, each building into `target/wasm`, a target
//! directory of its own, so they never wait on the outer build's lock), one
//! after the other, as `spin build` does. This is what lets
//! `cargo run --release` alone bring up the whole backend on a fresh clone,
//! and what builds the components the tests run (they depend on this crate).

use std::path::Path;
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for input in [
        "components/rest/src",
        "components/rest/openapi.json",
        "components/rest/Cargo.toml",
        "components/rest/build.rs",
        "components/page",
        "core/src",
        "core/Cargo.toml",
        "Cargo.lock",
        "spin.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let commands = spin_build_commands(&root.join("spin.toml"));
    if commands.is_empty() {
        panic!("spin.toml has no component with a build command");
    }
    ensure_wasm_target();
    for (component, words) in commands {
        build(&root, &component, &words);
    }
}

/// Runs one component's build command from the workspace root.
fn build(root: &Path, component: &str, words: &[String]) {
    let Some((program, args)) = words.split_first() else {
        panic!("spin.toml's component.{component}.build.command is empty");
    };
    // The cargo running this build, not whichever is first on PATH.
    let program = match program.as_str() {
        "cargo" => std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        other => other.to_owned(),
    };
    let output = Command::new(&program)
        .current_dir(root)
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
            "building the Spin component {component:?} failed (is the wasm32-wasip2 target \
             installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every `component.<name>.build.command` of the manifest (by component
/// name; they are independent of each other), each split into words (a plain command line
/// with no quoting, as Spin runs it through a shell). Components without a
/// build command (a prebuilt `.wasm`) are skipped, as `spin build` skips them.
fn spin_build_commands(manifest: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", manifest.display()));
    let Some(components) = doc.get("component").and_then(|c| c.as_table()) else {
        panic!("{} has no [component] tables", manifest.display());
    };
    components
        .iter()
        .filter_map(|(name, component)| {
            let command = component.get("build")?.get("command")?;
            let Some(command) = command.as_str() else {
                panic!("component.{name}.build.command in spin.toml is not a string");
            };
            let words = command.split_whitespace().map(str::to_owned).collect();
            Some((name.clone(), words))
        })
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
