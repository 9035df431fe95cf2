//! The datasets a pipeline reads and writes, named as OpenLineage names them
//! (<https://openlineage.io/docs/spec/naming>): read from each step's config and the pipeline's
//! connections and mounts, whatever the plugin (a custom plugin that takes `connection` and
//! `table`, `stream`, `subject`, `path` or `url` is named like the built-ins). A step that
//! reads from no other step is an input; one that no step reads from is an output; one in
//! between with a dataset (a lookup) is an input. Secrets never appear: a URL's user and
//! password are dropped, and `${secrets.NAME}` elsewhere is kept as written.
use std::path::Path;

use serde_json::Value;

use crate::pipeline::connection::target::Target;
use crate::pipeline::connection::{ConnectionKind, ConnectionUrl};
use crate::pipeline::{ResolvedMount, ValidatedPipeline};

/// One dataset, with the step that reads or writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The step's id.
    pub step: String,
    /// Where it lives: `postgres://host:5432`, `nats://host:4222`, `file`, `https://host`, ...
    pub namespace: String,
    /// What it is there: `db.schema.table`, a stream, a subject, a file's path, a URL's path.
    pub name: String,
}

/// What a pipeline reads and what it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datasets {
    /// Read by its sources (and lookups).
    pub inputs: Vec<Dataset>,
    /// Written by its sinks.
    pub outputs: Vec<Dataset>,
}

/// The datasets of `pipeline`, in file order of its steps.
pub fn of(pipeline: &ValidatedPipeline) -> Datasets {
    let mut out = Datasets::default();
    for (i, step) in pipeline.steps().iter().enumerate() {
        let Some(resolved) = pipeline.resolved(i) else {
            continue;
        };
        let Some((namespace, name)) = place(pipeline, &step.config, &resolved.mounts) else {
            continue;
        };
        let d = Dataset {
            step: step.id.clone(),
            namespace,
            name,
        };
        if resolved.outputs.is_empty() && !resolved.inputs.is_empty() {
            out.outputs.push(d);
        } else {
            out.inputs.push(d);
        }
    }
    out
}

/// The namespace and name of what a step with `config` reads or writes, if it says.
fn place(
    pipeline: &ValidatedPipeline,
    config: &Value,
    mounts: &[ResolvedMount],
) -> Option<(String, String)> {
    let text = |key: &str| config.get(key).and_then(Value::as_str);
    if let Some(connection) = text("connection") {
        let url = &pipeline.pipeline().connections.get(connection)?.url;
        let (namespace, database) = connection_namespace(url)?;
        let name = match (text("table"), text("stream").or(text("subject"))) {
            (Some(table), _) => {
                let schema = text("schema");
                let parts: Vec<&str> = match ConnectionUrl::read(url).ok()?.kind {
                    ConnectionKind::Postgres => {
                        vec![database.as_deref()?, schema.unwrap_or("public"), table]
                    }
                    ConnectionKind::Mysql => vec![database.as_deref()?, table],
                    _ => schema.into_iter().chain([table]).collect(),
                };
                parts.join(".")
            }
            (None, Some(stream)) => stream.to_string(),
            (None, None) => connection.to_string(),
        };
        return Some((namespace, name));
    }
    if let Some(path) = text("path") {
        return Some(("file".into(), host_path(path, mounts)));
    }
    let url = url::Url::parse(text("url")?).ok()?;
    let host = url.host_str()?;
    let namespace = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    Some((namespace, url.path().to_string()))
}

/// The namespace of a connection URL (`scheme://host:port`, `sqlite:FILE`), and its database's
/// name; the user and password are left out.
fn connection_namespace(url: &str) -> Option<(String, Option<String>)> {
    let kind = ConnectionUrl::read(url).ok()?.kind;
    // Placeholders as their names: a host written as a secret stays a name, not a value.
    let shape = url.replace("${secrets.", "secret-").replace('}', "");
    let target = Target::parse(kind, &shape).ok()?;
    let scheme = match kind {
        ConnectionKind::Postgres => "postgres",
        ConnectionKind::Mysql => "mysql",
        ConnectionKind::Sqlite => {
            return Some((
                format!("sqlite:{}", target.file.as_deref().unwrap_or(":memory:")),
                None,
            ));
        }
        ConnectionKind::Nats => "nats",
        ConnectionKind::Redis => "redis",
        ConnectionKind::Amqp => "amqp",
        ConnectionKind::Mqtt => "mqtt",
    };
    let server = target.servers.first()?;
    let host = if server.host.contains(':') {
        format!("[{}]", server.host)
    } else {
        server.host.clone()
    };
    Some((
        format!("{scheme}://{host}:{}", server.port),
        target.database,
    ))
}

