//! The sidecar's own command line, built inside the tests package so that
//! tests can run it as a separate process (and `kill -9` it).

fn main() -> anyhow::Result<()> {
    chatroom_sidecar::cli::main()
}
