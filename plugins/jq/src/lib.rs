//! `jq`: runs a jq program (the `jaq` implementation) on each record, emitting one record per
//! output value.
//!
//! Config: `{ "program": ".items[] | {id, sku}" }`. A program that does not compile is an
//! `invalid-config` error with jaq's message; an error while running it rejects the record with
//! jaq's message. Zero outputs drop the record.
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Filter, Vars, data};
use jaq_json::Val;
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "jq config",
  "description": "A jq program run on each record; each output value becomes a record.",
  "type": "object",
  "properties": {
    "program": { "description": "The jq program (jaq dialect).", "type": "string", "minLength": 1 }
  },
  "required": ["program"],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The jq program.
    pub program: String,
}

type D = data::JustLut<Val>;

/// The transform: the compiled program.
pub struct Jq {
    filter: Filter<D>,
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jq")
    }
}

/// Where `part` (a slice of `code`, as jaq's errors hold) starts, as a 1-based character
/// position; the end of `code` if it is not a slice of it.
fn position(code: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize)
        .checked_sub(code.as_ptr() as usize)
        .filter(|o| *o <= code.len())
        .unwrap_or(code.len());
    code.get(..offset).map_or(0, |s| s.chars().count()) + 1
}

/// jq's message for a runtime error: a string error is shown as its text.
fn message(e: jaq_core::Error<Val>) -> String {
    match e.into_val() {
        Val::TStr(b) => String::from_utf8_lossy(&b).into_owned(),
        other => other.to_string(),
    }
}

/// Compiles `program`; the error is jaq's message with where it happened.
pub fn compile(program: &str) -> Result<Filter<D>, String> {
    use jaq_core::load::Error as LoadError;
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs::<D>()
        .chain(jaq_std::funs::<D>())
        .chain(jaq_json::funs::<D>());
    let arena = Arena::default();
    let loader = Loader::new(defs);
    let file = File {
        code: program,
        path: (),
    };
    let at = |rest: &str| position(program, rest);
    let modules = loader.load(&arena, file).map_err(|errs| {
        let mut msgs = Vec::new();
        for (_, e) in errs {
            match e {
                LoadError::Io(list) => {
                    msgs.extend(list.into_iter().map(|(p, m)| format!("{p}: {m}")))
                }
                LoadError::Lex(list) => msgs.extend(list.into_iter().map(|(expect, rest)| {
                    format!("expected {} at character {}", expect.as_str(), at(rest))
                })),
                LoadError::Parse(list) => msgs.extend(list.into_iter().map(|(expect, found)| {
                    let got = if found.is_empty() {
                        "the end of the program".to_string()
                    } else {
                        format!("{:?}", found.chars().take(20).collect::<String>())
                    };
                    format!(
                        "expected {} at character {}, found {got}",
                        expect.as_str(),
                        at(found)
                    )
                })),
            }
        }
        msgs.join("; ")
    })?;
    Compiler::<_, D>::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            errs.into_iter()
                .flat_map(|(_, list)| list)
                .map(|(name, undefined)| {
                    format!(
                        "undefined {} {name} at character {}",
                        undefined.as_str(),
                        at(name)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
}

impl Jq {
    /// Runs the program on the JSON text `value`: its outputs as JSON text, or jaq's error.
    pub fn run(&self, value: &[u8]) -> Result<Vec<String>, String> {
        let input = jaq_json::read::parse_single(value)
            .map_err(|e| format!("value is not valid JSON: {e}"))?;
        let ctx = Ctx::<D>::new(&self.filter.lut, Vars::new([]));
        let mut outs = Vec::new();
        for v in self.filter.id.run((ctx, input)) {
            match v {
                Ok(v) => outs.push(v.to_string()),
                Err(exn) => {
                    return Err(match exn.get_err() {
                        Ok(e) => format!("jq: {}", message(e)),
                        Err(_) => "jq: the program halted".to_string(),
                    });
                }
            }
        }
        Ok(outs)
    }
}

impl Transform for Jq {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "jq",
            env!("CARGO_PKG_VERSION"),
            "Runs a jq program (jaq) on each record and emits one record per output value; \
             a runtime error rejects the record with jq's message.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(Jq {
            filter: compile(&config.program)
                .map_err(|e| Error::InvalidConfig(format!("program: {e}")))?,
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        match self.run(&record.value) {
            Ok(values) => {
                for v in values {
                    out.emit(Record {
                        key: record.key.clone(),
                        value: v.into_bytes(),
                        headers: record.headers.clone(),
                        timestamp: record.timestamp,
                    });
                }
            }
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Jq);
