//! Compiled conditions and their evaluation against the fields read from a record.
use std::cmp::Ordering;

use serde_json::{Number, Value};

/// What a comparison checks of the field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Equal to.
    Eq(Value),
    /// Not equal to.
    Ne(Value),
    /// Greater than (same type: numbers or strings).
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// Substring of a string field, or element of an array field.
    Contains(Value),
    /// Presence (`true`) or absence (`false`) of the field.
    Exists(bool),
    /// Equal to one of these.
    In(Vec<Value>),
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field in `slot` (see [`crate::Fields`]) passes `test`; a missing field fails every
    /// test but `exists: false`.
    Cmp {
        /// Where the field's value is put when a record is read.
        slot: usize,
        /// What it must satisfy.
        test: Test,
    },
    /// Every one matches (true when empty).
    All(Vec<Condition>),
    /// At least one matches (false when empty).
    Any(Vec<Condition>),
    /// The inner one does not match.
    Not(Box<Condition>),
}

impl Condition {
    /// Whether the record whose fields were read into `slots` matches.
    pub fn matches(&self, slots: &[Option<Value>]) -> bool {
        match self {
            Condition::All(cs) => cs.iter().all(|c| c.matches(slots)),
            Condition::Any(cs) => cs.iter().any(|c| c.matches(slots)),
            Condition::Not(c) => !c.matches(slots),
            Condition::Cmp { slot, test } => {
                match (slots.get(*slot).and_then(Option::as_ref), test) {
                    (found, Test::Exists(want)) => found.is_some() == *want,
                    (None, _) => false,
                    (Some(f), test) => passes(f, test),
                }
            }
        }
    }
}

/// Whether a present field value `f` passes `test`.
fn passes(f: &Value, test: &Test) -> bool {
    match test {
        Test::Eq(x) => json_eq(f, x),
        Test::Ne(x) => !json_eq(f, x),
        Test::Gt(x) => order(f, x) == Some(Ordering::Greater),
        Test::Gte(x) => matches!(order(f, x), Some(Ordering::Greater | Ordering::Equal)),
        Test::Lt(x) => order(f, x) == Some(Ordering::Less),
        Test::Lte(x) => matches!(order(f, x), Some(Ordering::Less | Ordering::Equal)),
        Test::Contains(x) => match (f, x) {
            (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
            (Value::Array(items), x) => items.iter().any(|i| json_eq(i, x)),
            _ => false,
        },
        Test::In(xs) => xs.iter().any(|x| json_eq(f, x)),
        Test::Exists(want) => *want,
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`), recursively.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

/// Order of two numbers or two strings; `None` for other or mismatched types.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Numeric order: exact for integers, IEEE for anything with a fraction.
fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
