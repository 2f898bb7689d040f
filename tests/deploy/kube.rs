//! The Kubernetes objects: each container running a chatroom image uses
//! that binary's real flags and CHATROOM_* variables, exposes exactly its
//! listen port, is probed for readiness on `/healthz` there and for
//! liveness on something that does not depend on its upstream; each
//! Service reaches a port its pods have; each Secret reference names a key
//! that exists; each SpinApp binds only spin.toml's variables, secret ones
//! from a Secret, and has a readiness check; every Deployment's pods meet
//! the "restricted" Pod Security Standard; and a NetworkPolicy lets only
//! the sidecars and the SpinApps reach Redis.

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
        image_name(self.value)
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

/// A container's image name without registry, tag or digest.
pub fn image_name(container: &Value) -> &str {
    let image = str_at(container, &["image"]).unwrap_or_default();
    let image = image.split('@').next().unwrap_or(image);
    let name = basename(image);
    name.split(':').next().unwrap_or(name)
}

/// A Deployment's containers (not its init containers).
fn containers(deployment: &Doc) -> &[Value] {
    seq_at(
        &deployment.value,
        &["spec", "template", "spec", "containers"],
    )
}

/// A Deployment's pods' labels.
fn pod_labels(deployment: &Doc) -> Vec<(String, String)> {
    labels_at(
        &deployment.value,
        &["spec", "template", "metadata", "labels"],
    )
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

/// Paths a binary answers itself, whatever the state of its upstream, which
/// a liveness probe may therefore ask. Not `/healthz`: it answers `503`
/// while the upstream (the REST side, or the database file) is away. Every
/// other path but `/socket.io/` is forwarded to the upstream.
const OWN_PATHS: &[&str] = &["/metrics"];

/// Container ports are the listen port; readiness is `GET /healthz` on it
/// ("send me traffic"); liveness, and a startup probe if any, is a TCP
/// connect to it or a GET of one of [`OWN_PATHS`] ("this process is
/// stuck"), never `/healthz`: an outage of the upstream would restart every
/// replica at once, which mends nothing and drops every socket.
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
    match at(container.value, &["readinessProbe", "httpGet"]) {
        None => problems.push(format!("{place}: no readinessProbe with httpGet")),
        Some(get) => {
            let path = str_at(get, &["path"]);
            if path != Some("/healthz") {
                problems.push(format!(
                    "{place}: readinessProbe asks {path:?}, not /healthz"
                ));
            }
            problems.extend(check_probe_port(container, "readinessProbe", get, port));
        }
    }
    if at(container.value, &["livenessProbe"]).is_none() {
        problems.push(format!("{place}: no livenessProbe"));
    }
    for probe in ["livenessProbe", "startupProbe"] {
        if let Some(value) = at(container.value, &[probe]) {
            problems.extend(check_liveness(container, probe, value, port));
        }
    }
    problems
}

/// A liveness (or startup) probe: `tcpSocket` on the listen port, or
/// `httpGet` of one of [`OWN_PATHS`] there.
fn check_liveness(container: &Container, probe: &str, value: &Value, port: u16) -> Vec<String> {
    let place = &container.place;
    if let Some(tcp) = at(value, &["tcpSocket"]) {
        return check_probe_port(container, probe, tcp, port)
            .into_iter()
            .collect();
    }
    let Some(get) = at(value, &["httpGet"]) else {
        return vec![format!(
            "{place}: {probe} is neither tcpSocket nor httpGet on the --listen port"
        )];
    };
    let mut problems: Vec<String> = check_probe_port(container, probe, get, port)
        .into_iter()
        .collect();
    let path = str_at(get, &["path"]).unwrap_or("/");
    if !OWN_PATHS.contains(&path) {
        problems.push(format!(
            "{place}: {probe} asks {path}, which depends on the upstream (/healthz answers 503 \
             while it is away, other paths are forwarded to it), so an outage would restart \
             every replica: use tcpSocket on the --listen port"
        ));
    }
    problems
}

