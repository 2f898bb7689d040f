//! `chatroom-sidecar`: the Socket.IO half of chatroom, alone (next to
//! `spin up`, forwarding REST to it with `--rest-upstream`).

/// mimalloc: every request allocates (an instance's store and tables, its
/// headers and buffers) and frees it all again; glibc's allocator was a
/// tenth of a request's CPU (docs/benchmarks.md, issue 29).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    chatroom_sidecar::cli::main()
}
