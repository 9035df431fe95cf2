//! `GET /openapi.json`: an OpenAPI 3.1 document built from [`ROUTES`], the table of every
//! route with its role and summary. A test checks that each route in the table is served, so
//! the document cannot drift from the routers. (Schemas of the bodies are not described yet.)
use axum::Json;
use serde_json::{Value, json};

/// Every API route: method, path, least role (`none` for public), summary.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/healthz", "none", "Liveness and database check"),
    ("get", "/openapi.json", "none", "This document"),
    ("post", "/v1/plugins", "editor", "Upload a component (?name=&version=); answers its digest"),
    ("get", "/v1/plugins", "viewer", "List the registry"),
    ("get", "/v1/plugins/{digest}", "viewer", "The bindings of a digest"),
    ("delete", "/v1/plugins/{digest}", "editor", "Delete a plugin (409 while a pipeline version uses it)"),
    ("get", "/v1/plugins/{digest}/content", "viewer", "Download the component bytes"),
    ("post", "/v1/pipelines", "editor", "Create a pipeline (YAML or JSON)"),
    ("get", "/v1/pipelines", "viewer", "List pipelines"),
    ("get", "/v1/pipelines/{name}", "viewer", "A pipeline and its newest version"),
    ("put", "/v1/pipelines/{name}", "editor", "A new version of a pipeline"),
    ("get", "/v1/pipelines/{name}/versions", "viewer", "A pipeline's versions"),
    ("get", "/v1/pipelines/{name}/versions/{version}", "viewer", "One version with its pinned digests"),
    ("post", "/v1/pipelines/{name}/rollback", "editor", "A new version equal to an older one"),
    ("post", "/v1/pipelines/{name}/runs", "editor", "Queue a run; 202 with its id"),
    ("get", "/v1/pipelines/{name}/runs", "viewer", "A pipeline's runs (?status=&limit=)"),
    ("get", "/v1/runs/{id}", "viewer", "A run and its per-step report"),
    ("get", "/v1/runs/{id}/logs", "viewer", "A run's log lines (?after=&limit=; ?follow=true streams events)"),
    ("post", "/v1/tokens", "admin", "Create a token (shown once)"),
    ("get", "/v1/tokens", "admin", "List the tenant's tokens"),
    ("delete", "/v1/tokens/{id}", "admin", "Revoke a token"),
    ("post", "/v1/tenants", "admin", "Create a tenant (admins of tenant default)"),
    ("get", "/v1/audit", "admin", "The audit log"),
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, role, summary) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "x-autoflow-role": role,
            "responses": {
                "default": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        if *role != "none" {
            op["security"] = json!([{ "bearer": [] }]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
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

/// Serves [`document`].
pub async fn serve() -> Json<Value> {
    Json(document())
}
