//! The Kubernetes objects: each container running a chatroom image uses
//! that binary's real flags and CHATROOM_* variables, exposes exactly its
//! listen port and is probed on `/healthz` there; each Service reaches a
//! port its pods have; each Secret reference names a key that exists; each
//! SpinApp binds only spin.toml's variables, secret ones from a Secret.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde_norway::Value;

use crate::flags::{Invocation, Source, check_envs, check_flags, env_tokens};
use crate::manifests::{Doc, at, labels_at, scalar, seq_at, str_at};
use crate::model::{Deploy, basename};

/// One container of a Deployment.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    pub deployment: &'a Doc,
    pub value: &'a Value,
    /// For messages.
    pub place: String,
}

impl<'a> Container<'a> {
    /// Every container (and init container) of every Deployment.
    pub fn all(deploy: &'a Deploy) -> Vec<Container<'a>> {
        deploy
            .of_kind("Deployment")
            .flat_map(|doc| {
                let pod = &["spec", "template", "spec"];
                let containers = seq_at(&doc.value, &[pod, &["containers"][..]].concat());
                let inits = seq_at(&doc.value, &[pod, &["initContainers"][..]].concat());
                containers.iter().chain(inits).map(move |value| Container {
                    deployment: doc,
                    value,
                    place: format!(
                        "{} container {}",
                        doc.label(),
                        str_at(value, &["name"]).unwrap_or("?")
                    ),
                })
            })
            .collect()
    }

    /// The image's name without registry, tag or digest.
    pub fn image_name(&self) -> &'a str {
        let image = str_at(self.value, &["image"]).unwrap_or_default();
        let image = image.split('@').next().unwrap_or(image);
        let name = basename(image);
        name.split(':').next().unwrap_or(name)
    }

    pub fn env(&self) -> Vec<(String, Source)> {
        seq_at(self.value, &["env"])
            .iter()
            .filter_map(Source::of_entry)
            .collect()
    }

    pub fn replicas(&self) -> u64 {
        at(&self.deployment.value, &["spec", "replicas"])
            .and_then(Value::as_u64)
            .unwrap_or(1)
    }

    /// How it runs its binary, if its image is one of chatroom's: the
    /// image's ENTRYPOINT (or the container's `command`), then `args`.
    pub fn invocation(&self, deploy: &'a Deploy) -> Result<Option<Invocation<'a>>, String> {
        let Some(cli) = deploy.cli(self.image_name()) else {
            return Ok(None);
        };
        let strings = |key: &str| -> Vec<String> {
            seq_at(self.value, &[key])
                .iter()
                .filter_map(scalar)
                .collect()
        };
        let mut words = if self.value.get("command").is_some() {
            strings("command")
        } else {
            let file = deploy.dockerfile_of(&cli.binary).ok_or_else(|| {
                format!(
                    "{}: no deploy/*.Dockerfile has an ENTRYPOINT running {}",
                    self.place, cli.binary
                )
            })?;
            file.exec_form("ENTRYPOINT")?.unwrap_or_default()
        };
        words.extend(strings("args"));
        Ok(Some(Invocation {
            cli,
            words,
            env: self.env(),
        }))
    }
}

/// Every problem of the Deployments' containers.
pub fn check_containers(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for container in Container::all(deploy) {
        let place = &container.place;
        problems.extend(check_secret_refs(deploy, &container.env(), place));
        match container.invocation(deploy) {
            Err(e) => problems.push(e),
            Ok(None) => {
                let env = container.env();
                let names = env.iter().map(|(n, _)| n.as_str());
                problems.extend(
                    names.filter(|n| n.starts_with("CHATROOM_")).map(|n| {
                        format!("{place}: {n} set on a container running no chatroom image")
                    }),
                );
            }
            Ok(Some(run)) => {
                problems.extend(check_flags(run.cli, &run.words, place));
                let names = run.env.iter().map(|(n, _)| n.as_str());
                problems.extend(check_envs(run.cli, names, place));
                problems.extend(run.shadowed_envs(place));
                problems.extend(check_ports(&container, &run));
                problems.extend(check_grace(&container, &run));
            }
        }
    }
    problems
}

/// The port the binary listens on, from `--listen` (or its variable, or
/// its default).
pub fn listen_port(run: &Invocation, place: &str) -> Result<u16, String> {
    let listen = run.setting("listen")?;
    let Some(Source::Literal(listen)) = listen else {
        return Err(format!("{place}: --listen is not a literal address"));
    };
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("{place}: --listen {listen} is not an address"))?;
    if !addr.ip().is_unspecified() {
        return Err(format!(
            "{place}: --listen {listen} is unreachable from the pod's network"
        ));
    }
    Ok(addr.port())
}

