//! The parts of a Spin manifest (`spin.toml`, `spin_manifest_version = 2`)
//! the host needs: the application's name and version, HTTP routes, each
//! component's Wasm file, the SQLite databases it may open and the hosts it
//! may call, the application's `[variables]` and each component's
//! `[component.<id>.variables]`. `[application.trigger.http]` is checked as
//! Spin 4 checks it (a `base` other than `/` is refused), and so is each
//! variable (`required` or a `default`, never both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::variables::Variable;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid Spin manifest: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("unsupported spin_manifest_version {0} (only 2 is supported)")]
    Version(i64),
    #[error("trigger route {route:?} names component {component:?}, which is not defined")]
    UnknownComponent { route: String, component: String },
    #[error("component {0:?}: only a local file `source` is supported")]
    RemoteSource(String),
    /// What Spin 4 says of `[application.trigger.http] base` other than `/`.
    #[error(
        "This application is using the deprecated trigger 'base' field. The base must be \
         prepended to each [[trigger.http]]'s 'route'."
    )]
    DeprecatedBase,
    #[error("[application.trigger.http] has an unknown field {0:?} (only `base` is known)")]
    UnknownHttpTriggerField(String),
    #[error("[application.trigger.http] base must be a string")]
    BaseNotAString,
    /// Spin's words for a variable both required and with a default, or
    /// neither.
    #[error("invalid variable {0:?}: must be `required` OR have a `default`")]
    RequiredOrDefault(String),
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: i64,
    #[serde(default)]
    application: RawApplication,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Default, Deserialize)]
struct RawApplication {
    #[serde(default)]
    name: String,
    version: Option<String>,
    /// Settings of each trigger type, e.g. `[application.trigger.http]`.
    #[serde(default)]
    trigger: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// One component as the host runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSpec {
    pub id: String,
    /// The Wasm file, resolved against the manifest's directory.
    pub source: PathBuf,
    pub sqlite_databases: Vec<String>,
    /// As written: may hold `{{ variable }}` templates.
    pub allowed_outbound_hosts: Vec<String>,
    /// `[component.<id>.variables]`: name to template.
    pub variables: BTreeMap<String, String>,
}

/// An HTTP route and the component that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub route: String,
    pub component: String,
}

/// A parsed, checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The directory holding `spin.toml`; relative paths are resolved here.
    pub dir: PathBuf,
    /// `[application] name`.
    pub name: String,
    /// `[application] version`.
    pub version: Option<String>,
    pub routes: Vec<HttpRoute>,
    pub components: BTreeMap<String, ComponentSpec>,
    /// `[variables]`.
    pub variables: BTreeMap<String, Variable>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        Self::parse(&text, dir).map_err(|e| match e {
            ManifestError::Parse { source, .. } => ManifestError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    pub fn parse(text: &str, dir: PathBuf) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: PathBuf::from("spin.toml"),
            source: Box::new(e),
        })?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::Version(raw.spin_manifest_version));
        }
        if let Some(http) = raw.application.trigger.get("http") {
            check_http_trigger_settings(http)?;
        }
        let components = components(raw.component, &dir)?;
        let routes = http_routes(raw.trigger.http, &components)?;
        let variables = variables(raw.variables)?;
        Ok(Manifest {
            dir,
            variables,
            name: raw.application.name,
            version: raw.application.version,
            routes,
            components,
        })
    }
}

/// The components, their `source` files resolved against `dir`.
fn components(
    raw: BTreeMap<String, RawComponent>,
    dir: &Path,
) -> Result<BTreeMap<String, ComponentSpec>, ManifestError> {
    let mut components = BTreeMap::new();
    for (id, c) in raw {
        let source = match c.source {
            toml::Value::String(s) => dir.join(s),
            _ => return Err(ManifestError::RemoteSource(id)),
        };
        components.insert(
            id.clone(),
            ComponentSpec {
                id,
                source,
                sqlite_databases: c.sqlite_databases,
                allowed_outbound_hosts: c.allowed_outbound_hosts,
                variables: c.variables,
            },
        );
    }
    Ok(components)
}

/// The public HTTP routes, each to a component the manifest has.
fn http_routes(
    raw: Vec<RawHttpTrigger>,
    components: &BTreeMap<String, ComponentSpec>,
) -> Result<Vec<HttpRoute>, ManifestError> {
    let mut routes = Vec::new();
    for t in raw {
        // `route = { private = true }` is reachable only by other
        // components, which this host does not run: skip it.
        let toml::Value::String(route) = t.route else {
            continue;
        };
        if !components.contains_key(&t.component) {
            return Err(ManifestError::UnknownComponent {
                route,
                component: t.component,
            });
        }
        routes.push(HttpRoute {
            route,
            component: t.component,
        });
    }
    Ok(routes)
}

