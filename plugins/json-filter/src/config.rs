//! The config as written (a recursive condition), its JSON Schema, and its compilation into a
//! [`Condition`].
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::cond::{Condition, Test};
use crate::fields::{Fields, Path};

/// JSON Schema (draft 2020-12) of the config, which is one [`RawCondition`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "json-filter config",
  "description": "A condition; records whose JSON value matches it are kept. One of: {field, op, value}, {field, equals}, {all: [...]}, {any: [...]}, {not: ...}.",
  "$ref": "#/$defs/condition",
  "$defs": {
    "condition": {
      "type": "object",
      "properties": {
        "field": {
          "description": "Dotted path into nested objects (\"customer.country\"); a numeric segment indexes an array.",
          "type": "string", "pattern": "^[^.]+(\\.[^.]+)*$"
        },
        "op": { "enum": ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "in"] },
        "value": { "description": "Operand of op; required except for exists (where it is an optional boolean)." },
        "equals": { "description": "Shorthand for op eq with this value." },
        "all": { "type": "array", "items": { "$ref": "#/$defs/condition" } },
        "any": { "type": "array", "items": { "$ref": "#/$defs/condition" } },
        "not": { "$ref": "#/$defs/condition" }
      },
      "additionalProperties": false,
      "minProperties": 1,
      "dependentRequired": { "op": ["field"], "equals": ["field"], "value": ["field", "op"] },
      "dependentSchemas": {
        "field": { "anyOf": [{ "required": ["op"] }, { "required": ["equals"] }] },
        "equals": { "not": { "required": ["op"] } },
        "all": { "maxProperties": 1 },
        "any": { "maxProperties": 1 },
        "not": { "maxProperties": 1 }
      },
      "allOf": [
        { "if": { "required": ["op"], "properties": { "op": { "const": "exists" } } },
          "then": { "properties": { "value": { "type": "boolean" } } } },
        { "if": { "required": ["op"], "properties": { "op": { "not": { "const": "exists" } } } },
          "then": { "required": ["value"] } },
        { "if": { "required": ["op"], "properties": { "op": { "const": "in" } } },
          "then": { "properties": { "value": { "type": "array" } } } },
        { "if": { "required": ["op"], "properties": { "op": { "enum": ["gt", "gte", "lt", "lte"] } } },
          "then": { "properties": { "value": { "type": ["number", "string"] } } } }
      ]
    }
  }
}"##;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Equal (numbers compare numerically).
    Eq,
    /// Not equal (false when the field is missing).
    Ne,
    /// Greater than (numbers, or strings lexicographically).
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// String contains a substring, or array contains an element.
    Contains,
    /// The field is present (or absent, with `"value": false`).
    Exists,
    /// The field's value is one of the `value` array's elements.
    In,
}

/// One condition as written in the config; exactly one of the groups must be given:
/// `field` + `op` (+ `value`), `field` + `equals`, `all`, `any` or `not`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// Dotted path of the field compared.
    pub field: Option<String>,
    /// Comparison operator.
    pub op: Option<Op>,
    /// Operand of `op` (`null` included).
    #[serde(default, deserialize_with = "present")]
    pub value: Option<Value>,
    /// Shorthand for `op: eq` with this value.
    #[serde(default, deserialize_with = "present")]
    pub equals: Option<Value>,
    /// Matches when every sub-condition does.
    pub all: Option<Vec<RawCondition>>,
    /// Matches when at least one sub-condition does.
    pub any: Option<Vec<RawCondition>>,
    /// Matches when the sub-condition does not.
    pub not: Option<Box<RawCondition>>,
}

