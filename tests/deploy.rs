//! Static checks of the deployment files (deploy/*.Dockerfile,
//! deploy/spinkube/*.yaml, deploy/*.md) against the code: every `--flag`
//! and every `CHATROOM_*` variable they use is one the binary defines (its
//! library's `cli::command()`), ports agree from `--listen` to the
//! container, its probes and its Service, the SpinApp binds only
//! spin.toml's `[variables]` (secret ones from a Secret key that exists),
//! and the sidecars are wired to the SpinApp, Redis and each other as edge
//! mode needs. Nothing is run: no Docker or Kubernetes is needed. Renaming
//! a flag or a variable in the code makes this fail until the files follow.

#[path = "deploy/cli.rs"]
mod cli;
#[path = "deploy/dockerfile.rs"]
mod dockerfile;
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

/// Every problem of the deployment files.
fn problems(clis: Vec<Cli>, files: &[File]) -> Vec<String> {
    let deploy = match Deploy::new(clis, &spin_toml(), files) {
        Ok(deploy) => deploy,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    for file in &deploy.dockerfiles {
        problems.extend(images::check_dockerfile(&deploy, file));
    }
    problems.extend(kube::check_containers(&deploy));
    problems.extend(kube::check_services(&deploy));
    problems.extend(kube::check_spinapps(&deploy));
    problems.extend(kube::check_texts(&deploy));
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
    ("deploy/spinkube/secret.yaml", "internal_token:", "token:", "Secret chatroom-secrets lacks"),
    ("deploy/spinkube/redis.yaml", "name: chatroom-redis\nspec:\n  selector", "name: redis\nspec:\n  selector", "no Service chatroom-redis"),
    ("deploy/fermyon-cloud.md", "--variable redis_host=", "--variable redis_server=", "redis_server"),
];

const SIDECAR: &str = "deploy/spinkube/sidecar.yaml";

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
