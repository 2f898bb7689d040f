//! Flags and environment variables against a binary's command line, and
//! where a container's setting comes from: its command line, its
//! environment, or the flag's default.

use std::collections::BTreeSet;

use serde_norway::Value;

use crate::cli::Cli;
use crate::manifests::{at, str_at};

/// A problem for every `--flag` of `words` that `cli` does not define
/// (`--flag value` and `--flag=value` alike; `--` ends the flags).
pub fn check_flags(cli: &Cli, words: &[String], place: &str) -> Vec<String> {
    words
        .iter()
        .take_while(|w| w.as_str() != "--")
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split_once('=').map_or(w, |(name, _)| name))
        .filter(|name| cli.flag(name).is_none())
        .map(|name| format!("{place}: --{name} is not a flag of {}", cli.binary))
        .collect()
}

/// A problem for every `CHATROOM_*` name that `cli` does not read.
pub fn check_envs<'a>(
    cli: &Cli,
    names: impl IntoIterator<Item = &'a str>,
    place: &str,
) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| name.starts_with("CHATROOM_") && cli.flag_of_env(name).is_none())
        .map(|name| format!("{place}: {} reads no {name}", cli.binary))
        .collect()
}

/// Every `CHATROOM_<NAME>` written in `text` (comments included).
pub fn env_tokens(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("CHATROOM_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let token = tail[..end].trim_end_matches('_');
        if token.len() > "CHATROOM".len() {
            found.insert(token.to_owned());
        }
        rest = &tail[end.max(1)..];
    }
    found
}

/// The value of `--long` in `words` (`--long value` or `--long=value`).
pub fn flag_value<'a>(words: &'a [String], long: &str) -> Option<&'a str> {
    let flag = format!("--{long}");
    let with_value = format!("{flag}=");
    words.iter().enumerate().find_map(|(i, w)| {
        if *w == flag {
            words.get(i + 1).map(String::as_str)
        } else {
            w.strip_prefix(&with_value)
        }
    })
}

/// Whether `words` give `--long` at all.
pub fn has_flag(words: &[String], long: &str) -> bool {
    let flag = format!("--{long}");
    words
        .iter()
        .any(|w| *w == flag || w.starts_with(&format!("{flag}=")))
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Literal(String),
    Secret {
        name: String,
        key: String,
    },
    /// The downward API: `fieldRef.fieldPath`.
    Field(String),
    /// Anything else (a ConfigMap, resource fields).
    Other,
}

impl Source {
    /// A Kubernetes `{name, value}` or `{name, valueFrom}` entry (a
    /// container's `env`, a SpinApp's `variables`).
    pub fn of_entry(entry: &Value) -> Option<(String, Source)> {
        let name = str_at(entry, &["name"])?.to_owned();
        let source = if let Some(value) = entry.get("value") {
            Source::Literal(crate::manifests::scalar(value).unwrap_or_default())
        } else if let Some(secret) = at(entry, &["valueFrom", "secretKeyRef"]) {
            Source::Secret {
                name: str_at(secret, &["name"]).unwrap_or_default().to_owned(),
                key: str_at(secret, &["key"]).unwrap_or_default().to_owned(),
            }
        } else if let Some(path) = str_at(entry, &["valueFrom", "fieldRef", "fieldPath"]) {
            Source::Field(path.to_owned())
        } else if entry.get("valueFrom").is_some() {
            Source::Other
        } else {
            Source::Literal(String::new())
        };
        Some((name, source))
    }

    pub fn literal(&self) -> Option<&str> {
        match self {
            Source::Literal(v) => Some(v),
            _ => None,
        }
    }
}

/// How one container runs a binary: its command line and environment.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub cli: &'a Cli,
    /// The program and its arguments.
    pub words: Vec<String>,
    pub env: Vec<(String, Source)>,
}

impl Invocation<'_> {
    /// Where `--long` takes its value: the command line, then the
    /// environment, then the flag's default. An error if the binary has
    /// no such flag (renamed?).
    pub fn setting(&self, long: &str) -> Result<Option<Source>, String> {
        let flag = self.cli.flag(long).ok_or_else(|| {
            format!(
                "{} has no --{long} (renamed? the deployment relies on it)",
                self.cli.binary
            )
        })?;
        if let Some(value) = flag_value(&self.words, long) {
            return Ok(Some(Source::Literal(value.to_owned())));
        }
        let from_env = flag
            .env
            .as_deref()
            .and_then(|env| self.env.iter().find(|(name, _)| name == env));
        if let Some((_, source)) = from_env {
            return Ok(Some(source.clone()));
        }
        Ok(flag.default.clone().map(Source::Literal))
    }

    /// A problem for every environment variable the command line
    /// overrides (clap prefers the flag, so the variable does nothing).
    pub fn shadowed_envs(&self, place: &str) -> Vec<String> {
        self.env
            .iter()
            .filter_map(|(name, _)| {
                let flag = self.cli.flag_of_env(name)?;
                has_flag(&self.words, &flag.long).then(|| {
                    format!(
                        "{place}: {name} is ignored, --{} is on the command line",
                        flag.long
                    )
                })
            })
            .collect()
    }
}
