//! A component's `allowed_outbound_hosts`, read and matched as Spin 4
//! reads and matches them (Spin's `outbound-networking-config`), for
//! outbound HTTP and outbound Redis alike.
//!
//! An entry is `scheme://host[:port]`: the scheme a word or `*`; the host
//! a name, `*`, `*.domain`, an IP address or CIDR block, or `self`; the
//! port a number, a range `a..b`, `*`, or left out for the scheme's
//! well-known port. Entries may hold variables (`redis://{{ address }}`).
//!
//! When: at start-up, a literal entry that does not parse stops the host,
//! and so does a templated one that does not parse with the variables'
//! defaults (Spin checks the manifest so before it reads the
//! environment; a template naming a variable without a default is not
//! checked then). A templated entry that parses with the defaults but not
//! with the values the environment gave does not stop Spin: every check
//! then fails, with the parse error's text, which outbound Redis answers as
//! `other(<text>)` and outbound HTTP as `HttpRequestDenied`. The host does
//! the same.

use std::net::IpAddr;
use std::sync::Arc;

use crate::variables::{AppVariables, Template, VariablesError};

/// Why an entry is refused, in Spin's words: the first line is what Spin
/// reports at run time, `reason` the cause under it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EntryError {
    pub message: String,
    pub reason: Option<String>,
}

impl EntryError {
    fn new(message: impl Into<String>, reason: Option<String>) -> Self {
        EntryError {
            message: message.into(),
            reason,
        }
    }

