//! `GET /openapi.json` generated from the routers themselves: every route is registered through
//! [`ApiRouter`], which records its method, path, least role, scope ([`crate::auth::scope`])
//! and summary as it adds the handler, so the document lists exactly the routes that are
//! served, and the router enforces the role and scope it documents (a caller below the role,
//! or a token without the scope, gets 403 before the handler runs). (Body schemas are not
//! described.)
use axum::Router;
use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use serde_json::{Value, json};

use super::AppState;
use crate::auth::Role;

/// One served route, as the document shows it.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    /// `get`, `post`, `put` or `delete`.
    pub method: &'static str,
    /// The path, with `{param}` segments.
    pub path: &'static str,
    /// The least role the route needs; `None` when it needs no token.
    pub role: Option<Role>,
    /// The scope a narrowed token needs for it (with a role only).
    pub scope: Option<String>,
    /// What the route does.
    pub summary: &'static str,
}

/// An axum router that documents each route it serves and guards it with its least role. The
/// handlers are kept apart until [`ApiRouter::into_parts`] is given the state the role check
/// needs.
pub struct ApiRouter {
    routes: Vec<(RouteDoc, MethodRouter<AppState>)>,
}

impl Default for ApiRouter {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! method {
    ($name:ident) => {
        #[doc = concat!("Serves `", stringify!($name), " path` with `handler`, documented with `role` and `summary`.")]
        pub fn $name<H, T>(self, path: &'static str, role: Option<Role>, summary: &'static str, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add(stringify!($name), path, role, summary, routing::$name(handler))
        }
    };
}

impl ApiRouter {
    /// No routes yet.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    method!(get);
    method!(post);
    method!(put);
    method!(delete);

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        role: Option<Role>,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        let doc = RouteDoc {
            method,
            path,
            role,
            scope: role.map(|_| crate::auth::scope::of(method, path)),
            summary,
        };
        self.routes.push((doc, handler));
        self
    }

    /// Adds the routes of `other`.
    pub fn merge(mut self, other: ApiRouter) -> Self {
        self.routes.extend(other.routes);
        self
    }

    /// The documentation of the routes added so far.
    pub fn docs(&self) -> Vec<RouteDoc> {
        self.routes.iter().map(|(doc, _)| doc.clone()).collect()
    }

    /// The axum router, each route behind the check of its least role, and the documentation
    /// of its routes.
    pub fn into_parts(self, state: &AppState) -> (Router<AppState>, Vec<RouteDoc>) {
        let mut router = Router::new();
        let mut docs = Vec::with_capacity(self.routes.len());
        for (doc, handler) in self.routes {
            let handler = match (doc.role, doc.scope.clone()) {
                (Some(role), Some(scope)) => {
                    let scope: std::sync::Arc<str> = scope.into();
                    handler.route_layer(axum::middleware::from_fn_with_state(
                        state.clone(),
                        move |state, request, next| {
                            super::auth::require(role, scope.clone(), state, request, next)
                        },
                    ))
                }
                _ => handler,
            };
            router = router.route(doc.path, handler);
            docs.push(doc);
        }
        (router, docs)
    }
}

/// Every scope a route has: what a token may be narrowed to.
pub fn scopes(routes: &[RouteDoc]) -> std::collections::BTreeSet<String> {
    routes.iter().filter_map(|r| r.scope.clone()).collect()
}

/// Serves the document that [`super::app`] built and put in an extension.
pub async fn serve(
    axum::Extension(document): axum::Extension<std::sync::Arc<Value>>,
) -> axum::Json<Value> {
    axum::Json(Value::clone(&document))
}

/// The OpenAPI 3.1 document of `routes`.
pub fn document(routes: &[RouteDoc]) -> Value {
    let mut paths = serde_json::Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "x-autoflow-role": r.role.map_or("none", Role::as_str),
            "x-autoflow-scope": r.scope,
            "responses": {
                "default": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        if r.role.is_some() {
            op["security"] = json!([{ "bearer": [] }]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Autoflow API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": {
                "type": "object", "required": ["error", "message"],
                "properties": { "error": { "type": "string" }, "message": { "type": "string" } }
            } }
        }
    })
}
