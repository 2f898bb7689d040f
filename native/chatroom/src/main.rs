//! `chatroom`: the whole backend on one port. `cargo run --release` builds
//! the Spin component and starts this.

/// mimalloc: every request allocates (an instance's store and tables, its
/// headers and buffers) and frees it all again; glibc's allocator was a
/// tenth of a request's CPU (docs/benchmarks.md, issue 29).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    chatroom::cli::main()
}
