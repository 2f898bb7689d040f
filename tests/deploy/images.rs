//! The Dockerfiles: each ENTRYPOINT runs a real binary with real flags,
//! listens on all interfaces on the port it EXPOSEs, as a numeric
//! non-root user, built by a multi-stage `cargo build --release --locked`
//! on a `rust` image pinned to the project's toolchain; every CHATROOM_*
//! it names is read by that binary; and an image of the whole backend
//! carries spin.toml and every .wasm it names.

use std::net::SocketAddr;

use crate::dockerfile::Dockerfile;
use crate::flags::{check_envs, check_flags, env_tokens, flag_value};
use crate::model::{Deploy, basename};

/// Every problem of one Dockerfile.
pub fn check_dockerfile(deploy: &Deploy, file: &Dockerfile) -> Vec<String> {
    let name = &file.name;
    let entry = match file.exec_form("ENTRYPOINT") {
        Ok(Some(entry)) if !entry.is_empty() => entry,
        Ok(_) => return vec![format!("{name}: no ENTRYPOINT")],
        Err(e) => return vec![e],
    };
    let binary = basename(&entry[0]);
    let Some(cli) = deploy.cli(binary) else {
        return vec![format!(
            "{name}: ENTRYPOINT runs {binary}, not a chatroom binary"
        )];
    };
    let mut words = entry.clone();
    match file.exec_form("CMD") {
        Ok(cmd) => words.extend(cmd.unwrap_or_default()),
        Err(e) => return vec![e],
    }
    let mut problems = check_flags(cli, &words, name);
    problems.extend(check_envs(
        cli,
        file.env_names().iter().map(String::as_str),
        name,
    ));
    let mentioned = env_tokens(&file.text);
    problems.extend(check_envs(cli, mentioned.iter().map(String::as_str), name));
    problems.extend(check_build(file, &cli.package));
    problems.extend(check_user(file));
    problems.extend(check_listen(file, &words));
    if cli.flag("manifest").is_some() {
        problems.extend(check_spin_files(deploy, file, &words));
    }
    problems
}

/// Multi-stage, and the binary's package built as operators build it.
fn check_build(file: &Dockerfile, package: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if file.all("FROM").count() < 2 {
        problems.push(format!("{}: not a multi-stage build", file.name));
    }
    let wanted = format!("cargo build --release --locked -p {package}");
    let builds = file.all("RUN").any(|run| {
        run.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&wanted)
    });
    if !builds {
        problems.push(format!("{}: no RUN with `{wanted}`", file.name));
    }
    problems
}

/// The last USER is a numeric id other than root's.
fn check_user(file: &Dockerfile) -> Option<String> {
    let user = file.all("USER").last().unwrap_or("0");
    let uid = user.split(':').next().unwrap_or(user);
    match uid.parse::<u32>() {
        Ok(id) if id != 0 => None,
        _ => Some(format!(
            "{}: USER {user} is not a numeric non-root user",
            file.name
        )),
    }
}

/// `--listen` on all interfaces, on the one port the image EXPOSEs.
fn check_listen(file: &Dockerfile, words: &[String]) -> Vec<String> {
    let Some(listen) = flag_value(words, "listen") else {
        return vec![format!(
            "{}: the ENTRYPOINT gives no --listen (the default is loopback only)",
            file.name
        )];
    };
    let addr: SocketAddr = match listen.parse() {
        Ok(addr) => addr,
        Err(_) => {
            return vec![format!(
                "{}: --listen {listen} is not an address",
                file.name
            )];
        }
    };
    let mut problems = Vec::new();
    if !addr.ip().is_unspecified() {
        problems.push(format!(
            "{}: --listen {listen} is unreachable from outside the container",
            file.name
        ));
    }
    match file.exposed_ports() {
        Ok(ports) if ports == [addr.port()] => {}
        Ok(ports) => problems.push(format!(
            "{}: EXPOSE {ports:?} is not the --listen port {}",
            file.name,
            addr.port()
        )),
        Err(e) => problems.push(e),
    }
    problems
}

/// An image of the Spin host: `--manifest` is a spin.toml, every
/// component's .wasm is copied in, and `--state-dir` is a VOLUME.
fn check_spin_files(deploy: &Deploy, file: &Dockerfile, words: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    match flag_value(words, "manifest") {
        Some(manifest) if manifest.ends_with("/spin.toml") => {}
        other => problems.push(format!(
            "{}: --manifest {other:?} is not the image's spin.toml",
            file.name
        )),
    }
    // Each .wasm installed at `<directory>/<source>`, where the manifest
    // beside it finds it.
    for source in &deploy.spin.sources {
        if !file.text.contains(&format!("/{source}")) {
            problems.push(format!(
                "{}: spin.toml's component {source} is not copied into the image",
                file.name
            ));
        }
    }
    match flag_value(words, "state-dir") {
        Some(dir) if file.volumes().iter().any(|v| v == dir) => {}
        other => problems.push(format!(
            "{}: --state-dir {other:?} is not a VOLUME (the database would not outlive the container)",
            file.name
        )),
    }
    problems
}

/// Whether `text` is a Rust version (`1.95`, `1.95.0`), not a channel
/// (`stable`, `nightly-2026-01-01`).
pub fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Every stage built `FROM` a `rust` image is pinned to `pin` (the
/// toolchain's version, `1.95` or `1.95.0`): `rust:1.95-bookworm` or
/// `rust:1.95.0-bookworm`, not a floating `rust:1-bookworm`,
/// `rust:bookworm` or `rust:latest`, which change under the build.
pub fn check_rust_pin(file: &Dockerfile, pin: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rust_stages = 0;
    for from in file.all("FROM") {
        // `FROM [--platform=...] image[:tag][@digest] [AS name]`
        let Some(image) = from.split_whitespace().find(|w| !w.starts_with("--")) else {
            continue;
        };
        let image = image.split('@').next().unwrap_or(image);
        let (name, tag) = match image.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (image, "latest"),
        };
        if basename(name) != "rust" {
            continue;
        }
        rust_stages += 1;
        let version = tag.split('-').next().unwrap_or(tag);
        let pinned = version == pin
            || version
                .strip_prefix(pin)
                .is_some_and(|rest| rest.starts_with('.'));
        if !pinned {
            problems.push(format!(
                "{}: FROM {image} is not pinned to Rust {pin} (rust-toolchain.toml, or the \
                 workspace's rust-version when it names a channel): use rust:{pin}-bookworm",
                file.name
            ));
        }
    }
    if rust_stages == 0 {
        problems.push(format!("{}: no stage builds FROM a rust image", file.name));
    }
    problems
}
