//! Spin's HTTP routing, done the way Spin 4 does it: the manifest's routes
//! go into a [`routefinder`] router (the crate Spin's own router is built
//! on), so which route wins, what a `:name` segment captures and what the
//! trailing wildcard leaves as path info are routefinder's answers, not an
//! imitation of them. Around it, what Spin's `spin-http` routes module adds:
//! `/...` becomes routefinder's `/*`, a route written twice keeps its last
//! component, and the trailing wildcard keeps the path's trailing slash.
//!
//! Paths are matched as they came in, percent-escapes and all.

use std::sync::Arc;

use routefinder::Segment;

/// A route the manifest gives that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("route {route:?} of component {component:?} is not a valid route: {reason}")]
    Invalid {
        route: String,
        component: String,
        reason: String,
    },
}

/// What a route leads to.
#[derive(Debug, Clone)]
struct Handler {
    /// The route as written in the manifest.
    raw_route: String,
    /// The route with the application base (always `/` in Spin 4): what
    /// Spin reports as `spin-matched-route`.
    based_route: String,
    component: usize,
}

/// How a path matched a route: what Spin reports in its `spin-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written in the manifest (`/api/...`):
    /// `spin-raw-component-route`.
    pub raw_route: String,
    /// The route with the base: `spin-matched-route`.
    pub based_route: String,
    /// The route without a trailing `/...` (`/api`): `spin-component-route`.
    pub component_route: String,
    /// What the trailing wildcard matched, from `/`, keeping a trailing
    /// slash; empty for an exact route: `spin-path-info`.
    pub path_info: String,
    /// The `:name` segments and what they matched, in route order:
    /// `spin-path-match-<name>`.
    pub named: Vec<(String, String)>,
    pub component: usize,
}

/// The application's routes, ready to match paths. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    inner: Arc<routefinder::Router<Handler>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// Spin's `sanitize_with_base` for the base `/`: the route made absolute,
/// one trailing slash dropped (`/` itself becomes the empty string).
fn with_root_base(route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    match route.strip_suffix('/') {
        Some(stripped) => stripped.to_owned(),
        None => route,
    }
}

impl Router {
    /// Builds the router from `(route, component index, component id)`, in
    /// manifest order. A route given twice keeps the later component, as in
    /// Spin (which logs the earlier one as never used).
    pub fn build<'a>(
        routes: impl IntoIterator<Item = (&'a str, usize, &'a str)>,
    ) -> Result<Self, RouteError> {
        let mut unique: Vec<(Handler, &str)> = Vec::new();
        for (raw, component, id) in routes {
            let handler = Handler {
                raw_route: raw.to_owned(),
                based_route: with_root_base(raw),
                component,
            };
            match unique.iter_mut().find(|(h, _)| h.raw_route == raw) {
                Some(slot) => {
                    tracing::error!(
                        route = raw,
                        replaced = slot.1,
                        effective = id,
                        "duplicate route: the earlier component will never be used"
                    );
                    *slot = (handler, id);
                }
                None => unique.push((handler, id)),
            }
        }
        let mut inner = routefinder::Router::new();
        for (handler, id) in unique {
            let invalid = |reason: String| RouteError::Invalid {
                route: handler.raw_route.clone(),
                component: id.to_owned(),
                reason,
            };
            let spec = match handler.based_route.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => handler.based_route.clone(),
            };
            let spec: routefinder::RouteSpec = spec.parse().map_err(invalid)?;
            // routefinder panics when matching a `*` that is not last:
            // refuse such a route here rather than on a request.
            let segments = spec.segments();
            if let Some(i) = segments.iter().position(|s| *s == Segment::Wildcard)
                && i + 1 != segments.len()
            {
                return Err(invalid("a wildcard must end the route".to_owned()));
            }
            // A parsed spec converts infallibly.
            inner
                .add(spec, handler)
                .unwrap_or_else(|never| match never {});
        }
        Ok(Router {
            inner: Arc::new(inner),
        })
    }

    /// Picks the route for `path` (without the query string), as Spin does:
    /// exact segments beat `:name` segments, which beat wildcards.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let best = self.inner.best_match(path)?;
        let handler = best.handler();
        let captures = best.captures();
        // Spin has always kept a trailing slash in the path info, which
        // routefinder drops.
        let path_info = match captures.wildcard() {
            None => String::new(),
            Some(rest) => match (rest.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{rest}"),
                (false, true) => format!("/{rest}/"),
            },
        };
        Some(RouteMatch {
            raw_route: handler.raw_route.clone(),
            based_route: handler.based_route.clone(),
            component_route: handler
                .raw_route
                .strip_suffix("/...")
                .unwrap_or(&handler.raw_route)
                .to_owned(),
            path_info,
            named: captures
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            component: handler.component,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, usize)]) -> Router {
        Router::build(routes.iter().map(|(r, c)| (*r, *c, "c"))).unwrap()
    }

    #[test]
    fn catch_all_gets_every_path_as_path_info() {
        let r = router(&[("/...", 0)]);
        let m = r.route("/chatrooms/1/messages").unwrap();
        assert_eq!(m.path_info, "/chatrooms/1/messages");
        assert_eq!(m.component_route, "");
        assert_eq!(m.raw_route, "/...");
        assert_eq!(m.based_route, "/...");
        assert_eq!(r.route("/").unwrap().path_info, "/");
        assert_eq!(r.route("/a/b/").unwrap().path_info, "/a/b/");
    }

    #[test]
    fn exact_beats_named_beats_wildcard() {
        let r = router(&[
            ("/...", 0),
            ("/api/...", 1),
            ("/api/health", 2),
            ("/users/:id", 3),
        ]);
        assert_eq!(r.route("/api/health").unwrap().component, 2);
        let m = r.route("/api/x/y").unwrap();
        assert_eq!((m.component, m.path_info.as_str()), (1, "/x/y"));
        let m = r.route("/api").unwrap();
        assert_eq!((m.component, m.path_info.as_str()), (1, ""));
        let m = r.route("/users/7").unwrap();
        assert_eq!(m.component, 3);
        assert_eq!(m.named, [("id".to_owned(), "7".to_owned())]);
        assert_eq!(r.route("/other").unwrap().component, 0);
        assert!(router(&[("/a", 0)]).route("/b").is_none());
    }

    #[test]
    fn named_segments_with_a_trailing_wildcard() {
        let r = router(&[("/echo/:name/...", 0)]);
        let m = r.route("/echo/a%20b/x/y/").unwrap();
        assert_eq!(m.named, [("name".to_owned(), "a%20b".to_owned())]);
        assert_eq!(m.path_info, "/x/y/");
        assert_eq!(m.component_route, "/echo/:name");
        assert!(r.route("/echo").is_none());
    }

    #[test]
    fn the_root_route_and_a_trailing_slash_in_the_route() {
        let r = router(&[("/", 0), ("/dir/", 1)]);
        let m = r.route("/").unwrap();
        assert_eq!((m.based_route.as_str(), m.raw_route.as_str()), ("", "/"));
        let m = r.route("/dir").unwrap();
        assert_eq!(
            (m.based_route.as_str(), m.raw_route.as_str()),
            ("/dir", "/dir/")
        );
    }

    #[test]
    fn a_duplicate_route_keeps_the_later_component() {
        let r = router(&[("/a", 0), ("/a", 1)]);
        assert_eq!(r.route("/a").unwrap().component, 1);
    }

    #[test]
    fn refuses_routes_routefinder_cannot_serve() {
        for bad in ["/*/x", "/:", "/*name"] {
            assert!(
                Router::build([(bad, 0, "c")]).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
