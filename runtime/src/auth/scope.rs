//! Token scopes. Every route that needs a caller has a scope, `RESOURCE:ACTION`, read off its
//! method and path by [`of`]:
//! - RESOURCE is the path's first segment after `/v1/` (`pipelines`, `plugins`, `secrets`, ...),
//!   or a later one that names runs of its own: `runs`, `backfills`, `dead-letters`;
//! - ACTION is `read` for `GET`, and `write` for the other methods, but for the routes that make
//!   runs (`POST` to `.../runs`, `.../backfills`, `.../replay`: `runs:trigger`) and stop them
//!   (`.../cancel`: `runs:cancel`). Checking a definition (`/v1/pipeline-check`) stores
//!   nothing: `pipelines:read`.
//!
//! A token may be narrowed to some scopes; it then reaches only the routes whose scope it holds
//! (and its role allows). `RESOURCE:*` holds every action on RESOURCE.
use std::collections::BTreeSet;

/// The later path segments that name a resource of their own.
const NESTED: [&str; 3] = ["runs", "backfills", "dead-letters"];

/// The scope of the route `method path` (`get`, `/v1/pipelines/{name}/runs`).
pub fn of(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path
        .trim_start_matches("/v1/")
        .split('/')
        .filter(|s| !s.starts_with('{'))
        .collect();
    let first = segments.first().copied().unwrap_or("");
    if first == "pipeline-check" {
        return "pipelines:read".to_string();
    }
    let resource = segments
        .iter()
        .skip(1)
        .rev()
        .find(|s| NESTED.contains(s))
        .copied()
        .unwrap_or(first);
    let last = segments.last().copied().unwrap_or("");
    let reading = method.eq_ignore_ascii_case("get") || method.eq_ignore_ascii_case("head");
    match last {
        _ if reading => format!("{resource}:read"),
        "cancel" => "runs:cancel".to_string(),
        "runs" | "backfills" | "replay" => "runs:trigger".to_string(),
        _ => format!("{resource}:write"),
    }
}

/// Whether scopes `held` include `needed`.
pub fn covers(held: &[String], needed: &str) -> bool {
    let resource = needed.split_once(':').map_or(needed, |(r, _)| r);
    held.iter()
        .any(|h| h == needed || h.strip_suffix(":*") == Some(resource))
}

/// The scopes a token is asked to be narrowed to, checked against the routes' `known` scopes:
/// sorted, each once. An unknown one is refused, naming it and the scopes there are.
pub fn check(requested: &[String], known: &BTreeSet<String>) -> Result<Vec<String>, String> {
    if requested.is_empty() {
        return Err(
            "scopes: give at least one (or none at all, for every route the role allows)".into(),
        );
    }
    let resources: BTreeSet<&str> = known
        .iter()
        .filter_map(|s| s.split_once(':').map(|(r, _)| r))
        .collect();
    let mut scopes = BTreeSet::new();
    for scope in requested {
        let scope = scope.trim();
        let ok = known.contains(scope)
            || scope
                .strip_suffix(":*")
                .is_some_and(|r| resources.contains(r));
        if !ok {
            let all: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(format!(
                "unknown scope {scope:?} (the scopes are {}, and RESOURCE:* for every action on one)",
                all.join(", ")
            ));
        }
        scopes.insert(scope.to_string());
    }
    Ok(scopes.into_iter().collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_route_has_the_scope_its_path_and_method_say() {
        let cases = [
            ("get", "/v1/pipelines", "pipelines:read"),
            ("put", "/v1/pipelines/{name}", "pipelines:write"),
            ("post", "/v1/pipelines/{name}/rollback", "pipelines:write"),
            ("post", "/v1/pipeline-check", "pipelines:read"),
            ("post", "/v1/pipelines/{name}/runs", "runs:trigger"),
            ("get", "/v1/pipelines/{name}/runs", "runs:read"),
            ("get", "/v1/runs/{id}/logs", "runs:read"),
            ("post", "/v1/runs/{id}/cancel", "runs:cancel"),
            ("post", "/v1/backfills/{id}/cancel", "runs:cancel"),
            ("post", "/v1/pipelines/{name}/backfills", "runs:trigger"),
            ("get", "/v1/pipelines/{name}/backfills", "backfills:read"),
            ("get", "/v1/runs/{id}/dead-letters", "dead-letters:read"),
            (
                "post",
                "/v1/pipelines/{name}/dead-letters/replay",
                "runs:trigger",
            ),
            ("delete", "/v1/secrets/{name}", "secrets:write"),
            ("post", "/v1/channels/{name}/test", "channels:write"),
            ("get", "/v1/alerts/{id}/deliveries", "alerts:read"),
        ];
        for (method, path, scope) in cases {
            assert_eq!(of(method, path), scope, "{method} {path}");
        }
    }

    #[test]
    fn scopes_are_checked_and_a_wildcard_holds_every_action() {
        let known: BTreeSet<String> = ["pipelines:read", "pipelines:write", "runs:trigger"]
            .map(String::from)
            .into();
        let held = check(
            &[
                "runs:trigger".into(),
                "pipelines:*".into(),
                "runs:trigger".into(),
            ],
            &known,
        )
        .unwrap();
        assert_eq!(held, ["pipelines:*", "runs:trigger"]);
        assert!(covers(&held, "pipelines:write"));
        assert!(covers(&held, "runs:trigger"));
        assert!(!covers(&held, "runs:cancel"));
        let e = check(&["runs:launch".into()], &known).unwrap_err();
        assert!(e.starts_with("unknown scope \"runs:launch\" (the scopes are pipelines:read, pipelines:write, runs:trigger"), "{e}");
        assert!(check(&["secrets:*".into()], &known).is_err());
        assert!(check(&[], &known).is_err());
    }
}