/// A probe's handler (`httpGet`, `tcpSocket`) targets the listen port.
fn check_probe_port(
    container: &Container,
    probe: &str,
    handler: &Value,
    port: u16,
) -> Option<String> {
    let target = handler.get("port").and_then(scalar).unwrap_or_default();
    (resolve_port(container.value, &target) != Some(u64::from(port))).then(|| {
        format!(
            "{}: {probe} port {target} is not the --listen port {port}",
            container.place
        )
    })
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
        problems.extend(check_spinapp_checks(app));
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

/// The fields of the SpinApp CRD's `spec.checks` (spin-operator's
/// `HealthChecks`), of each probe (`HealthProbe`) and of its `httpGet`
/// (`HTTPHealthProbe`): the operator turns them into the pods' probes on
/// the app's port, and refuses anything else.
const CHECKS_FIELDS: &[&str] = &["readiness", "liveness"];
const PROBE_FIELDS: &[&str] = &[
    "httpGet",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
];
const HTTP_GET_FIELDS: &[&str] = &["path", "httpHeaders"];

/// A SpinApp has a readiness check (without one the operator gives its
/// pods no probe, and its Service routes to pods whose component is not
/// loaded yet), and its checks use the CRD's fields only.
fn check_spinapp_checks(app: &Doc) -> Vec<String> {
    let place = app.label();
    let mut problems = Vec::new();
    let readiness = str_at(
        &app.value,
        &["spec", "checks", "readiness", "httpGet", "path"],
    );
    if !readiness.is_some_and(|path| path.starts_with('/')) {
        problems.push(format!(
            "{place}: no readiness check (spec.checks.readiness.httpGet.path), so its Service \
             routes requests to pods before the component is loaded"
        ));
    }
    let Some(checks) = at(&app.value, &["spec", "checks"]) else {
        return problems;
    };
    let unknown = |value: &Value, allowed: &[&str], path: &str, problems: &mut Vec<String>| {
        for (key, _) in value.as_mapping().into_iter().flatten() {
            let key = scalar(key).unwrap_or_default();
            if !allowed.contains(&key.as_str()) {
                problems.push(format!(
                    "{place}: {path}.{key} is not a field of the SpinApp CRD"
                ));
            }
        }
    };
    unknown(checks, CHECKS_FIELDS, "spec.checks", &mut problems);
    for name in CHECKS_FIELDS {
        let Some(probe) = checks.get(*name) else {
            continue;
        };
        let path = format!("spec.checks.{name}");
        unknown(probe, PROBE_FIELDS, &path, &mut problems);
        match probe.get("httpGet") {
            Some(get) => {
                unknown(
                    get,
                    HTTP_GET_FIELDS,
                    &format!("{path}.httpGet"),
                    &mut problems,
                );
                if !str_at(get, &["path"]).is_some_and(|p| p.starts_with('/')) {
                    problems.push(format!("{place}: {path}.httpGet has no path"));
                }
            }
            None => problems.push(format!("{place}: {path} has no httpGet")),
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

/// The value of key `key` of the Secret `name` as the manifests write it
/// (`stringData`: the example Secrets' placeholders), if they do.
pub fn secret_value<'a>(deploy: &'a Deploy, name: &str, key: &str) -> Option<&'a str> {
    deploy
        .of_kind("Secret")
        .find(|s| s.name() == name)
        .and_then(|s| str_at(&s.value, &["stringData", key]))
}

/// A securityContext setting: the container's, else the pod's.
fn security_setting<'a>(
    container: Option<&'a Value>,
    pod: Option<&'a Value>,
    path: &[&str],
) -> Option<&'a Value> {
    container
        .and_then(|c| at(c, path))
        .or_else(|| pod.and_then(|p| at(p, path)))
}

/// Every container of every Deployment meets the "restricted" Pod Security
/// Standard, so a namespace enforcing it admits the pods: it runs as
/// non-root (and not as uid 0), cannot escalate privileges, drops every
/// capability (adding back NET_BIND_SERVICE at most), is not privileged,
/// and has the RuntimeDefault (or a Localhost) seccomp profile; and, beyond
/// the standard, a read-only root filesystem.
pub fn check_pod_security(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for container in Container::all(deploy) {
        let place = format!("{}: restricted Pod Security", container.place);
        let pod = at(
            &container.deployment.value,
            &["spec", "template", "spec", "securityContext"],
        );
        let own = container.value.get("securityContext");
        if security_setting(own, pod, &["runAsNonRoot"]).and_then(Value::as_bool) != Some(true) {
            problems.push(format!("{place}: runAsNonRoot is not true"));
        }
        if security_setting(own, pod, &["runAsUser"]).and_then(Value::as_u64) == Some(0) {
            problems.push(format!("{place}: runAsUser is 0 (root)"));
        }
        match security_setting(own, pod, &["seccompProfile", "type"]).and_then(Value::as_str) {
            Some("RuntimeDefault" | "Localhost") => {}
            other => problems.push(format!(
                "{place}: seccompProfile.type is {other:?}, not RuntimeDefault"
            )),
        }
        let own_flag = |key: &str| own.and_then(|c| c.get(key)).and_then(Value::as_bool);
        if own_flag("allowPrivilegeEscalation") != Some(false) {
            problems.push(format!("{place}: allowPrivilegeEscalation is not false"));
        }
        if own_flag("privileged") == Some(true) {
            problems.push(format!("{place}: privileged"));
        }
        if own_flag("readOnlyRootFilesystem") != Some(true) {
            problems.push(format!("{place}: readOnlyRootFilesystem is not true"));
        }
        let capabilities = |list: &str| -> Vec<String> {
            own.map(|c| seq_at(c, &["capabilities", list]))
                .unwrap_or_default()
                .iter()
                .filter_map(scalar)
                .collect()
        };
        if !capabilities("drop").iter().any(|c| c == "ALL") {
            problems.push(format!("{place}: capabilities.drop lacks ALL"));
        }
        for added in capabilities("add") {
            if added != "NET_BIND_SERVICE" {
                problems.push(format!("{place}: capabilities.add has {added}"));
            }
        }
    }
    problems
}