/// `path` as the host sees it: under the mount whose guest folder holds it (the longest), else
/// as written.
fn host_path(path: &str, mounts: &[ResolvedMount]) -> String {
    mounts
        .iter()
        .filter_map(|m| {
            let rest = Path::new(path).strip_prefix(&m.guest).ok()?;
            Some((m.guest.len(), m.host.join(rest)))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| path.to_string(), |(_, p)| p.display().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipeline::ValidationPolicy;

    fn validated(yaml: &str, root: &Path) -> ValidatedPipeline {
        let policy = ValidationPolicy {
            allowed_mount_roots: vec![root.to_path_buf()],
            base_dir: root.to_path_buf(),
            ..ValidationPolicy::default()
        };
        crate::pipeline::parse(yaml, None)
            .unwrap()
            .validate(&policy)
            .unwrap()
    }

    #[test]
    fn sources_and_sinks_are_named_from_their_configs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let yaml = format!(
            "name: p\nconnections:\n  wh: {{ url: \"postgres://etl:${{secrets.pw}}@db.internal/warehouse\" }}\n  \
             bus: {{ url: \"nats://nats.internal\" }}\n  cache: {{ url: \"redis://cache:6380/0\" }}\n\
             steps:\n  - id: orders\n    plugin: sql-source@latest\n    connections: [wh]\n    \
             config: {{ connection: wh, table: orders, cursor_column: id }}\n  \
             - id: events\n    plugin: nats-source@latest\n    connections: [bus]\n    \
             config: {{ connection: bus, stream: ORDERS, consumer: c }}\n  \
             - id: api\n    plugin: http-source@latest\n    allow_hosts: [api.example.com]\n    \
             config: {{ url: \"https://api.example.com/v1/items?token=x\" }}\n  \
             - id: map\n    plugin: json-map@latest\n    inputs: [orders, events, api]\n  \
             - id: file\n    plugin: file-sink@latest\n    input: map\n    \
             mounts: [{{ host: {root}, guest: /out, mode: rw }}]\n    config: {{ path: /out/day/orders.jsonl }}\n  \
             - id: stream\n    plugin: redis-sink@latest\n    input: map\n    connections: [cache]\n    \
             config: {{ connection: cache, stream: copies }}\n  \
             - id: table\n    plugin: postgres-sink@latest\n    input: map\n    connections: [wh]\n    \
             config: {{ connection: wh, schema: mart, table: daily }}\n",
            root = root.display()
        );
        let d = of(&validated(&yaml, &root));
        let names = |v: &[Dataset]| -> Vec<(String, String, String)> {
            v.iter()
                .map(|d| (d.step.clone(), d.namespace.clone(), d.name.clone()))
                .collect()
        };
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            names(&d.inputs),
            [
                t(
                    "orders",
                    "postgres://db.internal:5432",
                    "warehouse.public.orders"
                ),
                t("events", "nats://nats.internal:4222", "ORDERS"),
                t("api", "https://api.example.com", "/v1/items"),
            ]
        );
        assert_eq!(
            names(&d.outputs),
            [
                t(
                    "file",
                    "file",
                    &root.join("day/orders.jsonl").display().to_string()
                ),
                t("stream", "redis://cache:6380", "copies"),
                t(
                    "table",
                    "postgres://db.internal:5432",
                    "warehouse.mart.daily"
                ),
            ]
        );
        let all = format!("{d:?}");
        assert!(!all.contains("etl") && !all.contains("secrets"), "{all}");
    }

    #[test]
    fn steps_without_a_place_have_no_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "name: p\nsteps:\n  - id: gen\n    plugin: generator@latest\n  \
                    - id: log\n    plugin: log-sink@latest\n    input: gen\n";
        assert_eq!(of(&validated(yaml, dir.path())), Datasets::default());
    }
}
