//! How the pieces reach each other: each edge-mode sidecar forwards to a
//! SpinApp's Service (named after it, port 80), presents the token the
//! SpinApp is given (the same Secret key), shares its auth secret, Redis
//! server and channel, and gets a node id of its own; the Redis they share
//! requires a password, and their `redis_url` carries it.

use crate::flags::{Invocation, Source, flag_value};
use crate::kube::{Container, secret_value, spin_variables};
use crate::manifests::{Doc, labels_at, scalar, seq_at};
use crate::model::Deploy;

/// Every problem of the sidecars' wiring.
pub fn check_wiring(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for container in Container::all(deploy) {
        if container.image_name() != "chatroom-sidecar" {
            continue;
        }
        // Errors here were reported by the container checks.
        let Ok(Some(run)) = container.invocation(deploy) else {
            continue;
        };
        if let Err(e) = check_sidecar(deploy, &container, &run, &mut problems) {
            problems.push(format!("{}: {e}", container.place));
        }
    }
    problems
}

fn check_sidecar(
    deploy: &Deploy,
    container: &Container,
    run: &Invocation,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    let place = &container.place;
    if run.setting("db")?.is_some() {
        return Ok(()); // file mode: nothing to wire
    }
    let upstream = run.setting("rest-upstream")?;
    let upstream = upstream
        .as_ref()
        .and_then(Source::literal)
        .ok_or("no literal --rest-upstream: a sidecar alone has no data")?;
    let app = spinapp_behind(deploy, upstream)?;
    let settings = AppSettings::of(deploy, app);

    // The internal API's token: required, and the same Secret key.
    let token = set(run.setting("internal-token")?);
    match settings.get("internal_token") {
        None => problems.push(format!(
            "{place}: {} sets no internal_token, so its internal API is off",
            app.label()
        )),
        Some(app_token @ Source::Secret { .. }) if token.as_ref() == Some(&app_token) => {}
        Some(_) => problems.push(format!(
            "{place}: --internal-token is not the same Secret key as {}'s internal_token",
            app.label()
        )),
    }

    // Identity: both halves on the same secret, or neither.
    if set(run.setting("auth-secret")?) != settings.get("auth_secret") {
        problems.push(format!(
            "{place}: --auth-secret and {}'s auth_secret differ",
            app.label()
        ));
    }

    // Redis: the server the component publishes on, and its channel.
    let redis = set(run.setting("redis")?);
    let app_redis = settings.get("redis_url");
    if redis != app_redis {
        problems.push(format!(
            "{place}: --redis {redis:?} is not {}'s redis_url {app_redis:?}",
            app.label()
        ));
    }
    if let Some(url) = app_redis.as_ref().and_then(|s| resolve(deploy, s)) {
        problems.extend(check_redis_host(deploy, app, url, &settings));
    }
    let channel = set(run.setting("redis-channel")?);
    let app_channel = settings.get("redis_channel");
    if channel != app_channel {
        problems.push(format!(
            "{place}: --redis-channel {channel:?} is not {}'s redis_channel {app_channel:?}",
            app.label()
        ));
    }

    // Presence: a node id of its own for every replica.
    match run.setting("node-id")? {
        None => {}
        Some(Source::Field(path)) if path == "metadata.name" => {}
        Some(Source::Literal(_)) if container.replicas() <= 1 => {}
        Some(other) => problems.push(format!(
            "{place}: --node-id {other:?} is not distinct per pod (use the pod's metadata.name)"
        )),
    }
    Ok(())
}

/// The SpinApp whose Service `upstream` names (`http://<app>[:80]`).
fn spinapp_behind<'a>(deploy: &'a Deploy, upstream: &str) -> Result<&'a Doc, String> {
    let authority = upstream
        .strip_prefix("http://")
        .ok_or_else(|| format!("--rest-upstream {upstream} is not http://<SpinApp>"))?;
    let authority = authority.split('/').next().unwrap_or(authority);
    let (host, port) = authority.split_once(':').unwrap_or((authority, "80"));
    let host = host.split('.').next().unwrap_or(host); // <app>.<namespace>.svc...
    let app = deploy
        .of_kind("SpinApp")
        .find(|app| app.name() == host)
        .ok_or_else(|| format!("--rest-upstream {upstream} names no SpinApp's Service"))?;
    if port != "80" {
        return Err(format!(
            "--rest-upstream {upstream}: a SpinApp's Service listens on port 80"
        ));
    }
    Ok(app)
}

/// A setting's value as the manifests write it: a literal, or a key of a
/// Secret they define (the example Secrets' placeholders).
fn resolve<'a>(deploy: &'a Deploy, source: &'a Source) -> Option<&'a str> {
    match source {
        Source::Literal(value) => Some(value),
        Source::Secret { name, key } => secret_value(deploy, name, key),
        _ => None,
    }
}

