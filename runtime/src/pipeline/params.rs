//! A pipeline's run parameters: `params: { NAME: { type, default, description } }` declares
//! them, a run is given values (the API's trigger, `autoflow run --param`, or the defaults for
//! a schedule), each checked against its type, and `${params.NAME}` in a step's config is
//! replaced by the run's value: a string that is only the reference takes the value with its
//! type, and a reference inside a longer string is written into it as text.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The declared parameters, by name.
pub type Params = BTreeMap<String, ParamSpec>;

/// The values of a run's parameters, by name.
pub type ParamValues = Map<String, Value>;

/// One parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Its value when a run is not given one; without it, every run must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number (i64).
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

impl ParamType {
    /// The word pipeline files use.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
        }
    }

    /// The type with its article, as messages say it.
    fn described(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "a boolean",
            ParamType::Date => "a date (YYYY-MM-DD)",
        }
    }

    /// `value` as this type: a JSON value of the type, or text that reads as one (what a
    /// command line or a query string gives); why not otherwise.
    pub fn accept(self, value: &Value) -> Result<Value, String> {
        let wrong = || format!("{value} is not {}", self.described());
        match (self, value) {
            (ParamType::String, Value::String(_)) => Ok(value.clone()),
            (ParamType::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
            (ParamType::Number, Value::Number(_)) => Ok(value.clone()),
            (ParamType::Boolean, Value::Bool(_)) => Ok(value.clone()),
            (ParamType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|_| value.clone())
                .map_err(|_| wrong()),
            (ParamType::Integer, Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| wrong()),
            (ParamType::Number, Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(wrong),
            (ParamType::Boolean, Value::String(s)) => match s.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(wrong()),
            },
            _ => Err(wrong()),
        }
    }

    /// A value of the type, standing in for a parameter without a default when a config is
    /// checked against its plugin's schema before any run gives one.
    pub fn stand_in(self) -> Value {
        match self {
            ParamType::String => Value::String(String::new()),
            ParamType::Integer | ParamType::Number => Value::from(0),
            ParamType::Boolean => Value::Bool(false),
            ParamType::Date => Value::String("1970-01-01".into()),
        }
    }
}

/// Whether `name` may name a parameter: a letter or `_`, then letters, digits and `_`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// The declarations' own problems, `(field, message)`, each field relative to `params`.
pub fn problems(params: &Params) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, spec) in params {
        if !is_valid_name(name) {
            out.push((
                format!(".{name}"),
                format!(
                    "invalid parameter name {name:?} (a letter or _, then letters, digits and _)"
                ),
            ));
        }
        if let Some(default) = &spec.default
            && let Err(e) = spec.kind.accept(default)
        {
            out.push((format!(".{name}.default"), e));
        }
    }
    out
}

/// The run's values: `given` checked against `params` (text read as the type), the defaults
/// for the rest. Every problem names its parameter: one not declared, a value of the wrong
/// type, a parameter without a default and without a value.
pub fn resolve(params: &Params, given: &ParamValues) -> Result<ParamValues, Vec<String>> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if !params.contains_key(name) {
            problems.push(format!(
                "params.{name}: the pipeline declares no parameter {name:?}"
            ));
        }
    }
    let mut values = ParamValues::new();
    for (name, spec) in params {
        match given.get(name).or(spec.default.as_ref()) {
            Some(v) => match spec.kind.accept(v) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) => problems.push(format!("params.{name}: {e}")),
            },
            None => problems.push(format!(
                "params.{name}: missing ({} without a default)",
                spec.kind.described()
            )),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// Values to check configs with before any run: the defaults, else a stand-in of the type.
pub fn check_values(params: &Params) -> ParamValues {
    params
        .iter()
        .map(|(name, spec)| {
            let v = spec.default.clone().unwrap_or_else(|| spec.kind.stand_in());
            (name.clone(), spec.kind.accept(&v).unwrap_or(v))
        })
        .collect()
}

