//! `route`: sends each JSON record to the named outputs whose condition it matches (the
//! `json-filter` language), and a record no route takes to the default output. Downstream
//! steps read an output as `input: STEP.OUTPUT`, and the default one as `input: STEP`.
//!
//! Config: `{"routes": [{"output": "eu", "when": {"field": "country", "in": [...]}}, ...],
//! "mode": "first"}`. With `mode: first` (the default) a record goes to the first route it
//! matches; with `mode: all`, to every route it matches (each output once). The conditions
//! are compiled once, and each value is parsed once for all of them; a value that is not
//! JSON is rejected.
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde::Deserialize;

// The condition language is json-filter's, compiled from its files.
#[path = "../../json-filter/src/cond.rs"]
#[allow(dead_code)]
mod cond;
#[path = "../../json-filter/src/config.rs"]
#[allow(dead_code)]
mod config;
#[path = "../../json-filter/src/fields.rs"]
#[allow(dead_code)]
mod fields;

#[cfg(test)]
mod tests;

use cond::Condition;
use config::RawCondition;
use fields::Fields;

/// Which routes a record goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The first route it matches.
    #[default]
    First,
    /// Every route it matches.
    All,
}

/// One route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The output's name.
    pub output: String,
    /// The condition a record must match to go there.
    pub when: RawCondition,
}

/// The config as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The routes, tried in order.
    pub routes: Vec<RawRoute>,
    /// `first` (default) or `all`.
    #[serde(default)]
    pub mode: Mode,
}

/// The transform: each route's compiled condition and output, over one set of fields.
#[derive(Debug)]
pub struct Route {
    routes: Vec<(String, Condition)>,
    mode: Mode,
    fields: Fields,
    slots: Vec<Option<serde_json::Value>>,
    taken: Vec<bool>,
}

/// Whether `name` is a valid output name: `[a-z0-9][a-z0-9-_]*`, as step ids.
fn valid_output(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The distinct output names of `config`, in the order of their first route; an error names
/// the route whose output is not a valid name.
fn output_names(config: &RouteConfig) -> Result<Vec<String>, Error> {
    if config.routes.is_empty() {
        return Err(Error::InvalidConfig(
            "routes: give at least one route".into(),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, r) in config.routes.iter().enumerate() {
        if !valid_output(&r.output) {
            return Err(Error::InvalidConfig(format!(
                "routes[{i}].output: invalid output name {:?} (use a-z, 0-9, - and _, starting with a letter or digit)",
                r.output
            )));
        }
        if !names.contains(&r.output) {
            names.push(r.output.clone());
        }
    }
    Ok(names)
}

/// The config schema: the routes, with json-filter's condition as `when`.
fn config_schema() -> String {
    let filter: serde_json::Value = serde_json::from_str(config::CONFIG_SCHEMA).unwrap_or_default();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "route config",
        "description": "Routes tried in order; a record goes to the output of the first route it matches (mode first) or of every one (mode all), else to the default output.",
        "type": "object",
        "required": ["routes"],
        "additionalProperties": false,
        "properties": {
            "routes": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["output", "when"],
                    "additionalProperties": false,
                    "properties": {
                        "output": {
                            "description": "The output's name; downstream steps read it as input: STEP.OUTPUT.",
                            "type": "string",
                            "pattern": "^[a-z0-9][a-z0-9_-]*$"
                        },
                        "when": { "$ref": "#/$defs/condition" }
                    }
                }
            },
            "mode": { "enum": ["first", "all"], "default": "first" }
        },
        "$defs": filter["$defs"],
    })
    .to_string()
}

impl Transform for Route {
    type Config = RouteConfig;

    fn metadata() -> Metadata {
        Metadata::new(
            "route",
            env!("CARGO_PKG_VERSION"),
            "Sends each JSON record to the named outputs whose condition it matches (the \
             json-filter language), the first one or all of them, and the others to the default \
             output; rejects values that are not JSON.",
        )
        .config_schema(&config_schema())
    }

    fn outputs(config: &RouteConfig) -> Result<Vec<String>, Error> {
        output_names(config)
    }

    fn open(config: RouteConfig) -> Result<Self, Error> {
        output_names(&config)?;
        let mut fields = Fields::default();
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, r) in config.routes.into_iter().enumerate() {
            let at = format!("routes[{i}].when");
            let condition = config::compile(r.when, &at, &mut fields).map_err(|e| {
                Error::InvalidConfig(if e.starts_with(&at) {
                    e
                } else {
                    format!("{at}: {e}")
                })
            })?;
            routes.push((r.output, condition));
        }
        let taken = vec![false; routes.len()];
        Ok(Route {
            routes,
            mode: config.mode,
            fields,
            slots: Vec::new(),
            taken,
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        let parsed = std::str::from_utf8(&record.value)
            .map_err(|e| format!("value is not valid JSON: it is not UTF-8 ({e})"))
            .and_then(|text| {
                self.fields
                    .extract(text, &mut self.slots)
                    .map_err(|e| format!("value is not valid JSON: {e}"))
            });
        if let Err(reason) = parsed {
            out.reject(reason);
            return Ok(());
        }
        // Which outputs take it: the first match, or each matching route's output once.
        self.taken.iter_mut().for_each(|t| *t = false);
        let mut matched = Vec::new();
        for (i, (output, condition)) in self.routes.iter().enumerate() {
            if !condition.matches(&self.slots) {
                continue;
            }
            let first_of_its_output = !self.routes[..i]
                .iter()
                .zip(&self.taken)
                .any(|((o, _), t)| *t && o == output);
            self.taken[i] = true;
            if first_of_its_output {
                matched.push(i);
            }
            if self.mode == Mode::First {
                break;
            }
        }
        match matched.split_last() {
            None => out.emit(record),
            Some((&last, rest)) => {
                for &i in rest {
                    out.emit_to(&self.routes[i].0, record.clone());
                }
                out.emit_to(&self.routes[last].0, record);
            }
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Route);
