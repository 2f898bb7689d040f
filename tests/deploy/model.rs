//! Everything the deployment checks read, gathered once: the binaries'
//! command lines, the Dockerfiles, the manifests (parsed and as text),
//! the notes, and spin.toml's variables and component sources.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::Cli;
use crate::dockerfile::Dockerfile;
use crate::manifests::{self, Doc};

/// A variable of spin.toml's `[variables]`.
#[derive(Debug, Clone)]
pub struct SpinVariable {
    pub default: Option<String>,
    pub secret: bool,
}

/// What the checks need of spin.toml.
#[derive(Debug, Clone, Default)]
pub struct SpinManifest {
    pub variables: BTreeMap<String, SpinVariable>,
    /// Every `component.<name>.source`.
    pub sources: Vec<String>,
}

impl SpinManifest {
    pub fn parse(text: &str) -> Result<SpinManifest, String> {
        let doc: toml::Table = text.parse().map_err(|e| format!("spin.toml: {e}"))?;
        let variables = doc
            .get("variables")
            .and_then(toml::Value::as_table)
            .ok_or("spin.toml has no [variables]")?
            .iter()
            .map(|(name, v)| {
                let variable = SpinVariable {
                    default: v.get("default").and_then(|d| d.as_str()).map(str::to_owned),
                    secret: v.get("secret").and_then(toml::Value::as_bool) == Some(true),
                };
                (name.clone(), variable)
            })
            .collect();
        let sources = doc
            .get("component")
            .and_then(toml::Value::as_table)
            .ok_or("spin.toml has no [component.*]")?
            .values()
            .filter_map(|c| c.get("source")?.as_str().map(str::to_owned))
            .collect();
        Ok(SpinManifest { variables, sources })
    }
}

/// One file of the deployment, by its path under the repository.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// The example Secrets: read for their keys and the shape of their values,
/// never applied. They live outside deploy/spinkube/, the folder the docs
/// apply, so that applying it cannot overwrite the real Secrets.
pub const EXAMPLE_SECRETS: &str = "deploy/spinkube-secrets.example.yaml";

/// The files the checks read: deploy/*.Dockerfile, deploy/*.md, every
/// YAML file under deploy/spinkube/ and [`EXAMPLE_SECRETS`].
pub fn read_files(root: &Path) -> Vec<File> {
    let mut names = Vec::new();
    list(root, "deploy", false, &mut names);
    list(root, "deploy/spinkube", true, &mut names);
    names.sort();
    names
        .into_iter()
        .filter(|n| is_dockerfile(n) || is_manifest(n) || is_note(n))
        .map(|name| {
            let text = std::fs::read_to_string(root.join(&name))
                .unwrap_or_else(|e| panic!("reading {name}: {e}"));
            File { name, text }
        })
        .collect()
}

/// The files of `dir` (relative to `root`), and of its subdirectories if
/// `deep`.
fn list(root: &Path, dir: &str, deep: bool, out: &mut Vec<String>) {
    let entries =
        std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("listing {dir}: {e}"));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("listing {dir}: {e}"));
        let name = format!("{dir}/{}", entry.file_name().to_string_lossy());
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && deep {
            list(root, &name, true, out);
        } else if !is_dir {
            out.push(name);
        }
    }
}

fn is_dockerfile(name: &str) -> bool {
    name.ends_with(".Dockerfile")
}

fn is_manifest(name: &str) -> bool {
    (name.starts_with("deploy/spinkube/") && (name.ends_with(".yaml") || name.ends_with(".yml")))
        || name == EXAMPLE_SECRETS
}

fn is_note(name: &str) -> bool {
    name.starts_with("deploy/") && name.ends_with(".md")
}

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Deploy {
    pub clis: Vec<Cli>,
    pub spin: SpinManifest,
    pub dockerfiles: Vec<Dockerfile>,
    /// The manifests' documents.
    pub docs: Vec<Doc>,
    /// The manifests' and notes' text, comments included.
    pub texts: Vec<File>,
}

impl Deploy {
    pub fn new(clis: Vec<Cli>, spin_toml: &str, files: &[File]) -> Result<Deploy, String> {
        let mut deploy = Deploy {
            clis,
            spin: SpinManifest::parse(spin_toml)?,
            dockerfiles: Vec::new(),
            docs: Vec::new(),
            texts: Vec::new(),
        };
        for file in files {
            if is_dockerfile(&file.name) {
                deploy
                    .dockerfiles
                    .push(Dockerfile::parse(&file.name, &file.text));
            } else if is_manifest(&file.name) {
                deploy
                    .docs
                    .extend(manifests::parse_docs(&file.name, &file.text)?);
                deploy.texts.push(file.clone());
            } else if is_note(&file.name) {
                deploy.texts.push(file.clone());
            }
        }
        Ok(deploy)
    }

    pub fn cli(&self, binary: &str) -> Option<&Cli> {
        self.clis.iter().find(|c| c.binary == binary)
    }

    /// The Dockerfile whose ENTRYPOINT runs `binary`.
    pub fn dockerfile_of(&self, binary: &str) -> Option<&Dockerfile> {
        self.dockerfiles.iter().find(|d| {
            let entry = d.exec_form("ENTRYPOINT").ok().flatten().unwrap_or_default();
            entry.first().map(|program| basename(program)) == Some(binary)
        })
    }

    /// The manifests' documents of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.kind() == kind)
    }

    /// Whether any binary reads the environment variable `name`.
    pub fn any_cli_reads(&self, name: &str) -> bool {
        self.clis.iter().any(|c| c.flag_of_env(name).is_some())
    }
}

/// The last path segment.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
