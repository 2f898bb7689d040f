//! The documents operators follow (README.md, docs/*.md, deploy/*.md and
//! spin.toml's comments): no bare `spin deploy` (Spin 4 refuses it: "needs
//! to be told which deployment plugin to use"), no `kubectl apply` of a
//! Secret from the repository (it would overwrite the real Secrets with
//! placeholders), and every Secret key the manifests read created by the
//! documented `kubectl create secret generic` commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::flags::Source;
use crate::kube::{Container, spin_variables};
use crate::manifests::{self, str_at};
use crate::model::{Deploy, File, basename};

/// README.md, docs/*.md, deploy/*.md and spin.toml.
pub fn read_docs(root: &Path) -> Vec<File> {
    let mut names = vec!["README.md".to_owned(), "spin.toml".to_owned()];
    for dir in ["docs", "deploy"] {
        let entries =
            std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("listing {dir}: {e}"));
        let mut found: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
            .filter(|name| name.ends_with(".md"))
            .collect();
        found.sort();
        names.extend(found);
    }
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root.join(&name))
                .unwrap_or_else(|e| panic!("reading {name}: {e}"));
            File { name, text }
        })
        .collect()
}

/// A run of text: a paragraph of prose (its lines joined, whitespace
/// collapsed), or one command line of a code block (continuation lines
/// joined).
struct Paragraph {
    text: String,
    code: bool,
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A document's paragraphs; in a TOML file, its comments are prose.
fn paragraphs(file: &File) -> Vec<Paragraph> {
    let toml = file.name.ends_with(".toml");
    let mut out = Vec::new();
    let mut prose: Vec<&str> = Vec::new();
    let mut command: Vec<&str> = Vec::new();
    let mut code = false;
    for line in file.text.lines() {
        let mut line = line.trim();
        if toml {
            line = line.trim_start_matches('#').trim();
        }
        if line.starts_with("```") {
            flush(&mut prose, false, &mut out);
            flush(&mut command, true, &mut out);
            code = !code;
            continue;
        }
        if code {
            if line.is_empty() && command.is_empty() {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(head) => command.push(head),
                None => {
                    command.push(line);
                    flush(&mut command, true, &mut out);
                }
            }
        } else if line.is_empty() {
            flush(&mut prose, false, &mut out);
        } else {
            prose.push(line);
        }
    }
    flush(&mut prose, false, &mut out);
    flush(&mut command, true, &mut out);
    out
}

fn flush(lines: &mut Vec<&str>, code: bool, out: &mut Vec<Paragraph>) {
    if !lines.is_empty() {
        out.push(Paragraph {
            text: collapse(&lines.join(" ")),
            code,
        });
        lines.clear();
    }
}

const BARE: &str = "spin deploy";

/// Every bare `spin deploy` the documents tell users to run. Spin 4 stops
/// it with "`spin deploy` needs to be told which deployment plugin to
/// use"; the command is `spin cloud deploy` (the `cloud` plugin). A
/// mention is fine in prose that explains this (its paragraph names
/// "Spin 4" and `spin cloud deploy`), or after `SPIN_DEPLOY_PLUGIN=...`
/// on the same command line.
pub fn check_spin_deploy(docs: &[File]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in docs {
        for paragraph in paragraphs(file) {
            let text = collapse(&paragraph.text.replace('`', " "));
            let explained =
                !paragraph.code && text.contains("Spin 4") && text.contains("spin cloud deploy");
            for (at, _) in text.match_indices(BARE) {
                let before = &text[..at];
                let after = &text[at + BARE.len()..];
                let word_before = before.ends_with(|c: char| c.is_alphanumeric() || c == '-');
                let word_after = after.starts_with(|c: char| c.is_alphanumeric() || c == '-');
                if word_before || word_after || explained {
                    continue;
                }
                let named = before
                    .split_whitespace()
                    .last()
                    .is_some_and(|w| w.starts_with("SPIN_DEPLOY_PLUGIN="));
                if !named {
                    let excerpt: String = text[at..].chars().take(70).collect();
                    problems.push(format!(
                        "{}: tells users to run a bare `spin deploy`, which Spin 4 refuses \
                         (\"needs to be told which deployment plugin to use\"); write \
                         `spin cloud deploy`, or explain it beside \"Spin 4\": {excerpt}",
                        file.name
                    ));
                }
            }
        }
    }
    problems
}

/// The shell snippets of a document: each command line of its code
/// blocks, and each inline `code` span of its prose.
fn snippets(file: &File) -> Vec<String> {
    paragraphs(file)
        .into_iter()
        .flat_map(|p| {
            if p.code {
                vec![p.text]
            } else {
                p.text
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect()
            }
        })
        .collect()
}

/// Every `kubectl <verb...>` command of the documents: the document and
/// the words after the verb, up to the end of the snippet or a shell
/// separator.
pub fn kubectl(docs: &[File], verb: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for file in docs {
        for snippet in snippets(file) {
            let words: Vec<&str> = snippet.split_whitespace().collect();
            for (i, word) in words.iter().enumerate() {
                let start = i + 1 + verb.len();
                if *word != "kubectl" || words.get(i + 1..start) != Some(verb) {
                    continue;
                }
                let args: Vec<String> = words[start..]
                    .iter()
                    .take_while(|w| !matches!(**w, "&&" | "||" | ";" | "|") && !w.starts_with('#'))
                    .map(|w| (*w).to_owned())
                    .collect();
                found.push((file.name.clone(), args));
            }
        }
    }
    found
}

/// The targets of a `kubectl apply`'s `-f`/`--filename` options.
fn apply_targets(args: &[String]) -> Vec<String> {
    let mut targets = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "-f" || word == "--filename" {
            targets.extend(words.next().cloned());
        } else if let Some(target) = word
            .strip_prefix("--filename=")
            .or_else(|| word.strip_prefix("-f="))
        {
            targets.push(target.to_owned());
        }
    }
    targets
        .into_iter()
        .map(|t| {
            let t = t.trim_matches(|c: char| c == '"' || c == '\'');
            t.strip_prefix("./").unwrap_or(t).to_owned()
        })
        .collect()
}