/// Deserializes a present value (even `null`) as `Some`, so that `"value": null` is kept.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Compiles `raw` (found at `at`, such as `all[1].not`, for messages) into a [`Condition`],
/// adding the paths it reads to `fields`.
pub fn compile(raw: RawCondition, at: &str, fields: &mut Fields) -> Result<Condition, String> {
    let here = |msg: &str| {
        if at.is_empty() {
            msg.to_string()
        } else {
            format!("{at}: {msg}")
        }
    };
    let is_cmp =
        raw.field.is_some() || raw.op.is_some() || raw.value.is_some() || raw.equals.is_some();
    let kinds = [
        is_cmp,
        raw.all.is_some(),
        raw.any.is_some(),
        raw.not.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        0 => {
            return Err(here(
                "empty condition: expected `field`, `all`, `any` or `not`",
            ));
        }
        1 => {}
        _ => {
            return Err(here(
                "a condition takes exactly one of a comparison (`field`), `all`, `any` or `not`",
            ));
        }
    }
    let sub = |k: &str, i: Option<usize>| {
        let k = match i {
            Some(i) => format!("{k}[{i}]"),
            None => k.to_string(),
        };
        if at.is_empty() {
            k
        } else {
            format!("{at}.{k}")
        }
    };
    if let Some(all) = raw.all {
        let cs = all
            .into_iter()
            .enumerate()
            .map(|(i, c)| compile(c, &sub("all", Some(i)), fields));
        return cs.collect::<Result<_, _>>().map(Condition::All);
    }
    if let Some(any) = raw.any {
        let cs = any
            .into_iter()
            .enumerate()
            .map(|(i, c)| compile(c, &sub("any", Some(i)), fields));
        return cs.collect::<Result<_, _>>().map(Condition::Any);
    }
    if let Some(not) = raw.not {
        return compile(*not, &sub("not", None), fields).map(|c| Condition::Not(Box::new(c)));
    }
    let Some(field) = raw.field else {
        return Err(here("a comparison needs `field`"));
    };
    let path = Path::parse(&field).map_err(|e| here(&e))?;
    let test = match (raw.op, raw.equals, raw.value) {
        (Some(_), Some(_), _) => return Err(here("give either `equals` or `op`, not both")),
        (None, Some(_), Some(_)) => {
            return Err(here(
                "`value` goes with `op`; with `equals` it is not allowed",
            ));
        }
        (None, Some(v), None) => Test::Eq(v),
        (None, None, _) => return Err(here(&format!("field {field:?} needs `op` or `equals`"))),
        (Some(op), None, value) => test(op, value).map_err(|e| here(&e))?,
    };
    Ok(Condition::Cmp {
        slot: fields.slot(path),
        test,
    })
}

/// The test of `op` with its operand, checked.
fn test(op: Op, value: Option<Value>) -> Result<Test, String> {
    if op == Op::Exists {
        return match value {
            None => Ok(Test::Exists(true)),
            Some(Value::Bool(b)) => Ok(Test::Exists(b)),
            Some(_) => Err("op `exists` takes no `value`, or a boolean".into()),
        };
    }
    let Some(value) = value else {
        return Err(format!("op `{}` needs a `value`", name(op)));
    };
    Ok(match op {
        Op::Eq => Test::Eq(value),
        Op::Ne => Test::Ne(value),
        Op::Contains => Test::Contains(value),
        Op::In => match value {
            Value::Array(items) => Test::In(items),
            _ => return Err("op `in` needs an array `value`".into()),
        },
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            if !(value.is_number() || value.is_string()) {
                return Err(format!(
                    "op `{}` needs a number or string `value`",
                    name(op)
                ));
            }
            match op {
                Op::Gt => Test::Gt(value),
                Op::Gte => Test::Gte(value),
                Op::Lt => Test::Lt(value),
                _ => Test::Lte(value),
            }
        }
        Op::Exists => Test::Exists(true),
    })
}

/// The operator as written in the config.
fn name(op: Op) -> &'static str {
    match op {
        Op::Eq => "eq",
        Op::Ne => "ne",
        Op::Gt => "gt",
        Op::Gte => "gte",
        Op::Lt => "lt",
        Op::Lte => "lte",
        Op::Contains => "contains",
        Op::Exists => "exists",
        Op::In => "in",
    }
}
