//! The binaries' command lines as clap defines them (each library's
//! `cli::command()`): the long flags each binary accepts, the environment
//! variable behind each, and their defaults.

/// One flag of a binary.
#[derive(Debug, Clone)]
pub struct Flag {
    /// Without the leading `--`.
    pub long: String,
    pub env: Option<String>,
    /// The first default value, if any.
    pub default: Option<String>,
}

/// One binary's command line.
#[derive(Debug, Clone)]
pub struct Cli {
    /// The binary (and the image named after it).
    pub binary: String,
    /// The cargo package that builds it.
    pub package: String,
    pub flags: Vec<Flag>,
}

impl Cli {
    /// The top-level flags of `command` (subcommands' flags are not
    /// given to a container's entrypoint).
    pub fn from_command(binary: &str, package: &str, command: &clap::Command) -> Cli {
        let flags = command
            .get_arguments()
            .filter_map(|arg| {
                let long = arg.get_long()?.to_owned();
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                let default = arg
                    .get_default_values()
                    .first()
                    .map(|d| d.to_string_lossy().into_owned());
                Some(Flag { long, env, default })
            })
            .collect();
        Cli {
            binary: binary.to_owned(),
            package: package.to_owned(),
            flags,
        }
    }

    /// The three binaries of the repository.
    pub fn all() -> Vec<Cli> {
        vec![
            Cli::from_command(
                "chatroom-sidecar",
                "chatroom-sidecar",
                &chatroom_sidecar::cli::command(),
            ),
            Cli::from_command("chatroom", "chatroom", &chatroom::cli::command()),
            Cli::from_command(
                "chatroom-host",
                "chatroom-host",
                &chatroom_host::cli::command(),
            ),
        ]
    }

    /// The flag `--long`, if the binary has it.
    pub fn flag(&self, long: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.long == long)
    }

    /// The flag read from the environment variable `env`.
    pub fn flag_of_env(&self, env: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.env.as_deref() == Some(env))
    }
}
