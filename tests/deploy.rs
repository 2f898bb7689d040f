//! Static checks of the deployment files (deploy/*.Dockerfile,
//! deploy/spinkube/*.yaml, the example Secrets, deploy/*.md) against the
//! code: every `--flag` and every `CHATROOM_*` variable they use is one the
//! binary defines (its library's `cli::command()`), ports agree from
//! `--listen` to the container, its probes and its Service, readiness asks
//! `/healthz` and liveness does not (an outage of the REST side must not
//! restart every sidecar), the SpinApp binds only spin.toml's `[variables]`
//! (secret ones from a Secret key that exists) and has a readiness check,
//! the sidecars are wired to the SpinApp, Redis and each other as edge mode
//! needs, Redis requires a password and a NetworkPolicy fences it, every
//! pod meets the "restricted" Pod Security Standard, and the images build
//! on the project's Rust. The documents (README.md, docs/, deploy/*.md,
//! spin.toml) never say a bare `spin deploy` (Spin 4 refuses it), never
//! `kubectl apply` a Secret, and create every Secret key the manifests
//! read. Nothing is run: no Docker or Kubernetes is needed. Renaming a flag
//! or a variable in the code makes this fail until the files follow.

#[path = "deploy/cli.rs"]
mod cli;
#[path = "deploy/dockerfile.rs"]
mod dockerfile;
#[path = "deploy/docs.rs"]
mod docs;
#[path = "deploy/flags.rs"]
mod flags;
#[path = "deploy/images.rs"]
mod images;
#[path = "deploy/kube.rs"]
mod kube;
#[path = "deploy/manifests.rs"]
mod manifests;
#[path = "deploy/model.rs"]
mod model;
#[path = "deploy/wiring.rs"]
mod wiring;

use std::path::{Path, PathBuf};

use cli::Cli;
use model::{Deploy, File};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spin_toml() -> String {
    std::fs::read_to_string(root().join("spin.toml")).expect("reading spin.toml")
}