/// The application's variables: each either required or with a default.
fn variables(
    raw: BTreeMap<String, RawVariable>,
) -> Result<BTreeMap<String, Variable>, ManifestError> {
    let mut variables = BTreeMap::new();
    for (name, v) in raw {
        if v.required == v.default.is_some() {
            return Err(ManifestError::RequiredOrDefault(name));
        }
        variables.insert(
            name,
            Variable {
                description: v.description,
                default: v.default,
                required: v.required,
                secret: v.secret,
            },
        );
    }
    Ok(variables)
}

/// `[application.trigger.http]` as Spin 4 takes it: `base` is deprecated,
/// accepted only as `/` (the routes carry any prefix themselves), and no
/// other field is known.
fn check_http_trigger_settings(http: &toml::Table) -> Result<(), ManifestError> {
    if let Some(field) = http.keys().find(|k| *k != "base") {
        return Err(ManifestError::UnknownHttpTriggerField(field.clone()));
    }
    match http.get("base") {
        None => Ok(()),
        Some(toml::Value::String(base)) if base == "/" => {
            tracing::warn!(
                "This application has the deprecated trigger 'base' set to the default value \
                 '/'. This may be an error in the future!"
            );
            Ok(())
        }
        Some(toml::Value::String(_)) => Err(ManifestError::DeprecatedBase),
        Some(_) => Err(ManifestError::BaseNotAString),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_repository_manifest() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        let m = Manifest::load(&path).unwrap();
        let component = |route: &str| {
            let r = m.routes.iter().find(|r| r.route == route).unwrap();
            &m.components[&r.component]
        };
        let rest = component("/...");
        assert_eq!(rest.sqlite_databases, ["default"]);
        assert!(rest.source.ends_with("chatroom_rest.wasm"));
        let page = component("/");
        assert!(page.source.ends_with("chatroom_page.wasm"));
        assert!(page.sqlite_databases.is_empty());
        assert!(
            component("/page/...")
                .source
                .ends_with("chatroom_page.wasm")
        );
    }

    #[test]
    fn refuses_unknown_components_and_versions() {
        let bad = "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"x\"\n";
        assert!(matches!(
            Manifest::parse(bad, ".".into()),
            Err(ManifestError::UnknownComponent { .. })
        ));
        assert!(matches!(
            Manifest::parse("spin_manifest_version = 1", ".".into()),
            Err(ManifestError::Version(1))
        ));
    }

    #[test]
    fn a_base_other_than_the_root_is_refused_as_spin_4_does() {
        let with = |settings: &str| {
            Manifest::parse(
                &format!("spin_manifest_version = 2\n[application.trigger.http]\n{settings}\n"),
                ".".into(),
            )
        };
        assert!(with("base = \"/\"").is_ok());
        for base in ["\"/base\"", "\"\"", "\"/base/\""] {
            let err = with(&format!("base = {base}")).unwrap_err();
            assert!(
                matches!(err, ManifestError::DeprecatedBase),
                "{base}: {err}"
            );
            assert!(err.to_string().contains("deprecated trigger 'base' field"));
        }
        assert!(matches!(
            with("foo = 1"),
            Err(ManifestError::UnknownHttpTriggerField(f)) if f == "foo"
        ));
        assert!(matches!(
            with("base = 1"),
            Err(ManifestError::BaseNotAString)
        ));
    }

    #[test]
    fn variables_are_required_or_have_a_default() {
        let with = |vars: &str| {
            Manifest::parse(
                &format!(
                    "spin_manifest_version = 2\n[variables]\n{vars}\n\
                     [component.c]\nsource = \"c.wasm\"\n\
                     [component.c.variables]\nv = \"x{{{{ a }}}}\"\n"
                ),
                ".".into(),
            )
        };
        let m = with("a = { default = \"1\", secret = true }").unwrap();
        assert_eq!(m.variables["a"].default.as_deref(), Some("1"));
        assert!(m.variables["a"].secret);
        assert_eq!(m.components["c"].variables["v"], "x{{ a }}");
        assert!(with("a = { required = true }").is_ok());
        for bad in ["a = {}", "a = { required = true, default = \"\" }"] {
            assert!(
                matches!(with(bad), Err(ManifestError::RequiredOrDefault(n)) if n == "a"),
                "{bad}"
            );
        }
        assert!(matches!(
            with("a = { default = \"\", colour = \"red\" }"),
            Err(ManifestError::Parse { .. })
        ));
    }
}
