//! `chatroom-host`: serve a Spin application's HTTP components like
//! `spin up`, without Spin.

fn main() -> anyhow::Result<()> {
    chatroom_host::cli::main()
}
