//! Sets `cfg(spin_cli)` when a Spin CLI is there to compare the host with:
//! `SPIN_BIN` is set, or an executable `spin` is on `PATH`. Without it the
//! comparison test is compiled as `#[ignore]`, so `cargo test` lists it as
//! ignored instead of counting a test that did nothing as passed; with it,
//! the test runs and fails if that Spin does not start. (Re-run when either
//! variable changes; a `spin` installed later on an unchanged `PATH` is
//! noticed once this package is rebuilt.)

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(spin_cli)");
    println!("cargo::rerun-if-env-changed=SPIN_BIN");
    println!("cargo::rerun-if-env-changed=PATH");
    let spin_bin = std::env::var_os("SPIN_BIN").filter(|v| !v.is_empty());
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join("spin")))
    });
    if spin_bin.is_some() || on_path {
        println!("cargo::rustc-cfg=spin_cli");
    }
}

fn is_executable(file: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        file.is_file()
    }
}
