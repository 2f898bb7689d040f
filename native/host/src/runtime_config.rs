//! Spin's runtime configuration file (`spin up --runtime-config-file`), the
//! part of it this host serves: the `default` SQLite database as a local
//! file (`[sqlite_database.default]`, `type = "spin"`, `path = "..."`) and
//! `state_dir`. Paths are resolved as Spin 4 resolves them: a relative
//! `path` or `state_dir` against the current directory of the process (not
//! the file's directory, nor the manifest's).
//!
//! Everything else Spin would take (other database labels, `libsql`, key
//! value stores, variables providers, ...) is refused at start-up with an
//! error naming it, never ignored: the same file must mean the same thing
//! to this host as to `spin up`, or the host must not start.

use std::path::{Path, PathBuf};

/// Why a runtime config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error("cannot read the runtime config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the runtime config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("runtime config: cannot find the current directory to resolve {what}: {source}")]
    CurrentDir {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("runtime config: `{key}` is not supported by this host ({why}); use `spin up` for it")]
    Unsupported { key: String, why: &'static str },
    #[error("runtime config: `{key}` is invalid: {why}")]
    Invalid { key: String, why: String },
}

/// What a runtime config file says, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `state_dir`, made absolute; used when no `--state-dir` is given.
    pub state_dir: Option<PathBuf>,
    /// `[sqlite_database.default] path`, made absolute.
    pub default_database: Option<PathBuf>,
}

impl RuntimeConfig {
    /// Reads and resolves the file at `path`, relative paths against the
    /// current directory.
    pub fn load(path: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| RuntimeConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let cwd = std::env::current_dir().map_err(|source| RuntimeConfigError::CurrentDir {
            what: "relative paths",
            source,
        })?;
        Self::resolve(&table, &cwd)
    }

    /// Resolves a parsed file, relative paths against `cwd`.
    pub fn resolve(table: &toml::Table, cwd: &Path) -> Result<Self, RuntimeConfigError> {
        let mut config = RuntimeConfig::default();
        for (key, value) in table {
            match key.as_str() {
                "state_dir" => config.state_dir = Some(state_dir(value, cwd)?),
                "sqlite_database" => {
                    config.default_database = sqlite_databases(value, cwd)?;
                }
                other => {
                    return Err(RuntimeConfigError::Unsupported {
                        key: other.to_owned(),
                        why: "the host serves only the SQLite `default` database and `state_dir`",
                    });
                }
            }
        }
        Ok(config)
    }
}

fn invalid(key: &str, why: impl Into<String>) -> RuntimeConfigError {
    RuntimeConfigError::Invalid {
        key: key.to_owned(),
        why: why.into(),
    }
}

fn state_dir(value: &toml::Value, cwd: &Path) -> Result<PathBuf, RuntimeConfigError> {
    match value.as_str() {
        // Spin takes an empty `state_dir` as "none": the default database
        // then lives in memory, which this host does not offer.
        Some("") => Err(RuntimeConfigError::Unsupported {
            key: "state_dir".to_owned(),
            why: "an empty state_dir means an in-memory default database",
        }),
        Some(dir) => Ok(cwd.join(dir)),
        None => Err(invalid("state_dir", "it must be a string")),
    }
}

/// `[sqlite_database.<label>]` tables: only `default`, only `type = "spin"`.
fn sqlite_databases(
    value: &toml::Value,
    cwd: &Path,
) -> Result<Option<PathBuf>, RuntimeConfigError> {
    let Some(labels) = value.as_table() else {
        return Err(invalid("sqlite_database", "it must be a table of labels"));
    };
    let mut default = None;
    for (label, db) in labels {
        let key = format!("sqlite_database.{label}");
        let Some(db) = db.as_table() else {
            return Err(invalid(&key, "it must be a table"));
        };
        check_spin_database(&key, db)?;
        if label != "default" {
            return Err(RuntimeConfigError::Unsupported {
                key,
                why: "databases other than `default`",
            });
        }
        default = Some(database_file(&key, db, cwd)?);
    }
    Ok(default)
}