/// The SpinApp's `redis_host` is the `host:port` of its `redis_url`, a
/// Service of the manifests answers there, and the Redis behind it
/// requires the password `redis_url` carries.
fn check_redis_host(
    deploy: &Deploy,
    app: &Doc,
    redis_url: &str,
    settings: &AppSettings,
) -> Vec<String> {
    let place = app.label();
    let Some(rest) = redis_url.strip_prefix("redis://") else {
        return vec![format!(
            "{place}: redis_url {redis_url} is not redis://[user:password@]host:port"
        )];
    };
    // `[user:password@]host:port[/db]`
    let (userinfo, rest) = rest
        .rsplit_once('@')
        .map_or((None, rest), |(user, host)| (Some(user), host));
    let authority = rest.split('/').next().unwrap_or(rest);
    let redis_host = settings.get("redis_host");
    let mut problems = Vec::new();
    if redis_host.as_ref().and_then(Source::literal) != Some(authority) {
        problems.push(format!(
            "{place}: redis_host {redis_host:?} is not {authority} (redis_url's host:port), \
             so Spin refuses the connection"
        ));
    }
    let (host, port) = authority.split_once(':').unwrap_or((authority, "6379"));
    let served = deploy.of_kind("Service").any(|service| {
        service.name() == host
            && seq_at(&service.value, &["spec", "ports"])
                .iter()
                .any(|p| p.get("port").and_then(scalar).as_deref() == Some(port))
            && !labels_at(&service.value, &["spec", "selector"]).is_empty()
    });
    if !served {
        problems.push(format!(
            "{place}: no Service {host} on port {port} for redis_url"
        ));
    }
    problems.extend(check_redis_password(deploy, host, userinfo, &place));
    problems
}

/// The Redis of Service `host` requires a password (`--requirepass
/// $(VAR)`, VAR from a Secret), and `redis_url` carries that password:
/// whoever reaches Redis without it could publish presence notices.
fn check_redis_password(
    deploy: &Deploy,
    host: &str,
    userinfo: Option<&str>,
    place: &str,
) -> Vec<String> {
    let Some(service) = deploy.of_kind("Service").find(|s| s.name() == host) else {
        return vec![]; // reported by check_redis_host
    };
    let selector = labels_at(&service.value, &["spec", "selector"]);
    let mut problems = Vec::new();
    for server in Container::all(deploy) {
        let labels = labels_at(
            &server.deployment.value,
            &["spec", "template", "metadata", "labels"],
        );
        let behind = !selector.is_empty() && selector.iter().all(|l| labels.contains(l));
        if !behind || server.image_name() != "redis" {
            continue;
        }
        let args: Vec<String> = seq_at(server.value, &["args"])
            .iter()
            .filter_map(scalar)
            .collect();
        let Some(required) = flag_value(&args, "requirepass") else {
            problems.push(format!(
                "{}: Redis runs without --requirepass, so whoever reaches it may publish",
                server.place
            ));
            continue;
        };
        // `$(VAR)`: Kubernetes puts the container's variable there.
        let source = required
            .strip_prefix("$(")
            .and_then(|var| var.strip_suffix(')'))
            .and_then(|var| server.env().into_iter().find(|(name, _)| name == var))
            .map(|(_, source)| source);
        let Some(Source::Secret { name, key }) = source else {
            problems.push(format!(
                "{}: --requirepass {required} is not $(VAR) of a variable read from a Secret",
                server.place
            ));
            continue;
        };
        let password = userinfo
            .map(|u| u.split_once(':').map_or(u, |(_, password)| password))
            .filter(|p| !p.is_empty());
        match password {
            None => problems.push(format!(
                "{place}: redis_url carries no password, but {} requires one",
                server.place
            )),
            Some(p) if Some(p) != secret_value(deploy, &name, &key) => problems.push(format!(
                "{place}: redis_url's password is not Secret {name}'s {key}, which {} requires",
                server.place
            )),
            Some(_) => {}
        }
    }
    problems
}

/// A SpinApp's variables as the component sees them: its bindings, else
/// spin.toml's defaults.
struct AppSettings {
    bindings: Vec<(String, Source)>,
    defaults: Vec<(String, Source)>,
}

impl AppSettings {
    fn of(deploy: &Deploy, app: &Doc) -> AppSettings {
        let defaults = deploy
            .spin
            .variables
            .iter()
            .filter_map(|(name, v)| Some((name.clone(), Source::Literal(v.default.clone()?))))
            .collect();
        AppSettings {
            bindings: spin_variables(app),
            defaults,
        }
    }

    /// The value of `name`, `None` if it is empty.
    fn get(&self, name: &str) -> Option<Source> {
        let found = self
            .bindings
            .iter()
            .chain(&self.defaults)
            .find(|(n, _)| n == name);
        set(found.map(|(_, source)| source.clone()))
    }
}

/// `None` for an empty value (an empty flag or variable means unset).
fn set(source: Option<Source>) -> Option<Source> {
    source.filter(|s| s.literal() != Some(""))
}