/// The Rust the images must build with: rust-toolchain.toml's channel when
/// it names a version (`1.95.0`), else (a channel such as `stable`) the
/// workspace's `rust-version`, the Rust the code is written for.
fn rust_pin() -> String {
    let read = |name: &str| -> toml::Table {
        std::fs::read_to_string(root().join(name))
            .unwrap_or_else(|e| panic!("reading {name}: {e}"))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let toolchain = read("rust-toolchain.toml");
    let channel = toolchain
        .get("toolchain")
        .and_then(|t| t.get("channel"))
        .and_then(toml::Value::as_str)
        .unwrap_or_default();
    if images::is_version(channel) {
        return channel.to_owned();
    }
    read("Cargo.toml")
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(toml::Value::as_str)
        .expect("Cargo.toml's [workspace.package] rust-version")
        .to_owned()
}

/// Every problem of the deployment files.
fn problems(clis: Vec<Cli>, files: &[File]) -> Vec<String> {
    let deploy = match Deploy::new(clis, &spin_toml(), files) {
        Ok(deploy) => deploy,
        Err(e) => return vec![e],
    };
    let pin = rust_pin();
    let mut problems = Vec::new();
    for file in &deploy.dockerfiles {
        problems.extend(images::check_dockerfile(&deploy, file));
        problems.extend(images::check_rust_pin(file, &pin));
    }
    problems.extend(kube::check_containers(&deploy));
    problems.extend(kube::check_services(&deploy));
    problems.extend(kube::check_spinapps(&deploy));
    problems.extend(kube::check_texts(&deploy));
    problems.extend(kube::check_pod_security(&deploy));
    problems.extend(kube::check_network_policies(&deploy));
    problems.extend(wiring::check_wiring(&deploy));
    problems
}

/// The files, with `find` replaced by `replace` in the one named `name`.
fn tampered(name: &str, find: &str, replace: &str) -> Vec<File> {
    let mut files = model::read_files(&root());
    let file = files
        .iter_mut()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    assert!(file.text.contains(find), "{name} has no {find:?}");
    file.text = file.text.replace(find, replace);
    files
}

fn sidecar_cli() -> Cli {
    Cli::all()
        .into_iter()
        .find(|c| c.binary == "chatroom-sidecar")
        .expect("the sidecar's command line")
}

#[test]
fn deployment_files_match_the_code() {
    let files = model::read_files(&root());
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for wanted in [
        "deploy/sidecar.Dockerfile",
        "deploy/chatroom.Dockerfile",
        "deploy/spinkube/spinapp.yaml",
        "deploy/spinkube/sidecar.yaml",
        "deploy/spinkube/redis.yaml",
        "deploy/spinkube/networkpolicy.yaml",
        model::EXAMPLE_SECRETS,
    ] {
        assert!(names.contains(&wanted), "{wanted} is missing: {names:?}");
    }
    let found = problems(Cli::all(), &files);
    assert!(
        found.is_empty(),
        "deployment files out of step:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_catches_unknown_flags_and_variables() {
    let cli = sidecar_cli();
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let wrong = flags::check_flags(
        &cli,
        &words(&["chatroom-sidecar", "--no-such-flag"]),
        "test",
    );
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("--no-such-flag"), "{wrong:?}");
    let right = words(&[
        "chatroom-sidecar",
        "--listen=0.0.0.0:1",
        "--redis",
        "redis://r:1",
    ]);
    assert!(flags::check_flags(&cli, &right, "test").is_empty());
    let env = flags::check_envs(&cli, ["CHATROOM_NO_SUCH", "CHATROOM_REDIS_URL"], "test");
    assert_eq!(env.len(), 1, "{env:?}");
    assert!(env[0].contains("CHATROOM_NO_SUCH"), "{env:?}");
}

#[test]
fn a_renamed_flag_in_the_code_fails_the_check() {
    // The sidecar as if `--rest-upstream` were renamed `--upstream`.
    let command = chatroom_sidecar::cli::command();
    let id = command
        .get_arguments()
        .find(|a| a.get_long() == Some("rest-upstream"))
        .map(|a| a.get_id().to_string())
        .expect("the sidecar has --rest-upstream");
    let renamed = command.mut_arg(id, |a| a.long("upstream").env("CHATROOM_UPSTREAM"));
    let mut clis = Cli::all();
    clis.retain(|c| c.binary != "chatroom-sidecar");
    clis.push(Cli::from_command(
        "chatroom-sidecar",
        "chatroom-sidecar",
        &renamed,
    ));
    let found = problems(clis, &model::read_files(&root()));
    assert!(
        found.iter().any(|p| p.contains("CHATROOM_REST_UPSTREAM")),
        "{found:?}"
    );
}

/// Edits that put a file out of step: (file, text, replaced by, what a
/// problem reported then mentions).
#[rustfmt::skip]
const OUT_OF_STEP: &[(&str, &str, &str, &str)] = &[
    (SIDECAR, "CHATROOM_REDIS_URL", "CHATROOM_REDIS", "reads no CHATROOM_REDIS"),
    (SIDECAR, "containerPort: 3001", "containerPort: 3002", "containerPort Some(3002)"),
    (SIDECAR, "path: /healthz", "path: /health", "not /healthz"),
    (SIDECAR, "http://chatroom:80", "http://chatroom-rest:80", "names no SpinApp"),
    (SIDECAR, "fieldPath: metadata.name", "fieldPath: spec.nodeName", "not distinct per pod"),
    (SIDECAR, "key: auth_secret", "key: internal_token", "--auth-secret and"),
    (SIDECAR, "- name: CHATROOM_REDIS_CHANNEL", "- name: CHATROOM_LISTEN", "CHATROOM_LISTEN is ignored"),
    (SIDECAR, "targetPort: 3001", "targetPort: 80", "targetPort 80 is no port"),
    (SIDECAR, "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 12", "not above the preStop"),
    (SIDECAR, "value: \"10\"", "value: \"40\"", "not above the preStop"),
    ("deploy/sidecar.Dockerfile", "\"--listen\"", "\"--listen-on\"", "--listen-on is not a flag"),
    ("deploy/sidecar.Dockerfile", "EXPOSE 3001", "EXPOSE 3000", "EXPOSE [3000]"),
    ("deploy/sidecar.Dockerfile", "USER 10001:10001", "USER root", "USER root"),
    ("deploy/sidecar.Dockerfile", "CHATROOM_NODE_ID", "CHATROOM_NODE", "reads no CHATROOM_NODE"),
    ("deploy/chatroom.Dockerfile", "/out/app/target/wasm/wasm32-wasip2/release/chatroom_page", "/out/app/chatroom_page", "chatroom_page.wasm is not copied"),
    ("deploy/chatroom.Dockerfile", "VOLUME /data", "VOLUME /var/data", "is not a VOLUME"),
    ("deploy/spinkube/spinapp.yaml", "name: redis_channel", "name: redis_topic", "no variable redis_topic"),
    ("deploy/spinkube/spinapp.yaml", "value: \"chatroom-redis:6379\"", "value: \"redis:6379\"", "redis_host"),
    ("deploy/spinkube/spinapp.yaml", "executor: containerd-shim-spin", "executor: spin", "executor"),
    (SECRETS, "internal_token:", "token:", "Secret chatroom-secrets lacks"),
    (REDIS, "name: chatroom-redis\nspec:\n  selector", "name: redis\nspec:\n  selector", "no Service chatroom-redis"),
    ("deploy/fermyon-cloud.md", "--variable redis_host=", "--variable redis_server=", "redis_server"),
    // Liveness never depends on the upstream; readiness is /healthz.
    (SIDECAR, "livenessProbe:\n            tcpSocket:", "livenessProbe:\n            httpGet:\n              path: /healthz", "depends on the upstream"),
    (SIDECAR, "startupProbe:\n            tcpSocket:", "startupProbe:\n            httpGet:\n              path: /chatrooms", "depends on the upstream"),
    (SIDECAR, "livenessProbe:\n            tcpSocket:\n              port: http", "livenessProbe:\n            tcpSocket:\n              port: 3000", "livenessProbe port 3000"),
    (SIDECAR, "livenessProbe:", "livenessProbeX:", "no livenessProbe"),
    (SIDECAR, "readinessProbe:\n            httpGet:", "readinessProbe:\n            tcpSocket:", "no readinessProbe with httpGet"),
    // The "restricted" Pod Security Standard, on the sidecar and on Redis.
    (SIDECAR, "drop: [\"ALL\"]", "drop: []", "capabilities.drop lacks ALL"),
    (SIDECAR, "type: RuntimeDefault", "type: Unconfined", "seccompProfile.type"),
    (SIDECAR, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
    (SIDECAR, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"),
    (SIDECAR, "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"),
    (REDIS, "drop: [\"ALL\"]", "drop: [\"NET_RAW\"]", "capabilities.drop lacks ALL"),
    (REDIS, "type: RuntimeDefault", "type: Unconfined", "seccompProfile.type"),
    (REDIS, "runAsUser: 999", "runAsUser: 0", "runAsUser is 0"),
    (REDIS, "allowPrivilegeEscalation: false", "privileged: true", "privileged"),
    // Redis requires a password, the one redis_url carries.
    (REDIS, "\"--requirepass\", \"$(REDIS_PASSWORD)\", ", "", "without --requirepass"),
    (REDIS, "\"$(REDIS_PASSWORD)\"", "\"hunter2\"", "not $(VAR)"),
    (SECRETS, "redis://default:CHANGE-ME-redis-password@", "redis://", "carries no password"),
    (SECRETS, "redis://default:CHANGE-ME-redis-password@", "redis://default:other@", "password is not Secret"),
    (SIDECAR, "key: redis_url", "key: redis_password", "'s redis_url"),
    // A NetworkPolicy fences Redis, admitting the sidecars and the SpinApp only.
    (NETWORK, "kind: NetworkPolicy", "kind: NetworkPolicyX", "no NetworkPolicy selects"),
    (NETWORK, "policyTypes: [\"Ingress\"]", "policyTypes: [\"Egress\"]", "no NetworkPolicy selects"),
    (NETWORK, "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: chatroom-redis", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: redis", "no NetworkPolicy selects"),
    (NETWORK, "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: chatroom\n", "        - namespaceSelector: {}\n", "admits a peer other than"),
    (NETWORK, "app.kubernetes.io/name: chatroom-sidecar", "app.kubernetes.io/name: anything", "admits a peer other than"),
    (NETWORK, "      ports:\n        - protocol: TCP\n          port: 6379\n", "", "without `ports`"),
    (NETWORK, "port: 6379", "port: 6380", "port 6380 is no port of Redis"),
    (SPINAPP, "  podLabels:\n    app.kubernetes.io/name: chatroom\n", "", "no NetworkPolicy admits"),
    // The SpinApp has a readiness check, in the CRD's own fields.
    (SPINAPP, "    readiness:\n", "    startup:\n", "no readiness check"),
    (SPINAPP, "      initialDelaySeconds: 2\n", "      tcpSocket: {}\n", "not a field of the SpinApp CRD"),
    // The builder images are pinned to the project's Rust.
    ("deploy/sidecar.Dockerfile", "FROM rust:1.95-bookworm", "FROM rust:1-bookworm", "not pinned to Rust"),
    ("deploy/chatroom.Dockerfile", "FROM rust:1.95-bookworm", "FROM rust:latest", "not pinned to Rust"),
];

const SIDECAR: &str = "deploy/spinkube/sidecar.yaml";
const REDIS: &str = "deploy/spinkube/redis.yaml";
const NETWORK: &str = "deploy/spinkube/networkpolicy.yaml";
const SPINAPP: &str = "deploy/spinkube/spinapp.yaml";
const SECRETS: &str = model::EXAMPLE_SECRETS;

#[test]
fn out_of_step_files_fail_the_check() {
    for &(name, find, replace, expected) in OUT_OF_STEP {
        let found = problems(Cli::all(), &tampered(name, find, replace));
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{name} with {find:?} -> {replace:?}: no problem mentions {expected:?}: {found:#?}"
        );
    }
}

/// The documents operators follow (README.md, docs/*.md, deploy/*.md,
/// spin.toml).
fn documents() -> Vec<File> {
    docs::read_docs(&root())
}

/// The documents, with `find` replaced by `replace` in the one named `name`.
fn tampered_documents(name: &str, find: &str, replace: &str) -> Vec<File> {
    let mut documents = documents();
    let document = documents
        .iter_mut()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    assert!(document.text.contains(find), "{name} has no {find:?}");
    document.text = document.text.replace(find, replace);
    documents
}

#[test]
fn documents_never_tell_users_to_run_a_bare_spin_deploy() {
    let found = docs::check_spin_deploy(&documents());
    assert!(
        found.is_empty(),
        "bare `spin deploy`:\n{}",
        found.join("\n")
    );
    // What the documents said before Spin 4, in a code block, in a TOML
    // comment and in prose: each is caught.
    for (name, find, replace) in [
        (
            "deploy/fermyon-cloud.md",
            "spin cloud deploy \\",
            "spin deploy \\",
        ),
        (
            "spin.toml",
            "`spin cloud deploy --variable name=value`",
            "`spin deploy --variable name=value`",
        ),
        (
            "docs/protocol.md",
            "`spin cloud deploy --variable auth_secret=...`",
            "`spin deploy --variable auth_secret=...`",
        ),
    ] {
        let found = docs::check_spin_deploy(&tampered_documents(name, find, replace));
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(name) && p.contains("Spin 4 refuses")),
            "{name} with {replace:?}: {found:#?}"
        );
    }
    // `SPIN_DEPLOY_PLUGIN` names the plugin, so that form is not bare.
    let named = tampered_documents(
        "deploy/fermyon-cloud.md",
        "spin cloud deploy \\",
        "SPIN_DEPLOY_PLUGIN=cloud spin deploy \\",
    );
    let found = docs::check_spin_deploy(&named);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_documented_apply_command_applies_no_secret() {
    let files = model::read_files(&root());
    let found = docs::check_applied_secrets(&documents(), &files);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The placeholder Secrets back in the folder the documents apply.
    let mut moved = files.clone();
    moved
        .iter_mut()
        .find(|f| f.name == model::EXAMPLE_SECRETS)
        .expect("the example Secrets")
        .name = "deploy/spinkube/secret.yaml".to_owned();
    let found = docs::check_applied_secrets(&documents(), &moved);
    assert!(
        found
            .iter()
            .any(|p| p.contains("deploy/spinkube/secret.yaml Secret/chatroom-secrets")),
        "{found:#?}"
    );
    // A command naming the example file, or a folder that is not there.
    for (find, replace, expected) in [
        (
            "kubectl apply -f deploy/spinkube/",
            "kubectl apply -f deploy/spinkube/ -f deploy/spinkube-secrets.example.yaml",
            "Secret/chatroom-secrets",
        ),
        (
            "kubectl apply -f deploy/spinkube/",
            "kubectl apply -f deploy/kube/",
            "applies no file",
        ),
    ] {
        let documents = tampered_documents("docs/operations.md", find, replace);
        let found = docs::check_applied_secrets(&documents, &files);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{replace:?}: {found:#?}"
        );
    }
}

#[test]
fn documented_secrets_hold_every_key_the_manifests_read() {
    let deploy = Deploy::new(Cli::all(), &spin_toml(), &model::read_files(&root()))
        .expect("the deployment files");
    let found = docs::check_created_secrets(&documents(), &deploy);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let without = tampered_documents(
        "docs/operations.md",
        "--from-literal=redis_password=",
        "--from-literal=redis_pass=",
    );
    let found = docs::check_created_secrets(&without, &deploy);
    assert!(
        found
            .iter()
            .any(|p| p.contains("key redis_password of Secret chatroom-secrets")),
        "{found:#?}"
    );
}

#[test]
fn builder_images_are_pinned_to_the_rust_toolchain() {
    let pin = rust_pin();
    assert!(images::is_version(&pin), "{pin:?} is not a Rust version");
    assert!(!images::is_version("stable") && !images::is_version("1.x"));
    let files = model::read_files(&root());
    let dockerfiles: Vec<dockerfile::Dockerfile> = files
        .iter()
        .filter(|f| f.name.ends_with(".Dockerfile"))
        .map(|f| dockerfile::Dockerfile::parse(&f.name, &f.text))
        .collect();
    assert_eq!(dockerfiles.len(), 2, "the two Dockerfiles");
    for file in &dockerfiles {
        let found = images::check_rust_pin(file, &pin);
        assert!(found.is_empty(), "{}", found.join("\n"));
        // A toolchain moved on without the images is caught.
        let found = images::check_rust_pin(file, "1.96");
        assert!(
            found.iter().any(|p| p.contains("not pinned to Rust 1.96")),
            "{found:#?}"
        );
    }
    let patch = dockerfile::Dockerfile::parse(
        "test",
        "FROM --platform=$BUILDPLATFORM rust:1.95.0-slim-bookworm AS builder\nFROM debian\n",
    );
    assert!(images::check_rust_pin(&patch, "1.95").is_empty());
    assert!(!images::check_rust_pin(&patch, "1.9").is_empty());
}

#[test]
fn sidecar_liveness_is_a_tcp_connect_and_readiness_is_healthz() {
    // Read directly, beside the general check: a REST outage must not
    // restart every sidecar.
    let files = model::read_files(&root());
    let sidecar = files.iter().find(|f| f.name == SIDECAR).expect(SIDECAR);
    let objects = manifests::parse_docs(&sidecar.name, &sidecar.text).expect("sidecar.yaml");
    let deployment = objects
        .iter()
        .find(|d| d.kind() == "Deployment")
        .expect("the sidecar Deployment");
    let containers = manifests::seq_at(
        &deployment.value,
        &["spec", "template", "spec", "containers"],
    );
    assert!(!containers.is_empty());
    for container in containers {
        assert!(manifests::at(container, &["livenessProbe", "tcpSocket"]).is_some());
        assert!(manifests::at(container, &["livenessProbe", "httpGet"]).is_none());
        assert!(manifests::at(container, &["startupProbe", "tcpSocket"]).is_some());
        assert_eq!(
            manifests::str_at(container, &["readinessProbe", "httpGet", "path"]),
            Some("/healthz")
        );
    }
}