/// A database table's `type`: `spin` (a file), the one kind served.
fn check_spin_database(key: &str, db: &toml::Table) -> Result<(), RuntimeConfigError> {
    let kind = match db.get("type") {
        Some(toml::Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(invalid(key, "`type` must be a string")),
        None => return Err(invalid(key, "missing field `type`")),
    };
    match kind {
        "spin" => Ok(()),
        "libsql" => Err(RuntimeConfigError::Unsupported {
            key: key.to_owned(),
            why: "a remote libSQL database",
        }),
        other => Err(invalid(key, format!("Unknown database kind: {other}"))),
    }
}

/// A `spin` database table's file: its `path` (from `cwd`), with
/// `allow_attach_file` false if given at all.
fn database_file(key: &str, db: &toml::Table, cwd: &Path) -> Result<PathBuf, RuntimeConfigError> {
    let mut path = None;
    for (field, v) in db {
        match (field.as_str(), v) {
            ("type", _) => {}
            ("path", toml::Value::String(p)) => path = Some(cwd.join(p)),
            ("path", _) => return Err(invalid(key, "`path` must be a string")),
            ("allow_attach_file", toml::Value::Boolean(false)) => {}
            ("allow_attach_file", toml::Value::Boolean(true)) => {
                return Err(RuntimeConfigError::Unsupported {
                    key: format!("{key}.allow_attach_file"),
                    why: "attaching files is always refused",
                });
            }
            ("allow_attach_file", _) => {
                return Err(invalid(key, "`allow_attach_file` must be a boolean"));
            }
            (other, _) => {
                return Err(invalid(
                    key,
                    format!("unknown field `{other}`, expected `path` or `allow_attach_file`"),
                ));
            }
        }
    }
    path.ok_or_else(|| RuntimeConfigError::Unsupported {
        key: key.to_owned(),
        why: "without `path` Spin keeps the database in memory",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<RuntimeConfig, RuntimeConfigError> {
        RuntimeConfig::resolve(&toml::from_str(text).unwrap(), Path::new("/cwd"))
    }

    #[test]
    fn the_default_database_path_relative_to_the_current_directory() {
        let c = resolve("[sqlite_database.default]\ntype = \"spin\"\npath = \"data/x.db\"\n");
        assert_eq!(
            c.unwrap().default_database,
            Some(PathBuf::from("/cwd/data/x.db"))
        );
        let c = resolve("[sqlite_database.default]\ntype = \"spin\"\npath = \"/abs/x.db\"\n");
        assert_eq!(
            c.unwrap().default_database,
            Some(PathBuf::from("/abs/x.db"))
        );
        let c = resolve("state_dir = \"st\"\n").unwrap();
        assert_eq!(c.state_dir, Some(PathBuf::from("/cwd/st")));
        assert_eq!(resolve("").unwrap(), RuntimeConfig::default());
    }

    #[test]
    fn the_repository_shared_file_config_is_understood() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/runtime-config.shared-file.toml");
        let c = RuntimeConfig::load(&path).unwrap();
        assert_eq!(
            c.default_database,
            Some(PathBuf::from("/var/lib/chatroom/sqlite_db.db"))
        );
    }

    #[test]
    fn what_the_host_cannot_honour_is_refused_by_name() {
        let cases = [
            (
                "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"https://x\"\ntoken = \"t\"\n",
                "sqlite_database.default",
            ),
            (
                "[sqlite_database.other]\ntype = \"spin\"\npath = \"o.db\"\n",
                "sqlite_database.other",
            ),
            (
                "[sqlite_database.default]\ntype = \"spin\"\n",
                "sqlite_database.default",
            ),
            (
                "[sqlite_database.default]\ntype = \"spin\"\npath = \"a\"\nallow_attach_file = true\n",
                "allow_attach_file",
            ),
            (
                "[key_value_store.default]\ntype = \"spin\"\n",
                "key_value_store",
            ),
            ("state_dir = \"\"\n", "state_dir"),
        ];
        for (text, key) in cases {
            let err = resolve(text).unwrap_err();
            assert!(
                matches!(err, RuntimeConfigError::Unsupported { .. }),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let invalid = [
            "[sqlite_database.default]\ntype = \"postgres\"\n",
            "[sqlite_database.default]\npath = \"a\"\n",
            "[sqlite_database.default]\ntype = \"spin\"\npath = \"a\"\nextra = 1\n",
            "state_dir = 3\n",
        ];
        for text in invalid {
            let err = resolve(text).unwrap_err();
            assert!(
                matches!(err, RuntimeConfigError::Invalid { .. }),
                "{text}: {err}"
            );
        }
    }
}
