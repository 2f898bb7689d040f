//! The `--log` flag (`RUST_LOG`) and `tracing` output to stderr, the same
//! for every binary: stdout stays free for start-up lines scripts read.

use tracing_subscriber::EnvFilter;

/// The logging flag every binary has.
#[derive(Debug, Clone, clap::Args)]
pub struct LogFlags {
    /// Log filter: a level (`debug`) or `tracing` directives
    /// (`info,chatroom_sidecar=debug`).
    #[arg(long = "log", default_value = "info", env = "RUST_LOG")]
    pub filter: String,
}

impl LogFlags {
    /// Starts `tracing` output to stderr as `--log` says.
    pub fn start(&self) -> anyhow::Result<()> {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(EnvFilter::try_new(&self.filter)?)
            .init();
        Ok(())
    }
}