/// The files of `files` (by path under the repository) a `kubectl apply`
/// with `args` applies: each file it names, and the `.yaml`, `.yml` and
/// `.json` files of each folder it names (of its subfolders too with
/// `-R`).
fn applied<'a>(args: &[String], files: &'a [File]) -> Vec<&'a File> {
    let recursive = args.iter().any(|a| a == "-R" || a == "--recursive");
    let mut found = Vec::new();
    for target in apply_targets(args) {
        let folder = target.trim_end_matches('/');
        for file in files {
            let inside = file
                .name
                .strip_prefix(folder)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| {
                    (recursive || !rest.contains('/'))
                        && [".yaml", ".yml", ".json"].iter().any(|e| rest.ends_with(e))
                });
            if file.name == folder || inside {
                found.push(file);
            }
        }
    }
    found
}

/// No documented `kubectl apply` applies a Secret: the repository's are
/// placeholders, and applying them would overwrite the real ones. (The
/// operator creates Secrets with `kubectl create secret`.) A target under
/// deploy/ must exist.
pub fn check_applied_secrets(docs: &[File], files: &[File]) -> Vec<String> {
    let commands = kubectl(docs, &["apply"]);
    let mut problems = Vec::new();
    if commands.is_empty() {
        problems.push("no document gives a `kubectl apply` command".to_owned());
    }
    for (doc, args) in &commands {
        let command = format!("kubectl apply {}", args.join(" "));
        let applied = applied(args, files);
        let local = apply_targets(args).iter().any(|t| t.starts_with("deploy/"));
        if local && applied.is_empty() {
            problems.push(format!(
                "{doc}: `{command}` applies no file of the repository"
            ));
        }
        for file in applied {
            let objects = match manifests::parse_docs(&file.name, &file.text) {
                Ok(objects) => objects,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            for secret in objects.iter().filter(|o| o.kind() == "Secret") {
                problems.push(format!(
                    "{doc}: `{command}` applies {}, overwriting the real Secret with the \
                     repository's placeholders: create Secrets with `kubectl create secret` and \
                     keep them out of what is applied",
                    secret.label()
                ));
            }
        }
    }
    problems
}

/// Every Secret key the manifests read: (Secret, key, who reads it).
fn secret_refs(deploy: &Deploy) -> Vec<(String, String, String)> {
    let mut refs = Vec::new();
    let mut add = |source: &Source, place: &str| {
        if let Source::Secret { name, key } = source {
            refs.push((name.clone(), key.clone(), place.to_owned()));
        }
    };
    for container in Container::all(deploy) {
        for (_, source) in container.env() {
            add(&source, container.place.as_str());
        }
    }
    for app in deploy.of_kind("SpinApp") {
        for (_, source) in spin_variables(app) {
            add(&source, app.label().as_str());
        }
        if let Some(name) = str_at(&app.value, &["spec", "runtimeConfig", "loadFromSecret"]) {
            let source = Source::Secret {
                name: name.to_owned(),
                key: "runtime-config.toml".to_owned(),
            };
            add(&source, app.label().as_str());
        }
    }
    refs
}

/// Every Secret key the manifests read is created by a documented
/// `kubectl create secret generic NAME --from-literal=KEY=...` (or
/// `--from-file=KEY=...`): the docs' commands are what operators run.
pub fn check_created_secrets(docs: &[File], deploy: &Deploy) -> Vec<String> {
    let mut created: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, args) in kubectl(docs, &["create", "secret", "generic"]) {
        let Some(name) = args.iter().find(|a| !a.starts_with('-')) else {
            continue;
        };
        let keys = created.entry(name.clone()).or_default();
        for arg in &args {
            for option in ["--from-literal=", "--from-file="] {
                if let Some(rest) = arg.strip_prefix(option) {
                    // `KEY=VALUE`; a file alone is keyed by its name.
                    let key = rest.split_once('=').map_or(basename(rest), |(k, _)| k);
                    keys.insert(key.trim_matches('"').to_owned());
                }
            }
        }
    }
    secret_refs(deploy)
        .into_iter()
        .filter(|(name, key, _)| !created.get(name).is_some_and(|keys| keys.contains(key)))
        .map(|(name, key, place)| {
            format!(
                "{place} reads key {key} of Secret {name}, which no documented \
                 `kubectl create secret generic {name}` creates"
            )
        })
        .collect()
}
