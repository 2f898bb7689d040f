//! `chatroom-host`'s own command line (`chatroom_host::cli::main`), built
//! inside the tests package so that tests can run the real binary's code as
//! a process and signal it.

fn main() -> anyhow::Result<()> {
    chatroom_host::cli::main()
}