    /// The message with its reason, as Spin prints the error chain.
    pub fn full(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{}: {reason}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Why the host refuses a component's `allowed_outbound_hosts` at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AllowedHostsError {
    #[error(
        "`allowed_outbound_hosts` is malformed: using default variable value(s) with template \
         {template:?} results in invalid config {resolved:?}: {}", error.full()
    )]
    InvalidWithDefaults {
        template: String,
        resolved: String,
        error: EntryError,
    },
    #[error("`allowed_outbound_hosts` is malformed: {}", .0.full())]
    Invalid(EntryError),
    #[error("`allowed_outbound_hosts` is malformed: {0}")]
    Template(VariablesError),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.domain`: the suffix, with its leading dot.
    AnySubdomain(String),
    /// `self` / `self.alt`: the application itself.
    ToSelf,
    Literal(url::Host),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    /// `a..b`, `b` excluded.
    Range(u16, u16),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `None` for `*`.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// `a.b.c.d`, `a.b.c.d/n` or the IPv6 equivalents, host bits dropped.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(len) => len.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((mask(addr, len), len))
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(bits.into())
        }
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self, String> {
        let host = host.trim();
        if host == "*" {
            return Ok(HostPattern::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(HostPattern::ToSelf);
        }
        if host.starts_with('{') {
            return Err("host lists are not yet supported".into());
        }
        if let Some((addr, len)) = parse_cidr(host) {
            return Ok(HostPattern::Cidr(addr, len));
        }
        let host = host.trim_end_matches('/');
        if host.contains('/') {
            return Err("must not include a path".into());
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err("wildcards are allowed only as prefixes".into());
            }
            return Ok(HostPattern::AnySubdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            return Err("wildcards are allowed only as subdomains".into());
        }
        url::Host::parse(host)
            .map(HostPattern::Literal)
            .map_err(|e| e.to_string())
    }

    fn allows(&self, host: &str) -> bool {
        let Ok(host) = url::Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::AnySubdomain(suffix), url::Host::Domain(d)) => d.ends_with(suffix),
            (HostPattern::Literal(literal), host) => host == *literal,
            (HostPattern::Cidr(net, len), url::Host::Ipv4(ip)) => {
                net.is_ipv4() && mask(IpAddr::V4(ip), *len) == *net
            }
            (HostPattern::Cidr(net, len), url::Host::Ipv6(ip)) => {
                net.is_ipv6() && mask(IpAddr::V6(ip), *len) == *net
            }
            _ => false,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> Result<Self, String> {
        if port.is_empty() {
            return well_known_port(scheme)
                .map(PortPattern::Port)
                .ok_or_else(|| {
                    format!(
                        "no port was provided and the scheme {scheme:?} does not have a known \
                     default port number"
                    )
                });
        }
        if port == "*" {
            return Ok(PortPattern::Any);
        }
        if port.starts_with('{') {
            return Err("port lists are not yet supported".into());
        }
        if let Some((start, end)) = port.split_once("..") {
            let bound = |s: &str| {
                s.parse::<u16>()
                    .map_err(|_| format!("port range {port:?} contains non-number"))
            };
            return Ok(PortPattern::Range(bound(start)?, bound(end)?));
        }
        port.parse()
            .map(PortPattern::Port)
            .map_err(|_| format!("port {port:?} is not a number"))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let Some(port) = port.or_else(|| well_known_port(scheme)) else {
            return matches!(self, PortPattern::Any);
        };
        match self {
            PortPattern::Any => true,
            PortPattern::Port(p) => *p == port,
            PortPattern::Range(start, end) => (*start..*end).contains(&port),
        }
    }
}

impl AllowedHost {
    /// Parses one entry as Spin does (port, then scheme, then host).
    fn parse(entry: &str) -> Result<Self, EntryError> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            let message = match url {
                "*" | ":" | "" | "?" => format!(
                    "{url:?} is not an allowed outbound host format.\nHosts must be in the form \
                     <scheme>://<host>[:<port>], with '*' wildcards allowed for each."
                ),
                _ => format!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            };
            return Err(EntryError::new(message, None));
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                if !path.is_empty() {
                    return Err(EntryError::new(
                        format!("{url:?} has a path but is not allowed to"),
                        None,
                    ));
                }
                port
            }
            None => rest,
        };
        let port = PortPattern::parse(port, scheme).map_err(|reason| {
            EntryError::new(format!("Invalid allowed host port {port:?}"), Some(reason))
        })?;
        let scheme_pattern = if scheme == "*" {
            None
        } else if scheme.starts_with('{') {
            return Err(EntryError::new(
                format!("Invalid allowed host scheme {scheme:?}"),
                Some("scheme lists are not supported".into()),
            ));
        } else if scheme.chars().any(|c| !c.is_alphabetic()) {
            return Err(EntryError::new(
                format!("Invalid allowed host scheme {scheme:?}"),
                Some("only alphabetic characters are allowed".into()),
            ));
        } else {
            Some(scheme.to_owned())
        };
        let host = HostPattern::parse(host).map_err(|reason| {
            EntryError::new(format!("Invalid allowed host {host:?}"), Some(reason))
        })?;
        Ok(AllowedHost {
            scheme: scheme_pattern,
            host,
            port,
        })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        self.scheme.as_ref().is_none_or(|s| *s == url.scheme)
            && self.host.allows(&url.host)
            && self.port.allows(url.port, &url.scheme)
    }

    fn allows_relative(&self, schemes: &[&str]) -> bool {
        schemes
            .iter()
            .any(|s| self.scheme.as_ref().is_none_or(|own| own == s))
            && matches!(self.host, HostPattern::Any | HostPattern::ToSelf)
    }
}

/// The address a component asked for, as Spin reads it.
#[derive(Debug)]
struct OutboundUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// Percent-encodes all but unreserved characters (RFC 3986).
fn encode_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl OutboundUrl {
    /// Parses `url`; one that is not a URL with a host is tried again as
    /// `{scheme}://{url}`.
    fn parse(url: &str, scheme: &str) -> Option<Self> {
        let mut url = url.to_owned();
        // Credentials may hold characters a URL may not: encode them (the
        // authority is only matched, never used, after this).
        if let Some(at) = url.find('@') {
            let scheme_end = url.find("://").map_or(0, |e| e + 3);
            let path_start = url[scheme_end..]
                .find('/')
                .map_or(usize::MAX, |e| e + scheme_end);
            if at < path_start && scheme_end <= at {
                let userinfo = encode_userinfo(&url[scheme_end..at]);
                url = format!("{}{userinfo}{}", &url[..scheme_end], &url[at..]);
            }
        }
        let parsed = match url::Url::parse(&url) {
            Ok(parsed) if parsed.has_host() => parsed,
            _ => url::Url::parse(&format!("{scheme}://{url}")).ok()?,
        };
        Some(OutboundUrl {
            scheme: parsed.scheme().to_owned(),
            host: parsed.host_str()?.to_owned(),
            port: parsed.port(),
        })
    }
}