const OPEN: &str = "${params.";

/// The parameter names `config` refers to with `${params.NAME}`, in order, repeats kept.
pub fn references(config: &Value) -> Vec<String> {
    let mut names = Vec::new();
    visit_strings(config, &mut |s| {
        let mut rest = s;
        while let Some(at) = rest.find(OPEN) {
            let after = &rest[at + OPEN.len()..];
            match after.find('}') {
                Some(end) => {
                    names.push(after[..end].to_string());
                    rest = &after[end + 1..];
                }
                None => {
                    names.push(after.to_string());
                    break;
                }
            }
        }
    });
    names
}

fn visit_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| visit_strings(i, f)),
        Value::Object(map) => map.values().for_each(|i| visit_strings(i, f)),
        _ => {}
    }
}

/// `config` with every `${params.NAME}` replaced by its value in `values` (see the module
/// doc); a reference to a name `values` lacks is left as written.
pub fn substitute(config: &Value, values: &ParamValues) -> Value {
    match config {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix(OPEN).and_then(|r| r.strip_suffix('}'))
                && let Some(v) = values.get(name)
            {
                return v.clone();
            }
            if !s.contains(OPEN) {
                return config.clone();
            }
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(at) = rest.find(OPEN) {
                out.push_str(&rest[..at]);
                let after = &rest[at + OPEN.len()..];
                let Some(end) = after.find('}') else {
                    out.push_str(&rest[at..]);
                    rest = "";
                    break;
                };
                match values.get(&after[..end]) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(v) => out.push_str(&v.to_string()),
                    None => out.push_str(&rest[at..at + OPEN.len() + end + 1]),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, values)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> Params {
        serde_json::from_value(json!({
            "count": {"type": "integer", "default": 3},
            "region": {"type": "string"},
            "day": {"type": "date", "default": "2026-12-01"},
            "strict": {"type": "boolean", "default": false},
        }))
        .unwrap()
    }

    #[test]
    fn values_are_checked_and_defaults_fill_the_rest() {
        let given = json!({"region": "eu", "count": "7"});
        let v = resolve(&params(), given.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"count": 7, "day": "2026-12-01", "region": "eu", "strict": false})
        );
    }

    #[test]
    fn every_problem_names_its_parameter() {
        let given = json!({"count": "many", "day": "2026-13-01", "colour": "red"});
        let e = resolve(&params(), given.as_object().unwrap()).unwrap_err();
        assert_eq!(
            e,
            vec![
                "params.colour: the pipeline declares no parameter \"colour\"",
                "params.count: \"many\" is not an integer",
                "params.day: \"2026-13-01\" is not a date (YYYY-MM-DD)",
                "params.region: missing (a string without a default)",
            ]
        );
    }

    #[test]
    fn a_whole_reference_keeps_its_type_and_a_partial_one_is_text() {
        let values = json!({"count": 7, "region": "eu"});
        let config = json!({
            "count": "${params.count}",
            "path": "/data/${params.region}/part-${params.count}.jsonl",
            "nested": [{"r": "${params.region}"}],
            "unknown": "${params.nope}",
            "open": "x ${params.count",
        });
        assert_eq!(
            substitute(&config, values.as_object().unwrap()),
            json!({
                "count": 7,
                "path": "/data/eu/part-7.jsonl",
                "nested": [{"r": "eu"}],
                "unknown": "${params.nope}",
                "open": "x ${params.count",
            })
        );
        assert_eq!(
            references(&config),
            vec!["count", "region", "count", "region", "nope", "count"]
        );
    }

    #[test]
    fn declarations_are_checked() {
        let bad: Params = serde_json::from_value(json!({
            "9lives": {"type": "string"},
            "n": {"type": "integer", "default": 1.5},
        }))
        .unwrap();
        let p = problems(&bad);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, ".9lives");
        assert_eq!(p[1], (".n.default".into(), "1.5 is not an integer".into()));
    }
}
