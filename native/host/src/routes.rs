//! Spin's HTTP route patterns: exact paths (`/healthz`), trailing wildcards
//! (`/api/...`, `/...`), and `:name` segments. An exact route beats a
//! wildcard; among wildcards the longest prefix wins, as in Spin.

/// A route from the manifest and the index of the component serving it.
#[derive(Debug, Clone)]
pub struct Route {
    raw: String,
    segments: Vec<String>,
    wildcard: bool,
    pub component: usize,
}

/// How a path matched a route: what Spin reports in its `spin-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written in the manifest (`/...`).
    pub raw_route: String,
    /// The route without its wildcard (`/api/...` gives `/api`).
    pub component_route: String,
    /// The part of the path after the matched route, starting with `/`
    /// (empty for an exact match).
    pub path_info: String,
    pub component: usize,
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Route {
    pub fn new(raw: &str, component: usize) -> Self {
        let mut segments = split(raw);
        let wildcard = segments.last().is_some_and(|s| s == "...");
        if wildcard {
            segments.pop();
        }
        Route {
            raw: raw.to_owned(),
            segments,
            wildcard,
            component,
        }
    }

    fn matches(&self, path: &[String]) -> bool {
        let fits = if self.wildcard {
            path.len() >= self.segments.len()
        } else {
            path.len() == self.segments.len()
        };
        fits && self
            .segments
            .iter()
            .zip(path)
            .all(|(want, got)| want.starts_with(':') || want == got)
    }

    /// Orders candidates: exact first, then longer prefixes.
    fn rank(&self) -> (bool, usize) {
        (!self.wildcard, self.segments.len())
    }
}

/// Picks the route for `path` (without the query string).
pub fn resolve(routes: &[Route], path: &str) -> Option<RouteMatch> {
    let segments = split(path);
    let route = routes
        .iter()
        .filter(|r| r.matches(&segments))
        .max_by_key(|r| r.rank())?;
    let component_route = format!("/{}", route.segments.join("/"));
    let path_info = if route.wildcard {
        let rest = &segments[route.segments.len()..];
        if rest.is_empty() && !path.ends_with('/') {
            String::new()
        } else {
            let mut info = format!("/{}", rest.join("/"));
            if path.ends_with('/') && !rest.is_empty() {
                info.push('/');
            }
            info
        }
    } else {
        String::new()
    };
    Some(RouteMatch {
        raw_route: route.raw.clone(),
        component_route: if route.segments.is_empty() {
            String::new()
        } else {
            component_route
        },
        path_info,
        component: route.component,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_all_gets_every_path_as_path_info() {
        let routes = [Route::new("/...", 0)];
        let m = resolve(&routes, "/chatrooms/1/messages").unwrap();
        assert_eq!(m.path_info, "/chatrooms/1/messages");
        assert_eq!(m.component_route, "");
        assert_eq!(m.raw_route, "/...");
        assert_eq!(resolve(&routes, "/").unwrap().path_info, "/");
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let routes = [
            Route::new("/...", 0),
            Route::new("/api/...", 1),
            Route::new("/api/health", 2),
            Route::new("/users/:id", 3),
        ];
        assert_eq!(resolve(&routes, "/api/health").unwrap().component, 2);
        let m = resolve(&routes, "/api/x/y").unwrap();
        assert_eq!((m.component, m.path_info.as_str()), (1, "/x/y"));
        assert_eq!(resolve(&routes, "/users/7").unwrap().component, 3);
        assert_eq!(resolve(&routes, "/other").unwrap().component, 0);
        assert!(resolve(&[Route::new("/a", 0)], "/b").is_none());
    }
}