/// Container ports are the listen port, and both probes `GET /healthz` on it.
fn check_ports(container: &Container, run: &Invocation) -> Vec<String> {
    let place = &container.place;
    let port = match listen_port(run, place) {
        Ok(port) => port,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let declared = seq_at(container.value, &["ports"]);
    if declared.is_empty() {
        problems.push(format!("{place}: declares no containerPort"));
    }
    for p in declared {
        let number = at(p, &["containerPort"]).and_then(Value::as_u64);
        if number != Some(u64::from(port)) {
            problems.push(format!(
                "{place}: containerPort {number:?} is not the --listen port {port}"
            ));
        }
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        let Some(get) = at(container.value, &[probe, "httpGet"]) else {
            problems.push(format!("{place}: no {probe} with httpGet"));
            continue;
        };
        let path = str_at(get, &["path"]);
        if path != Some("/healthz") {
            problems.push(format!("{place}: {probe} asks {path:?}, not /healthz"));
        }
        let target = get.get("port").and_then(scalar).unwrap_or_default();
        if resolve_port(container.value, &target) != Some(u64::from(port)) {
            problems.push(format!(
                "{place}: {probe} port {target} is not the --listen port {port}"
            ));
        }
    }
    problems
}

/// Kubernetes waits longer than the preStop pause plus the binary's own
/// draining (`--shutdown-grace-secs`) before it kills the container.
fn check_grace(container: &Container, run: &Invocation) -> Option<String> {
    let place = &container.place;
    let grace = match run.setting("shutdown-grace-secs") {
        Ok(Some(Source::Literal(secs))) => secs.parse::<u64>().ok(),
        Ok(_) => None,
        Err(e) => return Some(e),
    };
    let Some(grace) = grace else {
        return Some(format!(
            "{place}: --shutdown-grace-secs is not a literal number"
        ));
    };
    let pod = at(&container.deployment.value, &["spec", "template", "spec"]);
    let allowed = pod
        .and_then(|p| at(p, &["terminationGracePeriodSeconds"]))
        .and_then(Value::as_u64)
        .unwrap_or(30);
    let pre_stop = pre_stop_secs(container.value);
    (allowed <= pre_stop + grace).then(|| {
        format!(
            "{place}: terminationGracePeriodSeconds {allowed} is not above the preStop pause \
             ({pre_stop} s) plus --shutdown-grace-secs ({grace} s)"
        )
    })
}

/// How long the preStop hook pauses: `sleep: {seconds}` or `exec` of
/// `sleep N`; 0 without one.
fn pre_stop_secs(container: &Value) -> u64 {
    let Some(hook) = at(container, &["lifecycle", "preStop"]) else {
        return 0;
    };
    if let Some(secs) = at(hook, &["sleep", "seconds"]).and_then(Value::as_u64) {
        return secs;
    }
    let command: Vec<String> = seq_at(hook, &["exec", "command"])
        .iter()
        .filter_map(scalar)
        .collect();
    match command.as_slice() {
        [sleep, secs] if basename(sleep) == "sleep" => secs.parse().unwrap_or(0),
        _ => 0,
    }
}

/// A port given by number or by the name of one of the container's ports.
fn resolve_port(container: &Value, port: &str) -> Option<u64> {
    port.parse().ok().or_else(|| {
        seq_at(container, &["ports"])
            .iter()
            .find(|p| str_at(p, &["name"]) == Some(port))
            .and_then(|p| at(p, &["containerPort"])?.as_u64())
    })
}

/// Whether the container declares `port` (a number or a port's name).
fn has_port(container: &Value, port: &str) -> bool {
    seq_at(container, &["ports"]).iter().any(|p| {
        str_at(p, &["name"]) == Some(port)
            || at(p, &["containerPort"]).and_then(scalar).as_deref() == Some(port)
    })
}

/// Each Secret's keys (`data` and `stringData`).
pub fn secret_keys(deploy: &Deploy) -> BTreeMap<String, BTreeSet<String>> {
    deploy
        .of_kind("Secret")
        .map(|doc| {
            let keys = ["data", "stringData"]
                .iter()
                .flat_map(|field| labels_at(&doc.value, &[field]))
                .map(|(key, _)| key)
                .collect();
            (doc.name().to_owned(), keys)
        })
        .collect()
}

/// Every Secret reference names a Secret of the manifests and a key of it.
pub fn check_secret_refs(deploy: &Deploy, env: &[(String, Source)], place: &str) -> Vec<String> {
    let secrets = secret_keys(deploy);
    env.iter()
        .filter_map(|(var, source)| {
            let Source::Secret { name, key } = source else {
                return None;
            };
            match secrets.get(name) {
                None => Some(format!(
                    "{place}: {var} reads Secret {name}, which no manifest defines"
                )),
                Some(keys) if !keys.contains(key) => Some(format!(
                    "{place}: {var} reads key {key}, which Secret {name} lacks"
                )),
                Some(_) => None,
            }
        })
        .collect()
}

/// Every Service selects pods of a Deployment and targets a port they have.
pub fn check_services(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let deployments: Vec<&Doc> = deploy.of_kind("Deployment").collect();
    for doc in &deployments {
        let pod_labels = labels_at(&doc.value, &["spec", "template", "metadata", "labels"]);
        let selector = labels_at(&doc.value, &["spec", "selector", "matchLabels"]);
        if selector.is_empty() || !selector.iter().all(|l| pod_labels.contains(l)) {
            problems.push(format!(
                "{}: selector.matchLabels do not match its pods",
                doc.label()
            ));
        }
    }
    for service in deploy.of_kind("Service") {
        let selector = labels_at(&service.value, &["spec", "selector"]);
        let selected: Vec<&&Doc> = deployments
            .iter()
            .filter(|d| {
                let labels = labels_at(&d.value, &["spec", "template", "metadata", "labels"]);
                !selector.is_empty() && selector.iter().all(|l| labels.contains(l))
            })
            .collect();
        if selected.is_empty() {
            problems.push(format!("{}: selects no Deployment's pods", service.label()));
        }
        for port in seq_at(&service.value, &["spec", "ports"]) {
            let target = port
                .get("targetPort")
                .or_else(|| port.get("port"))
                .and_then(scalar)
                .unwrap_or_default();
            for d in &selected {
                let containers = seq_at(&d.value, &["spec", "template", "spec", "containers"]);
                if !containers.iter().any(|c| has_port(c, &target)) {
                    problems.push(format!(
                        "{}: targetPort {target} is no port of {}",
                        service.label(),
                        d.label()
                    ));
                }
            }
        }
    }
    problems
}

/// Every SpinApp: SpinKube's API, the Spin shim, spin.toml's variables
/// (secret ones from a Secret), and a runtime config Secret that exists.
pub fn check_spinapps(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for app in deploy.of_kind("SpinApp") {
        let place = app.label();
        if str_at(&app.value, &["apiVersion"]) != Some("core.spinkube.dev/v1alpha1") {
            problems.push(format!(
                "{place}: apiVersion is not core.spinkube.dev/v1alpha1"
            ));
        }
        if str_at(&app.value, &["spec", "executor"]) != Some("containerd-shim-spin") {
            problems.push(format!("{place}: executor is not containerd-shim-spin"));
        }
        if str_at(&app.value, &["spec", "image"]).is_none_or(str::is_empty) {
            problems.push(format!("{place}: no image"));
        }
        let variables = spin_variables(app);
        let mut seen = BTreeSet::new();
        for (name, source) in &variables {
            if !seen.insert(name) {
                problems.push(format!("{place}: variable {name} is bound twice"));
            }
            match deploy.spin.variables.get(name) {
                None => problems.push(format!("{place}: spin.toml has no variable {name}")),
                Some(v) if v.secret && !matches!(source, Source::Secret { .. }) => problems.push(
                    format!("{place}: {name} is secret in spin.toml but not read from a Secret"),
                ),
                Some(_) => {}
            }
        }
        problems.extend(check_secret_refs(deploy, &variables, &place));
        if let Some(secret) = str_at(&app.value, &["spec", "runtimeConfig", "loadFromSecret"]) {
            problems.extend(check_runtime_config(deploy, secret, &place));
        }
    }
    problems
}

/// A SpinApp's variable bindings.
pub fn spin_variables(app: &Doc) -> Vec<(String, Source)> {
    seq_at(&app.value, &["spec", "variables"])
        .iter()
        .filter_map(Source::of_entry)
        .collect()
}

/// The Secret `name` has a `runtime-config.toml` that is TOML (when
/// written as `stringData`).
fn check_runtime_config(deploy: &Deploy, name: &str, place: &str) -> Vec<String> {
    let key = "runtime-config.toml";
    let Some(secret) = deploy.of_kind("Secret").find(|s| s.name() == name) else {
        return vec![format!(
            "{place}: runtime config Secret {name} is not defined"
        )];
    };
    if let Some(text) = str_at(&secret.value, &["stringData", key]) {
        return match text.parse::<toml::Table>() {
            Ok(_) => vec![],
            Err(e) => vec![format!("{}: {key} is not TOML: {e}", secret.label())],
        };
    }
    if at(&secret.value, &["data", key]).is_none() {
        return vec![format!("{}: has no {key}", secret.label())];
    }
    vec![]
}

/// Every CHATROOM_* written anywhere in the manifests and notes (comments
/// included) is read by some binary, and every `--variable NAME=` of the
/// notes is one of spin.toml's.
pub fn check_texts(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for file in &deploy.texts {
        for token in env_tokens(&file.text) {
            if !deploy.any_cli_reads(&token) {
                problems.push(format!("{}: no binary reads {token}", file.name));
            }
        }
        for rest in file.text.split("--variable ").skip(1) {
            let name = rest.split('=').next().unwrap_or_default().trim();
            if !deploy.spin.variables.contains_key(name) {
                problems.push(format!(
                    "{}: --variable {name}: spin.toml has no such variable",
                    file.name
                ));
            }
        }
    }
    problems
}