/// A component's `allowed_outbound_hosts`, resolved.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// The entries, or why they did not parse with the variables' values.
    resolved: Arc<Result<Vec<AllowedHost>, EntryError>>,
}

impl Default for AllowedHosts {
    /// Nothing allowed.
    fn default() -> Self {
        AllowedHosts {
            resolved: Arc::new(Ok(Vec::new())),
        }
    }
}

impl AllowedHosts {
    /// Entries without variables (tests, and manifests with none).
    pub fn literal(entries: &[String]) -> Result<Self, AllowedHostsError> {
        Self::resolve(entries, &AppVariables::default())
    }

    /// Reads `entries` with `variables`, refusing at start-up what Spin
    /// refuses when it loads the manifest (see the module's comment).
    pub fn resolve(
        entries: &[String],
        variables: &AppVariables,
    ) -> Result<Self, AllowedHostsError> {
        if entries.len() == 1 && entries[0] == "insecure:allow-all" {
            return Err(AllowedHostsError::Invalid(EntryError::new(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want \
                 to allow all outbound traffic'",
                None,
            )));
        }
        let mut templates = Vec::with_capacity(entries.len());
        for entry in entries {
            let template = Template::parse(entry).map_err(AllowedHostsError::Template)?;
            if template.is_literal() {
                AllowedHost::parse(entry).map_err(AllowedHostsError::Invalid)?;
            } else if let Some(resolved) = variables.render_with_defaults(&template) {
                AllowedHost::parse(&resolved).map_err(|error| {
                    AllowedHostsError::InvalidWithDefaults {
                        template: template.to_string(),
                        resolved,
                        error,
                    }
                })?;
            }
            templates.push(template);
        }
        let resolved = templates
            .iter()
            .map(|template| {
                let text = variables
                    .render(template)
                    .map_err(|e| EntryError::new(e.to_string(), None))?;
                AllowedHost::parse(&text)
            })
            .collect::<Result<Vec<_>, _>>();
        if let Err(e) = &resolved {
            tracing::error!(
                error = %e.full(),
                "the allowed outbound hosts do not parse with the variables' values: \
                 every outbound request will be refused"
            );
        }
        Ok(AllowedHosts {
            resolved: Arc::new(resolved),
        })
    }

    /// Whether `url` may be reached; `scheme` is assumed when it has none.
    /// An error when the entries did not resolve (see the module's comment).
    pub fn check_url(&self, url: &str, scheme: &str) -> Result<bool, EntryError> {
        let Some(url) = OutboundUrl::parse(url, scheme) else {
            tracing::warn!("a component tried to reach a URL that could not be parsed: {url}");
            return Ok(false);
        };
        let allowed = self.entries()?.iter().any(|h| h.allows(&url));
        if !allowed {
            let authority = match url.port {
                Some(port) => format!("{}:{port}", url.host),
                None => url.host.clone(),
            };
            let destination = format!("{}://{authority}", url.scheme);
            tracing::warn!(
                "A component tried to make an outbound network connection to disallowed \
                 destination '{destination}'. To allow this request, add \
                 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section."
            );
        }
        Ok(allowed)
    }

    /// Whether requests to the application itself may be sent with one of
    /// `schemes`.
    pub fn check_relative(&self, schemes: &[&str]) -> Result<bool, EntryError> {
        Ok(self.entries()?.iter().any(|h| h.allows_relative(schemes)))
    }

