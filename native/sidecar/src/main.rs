//! `chatroom-sidecar`: the Socket.IO half of chatroom, alone (next to
//! `spin up`, forwarding REST to it with `--rest-upstream`).

fn main() -> anyhow::Result<()> {
    chatroom_sidecar::cli::main()
}
