//! `chatroom`: the whole backend on one port. `cargo run --release` builds
//! the Spin component and starts this.

fn main() -> anyhow::Result<()> {
    chatroom::cli::main()
}