/// Redis is fenced: a NetworkPolicy selects the pods of every Deployment
/// running a `redis` image for Ingress, and its rules admit only pods of
/// the sidecar Deployments and of the SpinApps (by their `podLabels`), on
/// a port of Redis's, and admit every one of them. Whoever can publish on
/// Redis can forge presence and typing notices to a room's members
/// (docs/operations.md, "Redis: who may publish").
pub fn check_network_policies(deploy: &Deploy) -> Vec<String> {
    // The pods that need Redis: the sidecars' and the SpinApps'.
    let mut clients: Vec<(String, Vec<(String, String)>)> = deploy
        .of_kind("Deployment")
        .filter(|d| {
            containers(d)
                .iter()
                .any(|c| image_name(c) == "chatroom-sidecar")
        })
        .map(|d| (d.label(), pod_labels(d)))
        .collect();
    clients.extend(
        deploy
            .of_kind("SpinApp")
            .map(|app| (app.label(), labels_at(&app.value, &["spec", "podLabels"]))),
    );
    let mut problems = Vec::new();
    for redis in deploy.of_kind("Deployment") {
        let servers: Vec<&Value> = containers(redis)
            .iter()
            .filter(|c| image_name(c) == "redis")
            .collect();
        if servers.is_empty() {
            continue;
        }
        let labels = pod_labels(redis);
        let fences: Vec<&Doc> = deploy
            .of_kind("NetworkPolicy")
            .filter(|p| {
                let selector = labels_at(&p.value, &["spec", "podSelector", "matchLabels"]);
                let ingress = seq_at(&p.value, &["spec", "policyTypes"])
                    .iter()
                    .any(|t| t.as_str() == Some("Ingress"));
                ingress && selects(&selector, &labels)
            })
            .collect();
        if fences.is_empty() {
            problems.push(format!(
                "{}: no NetworkPolicy selects its pods for Ingress, so any pod may publish on Redis",
                redis.label()
            ));
            continue;
        }
        let mut admitted: Vec<Vec<(String, String)>> = Vec::new();
        for policy in fences {
            let place = policy.label();
            for rule in seq_at(&policy.value, &["spec", "ingress"]) {
                let from = seq_at(rule, &["from"]);
                if from.is_empty() {
                    problems.push(format!(
                        "{place}: an ingress rule without `from` admits every source"
                    ));
                }
                for peer in from {
                    let selector = labels_at(peer, &["podSelector", "matchLabels"]);
                    let pods_only =
                        peer.get("namespaceSelector").is_none() && peer.get("ipBlock").is_none();
                    if !pods_only || !clients.iter().any(|(_, l)| selects(&selector, l)) {
                        let peer = serde_norway::to_string(peer).unwrap_or_default();
                        problems.push(format!(
                            "{place}: admits a peer other than the sidecars' and the SpinApps' \
                             pods: {}",
                            peer.trim()
                        ));
                    }
                    admitted.push(selector);
                }
                let ports = seq_at(rule, &["ports"]);
                if ports.is_empty() {
                    problems.push(format!(
                        "{place}: an ingress rule without `ports` admits every port"
                    ));
                }
                for port in ports {
                    let number = port.get("port").and_then(scalar).unwrap_or_default();
                    if !servers.iter().any(|c| has_port(c, &number)) {
                        problems.push(format!("{place}: port {number} is no port of Redis"));
                    }
                }
            }
        }
        for (client, labels) in &clients {
            if !admitted.iter().any(|selector| selects(selector, labels)) {
                problems.push(format!(
                    "{}: no NetworkPolicy admits {client}'s pods to Redis (a SpinApp is \
                     selected by its spec.podLabels)",
                    redis.label()
                ));
            }
        }
    }
    problems
}

/// Whether a non-empty label selector selects pods with `labels`.
fn selects(selector: &[(String, String)], labels: &[(String, String)]) -> bool {
    !selector.is_empty() && selector.iter().all(|l| labels.contains(l))
}
