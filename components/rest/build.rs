//! Links the component with a 256 KiB stack instead of Rust's 1 MiB.
//!
//! wasm-ld puts the stack first in linear memory, then the data image, then
//! the heap. The host keeps the first `INSTANCE_KEEP_RESIDENT_BYTES` of an
//! instance's memory mapped between requests (native/host/src/server.rs) and
//! resets only what a request wrote there, so a fresh instance takes no page
//! faults on its stack top, data and first heap pages; with a 1 MiB stack
//! those sat a megabyte in, beyond any small window. 256 KiB is room for
//! anything the component does: the deepest is a JSON body nested to
//! serde_json's limit of 128, which `tests/rest.rs` posts (it traps on a
//! 16 KiB stack and fits in 64 KiB), and running out traps, it does not
//! corrupt memory. `tests/rest.rs` also checks that the stack, the data and
//! a first stretch of heap fit the host's window.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32") {
        println!("cargo::rustc-link-arg=-zstack-size=262144");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