    fn entries(&self) -> Result<&[AllowedHost], EntryError> {
        match &*self.resolved {
            Ok(entries) => Ok(entries),
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::variables::{Variable, VariableSource};

    fn allows(entries: &[&str], url: &str, scheme: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::literal(&entries)
            .unwrap()
            .check_url(url, scheme)
            .unwrap()
    }

    #[test]
    fn redis_addresses_match_as_in_spin() {
        let allowed = ["redis://127.0.0.1:6391"];
        assert!(allows(&allowed, "redis://127.0.0.1:6391", "redis"));
        assert!(allows(&allowed, "redis://127.0.0.1:6391/3", "redis"));
        assert!(allows(&allowed, "127.0.0.1:6391", "redis"));
        assert!(allows(&allowed, "redis://u:p@127.0.0.1:6391", "redis"));
        assert!(!allows(&allowed, "redis://localhost:6391", "redis"));
        assert!(!allows(&allowed, "redis://127.0.0.1", "redis"));
        assert!(!allows(&allowed, "rediss://127.0.0.1:6391", "redis"));
        assert!(!allows(&allowed, "garbage", "redis"));
        assert!(!allows(&allowed, "", "redis"));
        assert!(allows(
            &["redis://127.0.0.1"],
            "redis://127.0.0.1:6379",
            "redis"
        ));
        assert!(allows(
            &["redis://10.0.0.0/8:*"],
            "redis://10.1.2.3:1",
            "redis"
        ));
        assert!(allows(
            &["*://*:6000..7000"],
            "redis://x.example:6391",
            "redis"
        ));
        assert!(!allows(
            &["*://*:6000..7000"],
            "redis://x.example:7000",
            "redis"
        ));
    }

    #[test]
    fn http_urls_match_as_in_spin() {
        assert!(!allows(&[], "https://example.com/", "https"));
        assert!(allows(
            &["https://example.com"],
            "https://example.com/x",
            "https"
        ));
        assert!(!allows(
            &["https://example.com"],
            "http://example.com/x",
            "https"
        ));
        assert!(!allows(
            &["https://example.com"],
            "https://example.com:8443/",
            "https"
        ));
        assert!(allows(
            &["https://*.example.com"],
            "https://api.example.com/",
            "https"
        ));
        assert!(allows(
            &["http://localhost:*"],
            "http://localhost:3000/",
            "https"
        ));
        assert!(allows(&["*://*:*"], "http://anything:1/", "https"));
    }

    #[test]
    fn malformed_entries_are_refused_with_spins_words() {
        let refused = |entry: &str| {
            AllowedHosts::literal(&[entry.to_owned()])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("redis://"),
            "`allowed_outbound_hosts` is malformed: Invalid allowed host \"\": empty host"
        );
        assert!(refused("example.com").contains("does not contain a scheme"));
        assert!(refused("https://example.com/path").contains("must not include a path"));
        assert!(refused("https://example.com:443/path").contains("has a path"));
        assert!(refused("foo://example.com").contains("does not have a known default port"));
        assert!(refused("https://*.a.*.com").contains("wildcards are allowed only as prefixes"));
        assert!(refused("https://a.*.com").contains("wildcards are allowed only as subdomains"));
    }

    fn app(default: Option<&str>, env: &[(&str, &str)]) -> Result<AppVariables, VariablesError> {
        let declared: BTreeMap<String, Variable> = [(
            "redis_address".to_owned(),
            Variable {
                default: default.map(str::to_owned),
                required: default.is_none(),
                ..Variable::default()
            },
        )]
        .into();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AppVariables::resolve(&declared, &VariableSource::Given(env))
    }

    #[test]
    fn templates_resolve_as_spin_up_resolves_them() {
        let entries = ["redis://{{ redis_address }}".to_owned()];
        // An empty default: refused, whatever the environment says.
        let with_env = app(
            Some(""),
            &[("SPIN_VARIABLE_REDIS_ADDRESS", "127.0.0.1:6390")],
        );
        let err = AllowedHosts::resolve(&entries, &with_env.unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`allowed_outbound_hosts` is malformed: using default variable value(s) with \
             template \"redis://{{ redis_address }}\" results in invalid config \"redis://\": \
             Invalid allowed host \"\": empty host"
        );
        // Required, and set to an address: allowed.
        let set = app(None, &[("SPIN_VARIABLE_REDIS_ADDRESS", "127.0.0.1:6390")]).unwrap();
        let hosts = AllowedHosts::resolve(&entries, &set).unwrap();
        assert_eq!(hosts.check_url("redis://127.0.0.1:6390", "redis"), Ok(true));
        assert_eq!(
            hosts.check_url("redis://127.0.0.1:6391", "redis"),
            Ok(false)
        );
        // Required, and set empty: starts, and every check fails.
        let empty = app(None, &[("SPIN_VARIABLE_REDIS_ADDRESS", "")]).unwrap();
        let hosts = AllowedHosts::resolve(&entries, &empty).unwrap();
        assert_eq!(
            hosts
                .check_url("redis://127.0.0.1:6390", "redis")
                .unwrap_err()
                .to_string(),
            "Invalid allowed host \"\""
        );
    }
}
